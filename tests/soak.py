"""make soak: mixed work for a long time, watching the process for growth.

Usage: python tests/soak.py [--minutes 30] [--interval 60] [--warmup MINUTES]

For --minutes, rounds of mixed work run one after another: a long-lived
thread pool and a long-lived process pool (survive=True) get small calls,
big calls (arguments and results of a few MB), map, calls whose worker
crashes (SIGKILL of itself: survived, WorkerDiedError), queued calls
cancelled, running calls killed with kill_task, and pools of both kinds
(fork and spawn process pools) created, used and dropped, some shut down,
some only let go of. Every --interval seconds, between two rounds (when only
the long-lived pools exist), this process's resident memory, open fds, OS
threads and descendant processes are sampled and printed as a table row.

It fails (exit 1) if, after the warm-up (--warmup minutes: caches, the Go
heap's and the allocator's high-water marks, the workers' first starts),
a figure grows beyond its tolerance (TOLERANCE), or if any round's results
were wrong. A leak shows as growth in every interval; what the runtimes keep
once they have needed it does not grow further.
"""

import argparse
import gc
import multiprocessing
import os
import signal
import sys
import time

import gofutures

BIG = 3 << 20  # bytes of a big call's argument and of its result

# Growth allowed from the warm-up's sample to any later one, with the reason.
# RSS: the Go heap and glibc's arenas hold on to freed memory and settle
# between their high-water marks, which a few concurrent 3 MB calls move by
# tens of MB; a leak of even one small object per call (thousands of calls a
# minute) passes this within the run.
TOLERANCE = {
    "rss_mb": lambda base: max(48.0, base * 0.25),
    "fds": lambda base: 4,  # a pool being torn down by the collector at the sample
    "threads": lambda base: 8,  # the Go runtime adds an OS thread per blocking call in flight, up to a peak
    "children": lambda base: 0,  # between rounds only the long-lived pools' processes exist
}


# ---------------------------------------------------------------- the process's figures


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    raise LookupError(field)


def descendants(pid):
    """Processes below pid (children, and theirs: a spawn pool's zygote's workers)."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue  # gone
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sample():
    return {
        "rss_mb": int(_status("VmRSS")) / 1024,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": int(_status("Threads")),
        "children": len(descendants(os.getpid())),
    }


# ---------------------------------------------------------------- the work


def echo_big(data):
    return data[::-1]


def square(x):
    return x * x


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def small_calls(ex, n):
    fs = [ex.submit(square, i) for i in range(n)]
    expect(
        sorted(f.result() for f in gofutures.as_completed(fs)) == [i * i for i in range(n)], "as_completed's results"
    )
    done, not_done = gofutures.wait(fs, return_when=gofutures.ALL_COMPLETED)
    expect(len(done) == n and not not_done, "wait")
    expect(list(ex.map(square, range(n))) == [i * i for i in range(n)], "map")


def big_calls(ex, n):
    data = os.urandom(BIG)
    for f in [ex.submit(echo_big, data) for _ in range(n)]:
        expect(f.result() == data[::-1], "a big call's result")


def cancels(ex, workers):
    gate = [ex.submit(sleep_then, 0.3, None) for _ in range(workers)]
    queued = [ex.submit(square, i) for i in range(20)]
    cancelled = sum(f.cancel() for f in queued)
    for f in queued:
        expect(f.cancelled() or f.result() is not None, "a queued call that was not cancelled")
    gofutures.wait(gate)
    return cancelled


def crash(ex):
    try:
        ex.submit(die).result()
    except gofutures.WorkerDiedError:
        return
    raise AssertionError("a worker killed by SIGKILL in survive mode did not raise WorkerDiedError")


def kill_running(ex):
    f = ex.submit(sleep_then, 30, "not killed")
    deadline = time.monotonic() + 60
    while not f.running():
        expect(time.monotonic() < deadline, "a call to kill did not start within 60 s")
        time.sleep(0.01)
    ex.kill_task(f)
    expect(f.cancelled(), "kill_task's future is cancelled")


def throwaway_pools(i):
    # Created, used, then shut down, or only dropped (the collector and the
    # interpreter's exit must clean up after those), alternating.
    t = gofutures.ThreadPoolExecutor(4)
    small_calls(t, 50)
    if i % 2:
        t.shutdown(wait=True)
    del t
    if i % 5 == 0:
        method = ("fork", "spawn")[(i // 5) % 2]
        with gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as p:
            small_calls(p, 20)
            big_calls(p, 1)


def one_round(i, threads, processes, workers):
    small_calls(threads, 500)
    big_calls(threads, 4)
    small_calls(processes, 100)
    big_calls(processes, 2)
    cancels(threads, 4)
    cancels(processes, workers)
    crash(processes)
    if i % 3 == 0:
        kill_running(processes)
    throwaway_pools(i)
    return 1


# ---------------------------------------------------------------- the run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    parser.add_argument(
        "--warmup", type=float, help="minutes before the baseline sample (default: 5, or a third of a shorter run)"
    )
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = min(5.0, args.minutes / 3)
    workers = 2
    start = time.monotonic()
    end = start + args.minutes * 60
    columns = ["minute", "rounds", "rss_mb", "fds", "threads", "children"]
    print(
        "soak: %g min of mixed work, a sample every %g s, baseline after %g min"
        % (args.minutes, args.interval, args.warmup),
        flush=True,
    )
    print("%8s %8s %8s %6s %8s %9s" % tuple(columns), flush=True)
    rows, rounds, baseline = [], 0, None
    with gofutures.ThreadPoolExecutor(8) as threads, gofutures.ProcessPoolExecutor(workers, survive=True) as processes:
        next_sample = start
        while True:
            now = time.monotonic()
            if now >= next_sample:
                gc.collect()
                row = dict(sample(), minute=(now - start) / 60, rounds=rounds)
                rows.append(row)
                print("%8.1f %8d %8.1f %6d %8d %9d" % tuple(row[c] for c in columns), flush=True)
                if baseline is None and row["minute"] >= args.warmup:
                    baseline = row
                next_sample += args.interval
                if now >= end:
                    break
            rounds += one_round(rounds, threads, processes, workers)
        stats = processes.stats()
    print("process pool: %s" % stats, flush=True)
    if baseline is None:
        print("soak: the run ended before the warm-up did: nothing to compare")
        return 1
    grew = []
    for row in rows:
        if row["minute"] <= baseline["minute"]:
            continue
        for name, allowed in TOLERANCE.items():
            if row[name] - baseline[name] > allowed(baseline[name]):
                grew.append(
                    "%s %.1f -> %.1f at minute %.1f (allowed +%.1f)"
                    % (name, baseline[name], row[name], row["minute"], allowed(baseline[name]))
                )
    first, last = rows[0], rows[-1]
    print(
        "soak: %d rounds; start/warm-up/end: " % rounds
        + "; ".join("%s %.1f/%.1f/%.1f" % (name, first[name], baseline[name], last[name]) for name in TOLERANCE)
    )
    if grew:
        print("soak: FAILED, grew after the warm-up:\n  " + "\n  ".join(grew))
        return 1
    print("soak: flat after the warm-up (tolerances: RSS +max(48 MB, 25%), fds +4, threads +8, children +0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
