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


def payload(call, spare_memfd):
    """What the frame of call (fn, args, kwargs, chunked) carries, and the
    descriptor of the shared memory a big one is in (-1: none), which the
    caller hands to the Go pool (see _bigpayload). spare_memfd() gives a
    memfd to reuse for a big one, or -1."""
    fn, args, kwargs, chunked = call
    if not chunked and not kwargs and _bigpayload.scalars(args):
        # No big buffer can hide in these: plain pickle.dumps is the
        # fastest way, and the common small call's.
        return _pickle(call, fn, _plain_dumps, _cloud_dumps), -1
    pickled = _pickle(call, fn, _bigpayload.dump, _cloud_dump)
    if not pickled.big():
        return pickled.joined(), -1
    return _bigpayload.encode(pickled, fn, spare_memfd())


def _pickle(obj, fn, plain, by_value):
    """plain(obj), or by_value(obj) (cloudpickle) if fn (the called
    function) cannot go by name or plain pickle fails."""
    if cloudpickle is not None and fn is not None and needs_value(fn):
        return by_value(obj)
    try:
        return plain(obj)
    except (pickle.PicklingError, AttributeError, TypeError):
        if cloudpickle is None:
            raise
        return by_value(obj)


def _plain_dumps(obj):
    return pickle.dumps(obj, 5)


def _cloud_dumps(obj):
    return cloudpickle.dumps(obj, 5)


def _cloud_dump(obj):
    return _bigpayload.dump(obj, cloudpickle.Pickler)
