package gofutures

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A worker can leave a process running that holds its pipes (a task's
// `sleep 15 &` when they leaked, a daemon it started): its death must be
// seen from the process, not from the pipe's end.

// startGrandchild runs task "grandchild" on p and returns the pid of the
// `sleep 30` it left holding the worker's pipes; the test's cleanup kills it.
func startGrandchild(t *testing.T, p *ProcessPool, sink *procSink, id uint64) int {
	t.Helper()
	submit(t, p, id, "grandchild")
	c := sink.waitCompleted(t, 1)
	pid, err := strconv.Atoi(c[0].data)
	if c[0].kind != FrameResult || err != nil {
		t.Fatalf("grandchild task answered %v %q", c[0].kind, c[0].data)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// assertAlive checks that the grandchild still runs (and so still holds
// the pipes): what the pool saw did not come from the pipes' end.
func assertAlive(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the grandchild %d is gone (%v): the test proves nothing", pid, err)
	}
}

// failedAsWhileAlive waits for task 2 to fail alone with an error of
// target's type, and checks that the grandchild is still alive then.
func failedAsWhileAlive(t *testing.T, sink *procSink, grandchild int, target any) {
	t.Helper()
	f := sink.waitFailed(t, 1)
	assertAlive(t, grandchild)
	if !errors.As(f[0].err, target) || f[0].task.ID != 2 {
		t.Fatalf("Failed(%d, %v); want task 2 failing with a %T", f[0].task.ID, f[0].err, target)
	}
}

func TestProcessPoolSeesDeathWhileAGrandchildHoldsThePipes(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	pids := p.PIDs()
	grandchild := startGrandchild(t, p, sink, 1)
	submit(t, p, 2, "kill")
	b := sink.waitBroken(t)
	assertAlive(t, grandchild)
	var d *WorkerDied
	if !errors.As(b.err, &d) || d.PID != pids[0] || d.Signal != syscall.SIGKILL || d.TaskID != 2 {
		t.Fatalf("Broken(%v); want worker %d killed by SIGKILL while running task 2", b.err, pids[0])
	}
	assertBrokenAndReaped(t, p, pids)
}

func TestProcessPoolSurvivesADeathWhileAGrandchildHoldsThePipes(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Survive = true
	p, sink := newTestPool(t, cfg)
	grandchild := startGrandchild(t, p, sink, 1)
	submit(t, p, 2, "kill")
	var d *WorkerDied
	failedAsWhileAlive(t, sink, grandchild, &d)
	submit(t, p, 3, "echo:after")
	if c := sink.waitCompleted(t, 2); c[1].data != "after" {
		t.Fatalf("after the replacement, completed %q", c[1].data)
	}
}

func TestProcessPoolTaskTimeoutWhileAGrandchildHoldsThePipes(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.TaskTimeout = 300 * time.Millisecond
	p, sink := newTestPool(t, cfg)
	grandchild := startGrandchild(t, p, sink, 1)
	submit(t, p, 2, "sleep:20000")
	var timeout *TaskTimeout
	failedAsWhileAlive(t, sink, grandchild, &timeout)
}

// A write to a worker that died with its task pipe full must fail, not
// block forever (holding the pool's lock) because another process keeps
// the pipe's read end open.
func TestPipeEndWriteFailsOnceTheWorkerExits(t *testing.T) {
	r, w, err := newPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("sleep", "30") // holds the read end, never reads
	holder.ExtraFiles = []*os.File{blockingFile(r, "task pipe")}
	worker := exec.Command("sleep", "30")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer holder.Process.Kill()
	holder.ExtraFiles[0].Close()
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	death := openPidFD(worker.Process.Pid)
	if death == nil {
		t.Skip("no pidfd on this system")
	}
	defer death.close()
	end := newPipeEnd(w, death)
	defer end.Close()
	done := make(chan error, 1)
	go func() {
		_, err := end.Write(make([]byte, 1<<20)) // more than a pipe holds
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Write returned %v before the worker exited", err)
	case <-time.After(50 * time.Millisecond):
	}
	worker.Process.Kill()
	worker.Wait()
	select {
	case err := <-done:
		if !errors.Is(err, errWorkerGone) {
			t.Fatalf("Write after the worker's exit = %v, want errWorkerGone", err)
		}
	case <-time.After(procTimeout):
		t.Fatal("Write still blocked after the worker exited")
	}
}
