package gofutures

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// job is the payload of the test pool's tasks.
type job struct {
	id  int
	run func() // may be nil
}

func newTask(id int, run func()) Task[job] {
	return Task[job]{Future: NewFuture(), Payload: job{id, run}}
}

// call is one call the pool made on its Runner.
type call struct {
	kind   string // "start", "run", "task" (one task run inside Run), "broken", "stop"
	worker int
	tid    int // OS thread the call happened on
}

type brokenCall struct {
	worker  int
	err     error
	dropped []Task[job]
}

// testRunner runs job payloads the way an executor does, and records every
// call the pool makes on it.
type testRunner struct {
	start   func(worker int) error // nil: Start succeeds
	useMore bool                   // Run keeps taking tasks with more

	mu     sync.Mutex
	calls  []call
	ran    []int // job ids, in the order they ran
	broken []brokenCall
	errs   []error // unexpected errors seen by Run
}

func (r *testRunner) record(kind string, worker int) {
	tid := syscall.Gettid()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{kind, worker, tid})
}

func (r *testRunner) Start(worker int) error {
	r.record("start", worker)
	if r.start != nil {
		return r.start(worker)
	}
	return nil
}

func (r *testRunner) Run(worker int, t Task[job], more func() (Task[job], bool)) {
	r.record("run", worker)
	for {
		r.runOne(worker, t)
		if !r.useMore {
			return
		}
		var ok bool
		if t, ok = more(); !ok {
			return
		}
	}
}

func (r *testRunner) runOne(worker int, t Task[job]) {
	ok, err := t.Future.SetRunningOrNotifyCancel()
	if err != nil {
		r.mu.Lock()
		r.errs = append(r.errs, fmt.Errorf("task %d: %w", t.Payload.id, err))
		r.mu.Unlock()
		return
	}
	if !ok {
		return // cancelled while queued; watchers were just notified
	}
	if t.Payload.run != nil {
		t.Payload.run()
	}
	r.record("task", worker)
	r.mu.Lock()
	r.ran = append(r.ran, t.Payload.id)
	r.mu.Unlock()
	if err := t.Future.Finish(false); err != nil {
		r.mu.Lock()
		r.errs = append(r.errs, fmt.Errorf("task %d: Finish: %w", t.Payload.id, err))
		r.mu.Unlock()
	}
}

func (r *testRunner) Broken(worker int, err error, dropped []Task[job]) {
	r.record("broken", worker)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broken = append(r.broken, brokenCall{worker, err, dropped})
}

func (r *testRunner) Stop(worker int) { r.record("stop", worker) }

type runnerSnapshot struct {
	calls  []call
	ran    []int
	broken []brokenCall
	errs   []error
}

func (r *testRunner) snapshot() runnerSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return runnerSnapshot{slices.Clone(r.calls), slices.Clone(r.ran), slices.Clone(r.broken), slices.Clone(r.errs)}
}

// kinds returns the kinds of worker w's calls, in order.
func (s runnerSnapshot) kinds(w int) []string {
	var out []string
	for _, c := range s.calls {
		if c.worker == w {
			out = append(out, c.kind)
		}
	}
	return out
}

func (s runnerSnapshot) count(kind string) int {
	n := 0
	for _, c := range s.calls {
		if c.kind == kind {
			n++
		}
	}
	return n
}

func newPool(t *testing.T, max int, r *testRunner) *ThreadPool[job] {
	t.Helper()
	p, err := NewThreadPool[job](max, r)
	if err != nil {
		t.Fatalf("NewThreadPool(%d) = %v", max, err)
	}
	return p
}

func mustSubmit(t *testing.T, p *ThreadPool[job], task Task[job]) {
	t.Helper()
	if err := p.Submit(task); err != nil {
		t.Fatalf("Submit(task %d) = %v", task.Payload.id, err)
	}
}

// eventually polls cond until it holds, failing after longWait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(longWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after %v", what, longWait)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustJoin(t *testing.T, p *ThreadPool[job]) {
	t.Helper()
	if !p.Join(time.Now().Add(longWait)) {
		t.Fatalf("Join did not return true within %v (stats %+v)", longWait, p.Stats())
	}
}

// blocker makes tasks that block until released, announcing they started.
type blocker struct {
	started chan int
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan int, 100), release: make(chan struct{})}
}

func (b *blocker) task(id int) Task[job] {
	return newTask(id, func() {
		b.started <- id
		<-b.release
	})
}

func (b *blocker) awaitStarted(t *testing.T, want int) {
	t.Helper()
	if got := awaitResult(t, b.started, fmt.Sprintf("task %d start", want)); got != want {
		t.Fatalf("task %d started, want %d", got, want)
	}
}

func ids(tasks []Task[job]) []int {
	out := make([]int, len(tasks))
	for i, t := range tasks {
		out[i] = t.Payload.id
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestNewThreadPoolMax(t *testing.T) {
	tests := []struct {
		max     int
		wantErr bool
	}{
		{-100, true}, {-1, true}, {0, true}, {1, false}, {64, false},
	}
	for _, tt := range tests {
		p, err := NewThreadPool[job](tt.max, &testRunner{})
		if (err != nil) != tt.wantErr || (p == nil) != tt.wantErr {
			t.Errorf("NewThreadPool(%d) = %v, %v; want error %v", tt.max, p, err, tt.wantErr)
			continue
		}
		if p != nil {
			if s := p.Stats(); s != (ThreadPoolStats{}) {
				t.Errorf("NewThreadPool(%d).Stats() = %+v, want zero", tt.max, s)
			}
			if err := p.Err(); err != nil {
				t.Errorf("NewThreadPool(%d).Err() = %v, want nil", tt.max, err)
			}
		}
	}
}

func TestThreadPoolRunsEveryTaskOnce(t *testing.T) {
	for _, useMore := range []bool{false, true} {
		t.Run(fmt.Sprintf("more=%v", useMore), func(t *testing.T) {
			const max, submitters, each = 4, 8, 250
			const n = submitters * each
			r := &testRunner{useMore: useMore}
			p := newPool(t, max, r)
			counts := make([]atomic.Int32, n)
			var running, peak atomic.Int32
			tasks := make([]Task[job], n)
			for i := range tasks {
				tasks[i] = newTask(i, func() {
					cur := running.Add(1)
					for {
						old := peak.Load()
						if cur <= old || peak.CompareAndSwap(old, cur) {
							break
						}
					}
					counts[i].Add(1)
					if i%50 == 0 {
						runtime.Gosched()
					}
					running.Add(-1)
				})
			}
			var wg sync.WaitGroup
			for g := range submitters {
				wg.Go(func() {
					for k := range each {
						if err := p.Submit(tasks[g*each+k]); err != nil {
							t.Errorf("Submit: %v", err)
						}
						if s := p.Stats(); s.Workers > max {
							t.Errorf("Stats().Workers = %d > max %d", s.Workers, max)
						}
					}
				})
			}
			wg.Wait()
			if dropped := p.Shutdown(false); dropped != nil {
				t.Errorf("Shutdown(false) = %v, want nil", ids(dropped))
			}
			mustJoin(t, p)

			for i := range counts {
				if c := counts[i].Load(); c != 1 {
					t.Errorf("task %d ran %d times", i, c)
				}
				assertState(t, tasks[i].Future, Finished, false)
			}
			if pk := peak.Load(); pk > max {
				t.Errorf("%d tasks ran at once, max %d", pk, max)
			}
			s := p.Stats()
			if s.Workers < 1 || s.Workers > max || s.Submitted != n || s.Taken != n ||
				s.Queued != 0 || s.Idle != 0 || !s.Shutdown || s.Broken {
				t.Errorf("Stats() = %+v", s)
			}
			snap := r.snapshot()
			if len(snap.errs) > 0 {
				t.Errorf("runner errors: %v", snap.errs)
			}
			if snap.count("start") != s.Workers || snap.count("stop") != s.Workers {
				t.Errorf("%d starts, %d stops for %d workers", snap.count("start"), snap.count("stop"), s.Workers)
			}
			for _, c := range snap.calls {
				if c.worker < 0 || c.worker >= s.Workers {
					t.Errorf("call %+v: worker index out of [0, %d)", c, s.Workers)
				}
			}
		})
	}
}

func TestThreadPoolStartsWorkersLazily(t *testing.T) {
	const max = 3
	r := &testRunner{}
	p := newPool(t, max, r)
	workers := func() int { return p.Stats().Workers }
	if w := workers(); w != 0 {
		t.Fatalf("Workers before any Submit = %d", w)
	}

	b1 := newBlocker()
	mustSubmit(t, p, b1.task(0))
	if w := workers(); w != 1 {
		t.Fatalf("Workers after one Submit = %d, want 1", w)
	}
	b1.awaitStarted(t, 0)
	mustSubmit(t, p, b1.task(1)) // the only worker is busy: start another
	if w := workers(); w != 2 {
		t.Fatalf("Workers with one busy = %d, want 2", w)
	}
	b1.awaitStarted(t, 1)
	close(b1.release)
	eventually(t, "two idle workers", func() bool { return p.Stats().Idle == 2 })

	// Two idle workers take the next two tasks: no new worker.
	b2 := newBlocker()
	mustSubmit(t, p, b2.task(2))
	mustSubmit(t, p, b2.task(3))
	if w := workers(); w != 2 {
		t.Fatalf("Workers after reusing idle ones = %d, want 2", w)
	}
	// A third task while both are (or are about to be) busy needs a third.
	mustSubmit(t, p, b2.task(4))
	if w := workers(); w != 3 {
		t.Fatalf("Workers = %d, want 3", w)
	}
	// Never more than max, however long the queue.
	for i := 5; i < 20; i++ {
		mustSubmit(t, p, b2.task(i))
		if w := workers(); w != max {
			t.Fatalf("Workers after %d tasks = %d, want %d", i+1, w, max)
		}
	}
	close(b2.release)
	p.Shutdown(false)
	mustJoin(t, p)
	snap := r.snapshot()
	if got := slices.Sorted(slices.Values(snap.ran)); !slices.Equal(got, seq(0, 20)) {
		t.Errorf("ran %v, want 0..19 once each", got)
	}
	if snap.count("start") != max {
		t.Errorf("%d workers started, want %d", snap.count("start"), max)
	}
}

var errStart = errors.New("initializer failed")

func TestThreadPoolStartErrorBreaksPool(t *testing.T) {
	for _, max := range []int{1, 3} {
		t.Run(fmt.Sprintf("max=%d", max), func(t *testing.T) {
			gate := make(chan struct{})
			r := &testRunner{start: func(int) error { <-gate; return errStart }}
			p := newPool(t, max, r)
			const n = 5
			var tasks []Task[job]
			for i := range n {
				tasks = append(tasks, newTask(i, nil))
				mustSubmit(t, p, tasks[i])
			}
			close(gate) // every Start fails

			// Broken without a Shutdown: the workers exit all the same.
			mustJoin(t, p)

			snap := r.snapshot()
			if len(snap.errs) > 0 || len(snap.ran) > 0 || snap.count("run") > 0 {
				t.Errorf("tasks ran on a broken pool: ran %v, errs %v", snap.ran, snap.errs)
			}
			// Each failed worker got Broken; between them they got every
			// queued task, in order, with the futures untouched.
			var dropped []Task[job]
			for _, bc := range snap.broken {
				if !errors.Is(bc.err, errStart) {
					t.Errorf("Broken(%d) err = %v, want %v", bc.worker, bc.err, errStart)
				}
				dropped = append(dropped, bc.dropped...)
			}
			if len(snap.broken) != max {
				t.Errorf("Broken called %d times, want %d (once per failed worker)", len(snap.broken), max)
			}
			if got := ids(dropped); !slices.Equal(got, seq(0, n)) {
				t.Errorf("dropped tasks %v, want %v", got, seq(0, n))
			}
			for _, task := range tasks {
				assertState(t, task.Future, Pending, false)
			}
			for w := range max {
				if got, want := snap.kinds(w), []string{"start", "broken", "stop"}; !slices.Equal(got, want) {
					t.Errorf("worker %d calls %v, want %v", w, got, want)
				}
			}

			if err := p.Err(); !errors.Is(err, errStart) {
				t.Errorf("Err() = %v, want %v", err, errStart)
			}
			s := p.Stats()
			if !s.Broken || s.Queued != 0 || s.Taken != 0 || s.Submitted != n {
				t.Errorf("Stats() = %+v", s)
			}
			// Submit now fails with the error that broke the pool, also after
			// Shutdown (broken is checked first).
			if err := p.Submit(newTask(99, nil)); !errors.Is(err, errStart) {
				t.Errorf("Submit on a broken pool = %v, want %v", err, errStart)
			}
			if d := p.Shutdown(true); len(d) != 0 {
				t.Errorf("Shutdown(true) on a broken pool returned %v", ids(d))
			}
			if err := p.Submit(newTask(100, nil)); !errors.Is(err, errStart) {
				t.Errorf("Submit on a broken, shut down pool = %v, want %v", err, errStart)
			}
			if s := p.Stats(); s.Submitted != n {
				t.Errorf("rejected Submits counted: Submitted = %d", s.Submitted)
			}
			mustJoin(t, p)
		})
	}
}

// TestSubmitToBrokenPoolIsErrBroken checks the documented contract of Submit
// ("It fails with ErrBroken or ErrShutdown") and of ErrBroken ("Submit to a
// pool whose worker failed to start"): a caller must be able to tell a broken
// pool with errors.Is(err, ErrBroken), while still seeing the cause.
func TestSubmitToBrokenPoolIsErrBroken(t *testing.T) {
	r := &testRunner{start: func(int) error { return errStart }}
	p := newPool(t, 1, r)
	mustSubmit(t, p, newTask(0, nil))
	mustJoin(t, p)
	err := p.Submit(newTask(1, nil))
	if !errors.Is(err, ErrBroken) {
		t.Errorf("Submit on a broken pool = %v; errors.Is(err, ErrBroken) = false", err)
	}
	if !errors.Is(err, errStart) {
		t.Errorf("Submit on a broken pool = %v; errors.Is(err, cause) = false", err)
	}
}

func TestThreadPoolBreakWhileAnotherWorkerRuns(t *testing.T) {
	r := &testRunner{start: func(w int) error {
		if w == 1 {
			return errStart
		}
		return nil
	}}
	p := newPool(t, 2, r)
	b := newBlocker()
	a := b.task(0)
	mustSubmit(t, p, a)
	b.awaitStarted(t, 0)
	c := newTask(1, nil)
	mustSubmit(t, p, c) // worker 0 is busy: worker 1 starts, and fails
	eventually(t, "pool broken", func() bool { return p.Err() != nil })
	if !p.Stats().Broken {
		t.Error("Err() != nil but Stats().Broken = false")
	}
	if err := p.Submit(newTask(2, nil)); !errors.Is(err, errStart) {
		t.Errorf("Submit = %v, want %v", err, errStart)
	}
	// Worker 0 is still running a: Join times out.
	deadline := time.Now().Add(shortWait)
	if p.Join(deadline) {
		t.Fatal("Join = true while a task is blocked")
	}
	if time.Now().Before(deadline) {
		t.Fatal("Join returned false before its deadline")
	}
	close(b.release)
	mustJoin(t, p)

	snap := r.snapshot()
	if len(snap.broken) != 1 || snap.broken[0].worker != 1 || !slices.Equal(ids(snap.broken[0].dropped), []int{1}) {
		t.Errorf("Broken calls = %+v, want one on worker 1 dropping task 1", snap.broken)
	}
	if got, want := snap.kinds(0), []string{"start", "run", "task", "stop"}; !slices.Equal(got, want) {
		t.Errorf("worker 0 calls %v, want %v", got, want)
	}
	if got, want := snap.kinds(1), []string{"start", "broken", "stop"}; !slices.Equal(got, want) {
		t.Errorf("worker 1 calls %v, want %v", got, want)
	}
	assertState(t, a.Future, Finished, false)
	assertState(t, c.Future, Pending, false)
}

func TestThreadPoolShutdownWaitFinishesQueued(t *testing.T) {
	r := &testRunner{}
	p := newPool(t, 1, r)
	b := newBlocker()
	tasks := []Task[job]{b.task(0)}
	mustSubmit(t, p, tasks[0])
	b.awaitStarted(t, 0)
	for i := 1; i < 6; i++ {
		tasks = append(tasks, newTask(i, nil))
		mustSubmit(t, p, tasks[i])
	}
	if dropped := p.Shutdown(false); dropped != nil {
		t.Errorf("Shutdown(false) = %v, want nil", ids(dropped))
	}
	if err := p.Submit(newTask(6, nil)); !errors.Is(err, ErrShutdown) {
		t.Errorf("Submit after Shutdown = %v, want ErrShutdown", err)
	}
	if s := p.Stats(); !s.Shutdown || s.Queued != 5 || s.Submitted != 6 {
		t.Errorf("Stats() after Shutdown = %+v", s)
	}
	deadline := time.Now().Add(shortWait)
	if p.Join(deadline) {
		t.Fatal("Join = true while a task is blocked")
	}
	if time.Now().Before(deadline) {
		t.Fatal("Join returned false before its deadline")
	}
	close(b.release)
	if !awaitResult(t, async(func() bool { return p.Join(time.Time{}) }), "Join(no deadline)") {
		t.Fatal("Join(no deadline) = false")
	}
	snap := r.snapshot()
	if !slices.Equal(snap.ran, seq(0, 6)) {
		t.Errorf("ran %v, want %v in order", snap.ran, seq(0, 6))
	}
	for _, task := range tasks {
		assertState(t, task.Future, Finished, false)
	}
	if got, want := snap.kinds(0)[len(snap.kinds(0))-1], "stop"; got != want {
		t.Errorf("worker 0's last call = %q, want %q", got, want)
	}
	if !p.Join(past) {
		t.Error("Join(past) after the workers exited = false")
	}
}

func TestThreadPoolShutdownCancelPending(t *testing.T) {
	r := &testRunner{useMore: true} // more must not find the removed tasks
	p := newPool(t, 1, r)
	b := newBlocker()
	first := b.task(0)
	mustSubmit(t, p, first)
	b.awaitStarted(t, 0)
	var queued []Task[job]
	for i := 1; i < 6; i++ {
		queued = append(queued, newTask(i, nil))
		mustSubmit(t, p, queued[i-1])
	}
	dropped := p.Shutdown(true)
	if got := ids(dropped); !slices.Equal(got, seq(1, 6)) {
		t.Fatalf("Shutdown(true) = %v, want %v", got, seq(1, 6))
	}
	for i, task := range dropped {
		if task.Future != queued[i].Future {
			t.Errorf("dropped[%d] has another future than the one submitted", i)
		}
		assertState(t, task.Future, Pending, false) // the caller cancels them
	}
	if s := p.Stats(); s.Queued != 0 || s.Taken != 1 {
		t.Errorf("Stats() = %+v, want nothing queued, 1 taken", s)
	}
	if err := p.Submit(newTask(9, nil)); !errors.Is(err, ErrShutdown) {
		t.Errorf("Submit after Shutdown(true) = %v, want ErrShutdown", err)
	}
	close(b.release)
	mustJoin(t, p)
	if snap := r.snapshot(); !slices.Equal(snap.ran, []int{0}) {
		t.Errorf("ran %v, want only the task that was running", snap.ran)
	}
	assertState(t, first.Future, Finished, false)
}

func TestJoinOnPoolWithoutWorkers(t *testing.T) {
	for _, cancelPending := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancelPending=%v", cancelPending), func(t *testing.T) {
			r := &testRunner{}
			p := newPool(t, 4, r)
			// Not shut down: workers (none yet) would never exit.
			if p.Join(past) {
				t.Fatal("Join before Shutdown = true")
			}
			if d := p.Shutdown(cancelPending); len(d) != 0 {
				t.Fatalf("Shutdown = %v, want no tasks", ids(d))
			}
			if !awaitResult(t, async(func() bool { return p.Join(time.Time{}) }), "Join(no deadline)") {
				t.Fatal("Join after Shutdown = false")
			}
			if err := p.Submit(newTask(0, nil)); !errors.Is(err, ErrShutdown) {
				t.Errorf("Submit after Shutdown = %v, want ErrShutdown", err)
			}
			p.Shutdown(!cancelPending) // a second Shutdown is harmless
			mustJoin(t, p)
			if err := p.Err(); err != nil {
				t.Errorf("Err() after Shutdown = %v, want nil", err)
			}
			if s := p.Stats(); s.Workers != 0 || s.Submitted != 0 {
				t.Errorf("Stats() = %+v, want no workers, nothing submitted", s)
			}
			if snap := r.snapshot(); len(snap.calls) != 0 {
				t.Errorf("runner called: %+v", snap.calls)
			}
		})
	}
}

func TestRunnerMoreTakesSeveralTasks(t *testing.T) {
	gate := make(chan struct{})
	r := &testRunner{useMore: true, start: func(int) error { <-gate; return nil }}
	p := newPool(t, 1, r)
	const n = 5
	for i := range n {
		mustSubmit(t, p, newTask(i, nil))
	}
	close(gate) // the worker starts with n tasks queued
	eventually(t, "queue drained", func() bool { s := p.Stats(); return s.Taken == n && s.Idle == 1 })
	snap := r.snapshot()
	if got := snap.count("run"); got != 1 {
		t.Errorf("Run called %d times, want once (the rest through more)", got)
	}
	if !slices.Equal(snap.ran, seq(0, n)) {
		t.Errorf("ran %v, want %v", snap.ran, seq(0, n))
	}
	// The next task comes through a new Run call.
	mustSubmit(t, p, newTask(n, nil))
	p.Shutdown(false)
	mustJoin(t, p)
	snap = r.snapshot()
	if got := snap.count("run"); got != 2 {
		t.Errorf("Run called %d times, want 2", got)
	}
	if !slices.Equal(snap.ran, seq(0, n+1)) {
		t.Errorf("ran %v, want %v", snap.ran, seq(0, n+1))
	}
	if s := p.Stats(); s.Taken != n+1 {
		t.Errorf("Stats().Taken = %d, want %d", s.Taken, n+1)
	}
}

func TestWorkerCallsStayOnOneOSThread(t *testing.T) {
	const max = 4
	r := &testRunner{useMore: true}
	p := newPool(t, max, r)
	id := 0
	// Several waves with idle gaps in between, so that the workers block in
	// the pool (and would be free to move to another thread if not locked).
	for range 5 {
		var futures []*Future
		for range 40 {
			task := newTask(id, func() {
				runtime.Gosched()
				time.Sleep(50 * time.Microsecond)
			})
			id++
			futures = append(futures, task.Future)
			mustSubmit(t, p, task)
		}
		for _, f := range futures {
			if !f.Wait(time.Now().Add(longWait)) {
				t.Fatal("task did not finish")
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.Shutdown(false)
	mustJoin(t, p)

	snap := r.snapshot()
	if len(snap.ran) != id {
		t.Fatalf("ran %d tasks, want %d", len(snap.ran), id)
	}
	tids := map[int]int{} // worker -> thread of its Start
	for _, c := range snap.calls {
		if c.kind == "start" {
			tids[c.worker] = c.tid
		}
	}
	for _, c := range snap.calls {
		if want, ok := tids[c.worker]; !ok || c.tid != want {
			t.Errorf("worker %d: %s on thread %d, Start on thread %d", c.worker, c.kind, c.tid, want)
		}
	}
	// Live workers each hold their own thread.
	seen := map[int]int{}
	for w, tid := range tids {
		if other, dup := seen[tid]; dup {
			t.Errorf("workers %d and %d share thread %d", other, w, tid)
		}
		seen[tid] = w
	}
	for w := range tids {
		if k := snap.kinds(w); k[0] != "start" || k[len(k)-1] != "stop" {
			t.Errorf("worker %d calls %v: want Start first and Stop last", w, k)
		}
	}
}

func TestBrokenAndStopOnStartThread(t *testing.T) {
	r := &testRunner{start: func(int) error {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
		return errStart
	}}
	p := newPool(t, 2, r)
	for i := range 4 {
		mustSubmit(t, p, newTask(i, nil))
	}
	mustJoin(t, p)
	snap := r.snapshot()
	tids := map[int]int{}
	for _, c := range snap.calls {
		if c.kind == "start" {
			tids[c.worker] = c.tid
		}
	}
	for _, c := range snap.calls {
		if c.tid != tids[c.worker] {
			t.Errorf("worker %d: %s on thread %d, Start on thread %d", c.worker, c.kind, c.tid, tids[c.worker])
		}
	}
}

func TestRunnerSeesCancelledTask(t *testing.T) {
	// A task cancelled while queued reaches Run untouched; the Runner's
	// SetRunningOrNotifyCancel then tells the waiters.
	r := &testRunner{}
	p := newPool(t, 1, r)
	b := newBlocker()
	mustSubmit(t, p, b.task(0))
	b.awaitStarted(t, 0)
	victim := newTask(1, nil)
	mustSubmit(t, p, victim)
	c := NewCompletions()
	victim.Future.Watch(c, 1)
	if cancelled, changed := victim.Future.Cancel(); !cancelled || !changed {
		t.Fatalf("Cancel() = %v, %v", cancelled, changed)
	}
	if c.Await(FirstCompleted, 1, past) {
		t.Fatal("cancellation notified before the worker took the task")
	}
	close(b.release)
	if !c.Await(FirstCompleted, 1, time.Now().Add(longWait)) {
		t.Fatal("cancellation never notified")
	}
	assertState(t, victim.Future, CancelledAndNotified, false)
	p.Shutdown(false)
	mustJoin(t, p)
	if snap := r.snapshot(); !slices.Equal(snap.ran, []int{0}) || len(snap.errs) > 0 {
		t.Errorf("ran %v, errs %v; want only task 0", snap.ran, snap.errs)
	}
}

func TestSubmitRacingWithShutdown(t *testing.T) {
	for _, cancelPending := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancelPending=%v", cancelPending), func(t *testing.T) {
			const submitters, each = 8, 300
			r := &testRunner{useMore: true}
			p := newPool(t, 3, r)
			var accepted [submitters][]int
			var wg sync.WaitGroup
			var started sync.WaitGroup
			started.Add(submitters)
			for g := range submitters {
				wg.Go(func() {
					started.Done()
					for k := range each {
						id := g*each + k
						err := p.Submit(newTask(id, nil))
						if err == nil {
							accepted[g] = append(accepted[g], id)
							continue
						}
						if !errors.Is(err, ErrShutdown) {
							t.Errorf("Submit = %v", err)
						}
						return
					}
				})
			}
			started.Wait()
			time.Sleep(time.Millisecond)
			dropped := p.Shutdown(cancelPending)
			wg.Wait()
			mustJoin(t, p)

			var want []int
			for _, a := range accepted {
				want = append(want, a...)
			}
			snap := r.snapshot()
			got := append(slices.Clone(snap.ran), ids(dropped)...)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("ran+dropped (%d) != accepted (%d)", len(got), len(want))
			}
			if !cancelPending && len(dropped) != 0 {
				t.Errorf("Shutdown(false) dropped %d tasks", len(dropped))
			}
			if s := p.Stats(); s.Submitted != int64(len(want)) || s.Taken != int64(len(snap.ran)) {
				t.Errorf("Stats() = %+v; accepted %d, ran %d", s, len(want), len(snap.ran))
			}
		})
	}
}

// pausingRunner runs tasks through more, and the first time more finds
// nothing it stops before Run returns until resumed: where a real runner
// gives the GIL back, and the thread that waited for the last task's result
// may already submit the next one.
type pausingRunner struct {
	testRunner
	emptied chan struct{} // closed when more first found nothing
	resume  chan struct{}
	once    sync.Once
}

func (r *pausingRunner) Run(worker int, t Task[job], more func() (Task[job], bool)) {
	r.record("run", worker)
	for {
		r.runOne(worker, t)
		var ok bool
		if t, ok = more(); !ok {
			r.once.Do(func() { close(r.emptied); <-r.resume })
			return
		}
	}
}

func TestWorkerThatFoundNothingMoreIsIdleBeforeRunReturns(t *testing.T) {
	r := &pausingRunner{emptied: make(chan struct{}), resume: make(chan struct{})}
	p, err := NewThreadPool[job](4, r)
	if err != nil {
		t.Fatal(err)
	}
	if spawned, err := p.SubmitSpawn(newTask(1, nil)); err != nil || !spawned {
		t.Fatalf("first SubmitSpawn = %v, %v; want a worker started", spawned, err)
	}
	<-r.emptied
	if s := p.Stats(); s.Idle != 1 {
		t.Errorf("Stats().Idle = %d after more found nothing, want 1", s.Idle)
	}
	spawned, err := p.SubmitSpawn(newTask(2, nil))
	if err != nil || spawned {
		t.Errorf("second SubmitSpawn = %v, %v; want the idle worker reused, no second worker", spawned, err)
	}
	close(r.resume)
	p.Shutdown(false)
	mustJoin(t, p)
	snap := r.snapshot()
	if !slices.Equal(snap.ran, []int{1, 2}) || p.Stats().Workers != 1 {
		t.Errorf("ran %v on %d workers, want [1 2] on 1", snap.ran, p.Stats().Workers)
	}
	if s := p.Stats(); s.Idle != 0 {
		t.Errorf("Stats().Idle = %d after the pool stopped, want 0", s.Idle)
	}
}
