"""The thread-pool and Future examples of the seed documents (the
documents gofutures was created from, not shipped with it), run against
gofutures.

Each example keeps its code as printed in the seed; the only changes are:
  * `concurrent.futures` is swapped for `gofutures` in the import;
  * URLs point at a local HTTP server (no network here);
  * long sleeps are shortened;
  * ProcessPoolExecutor examples whose point is the pool API (submit/result,
    shutdown) are also run here with ThreadPoolExecutor; their process-pool
    versions are in test_process_seeds.py;
  * seed 001's `currentThread().getName()` (deprecated aliases) is spelled
    `current_thread().name`.
Output is captured with capsys, or from a subprocess for the examples that
never finish.
"""
import os
import random
import re
import time
import urllib.error
import urllib.request

import pytest

import gofutures

TIMEOUT = 10


# ------------------------------------------------------------ seed 000


def test_pow_example(capsys):
    # seed 000, "In [1]"
    with gofutures.ThreadPoolExecutor(max_workers=1) as executor:
        future = executor.submit(pow, 323, 1235)
        print(future.result())

    out = capsys.readouterr().out
    assert out == "%d\n" % pow(323, 1235)
    # The seed prints the number's first 1000 digits (the docs truncate it).
    assert out.startswith("7330187419711662525292446729952277967765833457839424373869116780517420149076")
    assert len(out) == 3099 + 1


def _close_http_errors(futures):
    # Test hygiene, not part of the examples: an HTTPError holds the open
    # response; close it so no ResourceWarning fires later.
    for f in futures:
        exc = f.exception(timeout=TIMEOUT)
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()


def _check_url_output(out, web, urls, fmt_exc):
    lines = out.splitlines()
    # as_completed yields every future exactly once: one line per URL.
    assert len(lines) == len(urls), lines
    expected_ok = {"%r page is %d bytes" % (u, n) for u, n in web.ok_urls.items()}
    forbidden = fmt_exc % (web.forbidden_url, "HTTP Error 403: Forbidden")
    assert expected_ok <= set(lines)
    assert forbidden in lines
    refused_prefix = fmt_exc % (web.refused_url, "<urlopen error ")
    refused = [l for l in lines if l.startswith(refused_prefix)]
    assert len(refused) == 1, lines
    assert "refused" in refused[0].lower()
    assert set(lines) == expected_ok | {forbidden, refused[0]}


def test_load_url_example_seed000(capsys, http_server):
    # seed 000, "In [2]": the variant printing '{%r} generated an exception'.
    web = http_server
    URLS = list(web.ok_urls) + [web.forbidden_url, web.refused_url]

    # 检索单个网页并报告其 URL 及内容。
    def load_url(url, timeout):
        with urllib.request.urlopen(url, timeout=timeout) as conn:
            return conn.read()

    # 使用 `with` 语句来确保线程得到及时清理
    with gofutures.ThreadPoolExecutor(max_workers=5) as executor:
        # 开始加载操作，并为每个未来任务标记其 URL
        future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
        for future in gofutures.as_completed(future_to_url):
            url = future_to_url[future]
            try:
                data = future.result()
            except Exception as exc:
                print('{%r} generated an exception: %s' % (url, exc))
            else:
                print('%r page is %d bytes' % (url, len(data)))

    _close_http_errors(future_to_url)
    _check_url_output(capsys.readouterr().out, web, URLS, "{%r} generated an exception: %s")


def test_load_url_example_seed002(capsys, http_server):
    # seed 002 (same code as the Python docs): `concurrent.futures.X` spelled out.
    web = http_server
    URLS = list(web.ok_urls) + [web.forbidden_url, web.refused_url]

    # Retrieve a single page and report the URL and contents
    def load_url(url, timeout):
        with urllib.request.urlopen(url, timeout=timeout) as conn:
            return conn.read()

    # We can use a with statement to ensure threads are cleaned up promptly
    with gofutures.ThreadPoolExecutor(max_workers=5) as executor:
        # Start the load operations and mark each future with its URL
        future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
        for future in gofutures.as_completed(future_to_url):
            url = future_to_url[future]
            try:
                data = future.result()
            except Exception as exc:
                print('%r generated an exception: %s' % (url, exc))
            else:
                print('%r page is %d bytes' % (url, len(data)))

    _close_http_errors(future_to_url)
    _check_url_output(capsys.readouterr().out, web, URLS, "%r generated an exception: %s")


def test_load_url_example_seed003(capsys, http_server):
    # seed 003, "In [5]": names imported from the package.
    from gofutures import ThreadPoolExecutor, as_completed

    web = http_server
    URLS = list(web.ok_urls) + [web.forbidden_url, web.refused_url]

    # Retrieve a single page and report the URL and contents
    def load_url(url, timeout):
        with urllib.request.urlopen(url, timeout=timeout) as conn:
            return conn.read()

    # We can use a with statement to ensure threads are cleaned up promptly
    with ThreadPoolExecutor(max_workers=5) as executor:
        # Start the load operations and mark each future with its URL
        future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
        for future in as_completed(future_to_url):
            url = future_to_url[future]
            try:
                data = future.result()
            except Exception as exc:
                print('%r generated an exception: %s' % (url, exc))
            else:
                print('%r page is %d bytes' % (url, len(data)))

    _close_http_errors(future_to_url)
    _check_url_output(capsys.readouterr().out, web, URLS, "%r generated an exception: %s")


# ------------------------------------------------------------ seed 003


def test_square_map_example(capsys):
    # seed 003, "In [7]": results are iterated after the `with` block ended.
    from gofutures import (
        ThreadPoolExecutor,
        as_completed,  # noqa: F401 (imported by the seed)
    )
    values = [2, 3, 4, 5]

    def square(n):
        return n * n

    def main():
        with ThreadPoolExecutor(max_workers=3) as executor:
            results = executor.map(square, values)

        for result in results:
            print(result)

    main()
    assert capsys.readouterr().out == "4\n9\n16\n25\n"


def test_task_done_example(capsys):
    # seed 003, "In [8]": the task sleeps 2 s and main sleeps 2 s before the
    # second done(); shortened here, with main sleeping well past the task.
    from time import sleep

    from gofutures import ThreadPoolExecutor

    def task(message):
        sleep(0.2)
        return message

    def main():
        executor = ThreadPoolExecutor(5)
        future = executor.submit(task, ("Completed"))
        print(future.done())
        sleep(1.5)
        print(future.done())
        print(future.result())
        executor.shutdown()  # (not in the seed) tidy up the pool

    main()
    assert capsys.readouterr().out == "False\nTrue\nCompleted\n"


# ------------------------------------------------------------ seed 001


def test_submit_result_loop_example(capsys):
    # seed 001, "In [1]" (ProcessPoolExecutor in the seed): result() right
    # after submit() serialises the tasks, so the output order is fixed.
    from gofutures import ThreadPoolExecutor

    def task(name, n):
        print(f"{name} is running, pid is {os.getpid()}")
        time.sleep(random.uniform(0.001, 0.01))
        return n * n

    pool = ThreadPoolExecutor(max_workers=5)
    for i in range(10):
        future = pool.submit(task, f"egon{i}", i)
        print(f"egon{i}'s result is {future.result()}")
    print('主')
    pool.shutdown()

    expected = []
    for i in range(10):
        expected.append(f"egon{i} is running, pid is {os.getpid()}")
        expected.append(f"egon{i}'s result is {i * i}")
    expected.append("主")
    assert capsys.readouterr().out.splitlines() == expected


def test_shutdown_wait_example(capsys):
    # seed 001, "In [2]" (ProcessPoolExecutor in the seed): shutdown(wait=True)
    # returns only once every submitted task has finished.
    from gofutures import ThreadPoolExecutor

    finished = []

    def task(name):
        print(f"{name} is running, pid is {os.getpid()}")
        time.sleep(random.uniform(0.01, 0.1))
        finished.append(name)

    pool = ThreadPoolExecutor(max_workers=5)
    for i in range(10):
        pool.submit(task, f"egon{i}")
    pool.shutdown(wait=True)
    finished_at_shutdown = sorted(finished)
    print('主')

    out = capsys.readouterr().out
    assert finished_at_shutdown == sorted(f"egon{i}" for i in range(10))
    # print() writes the text and the newline separately, so lines printed by
    # several threads at once may interleave: match the messages, not lines.
    msg = re.compile(r"egon(\d) is running, pid is %d" % os.getpid())
    assert sorted(msg.findall(out)) == [str(i) for i in range(10)]
    assert out.endswith("主\n")
    assert msg.sub("", out).replace("\n", "") == "主"


def test_shutdown_with_statement_example(capsys):
    # seed 001, the commented-out equivalent: leaving `with` waits like
    # shutdown(wait=True).
    from gofutures import ThreadPoolExecutor

    finished = []

    def task(name):
        print(f"{name} is running, pid is {os.getpid()}")
        time.sleep(random.uniform(0.01, 0.1))
        finished.append(name)

    with ThreadPoolExecutor(max_workers=5) as executor:
        for i in range(10):
            executor.submit(task, f"egon{i}")
    finished_at_exit = sorted(finished)
    print('主')

    assert finished_at_exit == sorted(f"egon{i}" for i in range(10))
    assert capsys.readouterr().out.splitlines()[-1] == "主"


def test_thread_name_map_example_as_printed(capsys):
    # seed 001, "In [3]" exactly as printed (indentation fixed: the seed's
    # `with` and `print` lines are misaligned). task() takes no argument, so
    # every call fails with TypeError; map's results are never iterated, so
    # the errors stay inside the futures and only '主' is printed.
    from threading import current_thread

    from gofutures import ThreadPoolExecutor

    def task():
        print(f"{current_thread().name} is running, pid is {os.getpid()}")
        time.sleep(random.randint(1, 3))

    with ThreadPoolExecutor(max_workers=5) as executor:
        executor.map(task, range(1, 12))

    print('主')
    assert capsys.readouterr().out == "主\n"


def test_thread_name_map_example(capsys):
    # seed 001, "In [3]" as intended: task takes the mapped value; the worker
    # threads are named like the stdlib's: "ThreadPoolExecutor-<n>_<i>".
    from threading import current_thread

    from gofutures import ThreadPoolExecutor

    def task(n):
        print(f"{current_thread().name} is running, pid is {os.getpid()}")
        time.sleep(random.uniform(0.01, 0.05))

    with ThreadPoolExecutor(max_workers=5) as executor:
        executor.map(task, range(1, 12))

    print('主')

    out = capsys.readouterr().out
    assert out.endswith("主\n")
    # print() writes the text and the newline separately, so lines printed by
    # several threads at once may interleave: match the messages, not lines.
    pat = re.compile(r"(ThreadPoolExecutor-\d+)_(\d+) is running, pid is %d" % os.getpid())
    matches = pat.findall(out)
    assert len(matches) == 11, out
    assert pat.sub("", out).replace("\n", "") == "主", out
    # One pool: one "ThreadPoolExecutor-<n>" prefix; at most 5 workers, 0-based.
    assert len({prefix for prefix, _ in matches}) == 1
    indexes = {int(i) for _, i in matches}
    assert indexes <= set(range(5))


# ------------------------------------------------------------ deadlocks
#
# The seeds' two deadlock examples (seed 000 with `with`, seed 003 without).
# With the stdlib they hang forever. With gofutures the wait that would never
# end raises gofutures.DeadlockError inside the task, so its future fails
# with it and the script ends.
#
# The scripts run unchanged in subprocesses; a prelude (test harness, not
# the example) records every future the executor returns and when it ends,
# and an epilogue prints, at exit, how each ended and how long after its
# submit.
#
# wait_on_future examples: a `time.sleep(1)` is added before the pool shuts
# down (in the notebook of seed 003 the kernel simply lives on after the cell).
# Without it the example races: if the pool's shutdown comes before the
# worker calls executor.submit(), that submit raises RuntimeError ("cannot
# schedule new futures after shutdown") and the example shows nothing.

_PRELUDE = """\
import time as _t, gofutures as _g
_ended = []
_submit = _g.ThreadPoolExecutor.submit
def _recording_submit(self, fn, /, *args, **kwargs):
    f = _submit(self, fn, *args, **kwargs)
    start = _t.monotonic()
    f.add_done_callback(lambda f: _ended.append((fn.__name__, f, _t.monotonic() - start)))
    return f
_g.ThreadPoolExecutor.submit = _recording_submit
"""

_EPILOGUE = """
def _report():  # at exit, after the executors' own exit joins
    for _name, _f, _secs in _ended:
        _e = _f.exception()
        print("%s %s %.2f" % (_name, type(_e).__name__ if _e else "ok", _secs))
import atexit; atexit.register(_report)
"""

DEADLOCKS = {
    # seed 000: sleeps shortened from 5 s (they only let both a and b be bound).
    "wait_on_each_other_with": ("""\
import time
import gofutures

def wait_on_b():
    time.sleep(0.3)
    print(b.result())  # b 永远不会结束因为它在等待 a。
    return 5

def wait_on_a():
    time.sleep(0.3)
    print(a.result())  # a 永远不会结束因为它在等待 b。
    return 6


with gofutures.ThreadPoolExecutor(max_workers=2) as executor:
    a = executor.submit(wait_on_b)
    b = executor.submit(wait_on_a)
""", ["wait_on_b", "wait_on_a"]),
    "wait_on_future_with": ("""\
import time
import gofutures


def wait_on_future():
    f = executor.submit(pow, 5, 2)
    # 这将永远不会完成因为只有一个工作线程
    # 并且它正在执行此函数。
    print(f.result())

with gofutures.ThreadPoolExecutor(max_workers=1) as executor:
    executor.submit(wait_on_future)
    time.sleep(1)  # (added, see above)
""", ["wait_on_future"]),
    # seed 003: no `with`; the script's end then waits for the pending futures.
    "wait_on_each_other_no_with": ("""\
# 死锁例子1
import time
from gofutures import ThreadPoolExecutor,as_completed

def wait_on_b():
    time.sleep(0.3)
    print(b.result())  # b will never complete because it is waiting on a.
    return 5

def wait_on_a():
    time.sleep(0.3)
    print(a.result())  # a will never complete because it is waiting on b.
    return 6


executor = ThreadPoolExecutor(max_workers=2)
a = executor.submit(wait_on_b)
b = executor.submit(wait_on_a)
""", ["wait_on_b", "wait_on_a"]),
    "wait_on_future_no_with": ("""\
# 死锁例子2
from gofutures import ThreadPoolExecutor

def wait_on_future():
    f = executor.submit(pow, 5, 2)
    # This will never complete because there is only one worker thread and
    # it is executing this function.
    print(f.result())

executor = ThreadPoolExecutor(max_workers=1)
executor.submit(wait_on_future)

import time; time.sleep(1)  # (added, see above)
""", ["wait_on_future"]),
}


@pytest.fixture(scope="module")
def deadlock_runs(tmp_path_factory, subprocess_env):
    """Run all deadlock scripts at once; each must end by itself."""
    import subprocess
    import sys

    cwd = str(tmp_path_factory.mktemp("deadlock"))
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _PRELUDE + code + _EPILOGUE],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=cwd, env=subprocess_env,
        )
        for name, (code, _) in DEADLOCKS.items()
    }
    results = {}
    for name, p in procs.items():
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            out = "HUNG\n" + out
        results[name] = (p.returncode, out, err)
    return results


@pytest.mark.parametrize("name", list(DEADLOCKS))
def test_deadlock_example_raises_deadlock_error(deadlock_runs, name):
    rc, out, err = deadlock_runs[name]
    assert rc == 0 and "HUNG" not in out, (rc, out, err)
    ended = {}
    for line in out.splitlines():
        fn, outcome, secs = line.split()
        ended.setdefault(fn, []).append((outcome, float(secs)))
    # Every task that waited ends with DeadlockError within 2 s of its submit
    # (the examples sleep 0.3 s before waiting); none printed a result.
    for func in DEADLOCKS[name][1]:
        assert ended.get(func) == [("DeadlockError", ended[func][0][1])], out
        assert ended[func][0][1] < 2.0, out
    # The task the waits were for still ran, once the wait gave up (pow).
    if "pow" in ended:
        assert ended["pow"][0][0] == "ok", out
