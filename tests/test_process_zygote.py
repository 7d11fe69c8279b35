"""Workers forked by the zygote (python/gofutures/_child/zygote.py): where
they come from, the GOFUTURES_ZYGOTE=0 opt-out, a zygote that dies, no
process left behind, and a child process of ours with a zygote of its own.
Linux only where it reads /proc. No timing is asserted. The helper's
protocol itself: test_zygote_protocol.py."""

import multiprocessing
import os
import signal
import sys
import time

import pytest

import gofutures

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")

TIMEOUT = 30
# The zygote forks the workers of spawn and forkserver pools (fork pools fork
# the parent itself: test_fork.py).
SPAWN = multiprocessing.get_context("spawn")


def _stat(pid):
    """(state, ppid) of pid, or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def _wait_for(predicate, seconds=TIMEOUT):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _gone(pid):
    st = _stat(pid)
    return st is None or st[0] in (b"Z", b"X")


def _zygote_of_a_worker():
    with gofutures.ProcessPoolExecutor(1, mp_context=SPAWN) as ex:
        return ex.submit(os.getppid).result(timeout=TIMEOUT)


@pytest.fixture
def zygote_on(monkeypatch):
    monkeypatch.delenv("GOFUTURES_ZYGOTE", raising=False)


def test_workers_are_forked_by_the_zygote(zygote_on):
    with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN) as ex:
        ppids = {ex.submit(os.getppid).result(timeout=TIMEOUT) for _ in range(4)}
    assert len(ppids) == 1, ppids
    zygote = ppids.pop()
    assert zygote != os.getpid()
    assert _stat(zygote)[1] == os.getpid()
    assert b"gofutures_zygote" in _cmdline(zygote)
    # The same zygote serves the next pool.
    assert _zygote_of_a_worker() == zygote


def test_opt_out_starts_workers_by_exec(monkeypatch):
    monkeypatch.setenv("GOFUTURES_ZYGOTE", "0")
    with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN, max_tasks_per_child=1) as ex:
        ppids = {ex.submit(os.getppid).result(timeout=TIMEOUT) for _ in range(3)}
        assert ex.submit(pow, 2, 5).result(timeout=TIMEOUT) == 32
    assert ppids == {os.getpid()}


def test_a_killed_zygote_is_replaced_and_its_pools_go_on(zygote_on):
    ex = gofutures.ProcessPoolExecutor(1, mp_context=SPAWN)
    try:
        zygote = ex.submit(os.getppid).result(timeout=TIMEOUT)
        worker = ex.submit(os.getpid).result(timeout=TIMEOUT)
        os.kill(zygote, signal.SIGKILL)
        # Reaped by us, not left a zombie.
        assert _wait_for(lambda: _stat(zygote) is None), _stat(zygote)
        # The pool's worker, orphaned, still serves it.
        assert ex.submit(os.getpid).result(timeout=TIMEOUT) == worker
        # The next pool works, from a new zygote (or by exec).
        with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN) as ex2:
            assert list(ex2.map(abs, [-1, -2, -3], timeout=TIMEOUT)) == [1, 2, 3]
            ppid = ex2.submit(os.getppid).result(timeout=TIMEOUT)
        assert ppid != zygote
        assert ppid == os.getpid() or _stat(ppid)[1] == os.getpid()
    finally:
        ex.shutdown(wait=True)
    assert _wait_for(lambda: _gone(worker))


def _exit_with(code):
    os._exit(code)


def test_exit_status_comes_from_the_zygote_and_nothing_is_left_behind(zygote_on):
    zygote = _zygote_of_a_worker()
    with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN, max_tasks_per_child=1, survive=True) as ex:
        pids = {ex.submit(os.getpid).result(timeout=TIMEOUT) for _ in range(4)}
        with pytest.raises(gofutures.WorkerDiedError, match="exited with code 7"):
            ex.submit(_exit_with, 7).result(timeout=TIMEOUT)
        pids |= set(ex._worker_pids())
    assert len(pids) >= 4  # recycled after every task: new pids

    # Every worker exited and was reaped by the zygote: none is its child
    # any more, not even a zombie. (Other tests' pools may still have some.)
    def reaped():
        return not any(_stat(p) is not None and _stat(p)[1] == zygote for p in pids)

    assert _wait_for(reaped), [(p, _stat(p)) for p in pids]
    assert _stat(zygote)[1] == os.getpid()  # and the zygote lives on


def test_a_child_process_of_ours_gets_its_own_zygote(zygote_on, run_script):
    out = run_script(
        """
        import multiprocessing, os, gofutures
        if __name__ == "__main__":
            with gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
                zygote = ex.submit(os.getppid).result(timeout=30)
                print(os.getpid(), zygote, sum(ex.map(abs, range(-50, 0))))
    """,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    child, zygote, total = map(int, out.stdout.split())
    assert total == 1275
    mine = _zygote_of_a_worker()
    assert zygote not in (child, mine)
    # It went away with the process that started it.
    assert _wait_for(lambda: _gone(zygote) or b"gofutures_zygote" not in _cmdline(zygote))


def _maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return f.read()


def test_the_zygote_never_maps_the_native_library(zygote_on):
    # Though the zygote imports the gofutures package for its workers (where
    # the parent has it), the Go runtime must never be in it: a process
    # holding one cannot fork.
    from gofutures._native import _native

    with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN) as ex:
        assert ex.submit(pow, 2, 3).result(timeout=TIMEOUT) == 8
        zygote = _stat(ex._worker_pids()[0])[1]
        assert b"gofutures_zygote" in _cmdline(zygote)
        assert ex.submit(_has_gofutures).result(timeout=TIMEOUT)
    native = os.path.basename(_native.__file__)
    assert native in _maps(os.getpid())  # the check can see it
    assert native not in _maps(zygote)


def _has_gofutures():
    return "gofutures" in sys.modules


# A main script that runs two pools, editing itself in between (one line
# more, its modification time put back: the zygote, which compiles it once
# for all workers, must notice the edit by content).
_MAIN_SCRIPT = """\
import json, multiprocessing, os, sys
import gofutures

VALUE = 1
SPAWN = multiprocessing.get_context("spawn")


def value():
    return VALUE


def where():
    return __name__, __file__


def boom():
    raise ValueError("boom from the main script")


def run():
    with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN) as ex:
        value_, where_ = ex.submit(value).result(timeout=30), ex.submit(where).result(timeout=30)
        try:
            ex.submit(boom).result(timeout=30)
        except ValueError as exc:
            remote = str(exc.__cause__)
    return value_, where_, remote


if __name__ == "__main__":
    first = run()
    st = os.stat(__file__)
    with open(__file__) as f:
        source = f.read()
    with open(__file__, "w") as f:
        f.write(source.replace("VALUE = 1\\n", "VALUE = 2\\n\\n"))
    os.utime(__file__, ns=(st.st_atime_ns, st.st_mtime_ns))
    print(json.dumps([first, run()]))
"""


def _run_main_script(run_script, name):
    """Runs script name (in run_script's directory) as a main script:
    `python name`, which run_script's own `python -c` is not."""
    return run_script(
        """
        import subprocess, sys
        done = subprocess.run([sys.executable, %r], capture_output=True, text=True, timeout=60)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        sys.exit(done.returncode)
    """
        % name,
        timeout=90,
    )


def test_workers_run_the_main_script_as_it_is_when_they_start(zygote_on, run_script, tmp_path):
    script = tmp_path / "main_script.py"
    script.write_text(_MAIN_SCRIPT)
    boom_line = _MAIN_SCRIPT.splitlines().index('    raise ValueError("boom from the main script")') + 1
    out = _run_main_script(run_script, "main_script.py")
    assert out.returncode == 0, out.stderr
    import json

    first, second = json.loads(out.stdout)
    path = str(script)
    assert first[:2] == [1, ["__mp_main__", path]]
    assert second[:2] == [2, ["__mp_main__", path]]
    # Tracebacks name the script and the line as it was when each pool ran.
    for (_, _, remote), line in ((first, boom_line), (second, boom_line + 1)):
        assert 'File "%s", line %d, in boom' % (path, line) in remote, remote
        assert 'raise ValueError("boom from the main script")' in remote


def _environ():
    return dict(os.environ)


def test_forked_workers_get_the_environment_exec_ones_get(zygote_on, monkeypatch):
    with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN) as ex:
        forked = ex.submit(_environ).result(timeout=TIMEOUT)
    monkeypatch.setenv("GOFUTURES_ZYGOTE", "0")
    with gofutures.ProcessPoolExecutor(2, mp_context=SPAWN) as ex:
        execd = ex.submit(_environ).result(timeout=TIMEOUT)
    for env in (forked, execd):
        assert env.pop("GOFUTURES_WORKER") in ("1", "2")
    execd.pop("GOFUTURES_ZYGOTE", None)
    forked.pop("GOFUTURES_ZYGOTE", None)
    assert forked == execd


def test_the_environment_a_forked_worker_is_given_is_exactly_the_one_asked(run_script):
    # What the zygote does in a forked worker (only what differs changes),
    # here in a process of its own; a process it starts must see it too.
    out = run_script("""
        import json, os, subprocess, sys
        from gofutures._child import zygote
        os.environ.update(KEEP="same", CHANGE="old", DROP="x")
        wanted = {k: v for k, v in os.environ.items() if k != "DROP"}
        wanted.update(CHANGE="new", ADD="added", EQ="a=b")
        zygote._set_environ(["%s=%s" % kv for kv in wanted.items()] + ["=ignored", "NOEQUALS"])
        child = subprocess.run([sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
                               capture_output=True, text=True, check=True).stdout
        print(json.dumps([dict(os.environ) == wanted, json.loads(child) == wanted]))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[true,", "true]"]


def test_a_main_script_that_warns_when_compiled_still_warns_in_each_worker(zygote_on, run_script, tmp_path):
    # The zygote compiles the main script once for all workers, but not one
    # whose compiling warns: each worker compiles it (and warns) itself.
    (tmp_path / "warning_script.py").write_text(
        "import gofutures, multiprocessing\n"
        "def f():\n"
        "    return 1 is 1\n"
        "if __name__ == '__main__':\n"
        "    with gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn')) as ex:\n"
        "        assert list(ex.map(abs, [-1, -2, -3, -4])) == [1, 2, 3, 4]\n"
    )
    out = _run_main_script(run_script, "warning_script.py")
    assert out.returncode == 0, out.stderr
    # The parent's, then each worker's.
    assert out.stderr.count("SyntaxWarning") == 3, out.stderr
