"""The one door to the native library; nothing else in gofutures imports
gofutures._native directly.

The library is one c-shared file holding the Go runtime and two extension
modules: gopy's generated `_native` (the cold API, reached through its
wrapper module `pybind`) and the hand-written `_hot` (the hot path), which is
made here by calling its init function in that file.
"""
import ctypes
import sys

from ._native import _native, pybind as cold


def _load_hot():
    # The library exports PyInit__native alone (gopy links it so), so the
    # import system cannot load _hot by name: its init is called by address.
    init = ctypes.PYFUNCTYPE(ctypes.py_object)(cold.HotInit())
    module = init()
    module.__file__ = _native.__file__
    sys.modules["gofutures._hot"] = module
    return module


hot = _load_hot()

__all__ = ["cold", "hot"]
