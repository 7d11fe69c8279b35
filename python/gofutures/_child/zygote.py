"""The zygote: a helper process that forks process-pool workers on request.

Starting a worker by exec costs a fresh interpreter and the worker's
imports (pickle, logging, multiprocessing, concurrent.futures.process,
cloudpickle: most of a worker's start). The parent cannot fork instead: it
holds a Go runtime, which a forked child cannot use. This helper can: it is
started once per parent process by exec, loads this file and worker.py by
path (_childstart.ZYGOTE_COMMAND: never the gofutures package, so never the
Go runtime), imports what
workers need, and then forks a worker whenever the parent asks. Each
worker still does its per-pool set-up itself, as an exec'd one does (the
parent's sys.path and working directory, its main script re-imported as
__mp_main__, the initializer): only the interpreter start and the imports
are shared.

The Go side (gofutures/zygote.go) speaks to it over a unix stream socket
on fd 3; the protocol is described there (tests/test_zygote_protocol.py
checks this file against it). The helper reports each child it
reaps ("exited <pid> <status>") since the parent cannot wait for them. It
exits when the socket reaches EOF (the parent is gone), killing the
children it still has, so neither it nor its workers outlive the parent.

Like worker.py, this file imports nothing from gofutures (see
_child/__init__.py; it loads the package's generated _constants.py by
path); what it readies for each pool comes with the fork requests, built in
the parent by _childstart.preparation.
"""

import contextlib
import importlib.util
import io
import json
import marshal
import os
import signal
import socket
import struct
import sys
import warnings

# SIGINT as this process got it from the parent (at exec: Python's
# handler, or ignored if the parent ignores it), which its workers restore.
_SIGINT_AT_START = signal.getsignal(signal.SIGINT)

_LEN = struct.Struct(">I")


def load(name, path):
    """Runs the module at path as sys.modules[name] (the worker, given by
    path in ZYGOTE_COMMAND)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


# At most this many descriptors per request (gofutures/constants.go: ZygoteMaxFDs).
_CONSTANTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_constants.py")
_MAX_FDS = load("gofutures_constants", _CONSTANTS).ZYGOTE_MAX_FDS


def _preimport():
    # What a worker imports on its way to its first task; whatever is
    # missing is simply imported by the worker itself.
    import concurrent.futures.process  # noqa: F401  (multiprocessing, queue, threading...)
    import logging  # noqa: F401
    import multiprocessing.process
    import multiprocessing.spawn  # noqa: F401
    import pickle  # noqa: F401
    import pkgutil  # noqa: F401  (runpy.run_path imports it on each call)
    import runpy  # noqa: F401  (spawn.prepare runs the main script with it)
    import traceback  # noqa: F401

    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        pass


class _Prepared:
    """What the helper readied for its workers: imports, and the parent's
    main script compiled (which every worker would otherwise compile from
    source: runpy.run_path keeps no .pyc)."""

    def __init__(self):
        self._tried = set()  # module names imported or tried
        # (path, source, marshalled code) of the last main script compiled
        self._main = None

    def update(self, data):
        """Readies what request data's "prepare" object names; whatever
        fails is left to the workers."""
        _preload(data.get("preload") or (), self._tried)
        package = data.get("package")
        if package and package[0] not in self._tried:
            self._tried.add(package[0])
            _preload_package(*package)
        main = data.get("main")
        if isinstance(main, str):
            self._compile_main(main)

    def _compile_main(self, path):
        # Compiled exactly as runpy's _get_code_from_file would in the
        # worker (same file reading, same filename), and again whenever
        # the source changed (compared whole: a script edited between two
        # pools must run as edited).
        if not os.path.isabs(path):
            return
        try:
            with io.open_code(path) as f:
                source = f.read()
        except OSError:
            self._main = None
            return
        if self._main is not None and self._main[:2] == (path, source):
            return
        self._main = None
        if source[:4] == importlib.util.MAGIC_NUMBER:
            return  # a compiled file: runpy loads it as such (pkgutil.read_code)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                code = compile(source, path, "exec")
        except BaseException:  # a syntax error: the worker reports it, as without this
            return
        if not caught:  # else each worker compiles it, and warns, as without this
            self._main = (path, source, marshal.dumps(code))

    def serve_main(self, preparation):
        """A context manager for a forked worker's preparation (the worker's
        PREPARING): while it is entered, runpy gets the main script compiled
        here instead of compiling it again, if the preparation runs that
        same script.

        The worker loads its own copy of the code (as from a .pyc): on 3.11,
        functions whose code object stayed in the memory it shares with
        the helper ran ~10% slower in a CPU-bound loop (measured: 16 tasks
        of a 200k-iteration loop, 2 workers, 0.122 s against 0.111 s),
        and loading costs far less than compiling."""
        if self._main is None or preparation.get("init_main_from_path") != self._main[0]:
            return contextlib.nullcontext()
        return _compiled_main(self._main[0], marshal.loads(self._main[2]))


@contextlib.contextmanager
def _compiled_main(path, code):
    """Makes runpy.run_path(path) use code in place of compiling path: its
    private _get_code_from_file(fname) returns code (3.12+; 3.15 adds an
    argument, the module name given to compile(), which changes nothing for
    code compiled without warnings), or _get_code_from_file(run_name, fname)
    returns (code, fname) (3.11). Any other signature: runpy is left alone."""
    import runpy

    original = getattr(runpy, "_get_code_from_file", None)
    argnames = getattr(getattr(original, "__code__", None), "co_varnames", ())[:2]
    if argnames[:1] == ("fname",):

        def get_code(fname, *rest):
            return code if fname == path else original(fname, *rest)
    elif argnames == ("run_name", "fname"):

        def get_code(run_name, fname):
            return (code, fname) if fname == path else original(run_name, fname)
    else:
        yield
        return
    runpy._get_code_from_file = get_code
    try:
        yield
    finally:
        runpy._get_code_from_file = original


def _preload_package(name, init_file):
    """Imports package name (gofutures), but only from init_file, where the
    parent has it: a worker's imports must find what the parent's find.
    Only its __init__ and what that imports eagerly, all pure Python (the
    native library loads on first use of a name backed by it, never here)."""
    import importlib.machinery

    try:
        spec = importlib.machinery.PathFinder.find_spec(name)
        if spec is not None and spec.origin == init_file:
            _preload([name], set())
    except BaseException:
        pass


def _preload(names, tried):
    for name in names:
        if name in tried or name in sys.modules:
            continue
        tried.add(name)
        try:
            with warnings.catch_warnings():  # the worker's own import warns, if it must
                warnings.simplefilter("ignore")
                __import__(name)
        except BaseException:  # any failure: the worker imports it itself, if it must
            pass


def main(worker):
    """Serves requests until EOF; returns 0 there. A forked child never
    returns: it runs the worker and exits (_run_worker)."""
    # Descriptors the parent left inheritable would otherwise stay open in
    # this long-lived process (a pipe whose reader then never sees EOF).
    os.closerange(4, _max_fd())
    _preimport()
    worker.PARENT_PID = os.getppid()  # the pool's process, which exec'd this one
    sock = socket.socket(fileno=3)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    # A SIGCHLD wakes select through the pipe; the handler itself does
    # nothing (reaping happens in the loop).
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w)
    # Ctrl-C reaches the whole process group: the parent and its workers
    # decide what it means, the helper must survive it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children = {}  # pid: whether its exit was reported
    prepared = _Prepared()
    requests = _Requests(sock)
    import select

    while True:
        readable, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in readable:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        _report_exits(children, sock)
        if sock not in readable:
            continue
        if not requests.read():
            break
        while True:
            data = requests.next()
            if data is None:
                break
            if "reap" in data:
                _release(children, data["reap"])
                _send(sock, b"reaped %d\n" % data["reap"])
                continue
            fds = requests.take_fds()
            prepared.update(data.get("prepare") or {})
            if _fork(fds, children, sock) == 0:
                worker.PREPARING = prepared.serve_main
                _become_worker(sock, (wake_r, wake_w), data, fds, worker.__file__)
                _run_worker(worker)
    # The parent is gone: so must be its workers (an exec'd worker would see
    # its task pipe close only once its task ends).
    for pid, reported in children.items():
        if not reported:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    sock.close()  # not left to the collector: a ResourceWarning (debug builds, -X dev) on stderr
    return 0


def _report_exits(children, sock):
    """Reports the children that ended since the last call, leaving them
    zombies (WNOWAIT): the parent releases each ({"reap": pid}, answered
    "reaped <pid>") before it forgets the worker, so that the pid is not
    reused meanwhile."""
    for pid, reported in list(children.items()):
        if reported:
            continue
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            del children[pid]
            continue
        if info is None:
            continue
        children[pid] = True
        if info.si_code == os.CLD_EXITED:
            code, sig = info.si_status, 0
        else:  # killed, or dumped core
            code, sig = -1, info.si_status
        _send(sock, b"exited %d %d %d\n" % (pid, code, sig))


def _release(children, pid):
    if pid in children:
        del children[pid]
        try:
            os.waitpid(pid, 0)  # a zombie by now: returns at once
        except ChildProcessError:
            pass


class _Requests:
    """The parent's requests: length-prefixed JSON. A request may arrive in
    pieces or together with the next one (a release sent while a fork
    request is in flight). The descriptors all belong to the fork request:
    only one is in flight at a time, and they arrive with its first byte."""

    def __init__(self, sock):
        self._sock = sock
        self._buf = b""
        self._fds = []

    def read(self):
        """Reads what arrived; False at EOF."""
        try:
            msg, fds, _, _ = socket.recv_fds(self._sock, 1 << 16, _MAX_FDS)
        except OSError:
            return False
        self._fds.extend(fds)
        self._buf += msg
        return bool(msg)

    def next(self):
        """The next complete request, decoded, or None."""
        if len(self._buf) < _LEN.size:
            return None
        (length,) = _LEN.unpack_from(self._buf)
        end = _LEN.size + length
        if len(self._buf) < end:
            return None
        data = json.loads(self._buf[_LEN.size : end])
        self._buf = self._buf[end:]
        return data

    def take_fds(self):
        fds, self._fds = self._fds, []
        return fds


def _fork(fds, children, sock):
    """Forks a worker; returns 0 in the child (fds then still open, for
    _become_worker), the pid or -1 in the helper (fds closed)."""
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        _send(sock, b"failed " + str(exc).replace("\n", " ").encode() + b"\n")
        return -1
    if pid == 0:
        # Let the helper answer before this child takes the CPU: the parent
        # sends its next request (the pool's next worker) only once it has
        # the answer, and with few cores the child otherwise often runs
        # first (2-3 ms). Measured: start to first result of a 2-worker
        # pool ~0.5 ms shorter on 2 cores.
        os.sched_yield()
        return 0
    for fd in fds:
        os.close(fd)
    children[pid] = False
    _send(sock, b"forked %d\n" % pid)
    return pid


def _send(sock, line):
    try:
        sock.sendall(line)
    except OSError:
        pass  # the parent is gone; EOF ends the loop


def _become_worker(sock, wake, data, fds, worker_path):
    """In the forked child: undo the helper's own set-up and give the
    process what an exec'd worker gets (stdout and stderr, fds 3, 4, 5, ...,
    environment, working directory, argv, signal dispositions)."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, _SIGINT_AT_START)
    sock.close()
    for fd in wake:
        os.close(fd)
    # Move the received descriptors above every target number first, so
    # that placing one never overwrites another not yet placed.
    targets = [1, 2] + list(range(3, 3 + len(fds) - 2))
    floor = max(fds + targets) + 1
    high = []
    for fd in fds:
        high.append(_dup_above(fd, floor))
        os.close(fd)
    for fd, target in zip(high, targets, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.closerange(3 + len(fds) - 2, _max_fd())
    _set_environ(data["env"])
    if data.get("cwd"):
        try:
            os.chdir(data["cwd"])
        except OSError:
            pass  # the worker's preparation sets the parent's directory again
    sys.argv = ["-c", worker_path]
    _fresh_stdio()


def _set_environ(entries):
    """Makes the environment entries ("NAME=value"), changing only what
    differs: mostly one variable (GOFUTURES_WORKER), since the helper
    started with the parent's environment. Clearing and rebuilding it whole
    cost ~1 ms of each worker's start (measured), most of it page faults."""
    wanted = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        if sep and name:
            wanted[name] = value
    for name in [name for name in os.environ if name not in wanted]:
        del os.environ[name]
    for name, value in wanted.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _run_worker(worker):
    """Runs the worker's main loop and exits as an exec'd worker would
    (uncaught exception printed, non-daemon threads joined, atexit handlers
    run, stdio flushed) but without the interpreter's finalization: in a
    forked child, tearing down every object copies the pages it shares with
    the helper, which costs 40-100 ms per worker (measured), for nothing.
    multiprocessing's fork-started processes end the same way (os._exit)."""
    interrupted = False
    try:
        code = worker.main()
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        sys.excepthook(type(exc), exc, exc.__traceback__)
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        import threading

        threading._shutdown()
    except BaseException:
        pass
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    if interrupted:  # as the interpreter does: die of the SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code & 0xFF)


def _dup_above(fd, floor):
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)


def _max_fd():
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 1 << 16


def _fresh_stdio():
    # The helper's sys.stdout and sys.stderr were set up for what fds 1 and
    # 2 were when it started; make them as an interpreter starting now
    # would (line-buffered on a terminal, unbuffered with PYTHONUNBUFFERED).
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        if old is None:
            continue
        try:
            old.flush()
        except (OSError, ValueError):
            pass
        import io

        raw = io.FileIO(fd, "w", closefd=False)
        buffered = raw if unbuffered else io.BufferedWriter(raw)
        new = io.TextIOWrapper(
            buffered,
            encoding=old.encoding,
            errors=old.errors,
            line_buffering=(fd == 2 or os.isatty(fd)) and not unbuffered,
            write_through=unbuffered,
        )
        setattr(sys, name, new)
        setattr(sys, "__%s__" % name, new)
