package pybind

// The binding's half of a process pool: a core.ProcessPool whose sink
// sends every outcome of a task back one way (deliver): the outcome travels
// as a kind and bytes (gf.h GF_DELIVER_* or GF_FRAME_*), and C builds the Python object
// from it in one place (outcome.c).
//
// The common outcome, a future nobody observes from Python (no
// done-callback, no stdlib wait), is parked in the future, which the
// supervisor goroutine finishes without the GIL (park); the thread that
// asks for the value builds it (future.c). That saves a GIL handover and two
// thread wake-ups per task. An observed future is completed by the pool's
// results worker instead (a one-worker threadPool holding a Python thread
// state: the supervisor goroutines never take the GIL), which builds the
// outcome, tells the waiters and runs the callbacks; it also acknowledges
// the cancel of a task cancelled while queued, for the same reason.

/*
#include <stdlib.h>
#include "gf.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	core "github.com/gofutures/gofutures/gofutures"
)

type processPool struct {
	id      int64
	core    *core.ProcessPool
	results *threadPool
	// hooks: the Python hooks object, borrowed from the results pool, which
	// owns it (procfork.go says for how long it may be used).
	hooks *C.PyObject

	// undrained: a future was parked since the last drain job. A drain with
	// nothing to do does no Go work at all, which matters in a child that
	// a stdlib fork pool forked from this process: its threading atexit
	// hook joins every pool it inherited, and a forked Go runtime can hang
	// in any allocation or scheduling.
	undrained atomic.Bool

	mu      sync.Mutex             // protects the fields below
	futures map[uint64]*C.PyObject // strong refs of accepted tasks' futures, by task id
	// shared: the descriptor of the shared memory that holds a big call's
	// pickle (python/gofutures/_bigpayload.py), by task id, owned: the
	// worker opens its own through /proc while it runs the call, so it is
	// let go only when the task's outcome is known (take). spare: such
	// descriptors whose worker answered (and so has read them), for later
	// big calls to write into (their pages are there already), owned;
	// closed when the pool is released.
	shared  map[uint64]int
	spare   []int
	done    bool // closeSpare ran: the pool no longer counts for answer memory
	nextID  uint64
	dropped []*C.PyObject // futures of tasks cancelled by shutdown, for C to cancel
}

var (
	procsMu sync.RWMutex // protects procs
	procs   = map[int64]*processPool{}
)

func lookupProc(id C.longlong) *processPool {
	procsMu.RLock()
	defer procsMu.RUnlock()
	return procs[int64(id)]
}

// maxSpare bounds the spare descriptors a pool keeps (and the memory
// behind them): enough for each of a few workers' next big call.
const maxSpare = 4

// take removes and returns the future reference of task id, and lets go
// of the descriptor of its big call, if any: every end of a task (its
// outcome's delivery, its cancel at shutdown, a refused submit) comes
// here. answered: the task's worker answered it, so it is done reading
// the call, whose memory may then serve again (spare); after any other end
// (a worker killed or dead, a pool broken) it is closed.
func (p *processPool) take(id uint64, answered bool) *C.PyObject {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.futures[id]
	delete(p.futures, id)
	if fd, ok := p.shared[id]; ok {
		delete(p.shared, id)
		if answered && len(p.spare) < maxSpare {
			p.spare = append(p.spare, fd)
		} else {
			syscall.Close(fd)
		}
	}
	return f
}

// takeSpare returns a spare descriptor for a big call to write into, or -1.
func (p *processPool) takeSpare() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.spare) == 0 {
		return -1
	}
	fd := p.spare[len(p.spare)-1]
	p.spare = p.spare[:len(p.spare)-1]
	return fd
}

// closeSpare closes the spare descriptors and, once, tells answer.c that
// the pool is done (the answer memory kept for reuse is given back when
// no pool is left), as every task has ended.
func (p *processPool) closeSpare() {
	p.mu.Lock()
	for _, fd := range p.spare {
		syscall.Close(fd)
	}
	p.spare = nil
	first := !p.done
	p.done = true
	p.mu.Unlock()
	if first {
		C.gf_answer_pool(-1)
	}
}

// deliver is the one way back for every outcome of a task, whatever
// produced it (its worker's answer, its own failure, the pool's break, its
// cancel while queued): the outcome travels as (kind, data) and C builds
// the Python object from it in one place (outcome.c). An outcome for a
// future nobody observes is parked in the future, which Go finishes
// without the GIL (park); the reader builds it when asked. Any other goes
// to the results worker, which builds it and completes the future with the
// GIL, telling its waiters and running its callbacks.
//
// A big answer (shared: data is the malloc'd memory the core read it into
// from the worker's shared memory, see answerMemory) is handed on as it
// is, never copied: C unpickles it in place and frees it when done
// (outcome.c, region.c).
func (p *processPool) deliver(t *core.ProcTask, kind C.int, data []byte, shared bool) {
	fut := p.take(t.ID, kind == C.GF_FRAME_RESULT || kind == C.GF_FRAME_ERROR || kind == C.GF_DELIVER_UNREADABLE)
	if fut == nil {
		if shared {
			answerMemory{}.Free(data)
		}
		return
	}
	if parkable(kind) && p.park(t, fut, kind, data, shared) {
		return
	}
	job := (*C.gf_job)(C.calloc(1, C.size_t(unsafe.Sizeof(C.gf_job{}))))
	job.what = C.GF_JOB_DELIVER
	job.future = fut // the job takes over the reference
	job.kind = kind
	job.data, job.shared = outcomeBytes(data, shared)
	job.len = C.Py_ssize_t(len(data))
	// The results pool is shut down only after this pool has joined, so the
	// submit cannot fail.
	p.results.core.Submit(task{Future: t.Future, Payload: job})
}

// parkable: outcomes that finish a future still running. A cancel's
// acknowledgement tells the stdlib's waiters, which needs the GIL; a killed
// task's future was already ended, cancelled, by kill_task.
func parkable(kind C.int) bool {
	return kind != C.GF_DELIVER_CANCELLED && kind != C.GF_DELIVER_KILLED
}

// answerMemory is the core's AnswerMemory for big answers: C's answer
// memory (answer.c), so that C takes an answer over as it is (and gives it
// back: outcome.c, region.c).
type answerMemory struct{}

func (answerMemory) Alloc(n int) ([]byte, error) {
	p := C.gf_answer_alloc(C.size_t(n)) // a big answer may not fit: that call's MemoryError
	if p == nil {
		return nil, fmt.Errorf("malloc(%d) failed", n)
	}
	return unsafe.Slice((*byte)(p), n), nil
}

func (answerMemory) Free(b []byte) {
	C.gf_answer_free(unsafe.Pointer(unsafe.SliceData(b)), C.size_t(len(b)))
}

// outcomeBytes: data as C keeps it, with its shared flag: a big answer as it
// is, anything else copied to malloc'd memory (NULL if empty).
func outcomeBytes(data []byte, shared bool) (*C.char, C.int) {
	switch {
	case shared:
		return (*C.char)(unsafe.Pointer(unsafe.SliceData(data))), 1
	case len(data) > 0:
		return (*C.char)(C.CBytes(data)), 0
	}
	return nil, 0
}

// Completed implements core.ProcessSink.
func (p *processPool) Completed(t *core.ProcTask, kind core.FrameKind, data []byte, shared bool) {
	p.deliver(t, C.int(kind), data, shared) // FrameResult and FrameError are GF_FRAME_RESULT and _ERROR
}

// Cancelled implements core.ProcessSink.
func (p *processPool) Cancelled(t *core.ProcTask) { p.deliver(t, C.GF_DELIVER_CANCELLED, nil, false) }

// drainEvery bounds how many parked futures' references wait for a drain:
// Python threads drain as they read results, submit or shut down, and the
// results worker drains every drainEvery parks (and after each big
// answer's) and after the pool joins, for programs that do none of these
// for a while.
const drainEvery = 512

// park finishes t's future fut with its outcome left for Python to build
// on demand, unless the future is observed (or already done); it reports
// whether it did. On success the reference fut is C's (gf_future_park);
// otherwise the caller still owns it.
func (p *processPool) park(t *core.ProcTask, fut *C.PyObject, kind C.int, data []byte, shared bool) bool {
	raw, isShared := outcomeBytes(data, shared)
	if raw == nil {
		raw = (*C.char)(C.malloc(1)) // a parked outcome is never NULL: NULL means none
	}
	var parked C.long
	if !t.Future.FinishUnobserved(kind != C.GF_FRAME_RESULT, func() {
		parked = C.gf_future_park(fut, raw, C.Py_ssize_t(len(data)), kind, isShared)
	}) {
		if isShared == 0 {
			C.free(unsafe.Pointer(raw))
		}
		return false // a big answer stays the caller's
	}
	p.undrained.Store(true)
	// A big answer's future is released at once: an unread one that its
	// user dropped would otherwise hold its memory until a later drain.
	if parked%drainEvery == 0 || shared {
		p.drain()
	}
	return true
}

// drain has the results worker release, with the GIL, the references
// parked futures left behind (gf_release_drain), if this pool parked any
// since its last drain. Harmless after the results pool has shut down: the
// next drain anywhere takes them.
func (p *processPool) drain() {
	if !p.undrained.Swap(false) {
		return
	}
	job := (*C.gf_job)(C.calloc(1, C.size_t(unsafe.Sizeof(C.gf_job{}))))
	job.what = C.GF_JOB_DRAIN
	if p.results.core.Submit(task{Future: core.NewFuture(), Payload: job}) != nil {
		C.free(unsafe.Pointer(job))
	}
}

// failure is the JSON header of a task that failed alone; the task's own
// pickled call follows it after a newline, so that Python can say which
// call it was without the submit path keeping any description of it.
type failure struct {
	Message  string  `json:"message"`
	PID      int     `json:"pid"`
	ExitCode int     `json:"exitcode"`
	Signal   int     `json:"signal"` // 0: none
	TaskID   uint64  `json:"task_id"`
	Starting bool    `json:"starting"`
	Limit    float64 `json:"limit"`     // seconds, for a timeout
	NoMemory bool    `json:"no_memory"` // an unreadable answer: too big for this process
}

// Failed implements core.ProcessSink.
func (p *processPool) Failed(t *core.ProcTask, err error) {
	h := failure{Message: err.Error(), TaskID: t.ID}
	var kind C.int = C.GF_DELIVER_KILLED
	var died *core.WorkerDied
	var timeout *core.TaskTimeout
	var unreadable *core.AnswerUnreadable
	switch {
	case errors.As(err, &unreadable):
		kind = C.GF_DELIVER_UNREADABLE
		h.PID, h.NoMemory = unreadable.PID, unreadable.NoMemory
	case errors.As(err, &died):
		kind = C.GF_DELIVER_DIED
		h.PID, h.ExitCode, h.Starting = died.PID, died.ExitCode, died.Starting
		if sig, ok := died.Signal.(syscall.Signal); ok {
			h.Signal = int(sig)
		}
	case errors.As(err, &timeout):
		kind = C.GF_DELIVER_TIMEOUT
		h.PID, h.Limit = timeout.PID, timeout.Limit.Seconds()
	}
	header, _ := json.Marshal(h) // cannot fail: plain fields
	data := append(append(header, '\n'), t.Payload...)
	p.deliver(t, kind, data, false)
}

// Broken implements core.ProcessSink.
func (p *processPool) Broken(err error, tasks []*core.ProcTask) {
	for _, t := range tasks {
		p.deliver(t, C.GF_DELIVER_BROKEN, []byte(err.Error()), false)
	}
}

// newProcessPool starts the Go half of a process pool as cfg says (api.go's
// NewProcessPool); C binds its Python half (gfProcBind) before the first
// submit. Its results pool is made here, bound to the hooks later.
func newProcessPool(cfg ProcessPoolConfig) (*processPool, error) {
	files := make([]*os.File, len(cfg.Fds))
	for i, fd := range cfg.Fds {
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("worker fd %d", 5+i))
	}
	fail := func(err error) (*processPool, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	p := &processPool{futures: map[uint64]*C.PyObject{}, shared: map[uint64]int{}}
	results, err := newThreadPool(1, core.ThreadPoolOptions{Name: "ProcessPoolResults"}, false)
	if err != nil {
		return fail(err)
	}
	p.results = results
	env := cfg.Env
	if cfg.InheritEnv {
		env = nil
	} else if env == nil {
		env = []string{} // an empty os.environ, not the runtime's
	}
	core_ := core.ProcessConfig{
		Workers: cfg.Workers, Command: cfg.Command, Env: env,
		Init:             cfg.Init,
		MaxTasksPerChild: cfg.MaxTasksPerChild,
		Lazy:             cfg.Lazy,
		Files:            files,
		Survive:          cfg.Survive,
		TaskTimeout:      time.Duration(cfg.TaskTimeoutNs),
		MaxWorkerMemory:  cfg.MaxWorkerMemory,
		Zygote:           sharedZygote(cfg.ZygoteCommand),
		ZygotePrepare:    []byte(cfg.ZygotePrepare),
		AnswerMemory:     answerMemory{},
	}
	if cfg.Fork {
		core_.Fork = p.fork
		// A forked worker serves once it has read its FrameInit, empty
		// (_child/worker.py: run_forked): its initializer came with the fork.
		core_.Init = []byte{}
	}
	p.core, err = core.NewProcessPool(core_, p)
	if err != nil {
		results.core.Shutdown(false)
		forgetPool(results.id) // never bound, no worker: nothing else to release
		return fail(err)
	}
	p.id = lastID.Add(1)
	C.gf_answer_pool(1)
	procsMu.Lock()
	procs[p.id] = p
	procsMu.Unlock()
	return p, nil
}

// gfProcBind gives pool id its Python hooks object, a reference the pool
// keeps from now on (its results worker releases it); 0, or -1 if the pool
// is unknown or already bound (the caller then keeps its reference).
//
//export gfProcBind
func gfProcBind(id C.longlong, hooks *C.PyObject) C.int {
	p := lookupProc(id)
	if p == nil || gfPoolBind(C.longlong(p.results.id), hooks) != 0 {
		return -1
	}
	p.hooks = hooks // borrowed: the results pool owns it (procfork.go says for how long it may be used)
	return 0
}

// sharedFd: the descriptor of the shared memory data refers to (a big
// call), which the pool owns from here on whatever the answer, or -1.
//
//export gfProcSubmit
func gfProcSubmit(id C.longlong, fh C.uintptr_t, fut *C.PyObject, data *C.char, n C.Py_ssize_t,
	timeoutNs C.longlong, sharedFd C.int) C.int {
	p := lookupProc(id)
	if p == nil {
		if sharedFd >= 0 {
			syscall.Close(int(sharedFd))
		}
		return submitUnknown
	}
	p.mu.Lock()
	p.nextID++
	t := &core.ProcTask{ID: p.nextID, Future: future(fh), Payload: C.GoBytes(unsafe.Pointer(data), C.int(n)),
		Timeout: time.Duration(timeoutNs)}
	p.futures[t.ID] = fut
	if sharedFd >= 0 {
		p.shared[t.ID] = int(sharedFd)
	}
	p.mu.Unlock()
	err := p.core.Submit(t)
	if err == nil {
		return submitOK
	}
	p.take(t.ID, false) // the caller keeps its reference
	if errors.Is(err, core.ErrShutdown) {
		return submitShutdown
	}
	return submitBroken
}

// gfProcKillTask kills the worker running the task of future fh; 1 if it
// was running (the task then fails alone, delivered as GF_DELIVER_KILLED), 0
// if not.
//
//export gfProcKillTask
func gfProcKillTask(id C.longlong, fh C.uintptr_t) C.int {
	p := lookupProc(id)
	if p == nil || !p.core.KillTask(future(fh)) {
		return 0
	}
	return 1
}

// gfProcSpareFd returns a descriptor of shared memory that a big call may
// write into and pass to gfProcSubmit (the caller's until then), or -1.
//
//export gfProcSpareFd
func gfProcSpareFd(id C.longlong) C.int {
	if p := lookupProc(id); p != nil {
		return C.int(p.takeSpare())
	}
	return -1
}

//export gfProcBrokenMessage
func gfProcBrokenMessage(id C.longlong) *C.char {
	if p := lookupProc(id); p != nil {
		if err := p.core.Err(); err != nil {
			return C.CString(err.Error())
		}
	}
	return nil
}

// gfProcShutdown stops the pool; with sig > 0 it also sends sig to every
// worker. Tasks removed from the queue wait in dropped for gfProcNextDropped.
//
//export gfProcShutdown
func gfProcShutdown(id C.longlong, cancel C.int, sig C.int) {
	p := lookupProc(id)
	if p == nil {
		return
	}
	var tasks []*core.ProcTask
	if sig > 0 {
		tasks = p.core.TerminateWorkers(syscall.Signal(sig))
	} else {
		tasks = p.core.Shutdown(cancel != 0)
	}
	for _, t := range tasks {
		if f := p.take(t.ID, false); f != nil {
			p.mu.Lock()
			p.dropped = append(p.dropped, f)
			p.mu.Unlock()
		}
	}
}

// gfProcNextDropped returns (transferring the reference) one future whose
// task shutdown cancelled, or NULL.
//
//export gfProcNextDropped
func gfProcNextDropped(id C.longlong) *C.PyObject {
	p := lookupProc(id)
	if p == nil {
		return nil
	}
	return popFront(&p.mu, &p.dropped)
}

// gfProcRelease is the executor object's end: the pool is shut down (queued
// tasks still run, their outcomes are still delivered) and forgotten once
// its workers have exited. The results pool's hooks reference is released
// by its last worker as it stops, with the GIL, or, if none is left to (a
// pool whose futures were all parked may never have started one), by the
// next drain.
//
//export gfProcRelease
func gfProcRelease(id C.longlong) {
	p := lookupProc(id)
	if p == nil {
		return
	}
	p.core.Shutdown(false)
	go func() {
		p.core.Join(time.Time{})
		p.closeSpare()
		p.drain()
		if hooks := gfPoolRelease(C.longlong(p.results.id)); hooks != nil {
			C.gf_release_later(hooks) // its worker never started, or has stopped
		}
		procsMu.Lock()
		delete(procs, p.id)
		procsMu.Unlock()
	}()
}

// joinProcessPool waits for the worker processes, then for the results
// worker to deliver every outcome.
func joinProcessPool(p *processPool, deadline time.Time) bool {
	if !p.core.Join(deadline) {
		return false
	}
	p.closeSpare() // every task has ended: none is needed any more
	p.drain()
	p.results.core.Shutdown(false)
	return p.results.core.Join(deadline)
}
