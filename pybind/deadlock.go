package pybind

// Deadlock detection's exports: C registers a worker's blocking waits here
// (see core.Slot.Block) so that a wait that could never end raises
// gofutures.DeadlockError instead of hanging.

/*
#include <stdint.h>
*/
import "C"

import (
	"errors"
	"runtime/cgo"
	"unsafe"

	core "github.com/gofutures/gofutures/gofutures"
)

// gfWaitBlock registers that the worker whose slot handle is slot is about
// to wait for the n futures at fhs (all of them when all != 0, else any),
// with a deadline when timed != 0. It returns NULL when the wait may go
// ahead (the caller then waits and calls gfWaitUnblock), or, when the wait
// could never end, the reason in C memory the caller frees, with the Tags of
// the futures involved in tags (at most *ntags of them; *ntags is set to
// how many were written).
//
//export gfWaitBlock
func gfWaitBlock(slot C.uintptr_t, fhs *C.uintptr_t, n C.long, all, timed C.int, tags *C.uintptr_t, ntags *C.long) *C.char {
	s := cgo.Handle(slot).Value().(*core.Slot)
	fs := make([]*core.Future, n)
	for i, h := range unsafe.Slice(fhs, n) {
		fs[i] = future(h)
	}
	err := s.Block(fs, all != 0, timed != 0)
	var d *core.DeadlockError
	if !errors.As(err, &d) {
		*ntags = 0
		return nil
	}
	out := unsafe.Slice(tags, *ntags)
	k := 0
	for _, f := range d.Futures {
		if k == len(out) {
			break
		}
		out[k] = C.uintptr_t(f.Tag)
		k++
	}
	*ntags = C.long(k)
	return C.CString(d.Error())
}

// gfWaitUnblock ends a wait that gfWaitBlock let go ahead.
//
//export gfWaitUnblock
func gfWaitUnblock(slot C.uintptr_t) {
	cgo.Handle(slot).Value().(*core.Slot).Unblock()
}
