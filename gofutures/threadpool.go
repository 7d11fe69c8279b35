package gofutures

import (
	"errors"
	"fmt"
	"runtime"
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
// than workers are idle. Workers live until Shutdown.
type ThreadPool[P any] struct {
	max    int
	runner Runner[P]

	mu       sync.Mutex // protects the fields up to exited
	wake     sync.Cond  // signalled (with mu) when the queue grows or the pool stops
	queue    queue[Task[P]]
	workers  int           // started so far
	idle     int           // waiting in take
	shutdown bool          // no more submits; workers exit once the queue is empty
	broken   error         // set once, when a worker's Start fails
	live     int           // workers started and not yet exited
	exited   chan struct{} // closed once stopping (shutdown or broken) and live == 0

	submitted, taken atomic.Int64
}

// NewThreadPool returns a pool of at most max workers (max >= 1) that runs
// tasks with runner.
func NewThreadPool[P any](max int, runner Runner[P]) (*ThreadPool[P], error) {
	if max < 1 {
		return nil, fmt.Errorf("max_workers must be greater than 0, got %d", max)
	}
	p := &ThreadPool[P]{max: max, runner: runner, exited: make(chan struct{})}
	p.wake.L = &p.mu
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
	p.queue.push(t)
	p.submitted.Add(1)
	if p.queue.len() > p.idle && p.workers < p.max {
		p.workers++
		p.live++
		go p.work(p.workers - 1)
		return true, nil
	}
	if p.idle > 0 {
		p.wake.Signal()
	}
	return false, nil
}

func (p *ThreadPool[P]) work(i int) {
	defer p.exit()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := p.runner.Start(i); err != nil {
		p.runner.Broken(i, err, p.breakWith(err))
		p.runner.Stop(i)
		return
	}
	defer p.runner.Stop(i)
	for {
		t, ok := p.take()
		if !ok {
			return
		}
		p.runner.Run(i, t, p.more)
	}
}

// take blocks until a task is queued (ok) or the pool stops with an empty
// queue (not ok).
func (p *ThreadPool[P]) take() (Task[P], bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.queue.len() == 0 && !p.shutdown && p.broken == nil {
		p.idle++
		p.wake.Wait()
		p.idle--
	}
	t, ok := p.queue.pop()
	if ok {
		p.taken.Add(1)
	}
	return t, ok
}

// more is take without blocking.
func (p *ThreadPool[P]) more() (Task[P], bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.queue.pop()
	if ok {
		p.taken.Add(1)
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
	return p.queue.drain()
}

func (p *ThreadPool[P]) exit() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live--
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
		return p.queue.drain()
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
	Workers, Idle, Queued int // Workers counts every worker ever started
	Submitted, Taken      int64
	Shutdown, Broken      bool
}

// Stats returns a snapshot of the pool's counters.
func (p *ThreadPool[P]) Stats() ThreadPoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ThreadPoolStats{
		Workers: p.workers, Idle: p.idle, Queued: p.queue.len(),
		Submitted: p.submitted.Load(), Taken: p.taken.Load(),
		Shutdown: p.shutdown, Broken: p.broken != nil,
	}
}
