"""gofutures with dask.distributed: moving work from a pool to a cluster.

A program that uses gofutures.wait / as_completed / progress keeps working
when its executor becomes a dask cluster's (client.get_executor(), whose
futures are concurrent.futures.Future objects) or when it submits to the
client directly (distributed.Future, which is no concurrent.futures.Future:
the stdlib's wait() and as_completed() fail on it with AttributeError).

The cluster is a LocalCluster of two single-threaded in-process workers,
listening on the loopback interface only.
"""

import concurrent.futures
import threading
import time

import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed not installed: pip install 'dask[distributed]'"
)

import gofutures  # noqa: E402

TIMEOUT = 30


@pytest.fixture(scope="module")
def cluster():
    # The scheduler's HTTP server (dashboard_address) also takes a free
    # loopback port: a fixed one (8787 by default) may be taken, and dask
    # then warns, which this suite's filterwarnings=error makes a failure.
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as client:
        yield client


def _square(n):
    return n * n


def _fail(n):
    raise ValueError("bad item %d" % n)


def _slow(seconds, value):
    time.sleep(seconds)
    return value


# ------------------------------------------------------------ a seed example on the cluster


def test_square_map_example_on_cluster_executor(client, capsys):
    # seed 003, "In [7]", unchanged but for its executor: the cluster's
    # (get_executor) in place of ThreadPoolExecutor(max_workers=3).
    # (The same example on gofutures is in test_seed_examples.py.)
    from gofutures import as_completed  # noqa: F401 (imported by the seed)

    values = [2, 3, 4, 5]

    def square(n):
        return n * n

    def main():
        with client.get_executor() as executor:
            results = executor.map(square, values)

        for result in results:
            print(result)

    main()
    assert capsys.readouterr().out == "4\n9\n16\n25\n"


def test_as_completed_example_on_cluster_executor(client, capsys):
    # The seed's as_completed pattern (seed 000, "In [2]"), with the
    # cluster's executor and gofutures.as_completed.
    with client.get_executor() as executor:
        future_to_n = {executor.submit(_square, n): n for n in range(6)}
        for future in gofutures.as_completed(future_to_n, timeout=TIMEOUT):
            n = future_to_n[future]
            print("%r squared is %d" % (n, future.result()))

    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted("%r squared is %d" % (n, n * n) for n in range(6))


# ------------------------------------------------------------ distributed.Future


def test_stdlib_rejects_distributed_future(client):
    # Why gofutures duck-types: the stdlib needs _condition and _waiters.
    f = client.submit(_square, 3)
    assert f.result(timeout=TIMEOUT) == 9
    with pytest.raises(AttributeError):
        concurrent.futures.wait([f], timeout=TIMEOUT)
    with pytest.raises(AttributeError):
        list(concurrent.futures.as_completed([f], timeout=TIMEOUT))


def test_wait_distributed_futures(client):
    fs = client.map(_square, range(10))
    done, not_done = gofutures.wait(fs, timeout=TIMEOUT)
    assert done == set(fs) and not not_done
    assert [f.result() for f in fs] == [n * n for n in range(10)]
    # Already done: a second wait returns at once with all of them done.
    assert gofutures.wait(fs, timeout=0).done == set(fs)


def test_wait_first_completed_and_timeout(client):
    fast = client.submit(_slow, 0.01, "fast", pure=False)
    slow = client.submit(_slow, 1, "slow", pure=False)
    done, not_done = gofutures.wait([fast, slow], timeout=TIMEOUT, return_when=gofutures.FIRST_COMPLETED)
    assert done == {fast} and not_done == {slow}
    done, not_done = gofutures.wait([slow], timeout=0.05)
    assert not done and not_done == {slow}
    client.cancel(slow)


def test_wait_first_exception(client):
    bad = client.submit(_fail, 1, pure=False)
    slow = client.submit(_slow, 1, "slow", pure=False)
    done, not_done = gofutures.wait([bad, slow], timeout=TIMEOUT, return_when=gofutures.FIRST_EXCEPTION)
    assert bad in done and slow in not_done
    with pytest.raises(ValueError, match="bad item 1"):
        bad.result()
    client.cancel(slow)


def test_as_completed_distributed_futures(client):
    fs = [client.submit(_slow, d, d, pure=False) for d in (0.3, 0.0, 0.15)]
    seen = [(f.done(), f.result()) for f in gofutures.as_completed(fs, timeout=TIMEOUT)]
    # Each is yielded once it is done (which worker runs which is dask's choice).
    assert sorted(seen) == [(True, 0.0), (True, 0.15), (True, 0.3)]


def test_as_completed_timeout(client):
    slow = client.submit(_slow, 1, "slow", pure=False)
    with pytest.raises(gofutures.TimeoutError):
        list(gofutures.as_completed([slow], timeout=0.05))
    client.cancel(slow)


def test_cancelled_distributed_future_is_done(client):
    slow = client.submit(_slow, 1, "slow", pure=False)
    client.cancel(slow)
    assert list(gofutures.as_completed([slow], timeout=TIMEOUT)) == [slow]
    assert gofutures.wait([slow], timeout=TIMEOUT).done == {slow}


# ------------------------------------------------------------ mixed with gofutures futures


def test_mixed_wait_and_as_completed(client):
    with gofutures.ThreadPoolExecutor(2) as pool, client.get_executor() as executor:
        mine = [pool.submit(_square, n) for n in range(5)]
        theirs = [executor.submit(_square, n) for n in range(5, 10)]
        direct = client.map(_square, range(10, 15))
        everything = mine + theirs + direct
        got = sorted(f.result() for f in gofutures.as_completed(everything, timeout=TIMEOUT))
        assert got == [n * n for n in range(15)]
        done, not_done = gofutures.wait(everything, timeout=TIMEOUT)
        assert done == set(everything) and not not_done


def test_callback_runs_on_another_thread(client):
    # dask calls done callbacks on a thread of its own; the wait still ends.
    threads = []
    f = client.submit(_slow, 0.1, 1, pure=False)
    f.add_done_callback(lambda _: threads.append(threading.current_thread()))
    assert gofutures.wait([f], timeout=TIMEOUT).done == {f}
    deadline = time.monotonic() + TIMEOUT
    while not threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads and threads[0] is not threading.current_thread()


def test_progress_over_distributed_futures(client, monkeypatch):
    tqdm_auto = pytest.importorskip("tqdm.auto")
    bars = []

    class Recording(tqdm_auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm_auto, "tqdm", Recording)
    fs = client.map(_square, range(8))
    got = sorted(f.result() for f in gofutures.progress(fs, disable=False))
    assert got == [n * n for n in range(8)]
    got = sorted(f.result() for f in gofutures.as_completed(fs, progress=True))
    assert got == [n * n for n in range(8)]
    assert [(b.n, b.total) for b in bars] == [(8, 8), (8, 8)]


def test_not_a_future_is_the_stdlibs_attribute_error():
    # As the stdlib, which takes every future's _condition first.
    with pytest.raises(AttributeError, match=r"^'int' object has no attribute '_condition'$"):
        gofutures.wait([42], timeout=TIMEOUT)
    with gofutures.ThreadPoolExecutor(1) as pool:
        f = pool.submit(time.sleep, 0.2)
        with pytest.raises(AttributeError, match=r"^'str' object has no attribute '_condition'$"):
            list(gofutures.as_completed([f, "x"], timeout=TIMEOUT))
        # The failed call left nothing behind: the future is followed afresh.
        assert gofutures.wait([f], timeout=TIMEOUT).done == {f}


def test_done_future_of_a_closed_client(cluster):
    # Once its client is closed a distributed.Future never calls a done
    # callback again: a future already done must count without one.
    with distributed.Client(cluster.scheduler_address) as other:
        f = other.submit(_square, 4)
        assert f.result(timeout=TIMEOUT) == 16
    assert f.done()
    with gofutures.ThreadPoolExecutor(1) as pool:
        g = pool.submit(time.sleep, 0.1)
        started = time.monotonic()
        assert gofutures.wait([g, f], timeout=TIMEOUT).done == {g, f}
        assert list(gofutures.as_completed([f], timeout=TIMEOUT)) == [f]
        assert time.monotonic() - started < 5
