"""gofutures against concurrent.futures, side by side in one run.

Usage: python bench/bench.py [--rounds N] [--json FILE] [--only 1,2,...]

Each scenario runs for the stdlib and for gofutures alternately, --rounds
times; the table shows both medians and the ratio gofutures / stdlib (below
1 is faster). Scenario 9 measures peak memory in child processes instead;
scenarios 10-12 (Python 3.14+) run InterpreterPoolExecutor. Scenarios 13-17
send big payloads (16 MiB = 16 << 20 bytes each; GB/s counts 10**9 bytes)
and add rows for loky and Pebble where they are installed (make bench
installs them: pyproject.toml's bench extra); 17 compares the cost per MB of
a 64 MiB call with a 1 MiB call's, and a 1 GB result's peak memory.
This is a benchmark: it asserts nothing.
"""

import argparse
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import gofutures

# numpy (the bench extra has it; without it 15-17 are skipped) is imported
# only by the scenarios that use it: workers re-import this script, and a
# numpy import starts OpenBLAS threads in each worker that slow the other
# scenarios' CPU-bound calls (7: 1.27x over serial instead of 1.67x, 3.14).
HAS_NUMPY = importlib.util.find_spec("numpy") is not None

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
def _warm_pool(cf, make_pool=None, warm_item=None):
    """A 2-worker process pool (cf's, or make_pool(2)) with both workers up
    before the clock starts; warm_item, if given, is what each worker gets
    first (so that it imports what the timed calls need)."""
    ex = (make_pool or cf.ProcessPoolExecutor)(2)
    try:
        if make_pool is None:
            list(ex.map(identity, range(4)))
        else:
            for f in [ex.submit(_sleep_then, warm_item) for _ in range(4)]:
                f.result()
        yield ex
    finally:
        ex.shutdown()


def _sleep_then(x, seconds=0.05):
    # Long enough that the 4 warm-up calls reach both workers.
    time.sleep(seconds)
    return x


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
    name), before the clock starts. The warm-up calls take a few ms each,
    so that both workers run spin several times: each interpreter
    specializes its own copy of the code, and a worker that ran it once
    (short warm-up calls all went to the other) ran its first timed calls
    half again as slow, whichever the library."""
    ex = cf.InterpreterPoolExecutor(2)
    try:
        list(ex.map(spin, [100_000] * 8))
        yield ex
    finally:
        ex.shutdown()


def interpreter_cpu_bound(cf, tasks=16):
    return timed_map(_warm_interpreters(cf), spin, [200_000] * tasks)


def interpreter_map(cf, n=20_000):
    return timed_map(_warm_interpreters(cf), identity, range(n))


def interpreter_start(cf):
    return pool_start(cf.InterpreterPoolExecutor)


# ------------------------------------------------------------ scenarios 13-17: big payloads
# Each takes a pool maker (make(2) -> an executor with submit() and
# shutdown()), so that loky's and Pebble's pools run them too.

BIG = 16 << 20
BIG_CALLS = 32


class PebblePool:
    """pebble.ProcessPool behind the executor methods the scenarios use."""

    def __init__(self, workers):
        import pebble

        self._pool = pebble.ProcessPool(max_workers=workers)

    def submit(self, fn, *args):
        return self._pool.schedule(fn, args=args)

    def shutdown(self):
        self._pool.close()
        self._pool.join()


def _pool_makers():
    """{name: make(workers)} of the process pools this Python can run."""
    makers = {"stdlib": concurrent.futures.ProcessPoolExecutor, "gofutures": gofutures.ProcessPoolExecutor}
    try:
        import loky

        makers["loky"] = loky.ProcessPoolExecutor
    except ImportError:
        pass
    try:
        import pebble  # noqa: F401

        makers["pebble"] = PebblePool
    except ImportError:
        pass
    return makers


def length(data):
    return len(data)


def make_bytes(n):
    return b"\x01" * n


def make_array(n):
    import numpy as np

    return np.full(n // 8, 1.5)


def first_item(array):
    return float(array[0])


def timed_calls(make_pool, fn, items, warm_item=None):
    """Time of submitting fn over items, then reading every result, on a
    warmed pool."""
    with _warm_pool(None, make_pool, warm_item) as ex:
        t = time.perf_counter()
        for f in [ex.submit(fn, item) for item in items]:
            f.result()
        return time.perf_counter() - t


def big_arguments(make_pool):
    return timed_calls(make_pool, length, [make_bytes(BIG)] * BIG_CALLS)


def big_results(make_pool):
    return timed_calls(make_pool, make_bytes, [BIG] * BIG_CALLS)


def big_array_results(make_pool):
    return timed_calls(make_pool, make_array, [BIG] * BIG_CALLS, warm_item=make_array(8))


def big_array_arguments(make_pool):
    return timed_calls(make_pool, first_item, [make_array(BIG)] * BIG_CALLS, warm_item=make_array(8))


def linearity(make_pool, small=1 << 20, large=64 << 20, small_calls=16, rounds=5):
    """Cost per byte of one large call over that of one small call, for
    bytes arguments and bytes results (1.0: linear; more: the large call
    costs more per byte). Each cost is the best of rounds."""
    with _warm_pool(None, make_pool) as ex:

        def per_byte(fn, item, size, calls):
            best = float("inf")
            for _ in range(rounds):
                t = time.perf_counter()
                for _ in range(calls):
                    ex.submit(fn, item).result()
                best = min(best, (time.perf_counter() - t) / calls / size)
            return best

        big_arg, small_arg = make_bytes(large), make_bytes(small)
        return {
            "arguments": per_byte(length, big_arg, large, 1) / per_byte(length, small_arg, small, small_calls),
            "results": per_byte(make_bytes, large, large, 1) / per_byte(make_bytes, small, small, small_calls),
        }


BIG_SCENARIOS = [
    (13, "processes: 32 x 16 MiB bytes arguments", big_arguments, BIG * BIG_CALLS),
    (14, "processes: 32 x 16 MiB bytes results", big_results, BIG * BIG_CALLS),
]
if HAS_NUMPY:
    BIG_SCENARIOS += [
        (15, "processes: 32 x 16 MiB numpy results", big_array_results, BIG * BIG_CALLS),
        (16, "processes: 32 x 16 MiB numpy arguments", big_array_arguments, BIG * BIG_CALLS),
    ]


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
    return _child_figures("--rss-child", lib, str(n), str(buffersize))["peak_mib"]


def _child_figures(*args):
    """What this script prints last (JSON) when run with args."""
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True, check=True, timeout=1800
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def big_result_child(lib, size=1 << 30):
    """Runs in a child process: one numpy result of size bytes from a warm
    2-worker pool of lib, every page of it read; report RSS before the call
    and the peak."""
    with _warm_pool(None, _pool_makers()[lib], make_array(8)) as ex:
        base = _rss_kib()
        result = ex.submit(make_array, size).result()
        result.sum()
        del result
    print(json.dumps({"base_mib": base / 1024, "peak_mib": _peak_kib() / 1024}))


def _rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


# ------------------------------------------------------------ the run


def run(rounds, only):
    results = []
    print(
        "gofutures %s, Python %s, %s, %d cores, %s"
        % (
            gofutures.__version__,
            platform.python_version(),
            platform.machine(),
            os.cpu_count(),
            time.strftime("%Y-%m-%d"),
        )
    )
    print("%-48s %11s %11s %7s" % ("scenario (median of %d)" % rounds, "stdlib", "gofutures", "ratio"))
    for number, name, fn in SCENARIOS:
        if only and number not in only:
            continue
        samples = {"stdlib": [], "gofutures": []}
        serial_runs = []  # CPU-bound scenarios: the same work in a loop, in the same alternation
        n = max(rounds, SHORT_ROUNDS) if number in SHORT_SCENARIOS else rounds
        for _ in range(n):
            for lib in ("stdlib", "gofutures"):  # alternate, so drift hits both
                samples[lib].append(fn(LIBS[lib]))
            if number in CPU_BOUND_SCENARIOS:
                serial_runs.append(serial_cpu_bound())
        for label, std, ours in _medians(samples):
            row = {
                "scenario": number,
                "name": name + (" (%s)" % label if label else ""),
                "stdlib_s": std,
                "gofutures_s": ours,
                "ratio": ours / std,
                "rounds": n,
            }
            results.append(row)
            print(
                "%-48s %10.4fs %10.4fs %7.3f%s"
                % (row["name"][:48], std, ours, row["ratio"], "  (median of %d)" % n if n != rounds else "")
            )
        if serial_runs:
            serial = statistics.median(serial_runs)
            speedup = serial / statistics.median(samples["gofutures"])
            results.append(
                {
                    "scenario": number,
                    "name": "serial loop, same work",
                    "serial_s": serial,
                    "gofutures_speedup_over_serial": speedup,
                }
            )
            print("%-48s %10.4fs %11s %6.2fx" % ("  serial loop (speed-up of gofutures)", serial, "", speedup))
    if not only or 9 in only:
        go = peak_rss("gofutures", 10_000_000, 1000)
        std = peak_rss("stdlib", 1_000_000, 0)
        results.append(
            {
                "scenario": 9,
                "name": "lazy map peak RSS",
                "gofutures_10M_buffersize_1000_mib": go,
                "stdlib_eager_1M_mib": std,
            }
        )
        print("%-48s %10.0fM %10.0fM" % ("map peak RSS: stdlib eager 1M | ours 10M lazy", std, go))
    makers = _pool_makers()
    for number, name, fn, nbytes in BIG_SCENARIOS:
        if not only or number in only:
            results.append(_run_big(number, name, fn, nbytes, makers, rounds))
    if HAS_NUMPY and (not only or 17 in only):
        results += _run_linearity(makers, rounds)
    print("(ratio = gofutures / stdlib; below 1 is faster)")
    return results


def _run_samples(makers, fn, rounds):
    """{lib: [fn(make) per round]}, the libraries alternating; a comparison
    library that fails (loky or Pebble on a Python they do not support) is
    left out with a note."""
    samples = {lib: [] for lib in makers}
    for _ in range(rounds):
        for lib in list(samples):
            try:
                samples[lib].append(fn(makers[lib]))
            except Exception as exc:
                if lib in LIBS:
                    raise
                print("  (%s left out: %s: %s)" % (lib, type(exc).__name__, exc))
                del samples[lib]
    return samples


def _run_big(number, name, fn, nbytes, makers, rounds):
    """One of scenarios 13-16: seconds, ratio and GB/s for each library."""
    seconds = {lib: statistics.median(s) for lib, s in _run_samples(makers, fn, rounds).items()}
    std, ours = seconds["stdlib"], seconds["gofutures"]
    row = {
        "scenario": number,
        "name": name,
        "stdlib_s": std,
        "gofutures_s": ours,
        "ratio": ours / std,
        "rounds": rounds,
        "payload_bytes": nbytes,
    }
    for lib, sec in seconds.items():
        row["%s_s" % lib] = sec
        row["%s_gbps" % lib] = nbytes / sec / 1e9
    print(
        "%-48s %10.4fs %10.4fs %7.3f  %5.2f | %5.2f GB/s"
        % (name[:48], std, ours, row["ratio"], row["stdlib_gbps"], row["gofutures_gbps"])
    )
    for lib in [lib for lib in seconds if lib not in LIBS]:
        row["%s_ratio" % lib] = seconds[lib] / std
        print(
            "%-48s %11s %10.4fs %7.3f  %13.2f GB/s"
            % ("  " + lib, "", seconds[lib], seconds[lib] / std, row["%s_gbps" % lib])
        )
    return row


def _run_linearity(makers, rounds):
    """Scenario 17: the cost-per-byte factors of each library (median of
    rounds), and the peak RSS of one 1 GB numpy result, measured in a child."""
    samples = _run_samples(makers, linearity, rounds)
    rows = []
    for direction in ("arguments", "results"):
        factors = {lib: statistics.median(s[direction] for s in runs) for lib, runs in samples.items()}
        rows.append(
            {
                "scenario": 17,
                "name": "linearity, %s: per-MB cost 64 MiB / 1 MiB" % direction,
                **{"%s_factor" % lib: f for lib, f in factors.items()},
            }
        )
        _print_per_lib("linearity %s: per MB 64 MiB / 1 MiB" % direction, factors, "%10.2fx")
    peaks = {}
    for lib in samples:
        try:
            peaks[lib] = _child_figures("--big-result-child", lib)
        except subprocess.CalledProcessError as exc:
            if lib in LIBS:
                raise
            print("  (%s left out: %s)" % (lib, exc.stderr.strip().splitlines()[-1:]))
    rows.append(
        {
            "scenario": 17,
            "name": "1 GB numpy result: parent peak RSS",
            **{"%s_peak_mib" % lib: p["peak_mib"] for lib, p in peaks.items()},
            **{"%s_base_mib" % lib: p["base_mib"] for lib, p in peaks.items()},
        }
    )
    _print_per_lib("1 GB numpy result: parent peak RSS", {lib: p["peak_mib"] for lib, p in peaks.items()}, "%10.0fM")
    return rows


def _print_per_lib(name, figures, fmt):
    """stdlib's and gofutures' figures on the row, then one row per other library."""
    print("%-48s %s %s" % (name[:48], fmt % figures["stdlib"], fmt % figures["gofutures"]))
    for lib in [lib for lib in figures if lib not in LIBS]:
        print("%-48s %11s %s" % ("  " + lib, "", fmt % figures[lib]))


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
    parser.add_argument("--big-result-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        lib, n, buffersize = args.rss_child
        lazy_map_child(lib, int(n), int(buffersize))
        return
    if args.big_result_child:
        big_result_child(args.big_result_child)
        return
    only = {int(x) for x in args.only.split(",")} if args.only else set()
    results = run(args.rounds, only)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "python": platform.python_version(),
                    "date": time.strftime("%Y-%m-%d"),
                    "cores": os.cpu_count(),
                    "results": results,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
