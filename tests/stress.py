"""make stress: the test suites again and again on a machine kept busy, to
find tests that depend on timing.

Usage: python tests/stress.py --python PY [--suite-python PY] [--rounds N]
                              [--only pytest|cpython] [--no-taskset] [--logs DIR]

Every core runs a CPU hog (a Python process spinning, started here and
stopped at the end) for the whole run. Each round runs the pytest suite with
--python and CPython's own suite (tests/cpython/run_suite.py --part all) with
--suite-python; the last round runs both pinned to one core with taskset
(util-linux), sharing it with a hog, unless --no-taskset. Each run prints one
line as it ends (what failed, how long it took, where its log is); the exit
status is non-zero if any run failed. 0 failures is the bar: a flake is fixed
by making the test or the code right, not by a longer timeout.
"""

import argparse
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOG = "while 1: pass"


def _die_with_parent():
    # Linux: a hog gets SIGKILL when this script dies, even by SIGKILL, so
    # that no hog outlives a run that was stopped.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass


def start_hogs(n):
    return [subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=_die_with_parent) for _ in range(n)]


def stop_hogs(hogs):
    for p in hogs:
        p.send_signal(signal.SIGKILL)
    for p in hogs:
        p.wait()


def pytest_command(python):
    return [
        python,
        "-m",
        "pytest",
        "-q",
        "-c",
        os.path.join(ROOT, "pyproject.toml"),
        "--rootdir",
        ROOT,
        ".",
    ], os.path.join(ROOT, "tests")


def suite_command(python):
    return [python, os.path.join(ROOT, "tests", "cpython", "run_suite.py"), "--part", "all"], ROOT


def failures(kind, output):
    """The names of the tests that failed, read from the run's output."""
    if kind == "pytest":
        return re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    # unittest: "FAIL: test_x (package.module.Class.test_x)" (3.11: "(package.module.Class)")
    names = re.findall(r"^(?:FAIL|ERROR): (\S+) \(([^)]*)\)", output, re.M)
    hung = re.findall(r"^Timeout \(", output, re.M)  # faulthandler stopped a hung test
    return [where if where.endswith("." + name) else "%s.%s" % (where, name) for name, where in names] + [
        "a hung test (faulthandler's dump in the log)"
    ] * len(hung)


def summary_of(kind, output):
    if kind == "pytest":
        m = re.findall(r"^=*\s*(\d+ (?:passed|failed).*?)\s*=*$", output, re.M)
    else:
        m = re.findall(r"^CPYTHON-SUITE (.*)$", output, re.M)
    return m[-1] if m else "no summary (crashed?)"


def run_once(kind, python, label, log_path, pin):
    command, cwd = (pytest_command if kind == "pytest" else suite_command)(python)
    if pin:
        command = ["taskset", "-c", "0"] + command
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.run(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    took = time.monotonic() - start
    with open(log_path, errors="replace") as log:
        output = log.read()
    failed = failures(kind, output)
    ok = proc.returncode == 0
    status = "ok" if ok else "FAILED (exit %d)" % proc.returncode
    print(
        "%-28s %-16s %6.1f s  %s; %s  [%s]"
        % (
            label,
            status,
            took,
            summary_of(kind, output),
            ", ".join(failed) if failed else "nothing failed",
            os.path.relpath(log_path, ROOT),
        ),
        flush=True,
    )
    return ok, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", required=True, help="interpreter of the pytest runs")
    parser.add_argument("--suite-python", help="interpreter of CPython's suite (default: --python)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--only", choices=["pytest", "cpython"])
    parser.add_argument("--no-taskset", action="store_true", help="no round pinned to one core")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1, help="CPU hogs (default: one per core)")
    parser.add_argument("--logs", default=os.path.join(ROOT, "stress-logs"))
    args = parser.parse_args()
    kinds = [k for k in ("pytest", "cpython") if args.only in (None, k)]
    # Absolute (the pytest runs start in tests/), not resolved: a venv's
    # python is a link that must keep its path.
    pythons = {"pytest": os.path.abspath(args.python), "cpython": os.path.abspath(args.suite_python or args.python)}
    pin_last = not args.no_taskset
    if pin_last and shutil.which("taskset") is None:
        print("taskset (util-linux) is not installed: the pinned round is skipped")
        pin_last = False
    os.makedirs(args.logs, exist_ok=True)

    hogs = start_hogs(args.hogs)
    print(
        "stress: %d round(s) of %s with %d CPU hog(s)%s; logs in %s"
        % (
            args.rounds,
            " + ".join(kinds),
            len(hogs),
            ", the last pinned to one core" if pin_last else "",
            os.path.relpath(args.logs, ROOT),
        ),
        flush=True,
    )
    failed_runs = []
    try:
        for i in range(1, args.rounds + 1):
            pin = pin_last and i == args.rounds
            for kind in kinds:
                label = "round %d/%d %s%s" % (i, args.rounds, kind, " (1 core)" if pin else "")
                log = os.path.join(args.logs, "round-%02d-%s.log" % (i, kind))
                ok, failed = run_once(kind, pythons[kind], label, log, pin)
                if not ok:
                    failed_runs.append((label, failed))
    finally:
        stop_hogs(hogs)
    runs = args.rounds * len(kinds)
    print("stress: %d of %d runs failed" % (len(failed_runs), runs))
    for label, failed in failed_runs:
        print("  %s: %s" % (label, ", ".join(failed) or "see its log"))
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
