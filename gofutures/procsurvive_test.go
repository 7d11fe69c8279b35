package gofutures

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// waitRunning waits until task's future is Running (written to a worker).
func waitRunning(t *testing.T, task *ProcTask) {
	t.Helper()
	deadline := time.Now().Add(procTimeout)
	for {
		if s, _ := task.Future.State(); s == Running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %d never started running", task.ID)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProcessPoolSurviveFailsOnlyTheDeadWorkersTask(t *testing.T) {
	cfg := testWorkerConfig(2)
	cfg.Survive = true
	p, sink := newTestPool(t, cfg)
	submit(t, p, 1, "kill")
	for id := uint64(2); id <= 6; id++ {
		submit(t, p, id, "echo:ok")
	}
	f := sink.waitFailed(t, 1)
	var d *WorkerDied
	if !errors.As(f[0].err, &d) || f[0].task.ID != 1 || d.TaskID != 1 || d.Signal != syscall.SIGKILL || d.PID == 0 {
		t.Fatalf("Failed(%d, %v); want task 1 with a *WorkerDied by SIGKILL", f[0].task.ID, f[0].err)
	}
	sink.waitCompleted(t, 5)
	submit(t, p, 7, "echo:after")
	if c := sink.waitCompleted(t, 6); string(c[5].data) != "after" {
		t.Errorf("after the death: %+v", c[5])
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err() = %v; the pool should have survived", err)
	}
	if s := p.Stats(); s.Died != 1 || s.Failed != 1 || s.Done != 7 || s.Workers != 2 {
		t.Errorf("Stats() = %+v; want 1 died, 7 done (1 failed), 2 workers", s)
	}
	if _, b := sink.snapshot(); len(b) != 0 {
		t.Errorf("Broken called: %v", b)
	}
}

func TestProcessPoolSurviveCrashLoopBreaks(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Survive = true
	cfg.Lazy = true
	cfg.Init = []byte("fail")
	p, sink := newTestPool(t, cfg)
	for id := uint64(1); id <= 10; id++ {
		if err := p.Submit(&ProcTask{ID: id, Future: NewFuture(), Payload: []byte("echo:x")}); err != nil {
			break // broken already
		}
	}
	b := sink.waitBroken(t)
	var d *WorkerDied
	if !errors.As(b.err, &d) || !d.Starting {
		t.Fatalf("Broken(%v); want a *WorkerDied while starting", b.err)
	}
	f := sink.waitFailed(t, DefaultMaxStartDeaths-1)
	if len(f) != DefaultMaxStartDeaths-1 {
		t.Errorf("%d tasks failed alone before the break, want %d", len(f), DefaultMaxStartDeaths-1)
	}
}

func TestProcessPoolTaskTimeoutKillsAndReplaces(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.TaskTimeout = 200 * time.Millisecond
	p, sink := newTestPool(t, cfg)
	before := p.PIDs()
	start := time.Now()
	submit(t, p, 1, "sleep:20000")
	submit(t, p, 2, "sleep:10") // finishes within the limit
	f := sink.waitFailed(t, 1)
	var to *TaskTimeout
	if !errors.As(f[0].err, &to) || to.PID != before[0] || to.Limit != cfg.TaskTimeout || f[0].task.ID != 1 {
		t.Fatalf("Failed(%d, %v); want task 1 timed out on worker %d", f[0].task.ID, f[0].err, before[0])
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("the timeout took %v", el)
	}
	if c := sink.waitCompleted(t, 1); string(c[0].data) != "slept 10" || c[0].task.ID != 2 {
		t.Errorf("after the timeout: %+v", c[0])
	}
	if after := p.PIDs(); len(after) != 1 || after[0] == before[0] {
		t.Errorf("PIDs %v -> %v; want the worker replaced", before, after)
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err() = %v; a timeout must not break the pool", err)
	}
	if s := p.Stats(); s.Killed != 1 || s.Failed != 1 {
		t.Errorf("Stats() = %+v; want 1 killed, 1 failed", s)
	}
}

func TestProcessPoolKillTask(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Lazy = true
	p, sink := newTestPool(t, cfg)
	task := submit(t, p, 1, "sleep:20000")
	queued := submit(t, p, 2, "echo:next")
	if p.KillTask(queued.Future) {
		t.Errorf("KillTask of a queued task = true")
	}
	waitRunning(t, task)
	if !p.KillTask(task.Future) {
		t.Fatalf("KillTask of the running task = false")
	}
	if p.KillTask(task.Future) {
		t.Errorf("KillTask twice = true")
	}
	if f := sink.waitFailed(t, 1); f[0].err != ErrTaskKilled || f[0].task != task {
		t.Fatalf("Failed(%d, %v); want task 1, ErrTaskKilled", f[0].task.ID, f[0].err)
	}
	if c := sink.waitCompleted(t, 1); string(c[0].data) != "next" {
		t.Errorf("after the kill: %+v", c[0])
	}
	if s := p.Stats(); s.Killed != 1 || s.Cancelled != 1 || s.Broken {
		t.Errorf("Stats() = %+v; want 1 killed, 1 cancelled", s)
	}
}

func TestProcessPoolMaxWorkerMemoryRecycles(t *testing.T) {
	var m memoryMeter
	defer m.close()
	if m.residentBytes(syscall.Getpid()) == 0 {
		t.Skip("no /proc/<pid>/status VmRSS here")
	}
	cfg := testWorkerConfig(1)
	cfg.MaxWorkerMemory = 1 // every worker is over it
	p, sink := newTestPool(t, cfg)
	submit(t, p, 1, "pid")
	submit(t, p, 2, "pid")
	c := sink.waitCompleted(t, 2)
	if c[0].data == c[1].data {
		t.Errorf("both tasks ran in worker %s; want it recycled after the first", c[0].data)
	}
	if s := p.Stats(); s.Recycled < 1 {
		t.Errorf("Stats() = %+v; want a worker recycled", s)
	}

	cfg.MaxWorkerMemory = 1 << 40 // none is
	p2, sink2 := newTestPool(t, cfg)
	submit(t, p2, 1, "pid")
	submit(t, p2, 2, "pid")
	if c := sink2.waitCompleted(t, 2); c[0].data != c[1].data {
		t.Errorf("pids %s, %s; want the worker kept under its limit", c[0].data, c[1].data)
	}
}

func TestProcessPoolDefaultDeathStillBreaks(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	submit(t, p, 1, "kill")
	sink.waitBroken(t)
	if _, b := sink.snapshot(); len(b) != 1 {
		t.Errorf("Broken called %d times", len(b))
	}
	if s := p.Stats(); !s.Broken || s.Died != 0 {
		t.Errorf("Stats() = %+v; want broken, no survived death", s)
	}
}

func TestProcessPoolTaskTimeoutCountsFromReady(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Lazy = true
	cfg.Init = []byte("sleep:500") // a slow initializer
	cfg.TaskTimeout = 300 * time.Millisecond
	p, sink := newTestPool(t, cfg)
	submit(t, p, 1, "sleep:10") // waits for the start, then runs well within the limit
	if c := sink.waitCompleted(t, 1); c[0].data != "slept 10" {
		t.Errorf("completion %+v", c[0])
	}
	if s := p.Stats(); s.Killed != 0 {
		t.Errorf("Stats() = %+v; the start-up must not count against the task", s)
	}
}

func TestProcessPoolPerTaskTimeout(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1)) // no pool-wide limit
	hung := &ProcTask{ID: 1, Future: NewFuture(), Payload: []byte("sleep:20000"), Timeout: 200 * time.Millisecond}
	if err := p.Submit(hung); err != nil {
		t.Fatal(err)
	}
	submit(t, p, 2, "sleep:300") // longer than task 1's limit, but has none
	var to *TaskTimeout
	if f := sink.waitFailed(t, 1); !errors.As(f[0].err, &to) || to.Limit != hung.Timeout || f[0].task != hung {
		t.Fatalf("Failed(%d, %v); want task 1 timed out after %v", f[0].task.ID, f[0].err, hung.Timeout)
	}
	if c := sink.waitCompleted(t, 1); c[0].data != "slept 300" {
		t.Errorf("completion %+v", c[0])
	}
}

func TestMemoryMeterFollowsGrowth(t *testing.T) {
	var m memoryMeter
	defer m.close()
	before := m.residentBytes(syscall.Getpid())
	if before == 0 {
		t.Skip("no /proc/<pid>/statm here")
	}
	// Fresh pages from the kernel: the Go heap may reuse pages earlier
	// tests made resident.
	big, err := syscall.Mmap(-1, 0, 64<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(big)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1 // touch every page
	}
	after := m.residentBytes(syscall.Getpid()) // the same open file, read again
	if after-before < 48<<20 {
		t.Errorf("resident %d -> %d bytes after touching 64 MiB", before, after)
	}
}
