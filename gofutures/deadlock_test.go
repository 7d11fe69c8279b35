package gofutures

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// slotRunner runs func(*Slot) payloads, handing each the slot of the worker
// that runs it, as the binding does through its thread-local worker.
type slotRunner struct {
	pool *ThreadPool[func(*Slot) error]
}

func (r *slotRunner) Start(int) error { return nil }
func (r *slotRunner) Run(i int, t Task[func(*Slot) error], more func() (Task[func(*Slot) error], bool)) {
	s := r.pool.Slot(i)
	for ok := true; ok; t, ok = more() {
		if run, _ := t.Future.SetRunningOrNotifyCancel(); run {
			t.Future.Finish(t.Payload(s) != nil)
		}
	}
}
func (r *slotRunner) Broken(int, error, []Task[func(*Slot) error]) {}
func (r *slotRunner) Stop(int)                                     {}

func newSlotPool(t *testing.T, max int, opts ThreadPoolOptions) *ThreadPool[func(*Slot) error] {
	t.Helper()
	r := &slotRunner{}
	p, err := NewThreadPoolWith[func(*Slot) error](max, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.pool = p
	t.Cleanup(func() {
		p.Shutdown(true)
		if !p.Join(time.Now().Add(5 * time.Second)) {
			t.Error("pool did not stop")
		}
	})
	return p
}

func submitFn(t *testing.T, p *ThreadPool[func(*Slot) error], fn func(*Slot) error) *Future {
	t.Helper()
	f := NewFuture()
	if err := p.Submit(Task[func(*Slot) error]{Future: f, Payload: fn}); err != nil {
		t.Fatal(err)
	}
	return f
}

// waitFor is what a task's result() does on a worker: register, wait, leave.
func waitFor(s *Slot, f *Future, timeout time.Duration) error {
	timed := timeout > 0
	if err := s.Block([]*Future{f}, true, timed); err != nil {
		return err
	}
	defer s.Unblock()
	var deadline time.Time
	if timed {
		deadline = time.Now().Add(timeout)
	}
	if !f.Wait(deadline) {
		return errors.New("timed out")
	}
	return nil
}

// errs collects the errors tasks return.
type errs struct {
	mu   sync.Mutex
	list []error
}

func (e *errs) add(err error) error {
	if err != nil {
		e.mu.Lock()
		e.list = append(e.list, err)
		e.mu.Unlock()
	}
	return err
}

func (e *errs) deadlocks() []*DeadlockError {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*DeadlockError
	for _, err := range e.list {
		var d *DeadlockError
		if errors.As(err, &d) {
			out = append(out, d)
		}
	}
	return out
}

// submitCycle submits two tasks that wait for each other's futures.
func submitCycle(t *testing.T, p *ThreadPool[func(*Slot) error], e *errs) (a, b *Future) {
	var both sync.WaitGroup
	both.Add(1)
	a = submitFn(t, p, func(s *Slot) error { both.Wait(); return e.add(waitFor(s, b, 0)) })
	b = submitFn(t, p, func(s *Slot) error { both.Wait(); return e.add(waitFor(s, a, 0)) })
	both.Done()
	return a, b
}

func mustFinish(t *testing.T, fs ...*Future) {
	t.Helper()
	for i, f := range fs {
		if !f.Wait(time.Now().Add(5 * time.Second)) {
			t.Fatalf("future %d never finished: a deadlock was not detected", i)
		}
	}
}

func TestDeadlockCycleOfTwoWaits(t *testing.T) {
	p := newSlotPool(t, 2, ThreadPoolOptions{Name: "pool"})
	var e errs
	a, b := submitCycle(t, p, &e)
	mustFinish(t, a, b)
	d := e.deadlocks()
	if len(d) == 0 {
		t.Fatalf("no DeadlockError; errors: %v", e.list)
	}
	if !strings.Contains(d[0].Error(), "cycle") || len(d[0].Futures) != 2 {
		t.Errorf("message %q names %d futures, want a cycle of 2", d[0], len(d[0].Futures))
	}
	// The wait that closed the cycle failed; the other then saw its future
	// finish.
	_, aFailed := a.State()
	_, bFailed := b.State()
	if aFailed == bFailed {
		t.Errorf("a failed=%v, b failed=%v: want exactly one DeadlockError", aFailed, bFailed)
	}
}

func TestDeadlockWaitOnQueuedInFullPool(t *testing.T) {
	p := newSlotPool(t, 1, ThreadPoolOptions{Name: "solo"})
	var e errs
	var inner *Future
	outer := submitFn(t, p, func(s *Slot) error {
		inner = submitFn(t, p, func(*Slot) error { return nil })
		return e.add(waitFor(s, inner, 0))
	})
	mustFinish(t, outer)
	d := e.deadlocks()
	if len(d) != 1 {
		t.Fatalf("errors %v, want one DeadlockError", e.list)
	}
	if msg := d[0].Error(); !strings.Contains(msg, "queued in solo") || !strings.Contains(msg, "solo_0") {
		t.Errorf("message %q should name the pool and its blocked worker", msg)
	}
	mustFinish(t, inner) // the pool goes on: the inner task runs next
}

func TestGrowOnBlockRunsNestedSubmits(t *testing.T) {
	p := newSlotPool(t, 1, ThreadPoolOptions{Name: "grow", GrowOnBlock: true})
	var e errs
	// Three levels deep: each task submits the next to its own pool and waits.
	var nest func(depth int) func(*Slot) error
	nest = func(depth int) func(*Slot) error {
		return func(s *Slot) error {
			if depth == 0 {
				return nil
			}
			return e.add(waitFor(s, submitFn(t, p, nest(depth-1)), 0))
		}
	}
	top := submitFn(t, p, nest(3))
	mustFinish(t, top)
	if len(e.list) != 0 {
		t.Fatalf("errors: %v", e.list)
	}
	// The extra workers retire once the waits are over.
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Live > 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s := p.Stats(); s.Live != 1 || s.Workers != 4 {
		t.Errorf("live %d workers, %d started; want 1 live of 4 started", s.Live, s.Workers)
	}
}

func TestGrowOnBlockStillReportsCycles(t *testing.T) {
	p := newSlotPool(t, 2, ThreadPoolOptions{GrowOnBlock: true})
	var e errs
	a, b := submitCycle(t, p, &e)
	mustFinish(t, a, b)
	if len(e.deadlocks()) == 0 {
		t.Fatalf("no DeadlockError; errors: %v", e.list)
	}
}

func TestDeadlockAcrossPools(t *testing.T) {
	pa := newSlotPool(t, 1, ThreadPoolOptions{Name: "A"})
	pb := newSlotPool(t, 1, ThreadPoolOptions{Name: "B"})
	var e errs
	// B's only worker waits for a task queued behind A's only worker, which
	// waits for B's task.
	inA := make(chan *Future, 1)
	bTask := submitFn(t, pb, func(s *Slot) error {
		f := <-inA
		inA <- f
		return e.add(waitFor(s, f, 0))
	})
	aTask := submitFn(t, pa, func(s *Slot) error {
		inA <- submitFn(t, pa, func(*Slot) error { return nil })
		return e.add(waitFor(s, bTask, 0))
	})
	mustFinish(t, aTask, bTask)
	mustFinish(t, <-inA)
	if len(e.deadlocks()) == 0 {
		t.Fatalf("no DeadlockError; errors: %v", e.list)
	}
}

// No false positives: every wait below ends, so none may be reported.
func TestNoDeadlockWhenWaitsCanEnd(t *testing.T) {
	t.Run("timed wait on a queued task", func(t *testing.T) {
		p := newSlotPool(t, 1, ThreadPoolOptions{})
		var e errs
		outer := submitFn(t, p, func(s *Slot) error {
			err := waitFor(s, submitFn(t, p, func(*Slot) error { return nil }), 20*time.Millisecond)
			if err == nil || err.Error() != "timed out" {
				return e.add(errors.New("want a timeout, got " + errString(err)))
			}
			return nil
		})
		mustFinish(t, outer)
		if len(e.list) != 0 {
			t.Fatal(e.list)
		}
	})
	t.Run("a plain future set by another goroutine", func(t *testing.T) {
		p := newSlotPool(t, 1, ThreadPoolOptions{})
		var e errs
		plain := NewFuture()
		task := submitFn(t, p, func(s *Slot) error { return e.add(waitFor(s, plain, 0)) })
		time.Sleep(10 * time.Millisecond)
		plain.Finish(false)
		mustFinish(t, task)
		if len(e.list) != 0 {
			t.Fatal(e.list)
		}
	})
	t.Run("another pool's task", func(t *testing.T) {
		pa, pb := newSlotPool(t, 1, ThreadPoolOptions{}), newSlotPool(t, 1, ThreadPoolOptions{})
		var e errs
		slow := submitFn(t, pb, func(*Slot) error { time.Sleep(10 * time.Millisecond); return nil })
		queued := submitFn(t, pb, func(*Slot) error { return nil })
		task := submitFn(t, pa, func(s *Slot) error { return e.add(waitFor(s, queued, 0)) })
		mustFinish(t, slow, queued, task)
		if len(e.list) != 0 {
			t.Fatal(e.list)
		}
	})
	t.Run("a long chain within the pool's size", func(t *testing.T) {
		const n = 16
		p := newSlotPool(t, n, ThreadPoolOptions{})
		var e errs
		fs := make([]*Future, n)
		// Submitted last first, so that each task's successor exists.
		fs[n-1] = submitFn(t, p, func(*Slot) error { time.Sleep(5 * time.Millisecond); return nil })
		for i := n - 2; i >= 0; i-- {
			next := fs[i+1]
			fs[i] = submitFn(t, p, func(s *Slot) error { return e.add(waitFor(s, next, 0)) })
		}
		mustFinish(t, fs...)
		if len(e.list) != 0 {
			t.Fatal(e.list)
		}
	})
	t.Run("a queued task while a worker is free to take it", func(t *testing.T) {
		p := newSlotPool(t, 2, ThreadPoolOptions{})
		var e errs
		outer := submitFn(t, p, func(s *Slot) error {
			return e.add(waitFor(s, submitFn(t, p, func(*Slot) error { return nil }), 0))
		})
		mustFinish(t, outer)
		if len(e.list) != 0 {
			t.Fatal(e.list)
		}
	})
	t.Run("any of a stuck and a plain future", func(t *testing.T) {
		p := newSlotPool(t, 1, ThreadPoolOptions{})
		plain := NewFuture()
		var got error
		task := submitFn(t, p, func(s *Slot) error {
			queued := submitFn(t, p, func(*Slot) error { return nil })
			got = s.Block([]*Future{queued, plain}, false, false)
			if got == nil {
				plain.Wait(time.Time{})
				s.Unblock()
			}
			return got
		})
		time.Sleep(10 * time.Millisecond)
		plain.Finish(false)
		mustFinish(t, task)
		if got != nil {
			t.Fatal(got)
		}
	})
}

func TestStatsCountOutcomes(t *testing.T) {
	p := newSlotPool(t, 1, ThreadPoolOptions{})
	gate := make(chan struct{})
	block := submitFn(t, p, func(*Slot) error { <-gate; return nil })
	bad := submitFn(t, p, func(*Slot) error { return errors.New("boom") })
	skipped := submitFn(t, p, func(*Slot) error { return nil })
	skipped.Cancel()
	for deadline := time.Now().Add(5 * time.Second); p.Stats().Running() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if s := p.Stats(); s.Running() != 1 || s.Queued != 2 {
		t.Errorf("while blocked: running %d queued %d, want 1 and 2", s.Running(), s.Queued)
	}
	close(gate)
	mustFinish(t, block, bad)
	p.Shutdown(false)
	p.Join(time.Now().Add(5 * time.Second))
	s := p.Stats()
	if s.Succeeded != 1 || s.Failed != 1 || s.Skipped != 1 || s.Running() != 0 {
		t.Errorf("stats %+v: want 1 succeeded, 1 failed, 1 skipped, none running", s)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// A growing pool that is shut down while a task waits for a queued one still
// starts the worker that task needs (no submit can start it any more).
func TestGrowOnBlockAfterShutdown(t *testing.T) {
	p := newSlotPool(t, 1, ThreadPoolOptions{Name: "grow", GrowOnBlock: true})
	var e errs
	submitted := make(chan struct{})
	shut := make(chan struct{})
	outer := submitFn(t, p, func(s *Slot) error {
		inner := submitFn(t, p, func(*Slot) error { return nil })
		close(submitted)
		<-shut
		return e.add(waitFor(s, inner, 0))
	})
	<-submitted
	p.Shutdown(false)
	close(shut)
	mustFinish(t, outer)
	if len(e.list) != 0 {
		t.Fatalf("errors: %v", e.list)
	}
}

// A done future no longer points into its pool.
func TestDoneFutureForgetsItsPool(t *testing.T) {
	p := newSlotPool(t, 1, ThreadPoolOptions{})
	f := submitFn(t, p, func(*Slot) error { return nil })
	mustFinish(t, f)
	if at := f.at.Load(); at != nil {
		t.Errorf("a done future is still at %s", at.name())
	}
}

// A blocked pool with a deep queue: checking one more wait must not cost
// a walk of every worker per queued future.
func BenchmarkBlockOnManyQueued(b *testing.B) {
	const workers, queued = 32, 1024
	r := &slotRunner{}
	p, _ := NewThreadPoolWith[func(*Slot) error](workers, r, ThreadPoolOptions{})
	r.pool = p
	release := make(chan struct{})
	var fs []*Future
	started := make(chan *Slot, workers)
	for i := 0; i < workers; i++ {
		f := NewFuture()
		p.Submit(Task[func(*Slot) error]{Future: f, Payload: func(s *Slot) error { started <- s; <-release; return nil }})
	}
	var slots []*Slot
	for i := 0; i < workers; i++ {
		slots = append(slots, <-started)
	}
	for i := 0; i < queued; i++ {
		f := NewFuture()
		p.Submit(Task[func(*Slot) error]{Future: f, Payload: func(*Slot) error { return nil }})
		fs = append(fs, f)
	}
	// Every worker but the last waits for any of the queued futures; the
	// last one's wait completes the deadlock, found anew each time.
	for _, s := range slots[1:] {
		if err := s.Block(fs, false, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := slots[0].Block(fs, false, false); err == nil {
			b.Fatal("no deadlock found")
		}
	}
	b.StopTimer()
	for _, s := range slots[1:] {
		s.Unblock()
	}
	close(release)
	p.Shutdown(true)
	p.Join(time.Now().Add(5 * time.Second))
}
