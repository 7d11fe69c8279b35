package gofutures

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrShutdown: Submit after Shutdown.
	ErrShutdown = errors.New("cannot schedule new futures after shutdown")
	// ErrBroken: Submit to a pool whose worker failed to start.
	ErrBroken = errors.New("the thread pool is broken")
)

// Task is one unit of work: the future that represents it and a payload
// that only the Runner understands.
type Task[P any] struct {
	Future  *Future
	Payload P
}

// Runner gives a ThreadPool's tasks their meaning. The pool calls Start, Run
// and Stop of one worker on that worker's goroutine, in that order, with the
// goroutine locked to its OS thread (so a Runner may keep per-thread state,
// such as an interpreter's thread state, from Start to Stop).
type Runner[P any] interface {
	// Start prepares worker i. An error breaks the pool: Broken is called
	// next on the same goroutine, then Stop.
	Start(worker int) error
	// Run runs t, which was just taken off the queue; its future is still
	// as it was queued (Run decides between running and notifying a
	// cancellation). more returns further queued tasks without blocking, so
	// Run may run several tasks in one go.
	Run(worker int, t Task[P], more func() (Task[P], bool))
	// Broken receives, on the worker whose Start failed, the tasks the pool
	// will never run. Their futures are untouched.
	Broken(worker int, err error, dropped []Task[P])
	// Stop releases what Start acquired; it is the worker's last call.
	Stop(worker int)
}

// ThreadPool runs tasks on at most Max worker goroutines, started lazily as
// in the stdlib: a submit starts a worker only when more tasks are queued
// than workers are idle. Workers live until Shutdown, except the extra
// workers of a pool that grows on block (see ThreadPoolOptions).
type ThreadPool[P any] struct {
	max    int
	runner Runner[P]
	opts   ThreadPoolOptions
	queued *Slot // Future.at of every queued task

	mu       sync.Mutex // protects the fields up to exited
	wake     sync.Cond  // signalled (with mu) when the queue grows or the pool stops
	queue    queue[Task[P]]
	workers  int           // started so far
	idle     int           // waiting in take, or about to (see more)
	shutdown bool          // no more submits; workers exit once the queue is empty
	broken   error         // set once, when a worker's Start fails
	live     int           // workers started and not yet exited
	blocked  int           // live workers waiting for a future (counted only when growing)
	slots    []*Slot       // the live workers' slots
	exited   chan struct{} // closed once stopping (shutdown or broken) and live == 0

	submitted, taken           atomic.Int64
	succeeded, failed, skipped atomic.Int64
}

// ThreadPoolOptions are a ThreadPool's optional behaviours.
type ThreadPoolOptions struct {
	// Name names the pool and, with "_<index>", its workers in errors.
	Name string
	// GrowOnBlock lets the pool run more than max workers while some of
	// them wait for futures: each waiting worker makes room for one more,
	// so a task that submits to its own pool and waits still finishes, as
	// in a fork-join pool. Extra workers exit when the waits end.
	GrowOnBlock bool
}

// NewThreadPool returns a pool of at most max workers (max >= 1) that runs
// tasks with runner.
func NewThreadPool[P any](max int, runner Runner[P]) (*ThreadPool[P], error) {
	return NewThreadPoolWith(max, runner, ThreadPoolOptions{})
}

// NewThreadPoolWith is NewThreadPool with options.
func NewThreadPoolWith[P any](max int, runner Runner[P], opts ThreadPoolOptions) (*ThreadPool[P], error) {
	if max < 1 {
		return nil, fmt.Errorf("max_workers must be greater than 0, got %d", max)
	}
	if opts.Name == "" {
		opts.Name = "ThreadPool"
	}
	p := &ThreadPool[P]{max: max, runner: runner, opts: opts, exited: make(chan struct{})}
	p.wake.L = &p.mu
	p.queued = &Slot{pool: p, Index: -1}
	return p, nil
}

// Submit queues t. It fails with ErrBroken or ErrShutdown (checked in that
// order, as the stdlib does).
func (p *ThreadPool[P]) Submit(t Task[P]) error {
	_, err := p.SubmitSpawn(t)
	return err
}

// SubmitSpawn is Submit that also reports whether it started a new worker
// for t (a caller may then wait for the worker to come up, as the stdlib's
// Thread.start() does).
func (p *ThreadPool[P]) SubmitSpawn(t Task[P]) (spawned bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken != nil {
		return false, fmt.Errorf("%w: %w", ErrBroken, p.broken)
	}
	if p.shutdown {
		return false, ErrShutdown
	}
	t.Future.at.Store(p.queued)
	p.queue.push(t)
	p.submitted.Add(1)
	spawned = p.spawnIfNeededLocked(false)
	if p.idle > 0 {
		p.wake.Signal()
	}
	return spawned, nil
}

// spawnIfNeededLocked starts a worker when more tasks are queued than
// workers are idle and the pool has room: fewer than max workers that are
// not blocked (blocked is 0 unless the pool grows on block). extra says a
// blocking worker, not a submit, asked for it. A growing pool still starts
// extra workers after Shutdown: the queued tasks its blocked workers wait
// for must run.
func (p *ThreadPool[P]) spawnIfNeededLocked(extra bool) bool {
	if p.queue.len() <= p.idle || p.live-p.blocked >= p.max || p.broken != nil || (p.shutdown && !extra) {
		return false
	}
	s := &Slot{pool: p, Index: p.workers, Extra: extra}
	p.workers++
	p.live++
	p.slots = append(p.slots, s)
	go p.work(s)
	return true
}

// overfullLocked reports whether a worker should exit because the pool runs
// more workers than it may now that some waits ended.
func (p *ThreadPool[P]) overfullLocked() bool { return p.live-p.blocked > p.max }

// Slot returns worker i's slot, or nil if worker i is not alive. A Runner
// calls it from worker i (between Start and Stop) to register the waits of
// the tasks it runs (Slot.Block).
func (p *ThreadPool[P]) Slot(i int) *Slot {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.slots {
		if s.Index == i {
			return s
		}
	}
	return nil
}

func (p *ThreadPool[P]) work(s *Slot) {
	i := s.Index
	retired := false
	defer func() { p.exit(s, retired) }()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := p.runner.Start(i); err != nil {
		p.runner.Broken(i, err, p.breakWith(err))
		p.runner.Stop(i)
		return
	}
	defer p.runner.Stop(i)
	idling := false // see more; only this goroutine reads or writes it
	more := func() (Task[P], bool) { return p.more(s, &idling) }
	for {
		t, ok, retire := p.take(s, &idling)
		if !ok {
			retired = retire
			return
		}
		p.runner.Run(i, t, more)
	}
}

// take blocks until a task is queued (ok) or the pool stops with an empty
// queue (not ok). A worker the pool no longer needs (overfull) gets not ok
// and retire: take has already counted it out of live.
func (p *ThreadPool[P]) take(s *Slot, idling *bool) (t Task[P], ok, retire bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *idling { // counted by more: counted again below if it waits
		*idling = false
		p.idle--
	}
	for p.queue.len() == 0 && !p.shutdown && p.broken == nil && !p.overfullLocked() {
		p.idle++
		p.wake.Wait()
		p.idle--
	}
	if p.overfullLocked() {
		p.live--
		return t, false, true
	}
	t, ok = p.popLocked(s)
	return t, ok, false
}

// more is take without blocking; an overfull pool gives its worker nothing
// more, so that it comes back to take and retires.
//
// A worker that finds nothing more counts as idle from here (*idling), not
// only once it waits in take: its runner still has to give the GIL back,
// and the thread its last task woke (a result() waiting for it) may then
// submit the next task before this worker reaches take. Counted idle, it
// takes that task; counted busy, the submit started a second worker
// (CPython's test_idle_thread_reuse: about once in 2000 pools on a busy
// core).
func (p *ThreadPool[P]) more(s *Slot, idling *bool) (Task[P], bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.overfullLocked() {
		var none Task[P]
		return none, false
	}
	t, ok := p.popLocked(s)
	switch {
	case !ok && !*idling:
		*idling = true
		p.idle++
	case ok && *idling: // asked again, and something came meanwhile
		*idling = false
		p.idle--
	}
	return t, ok
}

func (p *ThreadPool[P]) popLocked(s *Slot) (Task[P], bool) {
	t, ok := p.queue.pop()
	if ok {
		p.taken.Add(1)
		t.Future.at.Store(s)
	}
	return t, ok
}

func (p *ThreadPool[P]) breakWith(err error) []Task[P] {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken == nil {
		p.broken = err
	}
	p.wake.Broadcast()
	return p.drainLocked()
}

// drainLocked empties the queue; the tasks it returns are nowhere.
func (p *ThreadPool[P]) drainLocked() []Task[P] {
	tasks := p.queue.drain()
	for _, t := range tasks {
		t.Future.at.Store(nil)
	}
	return tasks
}

// exit is a worker's end; retired says take already counted it out of live.
func (p *ThreadPool[P]) exit(s *Slot, retired bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !retired {
		p.live--
	}
	p.slots = slices.DeleteFunc(p.slots, func(x *Slot) bool { return x == s })
	p.closeExitedLocked()
}

func (p *ThreadPool[P]) closeExitedLocked() {
	if p.live > 0 || !(p.shutdown || p.broken != nil) {
		return
	}
	select {
	case <-p.exited:
	default:
		close(p.exited)
	}
}

// Shutdown stops accepting tasks and lets the workers exit once the queue is
// empty. With cancelPending it also empties the queue and returns the tasks
// it removed (their futures untouched: the caller cancels them). It does not
// wait; see Join.
func (p *ThreadPool[P]) Shutdown(cancelPending bool) []Task[P] {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shutdown = true
	p.wake.Broadcast()
	p.closeExitedLocked()
	if cancelPending {
		return p.drainLocked()
	}
	return nil
}

// Join waits until every worker has exited or the deadline passes (zero: no
// deadline) and reports whether they all exited. Only meaningful after
// Shutdown or a break; otherwise workers never exit.
func (p *ThreadPool[P]) Join(deadline time.Time) bool {
	return receive(p.exited, deadline)
}

// Err returns the error that broke the pool, or nil.
func (p *ThreadPool[P]) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.broken
}

// ThreadPoolStats is a snapshot of a pool's counters.
type ThreadPoolStats struct {
	Workers, Live, Idle, Queued int // Workers counts every worker ever started
	Submitted, Taken            int64
	// Outcomes of the taken tasks so far: finished with a result, with an
	// exception, or skipped because they were cancelled while queued.
	Succeeded, Failed, Skipped int64
	Shutdown, Broken           bool
}

// Running is how many taken tasks have no outcome yet.
func (s ThreadPoolStats) Running() int64 { return s.Taken - s.Succeeded - s.Failed - s.Skipped }

// Stats returns a snapshot of the pool's counters.
func (p *ThreadPool[P]) Stats() ThreadPoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ThreadPoolStats{
		Workers: p.workers, Live: p.live, Idle: p.idle, Queued: p.queue.len(),
		Submitted: p.submitted.Load(), Taken: p.taken.Load(),
		Succeeded: p.succeeded.Load(), Failed: p.failed.Load(), Skipped: p.skipped.Load(),
		Shutdown: p.shutdown, Broken: p.broken != nil,
	}
}

// capacity, name, blocking and outcome make the pool a scheduler for
// deadlock detection.

func (p *ThreadPool[P]) capacity() ([]*Slot, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A growing pool starts a worker for a queued task whenever all its
	// workers block, even after Shutdown; a broken one never does (and has
	// no queue).
	canStart := p.broken == nil && (p.opts.GrowOnBlock || (p.live < p.max && !p.shutdown))
	return slices.Clone(p.slots), canStart
}

func (p *ThreadPool[P]) name() string { return p.opts.Name }

func (p *ThreadPool[P]) blocking(delta int) {
	if !p.opts.GrowOnBlock {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked += delta
	if delta > 0 {
		p.spawnIfNeededLocked(true)
	} else if p.overfullLocked() {
		p.wake.Broadcast() // an idle worker retires
	}
}

func (p *ThreadPool[P]) outcome(o taskOutcome) {
	switch o {
	case outcomeSucceeded:
		p.succeeded.Add(1)
	case outcomeFailed:
		p.failed.Add(1)
	default:
		p.skipped.Add(1)
	}
}
