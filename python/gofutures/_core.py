"""The one door to the native library; nothing else in gofutures imports
gofutures._native directly.

The library is one c-shared file holding the Go runtime and two extension
modules: gopy's generated `_native` (the cold API, reached through its
wrapper module `pybind`) and the hand-written `_hot` (the hot path), which is
loaded here from the same file by name.
"""
import importlib.machinery
import importlib.util

from . import _fdguard
from ._native import _native, pybind as cold


def _load_hot():
    path = _native.__file__
    loader = importlib.machinery.ExtensionFileLoader("gofutures._hot", path)
    spec = importlib.util.spec_from_file_location("gofutures._hot", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


hot = _load_hot()
_fdguard.install(cold.OwnedDescriptors)  # the Go runtime is loaded from here on

__all__ = ["cold", "hot"]
