package gofutures

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testForkConfig returns a config whose workers start through Fork. A Go
// test cannot fork itself into a worker, so its Fork starts the test
// worker (testWorkerMain) by fork+exec with the given fds as its fds 3 and
// 4: to the pool it is the same, a child of this process known by its pid.
// forks counts the calls.
func testForkConfig(workers int, forks *atomic.Int32) ProcessConfig {
	env := testWorkerConfig(workers).Env
	return ProcessConfig{
		Workers: workers,
		Fork: func(spec ForkSpec) (int, error) {
			forks.Add(1)
			return syscall.ForkExec(os.Args[0], []string{os.Args[0], "-test.run=^$"}, &syscall.ProcAttr{
				Env:   env,
				Files: []uintptr{0, 1, 2, uintptr(spec.TaskFD), uintptr(spec.ResultFD)},
			})
		},
	}
}

func TestForkPoolStartsAllWorkersAtTheFirstSubmit(t *testing.T) {
	var forks atomic.Int32
	p, sink := newTestPool(t, testForkConfig(3, &forks))
	if n := forks.Load(); n != 0 {
		t.Fatalf("%d workers forked before any task; the stdlib's fork pools start them at the first submit", n)
	}
	submit(t, p, 1, "echo:one")
	c := sink.waitCompleted(t, 1)
	if c[0].data != "one" {
		t.Errorf("result %q, want %q", c[0].data, "one")
	}
	for i := uint64(2); i <= 6; i++ {
		submit(t, p, i, "pid")
	}
	sink.waitCompleted(t, 6)
	if n := forks.Load(); n != 3 {
		t.Errorf("%d workers forked for 6 tasks, want all 3 at the first submit and no more", n)
	}
	shutdownAndJoin(t, p, p.PIDs())
}

func TestForkPoolWorkerDeathIsSeenAndBreaksThePool(t *testing.T) {
	var forks atomic.Int32
	p, sink := newTestPool(t, testForkConfig(1, &forks))
	submit(t, p, 1, "kill")
	b := sink.waitBroken(t)
	var died *WorkerDied
	if !errors.As(b.err, &died) || died.Signal != syscall.SIGKILL || died.TaskID != 1 {
		t.Fatalf("Broken(%v), want a WorkerDied by SIGKILL running task 1", b.err)
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatal("the pool did not end after its forked worker died")
	}
	if err := syscall.Kill(died.PID, 0); err != syscall.ESRCH {
		t.Errorf("kill(%d, 0) = %v, want ESRCH: the forked worker must be reaped", died.PID, err)
	}
}

func TestForkPoolThatCannotForkBreaksWithTheReason(t *testing.T) {
	cfg := ProcessConfig{Workers: 2, Fork: func(ForkSpec) (int, error) { return 0, syscall.EAGAIN }}
	p, sink := newTestPool(t, cfg)
	submit(t, p, 1, "echo:x")
	b := sink.waitBroken(t)
	if !strings.Contains(b.err.Error(), "cannot fork a worker process") || len(b.tasks) != 1 {
		t.Fatalf("Broken(%v, %d tasks), want the fork error with the queued task", b.err, len(b.tasks))
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatal("a pool that could not fork did not end")
	}
}
