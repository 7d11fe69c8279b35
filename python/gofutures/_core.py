"""The one door to the native library; nothing else in gofutures imports
gofutures._native directly.

The library is one c-shared file holding the Go runtime and two extension
modules: gopy's generated `_native` (the cold API, reached through its
wrapper module `pybind`, with its typed structs such as ProcessPoolConfig,
and `go`, its Go slice types) and the hand-written `_hot` (the hot path),
which is made here by calling its init function in that file.
"""

import ctypes
import gc
import sys

from . import _fdguard
from ._native import _native, go, pybind as cold

# gopy (since v0.5.0) hooks a full Go collection onto every pass of Python's
# garbage collector (each of its generated modules does): about 4 ms per
# young-generation pass, which made allocating Python code ~10x slower, and a
# call into Go that hangs in a child forked from this process (a fork-context
# pool or Manager). The few Go objects gopy hands to Python are freed by Go's
# own collector, as before v0.5.0.
gc.callbacks[:] = [
    callback
    for callback in gc.callbacks
    if not getattr(callback, "__module__", "").startswith(__package__ + "._native.")
]


def _load_hot():
    # The library exports PyInit__native alone (gopy links it so), so the
    # import system cannot load _hot by name: its init is called by address.
    init = ctypes.PYFUNCTYPE(ctypes.py_object)(cold.HotInit())
    module = init()
    module.__file__ = _native.__file__
    sys.modules["gofutures._hot"] = module
    return module


hot = _load_hot()
_fdguard.install(cold.OwnedDescriptors)  # the Go runtime is loaded from here on

__all__ = ["cold", "go", "hot"]
