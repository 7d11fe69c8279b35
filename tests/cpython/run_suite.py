"""Runs CPython's own concurrent.futures test suite against gofutures.

Usage: python tests/cpython/run_suite.py [--part thread|process|all] [-v]

The suite ships with CPython's test package (test.test_concurrent_futures,
the layout of 3.13 and later). Before any of its modules is imported, the names it takes
from concurrent.futures are replaced by gofutures' (Future, wait,
as_completed, ThreadPoolExecutor, ProcessPoolExecutor, on the modules the
suite imports them from); the harness checks the substitution took effect.
Tests listed in exclusions.txt, and in exclusions-X.Y.txt for each X.Y up to
the running version (tests that version added or changed), each with its
reason, are not run; a line may name a whole test class. The last line is machine-readable:

    CPYTHON-SUITE part=thread passed=N failed=N errors=N skipped=N excluded=N

and the exit status is non-zero if any test that was run failed. A test
that hangs is stopped by faulthandler after PER_TEST_TIMEOUT seconds, with
every thread's traceback, failing the run.
"""

import argparse
import faulthandler
import os
import sys
import unittest

PER_TEST_TIMEOUT = 60
HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = [
    "test_future",
    "test_wait",
    "test_as_completed",
    "test_thread_pool",
    "test_process_pool",
    "test_shutdown",
    "test_init",
    "test_deadlock",
]
if sys.version_info >= (3, 14):
    MODULES.append("test_interpreter_pool")


def substitute():
    import concurrent.futures as cf
    import concurrent.futures._base as base
    import concurrent.futures.process as process
    import concurrent.futures.thread as thread

    import gofutures

    done = []
    targets = {
        "Future": [cf, base],
        "wait": [cf, base],
        "as_completed": [cf, base],
        "ThreadPoolExecutor": [cf, thread],
        "ProcessPoolExecutor": [cf, process],
    }
    if "InterpreterPoolExecutor" in cf.__all__:
        import concurrent.futures.interpreter as interpreter

        targets["InterpreterPoolExecutor"] = [cf, interpreter]
    for name, modules in targets.items():
        ours = getattr(gofutures, name, None)
        if ours is None:
            continue
        for module in modules:
            setattr(module, name, ours)
        done.append(name)
    print("substituted from gofutures: " + ", ".join(done), flush=True)
    return done


def exclusion_files():
    """exclusions.txt, then exclusions-X.Y.txt for every X.Y <= this Python."""
    files = [os.path.join(HERE, "exclusions.txt")]
    for name in sorted(os.listdir(HERE)):
        stem = name[len("exclusions-") : -len(".txt")]
        if (
            name.startswith("exclusions-")
            and name.endswith(".txt")
            and tuple(map(int, stem.split("."))) <= sys.version_info[:2]
        ):
            files.append(os.path.join(HERE, name))
    return files


def load_exclusions():
    excluded = {}
    for path in exclusion_files():
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                test_id, _, reason = line.partition("#")
                excluded[test_id.strip()] = reason.strip()
    return excluded


def iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


# Classes that test process pools without saying so in their name.
PROCESS_CLASSES = {"FailingInitializerResourcesTest"}


def in_part(test, part):
    if part == "all":
        return True
    name = type(test).__name__
    is_process = "Process" in name or name in PROCESS_CLASSES
    return is_process if part == "process" else not is_process


class TimedResult(unittest.TextTestResult):
    """Arms faulthandler for each test so that a hang fails loudly."""

    def startTest(self, test):
        faulthandler.dump_traceback_later(PER_TEST_TIMEOUT, exit=True)
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        faulthandler.cancel_dump_traceback_later()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["thread", "process", "all"], default="thread")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-k", dest="only", help="run only tests whose id contains this")
    args = parser.parse_args()
    try:
        import test.test_concurrent_futures
    except ImportError:
        print("CPython's test suite (test.test_concurrent_futures) is not installed for %s" % sys.executable)
        return 2
    names = substitute()
    if args.part in ("process", "all") and "ProcessPoolExecutor" not in names:
        print("gofutures has no ProcessPoolExecutor: process part not available")
        return 2

    from concurrent import futures

    from test.test_concurrent_futures import util

    import gofutures

    assert util.ThreadPoolMixin.executor_type is gofutures.ThreadPoolExecutor, "substitution failed"
    assert futures.Future is gofutures.Future and util.Future is gofutures.Future, "substitution failed"
    if "InterpreterPoolExecutor" in names:
        assert util.InterpreterPoolMixin.executor_type is gofutures.InterpreterPoolExecutor, "substitution failed"

    excluded = load_exclusions()
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    n_excluded = 0
    for module in MODULES:
        name = "test.test_concurrent_futures." + module
        for test in iter_tests(loader.loadTestsFromName(name)):
            if not in_part(test, args.part) or (args.only and args.only not in test.id()):
                continue
            short = test.id().replace("test.test_concurrent_futures.", "")
            if short in excluded or short.rpartition(".")[0] in excluded:
                n_excluded += 1
                continue
            suite.addTest(test)

    from test import support
    from test.support import threading_helper

    support.verbose = args.verbose
    runner = unittest.TextTestRunner(verbosity=2 if args.verbose else 1, resultclass=TimedResult)
    key = threading_helper.threading_setup()
    result = runner.run(suite)
    threading_helper.threading_cleanup(*key)
    passed = (
        result.testsRun
        - len(result.failures)
        - len(result.errors)
        - len(result.skipped)
        - len(result.unexpectedSuccesses)
    )
    print(
        "CPYTHON-SUITE part=%s passed=%d failed=%d errors=%d skipped=%d excluded=%d"
        % (
            args.part,
            passed,
            len(result.failures) + len(result.unexpectedSuccesses),
            len(result.errors),
            len(result.skipped),
            n_excluded,
        ),
        flush=True,
    )
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
