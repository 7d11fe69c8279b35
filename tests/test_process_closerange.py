"""os.closerange(3, N) while pools exist, as daemonizing libraries do: the
process must not abort (a Go runtime whose poller is closed does: "fatal
error: runtime: netpoll failed"), the thread pool goes on, and so do the
process pools (gofutures keeps its own descriptors out of the range:
gofutures/_fdguard.py). Everything else in the range is closed.

Each case runs in a child interpreter: closing descriptors under pytest
would close its own.
"""

import pytest

SCRIPT = """
import os, time, gofutures
os.environ["GOFUTURES_ZYGOTE"] = %r
if __name__ == "__main__":
    tp = gofutures.ThreadPoolExecutor(2)
    pp = gofutures.ProcessPoolExecutor(2)
    assert tp.submit(pow, 2, 5).result(timeout=30) == 32
    assert pp.submit(pow, 2, 5).result(timeout=30) == 32
    mine = os.open(os.devnull, os.O_RDONLY)
    os.closerange(3, 65536)
    try:
        os.fstat(mine)
        print("not closed:", mine)
    except OSError:
        pass
    time.sleep(0.2)  # the runtime's timers go on
    print("thread", tp.submit(pow, 2, 6).result(timeout=30))
    print("wait", len(gofutures.wait([tp.submit(time.sleep, 0.05)], timeout=30).done))
    print("process", sum(pp.map(pow, [2] * 20, range(20))))
    with gofutures.ProcessPoolExecutor(1) as fresh:
        print("new pool", fresh.submit(pow, 3, 3).result(timeout=30))
    tp.shutdown()
    pp.shutdown()
    print("end")
"""


@pytest.mark.parametrize("zygote", ["1", "0"], ids=["zygote", "exec"])
def test_closerange_keeps_the_process_and_its_pools_working(run_script, zygote):
    done = run_script(SCRIPT % zygote, timeout=60)
    assert "fatal error" not in done.stderr
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n") == ["thread 64", "wait 1", "process %d" % (2**20 - 1), "new pool 27", "end", ""]


DAEMON = """
import os, gofutures
if __name__ == "__main__":
    with gofutures.ProcessPoolExecutor(1) as pp:
        assert pp.submit(pow, 2, 5).result(timeout=30) == 32
        report = os.open("report", os.O_WRONLY | os.O_CREAT, 0o644)
        os.dup2(report, 1)
        pid = os.fork()
        if pid == 0:  # a daemon: it keeps nothing of its parent's
            os.closerange(3, 65536)
            print(sorted(int(fd) for fd in os.listdir("/proc/self/fd")), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        assert pp.submit(pow, 2, 6).result(timeout=30) == 64
"""


def test_a_forked_daemon_closes_every_descriptor(run_script, tmp_path):
    # In a forked child the runtime's threads and the pools stayed behind:
    # nothing is kept from the daemon's closerange.
    done = run_script(DAEMON, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = eval((tmp_path / "report").read_text().splitlines()[0])
    assert [fd for fd in listed if fd >= 3] in ([], [max(listed)])  # the listing's own
