"""A process-pool worker: plain Python, no Go runtime. The zygote
(zygote.py) forks it and calls main(), or the Go supervisor starts it by
exec of the parent's interpreter, loading this file by path
(_childstart.WORKER_COMMAND); either way the gofutures package, and with it the
Go runtime, is never imported here. A pool with the 'fork' start method
forks the pool's own process instead and calls run_forked() in the child,
which has the Go runtime mapped but never calls into it. It gets the task pipe on fd 3 and
the result pipe on fd 4 (stdout and stderr are the parent's). It runs one
task at a time, in the order sent (handing back those sent behind a task
that runs long: _TaskPipe), and exits when fd 3 closes (the parent is gone
or asked it to), so no worker outlives its pool.

This file imports nothing from gofutures for that reason (see
_child/__init__.py); it speaks the frame format of gofutures/wire.go
itself, with the constants it loads by path from the package's
_constants.py (generated from the Go core).
"""

import collections
import contextlib
import importlib.util
import io
import logging
import os
import pickle
import select
import struct
import threading
import time
import traceback


def _load_sibling(name):
    """The package's module name (a plain-Python one that imports nothing of
    the package), loaded by path."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # _child's parent
    path = os.path.join(package, name + ".py")
    spec = importlib.util.spec_from_file_location("gofutures_child" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_constants = _load_sibling("_constants")
# Big calls and answers travel in shared memory (gofutures/_bigpayload.py).
_big = _load_sibling("_bigpayload")
# Frame kinds (gofutures/wire.go).
INIT, TASK, RESULT = _constants.FRAME_INIT, _constants.FRAME_TASK, _constants.FRAME_RESULT
ERROR, READY = _constants.FRAME_ERROR, _constants.FRAME_READY
EXIT, HANDBACK, ACK = _constants.FRAME_EXIT, _constants.FRAME_HAND_BACK, _constants.FRAME_ACK
_HEAD = struct.Struct(">IBQ")  # length of what follows, kind, task id
_ID = struct.Struct(">Q")

# A task that has run this long (seconds) hands back the tasks sent behind
# it (pipelining), so that another worker can run them.
HAND_BACK_AFTER = _constants.HAND_BACK_AFTER
PIPELINE_BUDGET = _constants.PIPELINE_BUDGET

# The pool's process, for a worker whose parent is not: the zygote
# (zygote.py) sets it in the workers it forks.
PARENT_PID = None

# Set by the zygote in the workers it forks: called with the preparation
# data, a context manager that _prepare enters around multiprocessing's
# prepare (it hands runpy the main script the zygote compiled already).
PREPARING = None


def write_frame(f, kind, task_id, data=b""):
    f.write(_HEAD.pack(9 + len(data), kind, task_id) + data)
    f.flush()


class _TaskPipe:
    """The task pipe (fd 3), read frame by frame, and the answers written to
    the result pipe (out).

    The supervisor may send a task before the one this worker runs is
    answered (pipelining, gofutures/procpipeline.go): such tasks wait here,
    parsed, or still in the pipe. If the running task takes longer (see
    HAND_BACK_AFTER), a watchdog thread (started the first time a task runs
    with others waiting behind it) hands them back (a HANDBACK frame with
    their ids), and the supervisor gives them to another worker. A task
    that ended after more than PIPELINE_BUDGET shows that those behind it
    were sent on a wrong guess (they were thought short): answer() hands
    them back at once but the next one, so that a batch of tasks that each
    end before HAND_BACK_AFTER does not queue up here while another worker
    is free. The watchdog wakes once per running task's deadline, not on a
    tick, and sleeps without waking while no task runs: each wake takes the
    GIL from the task (a tick of 10 ms made CPU-bound tasks 2-3% slower),
    and an idle worker should not wake at all.

    Who gets a waiting task is decided by the deque alone: the main thread
    takes from the left, the watchdog from the right, each pop atomic, so a
    task is either started here or handed back, never both. The pipe is
    read under read_lock (by the main thread when nothing waits, by the
    watchdog during a task); the answers and the watchdog's frames go
    through out's own lock, one whole frame per write."""

    def __init__(self, fd, out):
        self._fd = fd
        self._out = out
        # Bytes read and not yet parsed into frames (the start of a frame
        # not complete yet). A bytearray, appended to and trimmed in place:
        # a frame of many megabytes arrives in many reads, and rebuilding
        # its start on each one made receiving it quadratic.
        self._buf = bytearray()
        self._frames = collections.deque()  # (kind, task_id, data), not taken yet
        self._running = False  # a task runs (between next() and answer())
        self._count = 0  # tasks started: the watchdog sees one that does not end
        self._started = 0.0  # when the running task started (time.monotonic)
        self._watchdog = None
        # The watchdog sets parked, then looks at _running, then waits for
        # unparked; next() sets _running, then looks at parked: one of the
        # two sees the other's write, so a task never starts unwatched.
        self._parked = False
        self._unparked = threading.Event()
        self.read_lock = threading.Lock()

    def next(self):
        """The next frame, or None at the end of the stream."""
        frames = self._frames
        while True:
            try:
                frame = frames.popleft()
            except IndexError:
                with self.read_lock:
                    if frames:  # the watchdog read them meanwhile
                        continue
                    chunk = os.read(self._fd, self._read_size())
                    if not chunk:
                        return None
                    self._take(chunk)
                continue
            if frame[0] == TASK:
                self._started = time.monotonic()
                self._count += 1
                self._running = True
                if self._parked:
                    self._unparked.set()
                if frames and self._watchdog is None:  # others wait behind it
                    self._watchdog = threading.Thread(target=self._watch, name="gofutures-handback", daemon=True)
                    self._watchdog.start()
            return frame

    def take_acks(self):
        """Reads what the supervisor sent meanwhile, without waiting, so
        that its ACKs of earlier answers are seen (their memory can then
        take the next big one, _big.spare). Tasks read are kept for next()."""
        if not self.read_lock.acquire(blocking=False):
            return  # the watchdog reads: it takes them
        try:
            while select.select([self._fd], [], [], 0)[0]:
                chunk = os.read(self._fd, 1 << 16)
                if not chunk:
                    break
                self._take(chunk)
        finally:
            self.read_lock.release()

    def answer(self, kind, task_id, data):
        self._running = False
        write_frame(self._out, kind, task_id, data)
        if time.monotonic() - self._started > PIPELINE_BUDGET:
            # After the answer: the supervisor, reading it first, knows
            # the task was long and pipelines no more, so it sends this
            # worker nothing new for the one task it keeps.
            self._hand_back(keep=1)

    def _hand_back(self, keep):
        """Hands back the tasks waiting here but the first keep; returns
        whether there were any. Safe beside the other thread's next() or
        _hand_back: each pop is atomic (a race can only hand back one task
        more than keep asked, which the supervisor gives to a free worker)."""
        self.take_acks()  # and whatever else was sent: waiting too
        frames = self._frames
        ids = []
        while len(frames) > keep:
            try:
                frame = frames.pop()
            except IndexError:
                break
            if frame[0] != TASK:  # an EXIT: it stays last
                frames.append(frame)
                break
            ids.append(frame[1])
        if ids:
            ids.reverse()
            write_frame(self._out, HANDBACK, 0, b"".join(_ID.pack(i) for i in ids))
        return bool(ids)

    def _read_size(self):
        """How much to read next: 64 KiB, or what the frame begun in _buf
        still lacks (up to 16 MiB a read), so that a big frame takes few
        reads."""
        buf = self._buf
        if len(buf) < 4:
            return 1 << 16
        need = 4 + _HEAD.unpack_from(buf, 0)[0] - len(buf)
        return min(max(need, 1 << 16), 1 << 24)

    def _take(self, chunk):
        buf = self._buf
        if not buf:
            # The common case, nothing left over: frames are cut from the
            # chunk itself; only an incomplete last one is kept.
            start = self._split(chunk, chunk)
            buf += memoryview(chunk)[start:]
            return
        buf += chunk
        with memoryview(buf) as view:  # released before buf is trimmed
            start = self._split(buf, view)
        del buf[:start]

    def _split(self, data, view):
        """Appends the complete frames at the start of data (view: the same
        bytes, sliced for each frame's data) to _frames; returns where the
        first incomplete one starts. An ACK is done at once, not queued
        (the supervisor mapped an answer: its descriptor can go)."""
        size, start = len(data), 0
        unpack, append = _HEAD.unpack_from, self._frames.append
        while size - start >= 13:  # _HEAD.size
            length, kind, task_id = unpack(data, start)
            end = start + 4 + length
            if end > size:
                break
            if kind == ACK:
                _big.release(task_id)
            else:
                append((kind, task_id, bytes(view[start + 13 : end])))
            start = end
        return start

    def _watch(self):
        # The task looked at last, and when to look (again) while it runs;
        # None: not again (nothing more can come behind it).
        watched, due = None, 0.0
        while True:
            self._parked = True
            # One wait, not a loop until a task runs: a worker of short
            # tasks would be woken by each of them (next() sets the event
            # while the watchdog is parked); this one then sleeps until the
            # task it found has run HAND_BACK_AFTER, whatever runs by then.
            if not self._running or (due is None and self._count == watched):
                self._unparked.wait()
                self._unparked.clear()
            self._parked = False
            count = self._count  # read before _started, which next() writes first
            if count != watched:
                watched, due = count, self._started + HAND_BACK_AFTER
            elif due is None:
                continue  # a stale wake-up: still the task looked at last
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
                continue  # the task may have ended meanwhile
            if not self._running:
                continue  # it has (a stale wake-up, or it ended just now)
            # The same task has run for HAND_BACK_AFTER at least.
            handed = self._hand_back(keep=0)
            # The supervisor sends a worker nothing more while it runs a task
            # (the pool feeds a worker when it answers), but what it sent
            # before it read the hand-back may still be on its way: one more
            # look, and more only while frames keep coming.
            due = due + HAND_BACK_AFTER / 2 if handed or self._buf else None


# The task pipe's take_acks, once the worker serves (_serve).
_TAKE_ACKS = None


def _dumps(obj):
    """Pickle a result or an exception for the parent: the payload of its
    frame, the pickle itself or, for a big one, a reference to the shared
    memory that holds it (kept open until the supervisor's ACK). Plain
    pickle sends classes by name; a class that came here by value (defined
    in a notebook or a function) has no name to import, so cloudpickle
    sends it back by value, and the parent gets its own class again
    (cloudpickle tracks classes it sent by an id)."""
    if _big.scalars((obj,)):  # a plain number or short string: the fast way
        return pickle.dumps(obj, 5)
    try:
        pickled = _big.dump(obj)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        try:
            import cloudpickle

            pickled = _big.dump(obj, cloudpickle.Pickler)
        except Exception:
            raise exc from None
    if not pickled.big():
        return pickled.joined()
    if _TAKE_ACKS is not None:
        _TAKE_ACKS()
    data, fd = _big.encode(pickled, reuse=_big.spare())
    _big.answered(fd)
    return data


def _error(exc):
    """The ERROR payload for exc."""
    from concurrent.futures.process import _ExceptionWithTraceback

    try:
        data = _dumps(_ExceptionWithTraceback(exc, exc.__traceback__))
    except Exception as pickling_error:  # the exception itself cannot be pickled
        text = "".join(traceback.format_exception(exc))
        substitute = RuntimeError(
            "%s (the original exception could not be pickled: %s)" % (text.strip().splitlines()[-1], pickling_error)
        )
        data = pickle.dumps(_ExceptionWithTraceback(substitute, exc.__traceback__))
    return data


def _unpickling_failed(exc):
    # The stdlib's worker dies of this, breaking the pool; here only this
    # call fails, with the stdlib's exception type (the parent sees the
    # unpickling error in the remote traceback attached as its cause).
    from concurrent.futures.process import BrokenProcessPool

    broken = BrokenProcessPool("the worker could not unpickle this call: %s: %s" % (type(exc).__name__, exc))
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


def _become_pool_process(start_method, number=None):
    """Make multiprocessing.current_process() in this worker what it is in
    the stdlib's pool workers: a ForkProcess, SpawnProcess or
    ForkServerProcess named after its number, whose parent is the pool's
    process."""
    import multiprocessing
    import multiprocessing.process as mp_process

    cls = multiprocessing.get_context(start_method).Process
    if number is None:
        number = os.environ.get(_constants.WORKER_NUMBER_ENV, "1")
    me = cls(name="%s-%s" % (cls.__name__, number))
    me._parent_pid = PARENT_PID or os.getppid()
    me._parent_name = "MainProcess"
    mp_process._current_process = me


def _keep_descriptors_private():
    """Makes this worker's inherited descriptors (the pipes on fds 3 and 4,
    the descriptors of multiprocessing objects in initargs on 5, 6, ...)
    close-on-exec, as Python makes every descriptor it opens (PEP 446).

    Otherwise a task that starts a program (`os.system("sleep 15 &")`,
    `subprocess.Popen(close_fds=False)`) hands it this worker's pipes.
    multiprocessing does not rely on inheritance to pass its objects on:
    spawn and forkserver children get their descriptors passed explicitly,
    fork children get them all anyway."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        fds = [3, 4]
    for fd in fds:
        if fd >= 3:
            try:
                os.set_inheritable(fd, False)
            except OSError:  # the directory listing's own descriptor, closed by now
                pass


def main():
    _keep_descriptors_private()
    # Closed on the way out, not left to the collector: that is a
    # ResourceWarning (debug builds, -X dev) in the task's stderr.
    with os.fdopen(4, "wb") as out:
        return _serve_pipes(out)


def _serve_pipes(out):
    tasks = _TaskPipe(3, out)
    frame = tasks.next()
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
    return _serve(tasks, out, init.get("initializer"), init.get("initargs", ()))


def run_forked(number, task_fd, result_fd, initializer, initargs):
    """The worker loop of a worker forked from the pool's process (the
    'fork' start method, pybind/fork.c), which exits with what this
    returns. What a spawned worker re-creates (sys.path, __main__, the
    initializer and its arguments) is inherited here as the parent had it
    when the worker started, so nothing is unpickled before the tasks."""
    try:
        try:
            _after_fork(number)
            out = os.fdopen(result_fd, "wb")
            tasks = _TaskPipe(task_fd, out)
            frame = tasks.next()
            if frame is None or frame[0] != INIT:
                return 1
            return _serve(tasks, out, initializer, initargs)
        finally:
            # The child leaves with _exit, as multiprocessing's do, after
            # what their _bootstrap does at the end: flush the queues the
            # tasks put to (their feeder threads), join non-daemon threads.
            import multiprocessing.util as mp_util

            mp_util._exit_function()
            _end_threads()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1


def _end_threads():
    """What threading does at interpreter exit: its exit hooks (which stop
    the stdlib pools a task left running), then join the non-daemon
    threads. threading._shutdown() itself refuses when the fork was made on
    a thread threading only knows as a dummy (the main thread is then one
    without a lock), as the forker thread may be."""
    try:
        threading._shutdown()
    except AssertionError:
        for call in reversed(getattr(threading, "_threading_atexits", [])):
            call()
        me = threading.current_thread()
        for t in threading.enumerate():
            if t is not me and not t.daemon:
                t.join()


def _after_fork(number):
    """What multiprocessing does in a child it forks (Process._bootstrap),
    so that multiprocessing objects inherited through initargs or globals
    (a fork-context Queue, Lock, Event) work here as in the stdlib's fork
    workers; and faulthandler's handlers, which the fork replaced with the
    default ones where the Go runtime had its own."""
    import faulthandler
    import multiprocessing.process as mp_process
    import multiprocessing.util as mp_util

    global PARENT_PID
    PARENT_PID = os.getppid()
    _become_pool_process("fork", number)
    mp_process._children = set()
    mp_util._finalizer_registry.clear()
    mp_util._run_after_forkers()
    mp_util._close_stdin()
    if faulthandler.is_enabled():
        faulthandler.enable()


def _serve(tasks, out, initializer, initargs):
    """Runs the initializer, says READY, then runs tasks until told to
    exit; returns the exit code."""
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException:
        text = traceback.format_exc()
        # Where the stdlib's workers report it, for handlers the initializer
        # may have installed (a QueueHandler to the parent, say).
        logging.getLogger("concurrent.futures").critical("Exception in initializer:", exc_info=True)
        write_frame(out, ERROR, 0, ("initializer failed: " + text).encode())
        return 1
    write_frame(out, READY, 0)
    global _TAKE_ACKS
    _TAKE_ACKS = tasks.take_acks
    while True:
        frame = tasks.next()
        if frame is None or frame[0] == EXIT:
            return 0
        _, task_id, data = frame
        tasks.answer(*_run(task_id, data))


def _run(task_id, data):
    """Runs the task data; returns its answer (kind, task_id, payload)."""
    try:
        if _big.is_reference(data):  # a big call, in the parent's shared memory
            fn, args, kwargs, chunked = _big.read(data)
        else:
            fn, args, kwargs, chunked = pickle.loads(data)
    except MemoryError as exc:  # this call's, not the pool's
        return ERROR, task_id, _error(exc)
    except BaseException as exc:
        return ERROR, task_id, _error(_unpickling_failed(exc))
    try:
        if chunked:  # a map chunk: args holds one argument tuple per call
            result = [fn(*call) for call in args]
        else:
            result = fn(*args, **(kwargs or {}))
        del fn, args, kwargs
    except BaseException as exc:
        return ERROR, task_id, _error(exc)
    try:
        return RESULT, task_id, _dumps(result)
    except BaseException as exc:
        return ERROR, task_id, _error(exc)
