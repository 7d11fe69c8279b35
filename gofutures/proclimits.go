package gofutures

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
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

// memoryMeter reads one process's resident set size. Only the worker's
// supervisor goroutine uses it (no lock): it checks after each task and
// closes it when the worker is reaped.
type memoryMeter struct {
	statm *os.File // /proc/<pid>/statm, kept open: a read is then ~2 us, not ~20
	buf   [128]byte
}

// residentBytes returns the resident set size (VmRSS: statm's second
// field, in pages) of process pid, or 0 when it cannot be read (no /proc
// on this system, or the process is gone).
func (m *memoryMeter) residentBytes(pid int) int64 {
	if m.statm == nil {
		// Not os.Open: its file would be offered to the runtime's poller.
		fd, err := syscall.Open("/proc/"+strconv.Itoa(pid)+"/statm", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return 0
		}
		ownFD(fd)
		m.statm = blockingFile(fd, "statm")
	}
	n, _ := m.statm.ReadAt(m.buf[:], 0) // "size resident shared text lib data dt"
	fields := bytes.Fields(m.buf[:n])
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

func (m *memoryMeter) close() {
	if m.statm != nil {
		closeOwnedFile(m.statm)
	}
}
