package pybind

// The C side of the hot path reaches the core's futures and completions
// through these exports. Each Go object is referred to from C by a handle
// (a uintptr: a core.Handles slot for futures, which are many, a cgo.Handle
// for the rest); the C object that holds the handle frees it in its
// dealloc. These functions never touch Python: they are called by C with or
// without the GIL held, and only those called without it may block.

/*
#include "gf.h"
*/
import "C"

import (
	"runtime/cgo"
	"time"
	"unsafe"

	core "github.com/gofutures/gofutures/gofutures"
)

// futures holds every Future a Python object refers to.
var futures core.Handles[core.Future]

func future(h C.uintptr_t) *core.Future { return futures.Value(uintptr(h)) }

func completions(h C.uintptr_t) *core.Completions {
	return cgo.Handle(h).Value().(*core.Completions)
}

// deadline turns a wait slice from C into a deadline; ns <= 0 means "check
// without blocking".
func deadline(ns C.longlong) time.Time { return time.Now().Add(time.Duration(ns)) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// gfFutureNew makes a Go future for the Python future at tag (its address,
// which errors print as Python's repr does).
//
//export gfFutureNew
func gfFutureNew(tag C.uintptr_t) C.uintptr_t {
	f := core.NewFuture()
	f.Tag = uintptr(tag)
	return C.uintptr_t(futures.New(f))
}

// gfFutureFreeMany releases the n handles at hs (future.c gives back dead
// futures in batches).
//
//export gfFutureFreeMany
func gfFutureFreeMany(hs *C.uintptr_t, n C.int) {
	for _, h := range unsafe.Slice(hs, int(n)) {
		futures.Delete(uintptr(h))
	}
}

// gfFutureState returns the state in the low byte and 1<<8 if the future
// finished with an exception.
//
//export gfFutureState
func gfFutureState(h C.uintptr_t) C.int {
	s, failed := future(h).State()
	return C.int(s) | cbool(failed)<<8
}

// gfFutureObserve marks the future observed (core.Future.Observe: from now
// on a process pool completes it through its results worker, with the GIL)
// and returns its state as gfFutureState does.
//
//export gfFutureObserve
func gfFutureObserve(h C.uintptr_t) C.int {
	s, failed := future(h).Observe()
	return C.int(s) | cbool(failed)<<8
}

// gfFutureCancel returns 1 if the future is cancelled, plus 2 if this call
// cancelled it.
//
//export gfFutureCancel
func gfFutureCancel(h C.uintptr_t) C.int {
	cancelled, changed := future(h).Cancel()
	return cbool(cancelled) | cbool(changed)<<1
}

// gfFutureSetRunning returns 1 (now running), 0 (cancellation acknowledged)
// or -1 (the state did not allow either).
//
//export gfFutureSetRunning
func gfFutureSetRunning(h C.uintptr_t) C.int {
	running, err := future(h).SetRunningOrNotifyCancel()
	if err != nil {
		return -1
	}
	return cbool(running)
}

//export gfFutureFinish
func gfFutureFinish(h C.uintptr_t, failed C.int) C.int {
	if future(h).Finish(failed != 0) != nil {
		return -1
	}
	return 0
}

//export gfFutureForce
func gfFutureForce(h C.uintptr_t, state C.int, failed C.int) {
	future(h).Force(core.State(state), failed != 0)
}

// gfFutureWait blocks (GIL released by the caller) for at most ns.
//
//export gfFutureWait
func gfFutureWait(h C.uintptr_t, ns C.longlong) C.int {
	return cbool(future(h).Wait(deadline(ns)))
}

//export gfCompNew
func gfCompNew() C.uintptr_t { return C.uintptr_t(cgo.NewHandle(core.NewCompletions())) }

//export gfCompFree
func gfCompFree(h C.uintptr_t) { cgo.Handle(h).Delete() }

//export gfCompWatch
func gfCompWatch(h, fh C.uintptr_t, tag C.long) { future(fh).Watch(completions(h), int(tag)) }

//export gfCompUnwatch
func gfCompUnwatch(h, fh C.uintptr_t) { future(fh).Unwatch(completions(h)) }

//export gfCompPush
func gfCompPush(h C.uintptr_t, tag C.long, failed C.int) { completions(h).Push(int(tag), failed != 0) }

// gfCompAwait blocks (GIL released by the caller) for at most ns.
//
//export gfCompAwait
func gfCompAwait(h C.uintptr_t, mode C.int, total C.long, ns C.longlong) C.int {
	return cbool(completions(h).Await(core.Mode(mode), int(total), deadline(ns)))
}

// gfCompNext blocks (GIL released by the caller) for at most ns; on success
// it stores the event's tag in *tag.
//
//export gfCompNext
func gfCompNext(h C.uintptr_t, ns C.longlong, tag *C.long) C.int {
	e, ok := completions(h).Next(deadline(ns))
	if ok {
		*tag = C.long(e.Tag)
	}
	return cbool(ok)
}
