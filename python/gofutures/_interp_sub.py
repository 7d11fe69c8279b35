"""The Python half of an InterpreterPoolExecutor worker's interpreter.

Each worker's subinterpreter runs this file's source (pybind/subinterp.c
executes it as the module gofutures._interp_sub there, without importing
gofutures), then setup() once and run() for every task. The main
interpreter imports it too, for dumps(), which both sides use to send what
crosses: the call (main to worker) and its outcome (worker to main).

Only bytes cross between interpreters. What can be sent is what the
stdlib's InterpreterPoolExecutor accepts: anything pickle can send (a
function by reference, as the module that defines it is importable in the
worker), and besides, a function that pickle cannot find by name but that
is stateless (no closure; no global names except builtins), which is sent
as its code, as the stdlib does.

Imports only modules a new interpreter has loaded or built in: it must
start fast.
"""

import builtins
import marshal
import sys
from _pickle import Pickler, dumps as _dumps, loads
from types import CodeType as _CodeType, FunctionType as _FunctionType

# What run() returns: loads() of it gives (kind, value, extra).
RESULT, FAILED, NOT_UNPICKLED, NOT_SENT = 0, 1, 2, 3
_PROTOCOL = 5


def _uses_only_builtins(code, globals):
    """Whether the global names code reads (its nested code's too) are all
    builtins that its module does not shadow."""
    import dis  # only once per code object

    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME") and (
            ins.argval in globals or ins.argval not in builtins.__dict__
        ):
            return False
    return all(_uses_only_builtins(c, globals) for c in code.co_consts if isinstance(c, _CodeType))


def _found_by_name(fn):
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    obj = module
    for part in fn.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj is fn


# The marshalled code of each stateless function's code object seen (None:
# not stateless). Code objects live as long as their module, mostly.
_stateless = {}


def stateless_code(fn):
    """The marshalled code of fn if it is stateless, as the stdlib's
    InterpreterPoolExecutor defines it (no closure, defaults or global names
    but builtins), which is then sent as its code; else None."""
    if fn.__defaults__ or fn.__kwdefaults__ or fn.__closure__:
        return None
    code = fn.__code__
    try:
        return _stateless[code]
    except KeyError:
        pass
    sent = None if code.co_freevars or not _uses_only_builtins(code, fn.__globals__) else marshal.dumps(code)
    _stateless[code] = sent
    return sent


# The functions made from code sent here, by that code.
_functions = {}


def function(code):
    """The function of a stateless function's code: its globals are this
    interpreter's __main__ (it reads none but builtins)."""
    fn = _functions.get(code)
    if fn is None:
        fn = _functions[code] = _FunctionType(marshal.loads(code), sys.modules["__main__"].__dict__)
    return fn


class _Pickler(Pickler):
    def reducer_override(self, obj):
        if type(obj) is memoryview:  # the stdlib shares its buffer; a copy here
            return memoryview, (obj.tobytes(),)
        if type(obj) is not _FunctionType or _found_by_name(obj):
            return NotImplemented
        code = stateless_code(obj)
        if code is None:
            raise TypeError(
                "%s is not shareable: it is no module-level function and is not stateless "
                "(it has a closure, defaults or reads global names)" % obj.__qualname__
            )
        return function, (code,)


def dumps(obj):
    """pickle.dumps, sending stateless functions that have no importable
    name as their code, and memoryviews as copies."""
    try:
        return _dumps(obj, _PROTOCOL)
    except Exception:
        pass
    import io

    buffer = io.BytesIO()
    _Pickler(buffer, _PROTOCOL).dump(obj)
    return buffer.getvalue()


def describe(exc):
    try:
        return "%s: %s" % (type(exc).__name__, exc)
    except Exception:
        return type(exc).__name__


# ------------------------------------------------ in the worker's interpreter

# The main interpreter's __main__, for the calls that name it: (kind, where)
# until it is loaded (at most once), then None.
_main_source = None
_fake_main = None


def setup(data):
    """Once, in a new worker interpreter: the main interpreter's sys.path
    (so that what it imports, this one finds) and its __main__, loaded on
    first use."""
    global _main_source
    config = loads(data)
    sys.path[:] = config["path"]
    _main_source = config["main"]
    sys.modules["__main__"].__getattr__ = _main_getattr


def _load_main():
    """The main interpreter's __main__ module, run again here as the stdlib's
    pool does: as '<fake __main__>' (so code under `if __name__ ==
    "__main__":` does not run), or the module that `python -m` ran."""
    global _main_source, _fake_main
    source, _main_source = _main_source, None
    if source is None:
        return _fake_main
    kind, where = source
    if kind == "module":
        __import__(where)
        _fake_main = sys.modules[where]
    else:
        module = type(sys)("<fake __main__>")
        module.__file__ = where
        sys.modules[module.__name__] = module
        with open(where, "rb") as f:
            code = compile(f.read(), where, "exec")
        _fake_main = module
        exec(code, module.__dict__)
    return _fake_main


def _main_getattr(name):
    # This interpreter's own __main__ is empty: what the main one's defines
    # comes from loading it again.
    if not name.startswith("__"):
        main = _load_main()
        if main is not None and hasattr(main, name):
            return getattr(main, name)
    raise AttributeError("module '__main__' has no attribute %r" % name)


def _failure(exc):
    import traceback

    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # without run()'s frame
    exc.__traceback__ = tb
    try:
        msg = str(exc)
    except Exception:
        msg = ""
    cls = type(exc)
    info = {
        "type": (cls.__name__, cls.__qualname__, cls.__module__),
        "msg": msg,
        "formatted": describe(exc),
        "errdisplay": "".join(traceback.format_exception(exc)).rstrip("\n"),
    }
    try:
        sent = dumps(exc)
    except Exception:
        print("exception is not shareable:", file=sys.stderr)
        traceback.print_exception(exc)
        sent = None
    return _dumps((FAILED, sent, info), _PROTOCOL)


def run(data):
    """One task: data is the pickled (fn, args, kwargs), fn possibly the code
    of a stateless function; returns its outcome pickled as (kind, value,
    extra)."""
    try:
        fn, args, kwargs = loads(data)
        if type(fn) is bytes:  # a stateless function's code
            fn = function(fn)
    except BaseException as exc:
        return _dumps((NOT_UNPICKLED, describe(exc), None), _PROTOCOL)
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        return _failure(exc)
    finally:
        del fn, args, kwargs
    try:
        return dumps((RESULT, result, None))
    except BaseException as exc:
        return _dumps((NOT_SENT, describe(exc), None), _PROTOCOL)
