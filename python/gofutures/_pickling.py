"""How calls and their arguments travel to worker processes.

Plain pickle sends functions and classes by reference (module + name), which
is fast and is what the stdlib does. It cannot send what a worker could not
import: lambdas, closures, and anything defined in the __main__ of a session
that has no file to re-import (a notebook, the interactive prompt). Those go
by value with cloudpickle. A script's __main__ does have a file; workers load
it as __mp_main__ (as multiprocessing's spawn does), so its functions travel
by reference.
"""

import pickle
import sys

from . import _bigpayload

try:
    import cloudpickle
except ImportError:  # pragma: no cover - cloudpickle is a dependency
    cloudpickle = None


def main_path():
    """The file of the __main__ module if workers can re-import it, else None."""
    return getattr(sys.modules.get("__main__"), "__file__", None)


def needs_value(obj):
    """Whether obj (a function or class) must go by value: a worker could
    not import it by name."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", "")
    if "<lambda>" in qualname or "<locals>" in qualname:
        return True
    return module == "__main__" and main_path() is None


def dumps(obj, fn=None):
    """Pickle obj (protocol 5) into a _bigpayload.Pickled, for
    _bigpayload.encode; fn (the called function) decides up front whether
    plain pickle can be trusted. Falls back to cloudpickle when plain
    pickle fails."""
    if cloudpickle is not None and fn is not None and needs_value(fn):
        return _bigpayload.dump(obj, cloudpickle.Pickler)
    try:
        return _bigpayload.dump(obj)
    except (pickle.PicklingError, AttributeError, TypeError):
        if cloudpickle is None:
            raise
        return _bigpayload.dump(obj, cloudpickle.Pickler)
