"""gofutures against concurrent.futures, side by side in one run.

Usage: python bench/bench.py [--rounds N] [--json FILE] [--only 1,2,...]

Each scenario runs for the stdlib and for gofutures alternately, --rounds
times; the table shows both medians and the ratio gofutures / stdlib (below
1 is faster). Scenario 9 measures peak memory in child processes instead;
scenarios 10-12 (Python 3.14+) run InterpreterPoolExecutor.
This is a benchmark: it asserts nothing.
"""
import argparse
import concurrent.futures
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import gofutures

LIBS = {"stdlib": concurrent.futures, "gofutures": gofutures}


def identity(x):
    return x


def spin(n=200_000):
    total = 0
    for i in range(n):
        total += i
    return total


# ------------------------------------------------------------ scenarios
# Each takes the module under test and returns the seconds it measured
# (or a dict of named figures, for scenarios with more than one).


def future_round_trip(cf, n=100_000):
    Future = cf.Future
    t = time.perf_counter()
    for i in range(n):
        f = Future()
        f.set_running_or_notify_cancel()
        f.set_result(i)
        f.result()
    return time.perf_counter() - t


def thread_submit_result(cf, n=50_000):
    with cf.ThreadPoolExecutor(4) as ex:
        t = time.perf_counter()
        fs = [ex.submit(identity, i) for i in range(n)]
        for f in fs:
            f.result()
        return time.perf_counter() - t


def thread_map(cf, n=200_000):
    with cf.ThreadPoolExecutor(4) as ex:
        t = time.perf_counter()
        for _ in ex.map(identity, range(n)):
            pass
        return time.perf_counter() - t


def thread_as_completed(cf, n=50_000):
    with cf.ThreadPoolExecutor(4) as ex:
        t = time.perf_counter()
        fs = [ex.submit(identity, i) for i in range(n)]
        for f in cf.as_completed(fs):
            f.result()
        return time.perf_counter() - t


@contextlib.contextmanager
def _warm_pool(cf):
    """A 2-worker process pool with both workers up before the clock starts."""
    ex = cf.ProcessPoolExecutor(2)
    try:
        list(ex.map(identity, range(4)))
        yield ex
    finally:
        ex.shutdown()


def timed_map(warm_pool, fn, items):
    """Time of a map of fn over items (chunksize=1) on a warmed pool."""
    with warm_pool as ex:
        t = time.perf_counter()
        for _ in ex.map(fn, items, chunksize=1):
            pass
        return time.perf_counter() - t


def process_map(cf, n=20_000):
    return timed_map(_warm_pool(cf), identity, range(n))


def process_as_completed(cf, n=5_000):
    with _warm_pool(cf) as ex:
        t = time.perf_counter()
        fs = [ex.submit(identity, i) for i in range(n)]
        for f in cf.as_completed(fs):
            f.result()
        return time.perf_counter() - t


def process_cpu_bound(cf, tasks=16):
    return timed_map(_warm_pool(cf), spin, [200_000] * tasks)


def serial_cpu_bound(tasks=16):
    t = time.perf_counter()
    for _ in range(tasks):
        spin(200_000)
    return time.perf_counter() - t


def pool_start(make_pool):
    """Start to first result of a new 2-worker pool, and with its shutdown."""
    t = time.perf_counter()
    ex = make_pool(2)
    ex.submit(identity, 1).result()
    first = time.perf_counter() - t
    ex.shutdown()
    return {"first result": first, "with shutdown": time.perf_counter() - t}


def process_start(cf):
    return pool_start(cf.ProcessPoolExecutor)


@contextlib.contextmanager
def _warm_interpreters(cf):
    """A 2-worker interpreter pool (3.14+) with both workers up, and this
    script loaded in each (what sends spin: it has a default, so it goes by
    name), before the clock starts."""
    ex = cf.InterpreterPoolExecutor(2)
    try:
        list(ex.map(spin, [20_000] * 8))
        yield ex
    finally:
        ex.shutdown()


def interpreter_cpu_bound(cf, tasks=16):
    return timed_map(_warm_interpreters(cf), spin, [200_000] * tasks)


def interpreter_map(cf, n=20_000):
    return timed_map(_warm_interpreters(cf), identity, range(n))


def interpreter_start(cf):
    return pool_start(cf.InterpreterPoolExecutor)


SCENARIOS = [
    (1, "Future round trip x100k", future_round_trip),
    (2, "threads: submit+result x50k, 4 workers", thread_submit_result),
    (3, "threads: map 200k, 4 workers", thread_map),
    (4, "threads: as_completed 50k, 4 workers", thread_as_completed),
    (5, "processes: map 20k, chunksize=1, 2 workers", process_map),
    (6, "processes: submit 5k + as_completed, 2 workers", process_as_completed),
    (7, "processes: 16 CPU-bound tasks, 2 workers", process_cpu_bound),
    (8, "processes: start, 2 workers", process_start),
]
if hasattr(concurrent.futures, "InterpreterPoolExecutor"):  # 3.14+
    SCENARIOS += [
        (10, "interpreters: 16 CPU-bound tasks, 2 workers", interpreter_cpu_bound),
        (11, "interpreters: map 20k, chunksize=1, 2 workers", interpreter_map),
        (12, "interpreters: start, 2 workers", interpreter_start),
    ]
# The CPU-bound scenarios, also timed as a serial loop.
CPU_BOUND_SCENARIOS = {7, 10}

# Scenarios that take a fraction of a second run at least this many rounds:
# their medians of 3 moved by 10-20% from run to run on a 2-core machine.
SHORT_SCENARIOS, SHORT_ROUNDS = {7, 8, 10, 12}, 9


# ------------------------------------------------------------ scenario 9


def lazy_map_child(lib, n, buffersize):
    """Runs in a child process: map identity over n items, report peak RSS."""
    cf = LIBS[lib]
    with cf.ThreadPoolExecutor(4) as ex:
        kwargs = {"buffersize": buffersize} if buffersize else {}
        count = sum(1 for _ in ex.map(identity, iter(range(n)), **kwargs))
    assert count == n
    print(json.dumps({"peak_mib": _peak_kib() / 1024}))


def _peak_kib():
    # VmHWM starts afresh at exec; ru_maxrss does not (Linux carries the
    # parent's peak over fork and exec), so it would report this script's.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss(lib, n, buffersize):
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--rss-child", lib, str(n), str(buffersize)],
        capture_output=True, text=True, check=True, timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


# ------------------------------------------------------------ the run


def run(rounds, only):
    results = []
    print("gofutures %s, Python %s, %s, %d cores, %s" % (
        gofutures.__version__, platform.python_version(), platform.machine(), os.cpu_count(),
        time.strftime("%Y-%m-%d")))
    print("%-48s %11s %11s %7s" % ("scenario (median of %d)" % rounds, "stdlib", "gofutures", "ratio"))
    for number, name, fn in SCENARIOS:
        if only and number not in only:
            continue
        samples = {"stdlib": [], "gofutures": []}
        n = max(rounds, SHORT_ROUNDS) if number in SHORT_SCENARIOS else rounds
        for _ in range(n):
            for lib in ("stdlib", "gofutures"):  # alternate, so drift hits both
                samples[lib].append(fn(LIBS[lib]))
        for label, std, ours in _medians(samples):
            row = {"scenario": number, "name": name + (" (%s)" % label if label else ""),
                   "stdlib_s": std, "gofutures_s": ours, "ratio": ours / std, "rounds": n}
            results.append(row)
            print("%-48s %10.4fs %10.4fs %7.3f%s" % (row["name"][:48], std, ours, row["ratio"],
                                                     "  (median of %d)" % n if n != rounds else ""))
        if number in CPU_BOUND_SCENARIOS:
            serial = statistics.median(serial_cpu_bound() for _ in range(n))
            speedup = serial / statistics.median(samples["gofutures"])
            results.append({"scenario": number, "name": "serial loop, same work", "serial_s": serial,
                            "gofutures_speedup_over_serial": speedup})
            print("%-48s %10.4fs %11s %6.2fx" % ("  serial loop (speed-up of gofutures)", serial, "", speedup))
    if not only or 9 in only:
        go = peak_rss("gofutures", 10_000_000, 1000)
        std = peak_rss("stdlib", 1_000_000, 0)
        results.append({"scenario": 9, "name": "lazy map peak RSS", "gofutures_10M_buffersize_1000_mib": go,
                        "stdlib_eager_1M_mib": std})
        print("%-48s %10.0fM %10.0fM" % ("map peak RSS: stdlib eager 1M | ours 10M lazy", std, go))
    print("(ratio = gofutures / stdlib; below 1 is faster)")
    return results


def _medians(samples):
    std, ours = samples["stdlib"], samples["gofutures"]
    if isinstance(std[0], dict):
        for key in std[0]:
            yield (key, statistics.median(s[key] for s in std), statistics.median(s[key] for s in ours))
    else:
        yield ("", statistics.median(std), statistics.median(ours))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the table here")
    parser.add_argument("--only", help="comma-separated scenario numbers")
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        lib, n, buffersize = args.rss_child
        lazy_map_child(lib, int(n), int(buffersize))
        return
    only = {int(x) for x in args.only.split(",")} if args.only else set()
    results = run(args.rounds, only)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
                       "cores": os.cpu_count(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
