package gofutures

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run a stand-in helper (testdata/zygote.py) that speaks the
// protocol of Zygote's doc comment with a worker built in: they test this
// side of it, the real helper is the Python package's (its own tests check
// it against the same protocol). They need python3 (3.9+) and skip
// without it.

func testZygote(t *testing.T) *Zygote {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 to run the zygote")
	}
	z := NewZygote([]string{python, "testdata/zygote.py"})
	t.Cleanup(func() {
		z.mu.Lock()
		defer z.mu.Unlock()
		if z.proc != nil {
			z.proc.conn.Close() // EOF: it kills its children and exits
			<-z.proc.done
		}
	})
	return z
}

type zygoteTestWorker struct {
	proc       workerProc
	tasks, out *os.File
}

func startTestWorker(t *testing.T, z *Zygote, number int) *zygoteTestWorker {
	t.Helper()
	taskR, taskW, _ := os.Pipe()
	resR, resW, _ := os.Pipe()
	proc, err := z.start(workerSpec{env: append(os.Environ(), fmt.Sprintf("%s=%d", WorkerNumberEnv, number)),
		files: []*os.File{taskR, resW}})
	taskR.Close()
	resW.Close()
	if err != nil {
		t.Fatalf("zygote start: %v", err)
	}
	return &zygoteTestWorker{proc: proc, tasks: taskW, out: resR}
}

func (w *zygoteTestWorker) ask(t *testing.T, command string) string {
	t.Helper()
	w.tasks.WriteString(command)
	buf := make([]byte, 100)
	n, _ := w.out.Read(buf)
	return string(buf[:n])
}

func TestZygoteForksWorkersAndReportsTheirExit(t *testing.T) {
	z := testZygote(t)
	w := startTestWorker(t, z, 3)
	info := strings.Fields(w.ask(t, "info"))
	if len(info) != 3 || info[0] != fmt.Sprint(os.Getpid()) || info[1] == fmt.Sprint(os.Getpid()) || info[2] != "3" {
		t.Fatalf("worker info %q: want our pid as PARENT_PID, the zygote as its parent, number 3 (we are %d)",
			info, os.Getpid())
	}
	w.tasks.Close()
	if e := w.proc.wait(); !e.known || e.code != 0 || e.signal != 0 {
		t.Fatalf("exit %+v, want code 0", e)
	}
	w.proc.release()

	w = startTestWorker(t, z, 4)
	w.tasks.WriteString("exit:7")
	if e := w.proc.wait(); !e.known || e.code != 7 {
		t.Fatalf("exit %+v, want code 7", e)
	}
	w.proc.release()
}

func TestZygoteReportsASignalAndKeepsThePidUntilReleased(t *testing.T) {
	z := testZygote(t)
	w := startTestWorker(t, z, 1)
	if got := w.ask(t, "wait"); got != "ready" {
		t.Fatalf("worker said %q", got)
	}
	w.proc.signal(syscall.SIGKILL)
	e := w.proc.wait()
	if !e.known || e.signal != syscall.SIGKILL || e.code != -1 {
		t.Fatalf("exit %+v, want SIGKILL", e)
	}
	// Not reaped yet: the pid still exists (a zombie), so it cannot be reused.
	if err := syscall.Kill(w.proc.pid(), 0); err != nil {
		t.Fatalf("the pid was reaped before release: %v", err)
	}
	w.proc.release()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(w.proc.pid(), 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the released worker was not reaped")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestZygoteStartsConcurrentlyAndRestartsAfterDying(t *testing.T) {
	z := testZygote(t)
	var wg sync.WaitGroup
	workers := make([]*zygoteTestWorker, 8)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[i] = startTestWorker(t, z, i+1)
		}()
	}
	wg.Wait()
	for i, w := range workers {
		if info := strings.Fields(w.ask(t, "info")); len(info) != 3 || info[2] != fmt.Sprint(i+1) {
			t.Fatalf("worker %d: info %q", i+1, info)
		}
	}
	// A worker still running when its zygote dies: its status is unknown.
	survivor := startTestWorker(t, z, 9)
	if got := survivor.ask(t, "wait"); got != "ready" {
		t.Fatalf("worker said %q", got)
	}
	z.mu.Lock()
	old := z.proc
	z.mu.Unlock()
	old.cmd.Process.Kill()
	<-old.done
	for _, w := range workers {
		if e := w.proc.wait(); !e.known && e.code != -1 {
			t.Fatalf("exit %+v", e)
		}
		w.proc.release()
	}
	survivor.tasks.Close()
	if e := survivor.proc.wait(); e.known {
		t.Fatalf("exit %+v: want unknown (the zygote died first)", e)
	}
	survivor.proc.release() // nothing to release to: must not block or panic
	w := startTestWorker(t, z, 10)
	if info := strings.Fields(w.ask(t, "info")); len(info) != 3 || info[1] == fmt.Sprint(old.cmd.Process.Pid) {
		t.Fatalf("info %q: want a new zygote", info)
	}
	w.tasks.Close()
	w.proc.wait()
	w.proc.release()
}
