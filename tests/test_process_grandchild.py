"""A task that leaves a process running (a shell's `sleep 15 &`, a Popen it
never waits for, a forked child, a daemon) must not hide its worker's death:
the pool sees the worker die from the process itself, while the grandchild
still runs, and the grandchild does not get the worker's pipes.

Each test checks, as behaviour, that the pool reported the death before the
grandchild exited (the grandchild is alive when the error arrives); before
the fix, the death was seen only when the grandchild closed the pipes.

Everything the workers unpickle lives at module level here: workers import
this module by name (tests/ is on the sys.path they inherit).
"""

import multiprocessing
import os
import signal
import subprocess
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

import gofutures

TIMEOUT = 60  # a failure guard: far past the grandchildren's 15 s
LIFE = 15  # how long a grandchild lives


# ------------------------------------------- tasks that leave a process


def _by_system(pidfile):
    os.system("sleep %d & echo $! > %s" % (LIFE, pidfile))
    return int(open(pidfile).read())


def _by_popen(pidfile):
    return subprocess.Popen(["sleep", str(LIFE)], close_fds=False).pid


def _by_fork(pidfile):
    # A forked child keeps every descriptor, close-on-exec or not.
    pid = os.fork()
    if pid == 0:
        time.sleep(LIFE)
        os._exit(0)
    return pid


def _by_daemon(pidfile):
    # The classic double fork: the grandchild belongs to no one here.
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            with open(pidfile + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(pidfile + ".tmp", pidfile)
            time.sleep(LIFE)
        os._exit(0)
    os.waitpid(pid, 0)
    while not os.path.exists(pidfile):
        time.sleep(0.01)
    return int(open(pidfile).read())


LEAVERS = {"system": _by_system, "popen": _by_popen, "fork": _by_fork, "daemon": _by_daemon}


def leave_and_report(how, pidfile):
    """Leaves a process running; returns (worker pid, its pid)."""
    return os.getpid(), LEAVERS[how](pidfile)


def die():
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)


def hang():
    time.sleep(60)


def _inheritable(fd):
    try:
        return os.get_inheritable(fd)
    except OSError:  # the directory listing's own descriptor, closed since
        return False


def open_descriptors(pid):
    """The descriptors of pid once it runs `sleep` (before its exec it still
    has those of the forked Python)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if f.read().startswith(b"sleep\0"):
                break
        assert time.monotonic() < deadline, "the grandchild never ran sleep"
        time.sleep(0.01)
    # Once it is asleep: sleep's own start-up opens a descriptor for a
    # moment (setlocale reads the locale archive on fd 3, then closes it).
    while not _asleep(pid):
        assert time.monotonic() < deadline, "the grandchild never went to sleep"
        time.sleep(0.01)
    return sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))


def _asleep(pid):
    with open("/proc/%d/wchan" % pid) as f:
        return "nanosleep" in f.read()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(params=["zygote", "exec", "fork"])
def start(request, monkeypatch):
    """The mp_context for each way workers start: forked by the zygote (a
    spawn pool), by exec (a spawn pool without the zygote), or forked from
    this process (a fork pool)."""
    if request.param == "exec":
        monkeypatch.setenv("GOFUTURES_ZYGOTE", "0")
    else:
        monkeypatch.delenv("GOFUTURES_ZYGOTE", raising=False)
    return multiprocessing.get_context("fork" if request.param == "fork" else "spawn")


@pytest.fixture
def grandchildren(tmp_path):
    """Runs a leaver in a pool's worker; kills every grandchild at teardown."""
    pids = []

    def leave(ex, how):
        pidfile = str(tmp_path / ("grandchild-%d" % len(pids)))
        worker, pid = ex.submit(leave_and_report, how, pidfile).result(timeout=TIMEOUT)
        pids.append(pid)
        return worker, pid

    yield leave
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def alive(pid):
    """Whether pid still runs (a zombie nobody reaped does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# ------------------------------------------------------------------- tests


@pytest.mark.parametrize("how", sorted(LEAVERS))
def test_a_killed_worker_breaks_the_pool_while_its_grandchild_runs(start, grandchildren, how):
    with gofutures.ProcessPoolExecutor(1, mp_context=start) as ex:
        worker, grandchild = grandchildren(ex, how)
        future = ex.submit(die)
        with pytest.raises(BrokenProcessPool) as info:
            future.result(timeout=TIMEOUT)
        assert alive(grandchild), "the death was seen only once the grandchild exited"
        assert str(worker) in str(info.value) and "signal 9" in str(info.value)


def test_a_worker_killed_from_outside_is_seen_while_its_grandchild_runs(start, grandchildren):
    with gofutures.ProcessPoolExecutor(1, mp_context=start) as ex:
        worker, grandchild = grandchildren(ex, "fork")
        future = ex.submit(hang)
        time.sleep(0.2)  # not needed for the outcome: the call may be queued or running
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            future.result(timeout=TIMEOUT)
        assert alive(grandchild)


@pytest.mark.parametrize("how", ["system", "fork"])
def test_survive_replaces_the_worker_while_its_grandchild_runs(start, grandchildren, how):
    with gofutures.ProcessPoolExecutor(1, mp_context=start, survive=True) as ex:
        worker, grandchild = grandchildren(ex, how)
        with pytest.raises(gofutures.WorkerDiedError) as info:
            ex.submit(die).result(timeout=TIMEOUT)
        assert alive(grandchild)
        assert info.value.pid == worker
        assert ex.submit(os.getpid).result(timeout=TIMEOUT) != worker


@pytest.mark.parametrize("how", ["system", "fork"])
def test_task_timeout_fires_while_a_grandchild_holds_the_pipes(start, grandchildren, how):
    # A limit above what the first call takes on a loaded machine (it
    # imports this module, and pytest with it, in the worker).
    with gofutures.ProcessPoolExecutor(1, mp_context=start, task_timeout=3) as ex:
        worker, grandchild = grandchildren(ex, how)
        with pytest.raises(gofutures.TaskTimeoutError):
            ex.submit(hang).result(timeout=TIMEOUT)
        assert alive(grandchild)
        assert ex.submit(os.getpid).result(timeout=TIMEOUT) != worker


@pytest.mark.parametrize("how", ["system", "popen"])
def test_what_a_task_starts_does_not_get_the_workers_descriptors(start, grandchildren, how):
    # A fork worker passes on what this process left inheritable, as the
    # stdlib's fork workers do; never the worker's own pipes.
    inherited = [
        fd
        for fd in map(int, os.listdir("/proc/self/fd"))
        if start.get_start_method() == "fork" and fd > 2 and _inheritable(fd)
    ]
    with gofutures.ProcessPoolExecutor(1, mp_context=start) as ex:
        _, grandchild = grandchildren(ex, how)
        assert open_descriptors(grandchild) == sorted([0, 1, 2] + inherited)
