package gofutures

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// TaskTimeout fails a task that ran past ProcessConfig.TaskTimeout; its
// worker was killed (SIGKILL) and replaced.
type TaskTimeout struct {
	PID    int           // the worker killed
	Limit  time.Duration // the limit enforced
	TaskID uint64
}

func (e *TaskTimeout) Error() string {
	return fmt.Sprintf("task %d ran past its time limit of %v; its worker process %d was killed (SIGKILL) and replaced",
		e.TaskID, e.Limit, e.PID)
}

// armLocked starts the TaskTimeout timer of t, w's task, once both t is
// written to w and w is ready. The timer
// goroutine takes p.mu and kills w only if t is still w's task, so a timer
// that fires as the answer arrives does nothing.
func (p *ProcessPool) armLocked(w *procWorker, t *ProcTask) {
	limit := t.Timeout
	if limit <= 0 {
		limit = p.cfg.TaskTimeout
	}
	if limit <= 0 {
		return
	}
	w.timer = time.AfterFunc(limit, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.killTaskLocked(w, t, &TaskTimeout{PID: w.pid, Limit: limit, TaskID: t.ID})
	})
}

// stopTimerLocked stops w's TaskTimeout timer, if any (its task ended).
func (w *procWorker) stopTimerLocked() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// residentBytes returns the resident set size (VmRSS) of process pid, or 0
// when it cannot be read (no /proc on this system, or the process is gone).
func residentBytes(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest) // "123456 kB"
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}
