package pybind

// The binding's half of a process pool: a core.ProcessPool whose sink turns
// each outcome into a delivery job for a one-worker threadPool (the
// "results pool"), whose worker holds a Python thread state and hands the
// outcome to the Python hooks (unpickling and completing the future need
// the GIL; the supervisor goroutines never take it).
//
// The common outcomes, a pickled result or exception for a future nobody
// observes from Python (no done-callback, no stdlib wait), skip the results
// pool: the goroutine parks the pickle in the future and finishes it
// without the GIL (park), and the thread that asks for the value unpickles
// it (future.c). That saves a GIL handover and two thread wake-ups per task.

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
	"strconv"
	"strings"
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

// take removes and returns the future reference of task id.
func (p *processPool) take(id uint64) *C.PyObject {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.futures[id]
	delete(p.futures, id)
	return f
}

func (p *processPool) deliver(t *core.ProcTask, kind C.int, data []byte) {
	if fut := p.take(t.ID); fut != nil {
		p.deliverTo(t, fut, kind, data)
	}
}

// deliverTo queues the outcome of t for the results pool, which completes
// fut with the GIL; the job takes over the reference fut.
func (p *processPool) deliverTo(t *core.ProcTask, fut *C.PyObject, kind C.int, data []byte) {
	job := (*C.gf_job)(C.calloc(1, C.size_t(unsafe.Sizeof(C.gf_job{}))))
	job.future = fut
	job.kind = kind
	if len(data) > 0 {
		job.data = (*C.char)(C.CBytes(data))
	}
	job.len = C.Py_ssize_t(len(data))
	// The results pool is shut down only after this pool has joined, so the
	// submit cannot fail.
	p.results.core.Submit(task{Future: t.Future, Payload: job})
}

// Completed implements core.ProcessSink.
func (p *processPool) Completed(t *core.ProcTask, kind core.FrameKind, data []byte) {
	fut := p.take(t.ID)
	if fut == nil {
		return
	}
	if (kind == core.FrameResult || kind == core.FrameError) && p.park(t, fut, kind == core.FrameError, data) {
		return
	}
	p.deliverTo(t, fut, C.int(kind), data)
}

// drainEvery bounds how many parked futures' references wait for a drain:
// Python threads drain as they read results, submit or shut down, and the
// results worker drains every drainEvery parks and after the pool joins,
// for programs that do none of these for a while.
const drainEvery = 512

// park finishes t's future fut with its pickled outcome left for Python to
// unpickle on demand, unless the future is observed (or already done);
// it reports whether it did. On success the reference fut is C's
// (gf_future_park); otherwise the caller still owns it.
func (p *processPool) park(t *core.ProcTask, fut *C.PyObject, failed bool, data []byte) bool {
	raw := C.malloc(C.size_t(len(data) + 1)) // +1: never malloc(0)
	copy(unsafe.Slice((*byte)(raw), len(data)), data)
	var parked C.long
	if !t.Future.FinishUnobserved(failed, func() {
		parked = C.gf_future_park(fut, (*C.char)(raw), C.Py_ssize_t(len(data)), cbool(failed))
	}) {
		C.free(raw)
		return false
	}
	p.undrained.Store(true)
	if parked%drainEvery == 0 {
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
	if p.results.core.Submit(task{Future: core.NewFuture(), Payload: job}) != nil {
		C.free(unsafe.Pointer(job))
	}
}

// Delivery kinds of a task that failed alone (core.ProcessSink.Failed),
// defined in the core (constants.go) for C and Python too.
const (
	deliverDied    = core.DeliverDied    // its worker died (survive mode)
	deliverTimeout = core.DeliverTimeout // it ran past its time limit; its worker was killed
	deliverKilled  = core.DeliverKilled  // its worker was killed on request (kill_task)
)

// failure is the JSON header of a Failed delivery; the task's own pickled
// call follows it after a newline, so that Python can say which call it was
// without the submit path keeping any description of it.
type failure struct {
	Message  string  `json:"message"`
	PID      int     `json:"pid"`
	ExitCode int     `json:"exitcode"`
	Signal   int     `json:"signal"` // 0: none
	TaskID   uint64  `json:"task_id"`
	Starting bool    `json:"starting"`
	Limit    float64 `json:"limit"` // seconds, for a timeout
}

// Failed implements core.ProcessSink.
func (p *processPool) Failed(t *core.ProcTask, err error) {
	h := failure{Message: err.Error(), TaskID: t.ID}
	kind := deliverKilled
	var died *core.WorkerDied
	var timeout *core.TaskTimeout
	switch {
	case errors.As(err, &died):
		kind = deliverDied
		h.PID, h.ExitCode, h.Starting = died.PID, died.ExitCode, died.Starting
		if sig, ok := died.Signal.(syscall.Signal); ok {
			h.Signal = int(sig)
		}
	case errors.As(err, &timeout):
		kind = deliverTimeout
		h.PID, h.Limit = timeout.PID, timeout.Limit.Seconds()
	}
	header, _ := json.Marshal(h) // cannot fail: plain fields
	data := append(append(header, '\n'), t.Payload...)
	p.deliver(t, C.int(kind), data)
}

// Broken implements core.ProcessSink.
func (p *processPool) Broken(err error, tasks []*core.ProcTask) {
	for _, t := range tasks {
		p.deliver(t, C.GF_DELIVER_BROKEN, []byte(err.Error()))
	}
}

//export gfProcStart
func gfProcStart(workers C.int, argv **C.char, argc C.int, init *C.char, initLen C.int,
	maxTasks C.int, fds *C.int, nfds C.int, lazy C.int, survive C.int, taskTimeoutNs C.longlong,
	maxMemory C.longlong, fork C.int, hooks *C.PyObject, errOut **C.char) C.longlong {
	args := make([]string, int(argc))
	for i, a := range unsafe.Slice(argv, int(argc)) {
		args[i] = C.GoString(a)
	}
	files := make([]*os.File, int(nfds))
	for i, fd := range unsafe.Slice(fds, int(nfds)) {
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("worker fd %d", 5+i))
	}
	fail := func(err error) C.longlong {
		for _, f := range files {
			f.Close()
		}
		*errOut = C.CString(err.Error())
		return 0
	}
	p := &processPool{futures: map[uint64]*C.PyObject{}, hooks: hooks}
	results, err := newThreadPool(1, core.ThreadPoolOptions{Name: "ProcessPoolResults"})
	if err != nil {
		return fail(err)
	}
	p.results = results
	// On success the caller gives the results pool a reference to hooks.
	gfPoolBind(C.longlong(results.id), hooks)
	cfg := core.ProcessConfig{
		Workers: int(workers), Command: args,
		Init:             C.GoBytes(unsafe.Pointer(init), initLen),
		MaxTasksPerChild: int(maxTasks),
		Lazy:             lazy != 0,
		Files:            files,
		Survive:          survive != 0,
		TaskTimeout:      time.Duration(taskTimeoutNs),
		MaxWorkerMemory:  int64(maxMemory),
		Zygote:           currentZygote(),
		Env:              currentWorkerEnv(),
	}
	if fork != 0 {
		cfg.Fork = p.fork
	}
	p.core, err = core.NewProcessPool(cfg, p)
	if err != nil {
		gfPoolRelease(C.longlong(results.id)) // hands back the unowned hooks: nothing to release
		return fail(err)
	}
	procsMu.Lock()
	lastID++ // ids are shared with thread pools: one namespace
	p.id = lastID
	procs[p.id] = p
	procsMu.Unlock()
	return C.longlong(p.id)
}

//export gfProcSubmit
func gfProcSubmit(id C.longlong, fh C.uintptr_t, fut *C.PyObject, data *C.char, n C.Py_ssize_t,
	timeoutNs C.longlong) C.int {
	p := lookupProc(id)
	if p == nil {
		return submitUnknown
	}
	p.mu.Lock()
	p.nextID++
	t := &core.ProcTask{ID: p.nextID, Future: future(fh), Payload: C.GoBytes(unsafe.Pointer(data), C.int(n)),
		Timeout: time.Duration(timeoutNs)}
	p.futures[t.ID] = fut
	p.mu.Unlock()
	err := p.core.Submit(t)
	if err == nil {
		return submitOK
	}
	p.take(t.ID) // the caller keeps its reference
	if errors.Is(err, core.ErrShutdown) {
		return submitShutdown
	}
	return submitBroken
}

// gfProcKillTask kills the worker running the task of future fh; 1 if it
// was running (the task then fails alone, delivered as deliverKilled), 0
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
		if f := p.take(t.ID); f != nil {
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
// by its worker; if that worker never started (no task ever completed) the
// small hooks object is leaked rather than released without the GIL.
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
		p.drain()
		gfPoolRelease(C.longlong(p.results.id))
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
	p.drain()
	p.results.core.Shutdown(false)
	return p.results.core.Join(deadline)
}

func pidList(p *processPool) string {
	var b strings.Builder
	for i, pid := range p.core.PIDs() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(pid))
	}
	return b.String()
}
