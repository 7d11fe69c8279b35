package pybind

// A process pool whose workers are forked from this process (the 'fork'
// start method): core.ProcessConfig.Fork, implemented by C (fork.c).

/*
#include <stdlib.h>
#include "gf.h"
*/
import "C"

import (
	"errors"
	"unsafe"

	core "github.com/gofutures/gofutures/gofutures"
)

// fork implements core.ForkFunc. The child closes every descriptor
// gofutures made (so that it keeps no other worker's pipe open and cannot
// write to one), runs hooks.forked_worker, and exits. p.hooks
// is alive while the pool can start workers: the results pool releases it
// only after the pool has joined, and a fork in flight keeps it from
// joining.
func (p *processPool) fork(spec core.ForkSpec) (int, error) {
	fds := poolFDs()
	var first *C.int
	if len(fds) > 0 {
		first = &fds[0]
	}
	var cerr *C.char
	pid := C.gf_fork_worker(p.hooks, C.long(spec.Number), C.int(spec.TaskFD), C.int(spec.ResultFD),
		first, C.long(len(fds)), &cerr)
	if pid < 0 {
		defer C.free(unsafe.Pointer(cerr))
		return 0, errors.New(C.GoString(cerr))
	}
	return int(pid), nil
}

// poolFDs lists the descriptors gofutures holds in this process
// (core.GofuturesDescriptors: every pool's pipes and pidfds, the zygote's
// socket). The runtime's own may stay open in the child, which never uses
// them.
func poolFDs() []C.int {
	owned := core.GofuturesDescriptors()
	fds := make([]C.int, len(owned))
	for i, fd := range owned {
		fds[i] = C.int(fd)
	}
	return fds
}

// gfProcAwaitForks waits (GIL released by the caller) up to ns for the
// workers being forked: 1 when none is left, 0 on timeout.
//
//export gfProcAwaitForks
func gfProcAwaitForks(id C.longlong, ns C.longlong) C.int {
	p := lookupProc(id)
	if p == nil {
		return 1
	}
	return receiveWithin(p.core.ForksDone(), ns)
}

// gfProcStartWorkers starts an eager pool's workers if they have not
// started (core.ProcessPool.StartWorkers).
//
//export gfProcStartWorkers
func gfProcStartWorkers(id C.longlong) {
	if p := lookupProc(id); p != nil {
		p.core.StartWorkers()
	}
}
