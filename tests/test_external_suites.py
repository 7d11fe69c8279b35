"""Other projects' own tests, run against gofutures in place of
concurrent.futures: asgiref's tests/test_sync.py (thread-sensitive
executors, a multiprocessing fork of a process that used the pools) and
dask's dask/tests/test_multiprocessing.py (fork-context pools that must see
the parent's run-time state).

The test files come from the projects' released sdists, at the version of
the package installed here (pip download); a conftest puts gofutures where
concurrent.futures was before the tests import anything. Skipped, saying
why, when the package or its sdist cannot be had.
"""

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import textwrap

import pytest

# The import statement's view only: `from concurrent.futures import X` and
# `import concurrent.futures` in their code get gofutures. The stdlib's own
# modules (asyncio's isinstance checks in wrap_future and
# set_default_executor) keep the stdlib's classes, which gofutures' objects
# are instances of: what a program that swaps its imports gets.
SWAP_CONFTEST = """
import sys

import gofutures
import gofutures.process
import gofutures.thread

sys.modules["concurrent.futures"] = gofutures
"""

SUITES = {
    # package: (file in its sdist, extra pytest ini lines)
    "asgiref": ("tests/test_sync.py", "asyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"),
    "dask": ("dask/tests/test_multiprocessing.py", ""),
}


def _sdist_file(package, member, dest):
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("%s is not installed (pip install '.[test]' installs it)" % package)
    got = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(dest),
            "%s==%s" % (package, version),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    archives = [p for p in dest.iterdir() if p.name.endswith(".tar.gz")]
    if got.returncode != 0 or not archives:
        pytest.skip("cannot download the sdist of %s %s: %s" % (package, version, got.stderr.strip()[-300:]))
    with tarfile.open(archives[0]) as tar:
        for info in tar.getmembers():
            if info.name.split("/", 1)[-1] == member:
                data = tar.extractfile(info).read()
                break
        else:
            pytest.fail("%s is not in %s" % (member, archives[0].name))
    return version, data


@pytest.mark.timeout(900)
@pytest.mark.parametrize("package", sorted(SUITES))
def test_their_suite_passes_on_gofutures(tmp_path, package):
    member, ini = SUITES[package]
    version, source = _sdist_file(package, member, tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / os.path.basename(member)).write_bytes(source)
    (run / "conftest.py").write_text(SWAP_CONFTEST)
    (run / "pytest.ini").write_text("[pytest]\n" + ini)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            "--timeout",
            "120",
            os.path.basename(member),
        ],
        cwd=run,
        capture_output=True,
        text=True,
        timeout=840,
    )
    tail = "\n".join(proc.stdout.splitlines()[-25:])
    assert proc.returncode == 0, "%s %s's %s failed on gofutures:\n%s\n%s" % (
        package,
        version,
        member,
        tail,
        proc.stderr[-2000:],
    )
    assert " passed" in tail, tail


def test_the_swap_reaches_them(tmp_path):
    (tmp_path / "conftest.py").write_text(SWAP_CONFTEST)
    (tmp_path / "test_swap.py").write_text(
        textwrap.dedent("""
        import sys
        from concurrent.futures import ThreadPoolExecutor, Future
        import gofutures

        def test_swap():
            assert sys.modules["concurrent.futures"] is gofutures
            assert ThreadPoolExecutor is gofutures.ThreadPoolExecutor and Future is gofutures.Future
    """)
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
