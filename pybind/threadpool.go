package pybind

// The binding's half of a thread pool: a core.ThreadPool whose tasks are C
// jobs (gf_job) and whose Runner calls into worker.c. Pools are found by id,
// because both the gopy cold API and the C hot path name them by id.

/*
#include <stdlib.h>
#include "gf.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	core "github.com/gofutures/gofutures/gofutures"
)

type task = core.Task[*C.gf_job]

// threadPool implements core.Runner for C jobs.
type threadPool struct {
	id   int64
	core *core.ThreadPool[*C.gf_job]
	// parallel: the workers run Python in parallel, each in an interpreter
	// of its own (an InterpreterPoolExecutor); see scheduler.go. Set at
	// creation, never changed.
	parallel bool

	mu      sync.Mutex  // protects the fields up to workers
	hooks   *C.PyObject // strong reference; released by whoever ends last, see release
	dropped []*C.gf_job // cancelled by Shutdown, waiting for C to cancel their futures
	// The hooks must outlive every worker (Start reads them) and the
	// executor object (which may start workers by submitting). The executor
	// sets released; then the worker whose Stop makes stopped equal to the
	// core's count of workers ever started releases the hooks, or release
	// itself does if they have all stopped. The count is read when it is
	// final: a released pool starts workers only for a live worker that
	// blocks (a growing pool), never once all have stopped.
	released bool
	stopped  int

	// ready receives a token each time a worker a submit started has
	// attached to Python and registered its thread (before its initializer
	// runs), for that submit to wait on.
	ready chan struct{}

	// workers[i] is written by worker i's goroutine in Start and deleted in
	// Stop; only that goroutine uses the value, but a pool that grows on
	// block may add workers beyond max, so the map itself is guarded.
	workersMu sync.Mutex
	workers   map[int]*worker
}

// worker is one worker goroutine's C state and the core's `more` function,
// which C reaches through gfWorkerMore while it holds the GIL.
type worker struct {
	c      *C.gf_worker
	handle cgo.Handle
	more   func() (task, bool)
	slot   cgo.Handle // the worker's *core.Slot, for C's blocking waits
}

var (
	poolsMu sync.RWMutex // protects pools
	// pools holds every pool from creation until it is released and its
	// workers have all stopped.
	pools = map[int64]*threadPool{}
	// lastID numbers every pool, thread and process pools alike (one
	// namespace: Python holds only the number). Atomic, because the two
	// kinds register under different locks.
	lastID atomic.Int64
)

func newThreadPool(maxWorkers int, opts core.ThreadPoolOptions, parallel bool) (*threadPool, error) {
	p := &threadPool{workers: map[int]*worker{}, ready: make(chan struct{}, max(maxWorkers, 0)), parallel: parallel}
	c, err := core.NewThreadPoolWith[*C.gf_job](maxWorkers, p, opts)
	if err != nil {
		return nil, err
	}
	p.core = c
	p.id = lastID.Add(1)
	poolsMu.Lock()
	pools[p.id] = p
	poolsMu.Unlock()
	return p, nil
}

func lookupPool(id C.longlong) *threadPool {
	poolsMu.RLock()
	defer poolsMu.RUnlock()
	return pools[int64(id)]
}

// Start attaches worker i to Python and runs the pool's start hook (thread
// name, initializer). A failing hook breaks the pool.
func (p *threadPool) Start(i int) error {
	if p.parallel {
		parallelStarted()
	}
	p.mu.Lock()
	hooks := p.hooks
	p.mu.Unlock()
	w := &worker{}
	w.handle = cgo.NewHandle(w)
	slot := p.core.Slot(i)
	w.slot = cgo.NewHandle(slot)
	p.setWorker(i, w)
	var msg *C.char
	w.c = C.gf_worker_attach(hooks, C.long(i), C.uintptr_t(w.handle), C.uintptr_t(w.slot), &msg)
	if msg == nil {
		if !slot.Extra { // an extra worker of a growing pool: no submit waits for it
			select {
			case p.ready <- struct{}{}:
			default: // its submit gave up waiting long ago
			}
		}
		C.gf_worker_init(w.c, &msg)
	}
	if msg != nil {
		defer C.free(unsafe.Pointer(msg))
		//lint:ignore ST1005 the stdlib's BrokenThreadPool message, word for word
		return fmt.Errorf("A thread initializer failed, the thread pool is not usable anymore (%s)", C.GoString(msg))
	}
	return nil
}

func (p *threadPool) worker(i int) *worker {
	p.workersMu.Lock()
	defer p.workersMu.Unlock()
	return p.workers[i]
}

func (p *threadPool) setWorker(i int, w *worker) {
	p.workersMu.Lock()
	defer p.workersMu.Unlock()
	if w == nil {
		delete(p.workers, i)
	} else {
		p.workers[i] = w
	}
}

func (p *threadPool) Run(i int, t task, more func() (task, bool)) {
	w := p.worker(i)
	w.more = more
	C.gf_worker_run(w.c, t.Payload, cbool(p.parallel))
}

// start moves a call's future from Pending to Running here in Go, sparing C
// a call into Go per task: 1 if it did. Only gfWorkerMore does it, for a
// worker that holds the GIL and runs the call next without giving the GIL
// up in between, so that a cancel() can win until the call is about to
// run, as in the stdlib. C starts every other one itself
// (gf_future_start): a cancelled future, whose acknowledgement tells the
// Python waiters, a future in a state no task should be in, which it
// reports, and deliveries, whose future is not theirs to start. Python's
// waiters never wait for Running, so this transition needs none of them
// told and no _condition held.
func start(t task) C.int {
	if t.Payload.what != C.GF_JOB_CALL {
		return 0
	}
	running, _ := t.Future.Start()
	return cbool(running)
}

func (p *threadPool) Broken(i int, err error, dropped []task) {
	if len(dropped) == 0 {
		return
	}
	jobs := make([]*C.gf_job, len(dropped))
	for k, t := range dropped {
		jobs[k] = t.Payload
	}
	msg := C.CString(err.Error())
	defer C.free(unsafe.Pointer(msg))
	C.gf_worker_broken(p.worker(i).c, &jobs[0], C.long(len(jobs)), msg)
}

func (p *threadPool) Stop(i int) {
	if p.parallel {
		defer parallelStopped()
	}
	p.mu.Lock()
	p.stopped++
	s := p.core.Stats()
	// A worker that stops while its pool goes on was retired (an extra
	// worker of a growing pool whose wait ended).
	retired := !s.Shutdown && !s.Broken
	var last *C.PyObject
	if p.released && p.stopped == s.Workers {
		last, p.hooks = p.hooks, nil
	}
	p.mu.Unlock()
	if last != nil {
		forgetPool(p.id)
	}
	w := p.worker(i)
	p.setWorker(i, nil)
	var r C.int
	if retired {
		r = 1
	}
	C.gf_worker_detach(w.c, last, r)
	w.handle.Delete()
	w.slot.Delete()
}

// forgetPool removes a released pool whose workers have all stopped; until
// then JoinAllThreadPools still finds it.
func forgetPool(id int64) {
	poolsMu.Lock()
	delete(pools, id)
	poolsMu.Unlock()
}

// gfWorkerMore first finishes the future whose handle is finish (if not 0;
// *finished = 0 if its state refused), whose outcome C has published
// (gf_future_publish); then it returns the worker's next job without
// blocking, or NULL, *started saying whether its future was started here
// (see start; only if mayStart: C runs it next, the GIL held throughout).
// One call into Go per task for both.
//
//export gfWorkerMore
func gfWorkerMore(h C.uintptr_t, finish C.uintptr_t, failed C.int, mayStart C.int, finished, started *C.int) *C.gf_job {
	if finish != 0 && future(finish).Finish(failed != 0) != nil {
		*finished = 0
	}
	*started = 0
	w := cgo.Handle(h).Value().(*worker)
	if t, ok := w.more(); ok {
		if mayStart != 0 {
			*started = start(t)
		}
		return t.Payload
	}
	return nil
}

//export gfPoolBind
func gfPoolBind(id C.longlong, hooks *C.PyObject) C.int {
	p := lookupPool(id)
	if p == nil {
		return -1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hooks != nil {
		return -1
	}
	p.hooks = hooks
	return 0
}

// Submit results (core constants.go; C has them as GF_SUBMIT_*).
const (
	submitOK       = C.int(core.SubmitOK)
	submitBroken   = C.int(core.SubmitBroken)
	submitShutdown = C.int(core.SubmitShutdown)
	submitUnknown  = C.int(core.SubmitUnknown)
	submitSpawned  = C.int(core.SubmitSpawned) // accepted, and a new worker is starting
)

// gfPoolAwaitStarted waits (GIL released by the caller) up to ns for a new
// worker to come up.
//
//export gfPoolAwaitStarted
func gfPoolAwaitStarted(id C.longlong, ns C.longlong) C.int {
	p := lookupPool(id)
	if p == nil {
		return 1
	}
	return receiveWithin(p.ready, ns)
}

// receiveWithin waits up to ns for a receive from ch: 1 if it came, 0 on
// timeout (for waits that C slices with the GIL released, gf_block).
func receiveWithin(ch <-chan struct{}, ns C.longlong) C.int {
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-ch:
		return 1
	case <-t.C:
		return 0
	}
}

// gfPoolSubmit makes the Go future of the Python future at tag, stores its
// handle in *fh (whatever the outcome, except for an unknown pool: the
// Python future owns it from here) and queues job with it. One call for
// both, as each call from C into Go costs about as much as a small task's
// own work in Go.
//
//export gfPoolSubmit
func gfPoolSubmit(id C.longlong, tag C.uintptr_t, job *C.gf_job, fh *C.uintptr_t) C.int {
	p := lookupPool(id)
	if p == nil {
		return submitUnknown
	}
	*fh = gfFutureNew(tag)
	spawned, err := p.core.SubmitSpawn(task{Future: future(*fh), Payload: job})
	switch {
	case err == nil && spawned:
		return submitSpawned
	case err == nil:
		return submitOK
	case errors.Is(err, core.ErrShutdown):
		return submitShutdown
	}
	return submitBroken
}

// gfPoolBrokenMessage returns the break's message in C memory the caller
// frees, or NULL.
//
//export gfPoolBrokenMessage
func gfPoolBrokenMessage(id C.longlong) *C.char {
	p := lookupPool(id)
	if p == nil {
		return nil
	}
	if err := p.core.Err(); err != nil {
		return C.CString(err.Error())
	}
	return nil
}

//export gfPoolShutdown
func gfPoolShutdown(id C.longlong, cancel C.int) {
	p := lookupPool(id)
	if p == nil {
		return
	}
	dropped := p.core.Shutdown(cancel != 0)
	p.mu.Lock()
	for _, t := range dropped {
		p.dropped = append(p.dropped, t.Payload)
	}
	p.mu.Unlock()
}

// gfPoolNextDropped hands C one job that Shutdown removed from the queue,
// or NULL when there are none left.
//
//export gfPoolNextDropped
func gfPoolNextDropped(id C.longlong) *C.gf_job {
	p := lookupPool(id)
	if p == nil {
		return nil
	}
	return popFront(&p.mu, &p.dropped)
}

// popFront removes and returns the first element of *s, or the zero value
// when it is empty; mu protects *s.
func popFront[T any](mu *sync.Mutex, s *[]T) (v T) {
	mu.Lock()
	defer mu.Unlock()
	if len(*s) == 0 {
		return v
	}
	v, *s = (*s)[0], (*s)[1:]
	return v
}

// gfPoolRelease is the executor object's end: the pool stops accepting work
// (its workers finish the queue and exit) and leaves the registry. It
// returns the hooks reference for C to release if no worker still needs
// it, else NULL (the last worker releases it in Stop).
//
//export gfPoolRelease
func gfPoolRelease(id C.longlong) *C.PyObject {
	p := lookupPool(id)
	if p == nil {
		return nil
	}
	p.core.Shutdown(false) // from now on only a blocked worker makes another start
	p.mu.Lock()
	defer p.mu.Unlock()
	p.released = true
	if p.stopped < p.core.Stats().Workers {
		return nil
	}
	forgetPool(p.id)
	h := p.hooks
	p.hooks = nil
	return h
}
