"""gofutures across fork(): forked children of a process that loaded it,
and process pools whose workers are forks of their parent.

Each scenario runs as its own script in a fresh interpreter (a fork of the
pytest process would copy pytest's own threads and state), with a time
limit: a child that hangs is a failure, never a hung test run.
"""

import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest

import gofutures

TIMEOUT = 60
FORK_IS_DEFAULT = multiprocessing.get_start_method(allow_none=False) == "fork"


def run_script(tmp_path, body, timeout=TIMEOUT):
    """Runs body as __main__ of a script; returns its stdout. Fails the test
    if it exits non-zero or does not end in time."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")  # 3.12+: fork of a multi-threaded process
    try:
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail("the script hung (%d s); output so far:\n%s\n%s" % (timeout, exc.stdout, exc.stderr))
    assert proc.returncode == 0, "exit %d\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


PRELUDE = """
import os, sys, time, multiprocessing
import gofutures

def square(x):
    return x * x

def use_gofutures_everywhere():
    with gofutures.ThreadPoolExecutor(2) as ex:
        fs = [ex.submit(square, i) for i in range(8)]
        done, not_done = gofutures.wait(fs, timeout=30)
        assert not not_done
        assert sorted(f.result() for f in gofutures.as_completed(fs, timeout=30)) == [i * i for i in range(8)]
        assert list(ex.map(square, range(5), buffersize=2)) == [0, 1, 4, 9, 16]
    f = gofutures.Future()
    f.set_result(7)
    assert f.result() == 7 and f.done()
    with gofutures.ProcessPoolExecutor(2) as ex:
        assert list(ex.map(square, range(6))) == [0, 1, 4, 9, 16, 25]
        assert ex.submit(square, 12).result(timeout=30) == 144
        assert ex.submit(bytes, 8 << 20).result(timeout=30) == bytes(8 << 20)  # in shared memory
"""


@pytest.mark.parametrize("how", ["sys.exit", "end of script", "uncaught exception"])
@pytest.mark.parametrize("child_uses", ["nothing", "gofutures", "stdlib pool"])
def test_a_child_that_exits_normally_leaves_the_parents_pools_working(tmp_path, how, child_uses):
    ending = {"sys.exit": "sys.exit(0)", "end of script": "pass", "uncaught exception": "raise SystemExit(3)"}[how]
    use = {
        "nothing": "pass",
        "gofutures": "use_gofutures_everywhere()",
        "stdlib pool": "import concurrent.futures as cf; "
        "assert cf.ProcessPoolExecutor(1).submit(square, 3).result() == 9",
    }[child_uses]
    out = run_script(
        tmp_path,
        PRELUDE
        + f"""
if __name__ == "__main__":
    procs = gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    forks = gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"))
    threads = gofutures.ThreadPoolExecutor(2)
    pids = {{f.submit(os.getpid).result(timeout=30) for f in (procs, forks)}}
    assert threads.submit(square, 2).result() == 4
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            {use}
            {ending}
            sys.exit(0)
        os.waitpid(pid, 0)
    # The same workers go on: none was told to exit by a child.
    assert procs.submit(square, 5).result(timeout=30) == 25
    assert forks.submit(square, 6).result(timeout=30) == 36
    assert threads.submit(square, 7).result(timeout=30) == 49
    assert procs.stats()["died"] == 0 and not procs._broken and not forks._broken
    print("ok")
""",
    )
    assert out.strip().endswith("ok")


@pytest.mark.parametrize("fork", ["os.fork", "multiprocessing fork context"])
def test_a_forked_child_can_use_every_part_of_gofutures(tmp_path, fork):
    if fork == "os.fork":
        start = """
    pid = os.fork()
    if pid == 0:
        use_gofutures_everywhere(); print("child ok", flush=True); os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
"""
    else:
        start = """
    def child():
        use_gofutures_everywhere(); print("child ok", flush=True)
    p = multiprocessing.get_context("fork").Process(target=child)
    p.start(); p.join(TIMEOUT)
    assert p.exitcode == 0, p.exitcode
"""
    out = run_script(
        tmp_path,
        PRELUDE
        + f"""
TIMEOUT = {TIMEOUT}
if __name__ == "__main__":
    use_gofutures_everywhere()       # the parent's Go core is busy and has threads
    keep = gofutures.ProcessPoolExecutor(2)
    assert keep.submit(square, 3).result() == 9
    # A big answer's memory is kept for the next ones while keep lives
    # (pybind/answer.c): the child, which forgets it, must still work.
    assert keep.submit(bytes, 8 << 20).result() == bytes(8 << 20)
{textwrap.indent(textwrap.dedent(start), "    ")}
    assert keep.submit(square, 4).result(timeout=30) == 16
    print("parent ok")
""",
    )
    assert out.split() == ["child", "ok", "parent", "ok"]


def test_gunicorn_style_preforked_workers_each_run_pools(tmp_path):
    out = run_script(
        tmp_path,
        PRELUDE
        + """
if __name__ == "__main__":
    from gofutures import ThreadPoolExecutor, ProcessPoolExecutor   # imported and used before the fork
    with ThreadPoolExecutor(4) as warm:
        list(warm.map(square, range(100)))
    children = []
    for n in range(4):
        pid = os.fork()
        if pid == 0:
            with ThreadPoolExecutor(4) as ex, ProcessPoolExecutor(2) as px:
                total = sum(ex.map(square, range(100))) + sum(px.map(square, range(20)))
            os.write(1, b"worker %d %d\\n" % (n, total))  # one write: whole, whatever the buffering
            sys.exit(0)
        children.append(pid)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    print("master ok")
""",
    )
    lines = sorted(out.splitlines())
    assert lines == ["master ok"] + ["worker %d %d" % (n, 328350 + 2470) for n in range(4)]


def test_what_a_child_inherited_refuses_to_work_instead_of_hanging(tmp_path):
    out = run_script(
        tmp_path,
        PRELUDE
        + """
if __name__ == "__main__":
    threads = gofutures.ThreadPoolExecutor(1)
    procs = gofutures.ProcessPoolExecutor(1)
    done = threads.submit(square, 3)
    done.result()
    pending = gofutures.Future()
    pid = os.fork()
    if pid == 0:
        for what, call in [("threads.submit", lambda: threads.submit(square, 1)),
                           ("procs.submit", lambda: procs.submit(square, 1)),
                           ("threads.shutdown", lambda: threads.shutdown()),
                           ("done.result", lambda: done.result()),
                           ("pending.result", lambda: pending.result(timeout=1)),
                           ("pending.set_result", lambda: pending.set_result(1))]:
            try:
                call()
            except RuntimeError as exc:
                assert "before it forked this process" in str(exc), exc
                print(what, "refused", flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    pending.set_result(2)
    assert pending.result() == 2 and procs.submit(square, 2).result() == 4
    print("parent ok")
""",
    )
    assert out.split("\n")[:6] == [
        w + " refused"
        for w in (
            "threads.submit",
            "procs.submit",
            "threads.shutdown",
            "done.result",
            "pending.result",
            "pending.set_result",
        )
    ]
    assert out.strip().endswith("parent ok")


@pytest.mark.parametrize("context", ["fork", "default"])
def test_fork_pool_workers_see_what_the_program_set_up_at_run_time(tmp_path, context):
    if context == "default" and not FORK_IS_DEFAULT:
        pytest.skip("the default start method here is %s" % multiprocessing.get_start_method())
    ctx = 'multiprocessing.get_context("fork")' if context == "fork" else "None"
    out = run_script(
        tmp_path,
        PRELUDE
        + f"""
DATA = []

def read_data(i):
    return DATA[i], len(DATA), type(multiprocessing.current_process()).__name__

if __name__ == "__main__":
    DATA.extend(range(100, 200))          # set up at run time, inside the main guard
    with gofutures.ProcessPoolExecutor(2, mp_context={ctx}) as ex:
        print(ex.submit(read_data, 5).result())
""",
    )
    assert out.strip() == "(105, 100, 'ForkProcess')"


def test_fork_context_multiprocessing_objects_in_initargs(tmp_path):
    out = run_script(
        tmp_path,
        PRELUDE
        + """
def init(lock, queue, event):
    global LOCK, QUEUE, EVENT
    LOCK, QUEUE, EVENT = lock, queue, event

def work(x):
    with LOCK:
        QUEUE.put(x)
    return EVENT.is_set()

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    lock, queue, event = ctx.RLock(), ctx.Queue(), ctx.Event()
    event.set()
    with gofutures.ProcessPoolExecutor(2, mp_context=ctx, initializer=init,
                                       initargs=(lock, queue, event)) as ex:
        assert all(ex.map(work, range(10)))
    print(sorted(queue.get(timeout=10) for _ in range(10)))
""",
    )
    assert out.strip() == str(list(range(10)))


def test_tqdm_process_map_with_its_defaults(tmp_path):
    pytest.importorskip("tqdm")
    out = run_script(
        tmp_path,
        """
import sys, gofutures, gofutures.process, gofutures.thread
sys.modules["concurrent.futures"] = gofutures     # what tqdm imports is gofutures
from tqdm.contrib.concurrent import process_map

def square(x):
    return x * x

if __name__ == "__main__":
    print(sum(process_map(square, range(50), disable=True)))
""",
    )
    assert out.strip() == str(sum(i * i for i in range(50)))


def test_fork_pool_workers_are_forks_and_die_with_their_parent(tmp_path):
    out = run_script(
        tmp_path,
        PRELUDE
        + """
import signal, subprocess
if __name__ == "__main__":
    if sys.argv[1:] == ["parent"]:
        ex = gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"))
        pids = {ex.submit(os.getppid).result() for _ in range(4)}
        assert pids == {os.getpid()}, pids       # children of the pool's own process
        print(*ex._worker_pids(), flush=True)
        time.sleep(60)
    parent = subprocess.Popen([sys.executable, __file__, "parent"], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2
    parent.kill(); parent.wait()
    deadline = time.monotonic() + 10
    def alive(pid):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("left:", [p for p in workers if alive(p)])
""",
    )
    assert out.strip() == "left: []"


class _GreenCondition:
    """Stands in for futurist's eventlet-aware condition: the only thread
    there is runs the pending green work while a waiter waits on it. A
    future that waited anywhere else (in Go) would never see that work."""

    def __init__(self, runnable):
        import threading

        self._lock = threading.RLock()
        self._runnable = runnable
        self.waits = 0

    def acquire(self, *args):
        return self._lock.acquire(*args)

    def release(self):
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()

    def wait(self, timeout=None):
        self.waits += 1
        self._lock.release()
        try:
            while self._runnable:
                self._runnable.pop(0)()
        finally:
            self._lock.acquire()
        return True

    def notify_all(self):
        pass

    notify = notify_all


class _GreenFuture(gofutures.Future):
    def __init__(self, runnable):
        super().__init__()
        self._condition = _GreenCondition(runnable)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("method", ["result", "exception"])
def test_a_future_whose_condition_was_replaced_waits_on_it(method):
    runnable = []
    fut = _GreenFuture(runnable)
    runnable.append(lambda: fut.set_result(42))
    assert getattr(fut, method)() == (42 if method == "result" else None)
    assert fut._condition.waits == 1


@pytest.mark.timeout(20)
def test_a_replaced_condition_still_times_out():
    fut = _GreenFuture([])
    with pytest.raises(gofutures.TimeoutError):
        fut.result(timeout=0.01)
