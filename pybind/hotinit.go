package pybind

/*
#include "gf.h"
PyMODINIT_FUNC PyInit__hot(void);
*/
import "C"

import "unsafe"

// HotInit returns the address of PyInit__hot, the init function of the
// hand-written module _hot (module.c) in this same library. The import system
// cannot find it by name: gopy (since v0.5.0) links the library with a version
// script that exports PyInit__native alone, keeping the Go runtime's symbols
// out of the process's global namespace. gofutures._core calls it through
// this address instead, once, with the GIL held.
func HotInit() uintptr { return uintptr(unsafe.Pointer(C.PyInit__hot)) }
