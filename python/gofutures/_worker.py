"""A process-pool worker: plain Python, no Go runtime. The zygote
(_zygote.py) forks it and calls main(), or the Go supervisor starts it by
exec of the parent's interpreter, loading this file by path
(WORKER_COMMAND below); either way the gofutures package, and with it the
Go runtime, is never imported here. It gets the task pipe on fd 3 and
the result pipe on fd 4 (stdout and stderr are the parent's). It runs one
task at a time and exits when fd 3 closes (the parent is gone or asked it
to), so no worker outlives its pool.

This file imports nothing from gofutures for that reason; it speaks the
frame format of gofutures/wire.go itself.
"""
import contextlib
import io
import logging
import os
import pickle
import struct
import sys
import traceback

# Frame kinds, as in gofutures/wire.go.
INIT, TASK, RESULT, ERROR, READY, EXIT = range(1, 7)
_HEAD = struct.Struct(">IBQ")  # length of what follows, kind, task id

# The pool's process, for a worker whose parent is not: the zygote
# (_zygote.py) sets it in the workers it forks.
PARENT_PID = None

# Set by the zygote in the workers it forks: called with the preparation
# data, a context manager that _prepare enters around multiprocessing's
# prepare (it hands runpy the main script the zygote compiled already).
PREPARING = None

# The code a supervisor passes to `python -c` to run this file by path.
WORKER_COMMAND = ("import importlib.util as u, sys; "
                  "s = u.spec_from_file_location('gofutures_worker', sys.argv[1]); "
                  "m = u.module_from_spec(s); s.loader.exec_module(m); sys.exit(m.main())")


def write_frame(f, kind, task_id, data=b""):
    f.write(_HEAD.pack(9 + len(data), kind, task_id) + data)
    f.flush()


def read_frame(f):
    """Returns (kind, task_id, data), or None at the end of the stream."""
    head = f.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return None
    length, kind, task_id = _HEAD.unpack(head)
    data = f.read(length - 9)
    if len(data) < length - 9:
        return None
    return kind, task_id, data


def _dumps(obj):
    """Pickle a result or an exception for the parent. Plain pickle sends
    classes by name; a class that came here by value (defined in a notebook
    or a function) has no name to import, so cloudpickle sends it back by
    value, and the parent gets its own class again (cloudpickle tracks
    classes it sent by an id)."""
    try:
        return pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        try:
            import cloudpickle
            return cloudpickle.dumps(obj)
        except Exception:
            raise exc from None


def _send_error(out, task_id, exc):
    from concurrent.futures.process import _ExceptionWithTraceback
    try:
        data = _dumps(_ExceptionWithTraceback(exc, exc.__traceback__))
    except Exception as pickling_error:  # the exception itself cannot be pickled
        text = "".join(traceback.format_exception(exc))
        substitute = RuntimeError("%s (the original exception could not be pickled: %s)"
                                  % (text.strip().splitlines()[-1], pickling_error))
        data = pickle.dumps(_ExceptionWithTraceback(substitute, exc.__traceback__))
    write_frame(out, ERROR, task_id, data)


def _unpickling_failed(exc):
    # The stdlib's worker dies of this, breaking the pool; here only this
    # call fails, with the stdlib's exception type (the parent sees the
    # unpickling error in the remote traceback attached as its cause).
    from concurrent.futures.process import BrokenProcessPool
    broken = BrokenProcessPool("the worker could not unpickle this call: %s: %s"
                               % (type(exc).__name__, exc))
    broken.__cause__ = exc
    broken.__traceback__ = exc.__traceback__
    return broken


def _prepare(preparation):
    """Make the parent's modules importable, as multiprocessing's spawn does:
    same sys.path and working directory, and the parent's main script loaded
    as __mp_main__ so that its functions unpickle by reference.

    While the main script loads, the process counts as bootstrapping (as a
    spawned child does), so a script without an `if __name__ ==
    "__main__":` guard that starts a pool at import fails with
    multiprocessing's own explanation instead of starting workers of
    workers."""
    import multiprocessing.process
    import multiprocessing.spawn
    me = multiprocessing.process.current_process()
    me._inheriting = True
    try:
        with (PREPARING or contextlib.nullcontext)(preparation):
            multiprocessing.spawn.prepare(preparation)
    finally:
        me._inheriting = False


def _become_pool_process(start_method):
    """Make multiprocessing.current_process() in this worker what it is in
    the stdlib's pool workers: a ForkProcess, SpawnProcess or
    ForkServerProcess named after its number, whose parent is the pool's
    process."""
    import multiprocessing
    import multiprocessing.process as mp_process
    cls = multiprocessing.get_context(start_method).Process
    me = cls(name="%s-%s" % (cls.__name__, os.environ.get("GOFUTURES_WORKER", "1")))
    me._parent_pid = PARENT_PID or os.getppid()
    me._parent_name = "MainProcess"
    mp_process._current_process = me


def main():
    tasks = os.fdopen(3, "rb")
    out = os.fdopen(4, "wb")
    frame = read_frame(tasks)
    if frame is None or frame[0] != INIT:
        return 1
    # Two pickles, as multiprocessing's spawn sends: how to prepare this
    # process (sys.path, __main__), then what may need that preparation to
    # load (the initializer, its arguments).
    payload = io.BytesIO(frame[2])
    try:
        _prepare(pickle.load(payload))
        init = pickle.load(payload)
        _become_pool_process(init["start_method"])
    except BaseException:
        text = traceback.format_exc()
        write_frame(out, ERROR, 0, ("worker set-up failed: " + text).encode())
        return 1
    try:
        if init.get("initializer") is not None:
            init["initializer"](*init.get("initargs", ()))
    except BaseException:
        text = traceback.format_exc()
        # Where the stdlib's workers report it, for handlers the initializer
        # may have installed (a QueueHandler to the parent, say).
        logging.getLogger("concurrent.futures").critical("Exception in initializer:", exc_info=True)
        write_frame(out, ERROR, 0, ("initializer failed: " + text).encode())
        return 1
    write_frame(out, READY, 0)
    while True:
        frame = read_frame(tasks)
        if frame is None or frame[0] == EXIT:
            return 0
        kind, task_id, data = frame
        try:
            fn, args, kwargs, chunked = pickle.loads(data)
        except BaseException as exc:
            _send_error(out, task_id, _unpickling_failed(exc))
            continue
        try:
            if chunked:  # a map chunk: args holds one argument tuple per call
                result = [fn(*call) for call in args]
            else:
                result = fn(*args, **(kwargs or {}))
            del fn, args, kwargs
        except BaseException as exc:
            _send_error(out, task_id, exc)
            continue
        try:
            payload = _dumps(result)
        except BaseException as exc:
            _send_error(out, task_id, exc)
            continue
        del result
        write_frame(out, RESULT, task_id, payload)


if __name__ == "__main__":
    sys.exit(main())
