"""The built distributions, as a user without Go receives them.

Run by `make wheels` (each wheel) and `make test` (the default Python's
wheel), which pass GOFUTURES_DIST (a folder with the sdist and wheels, made
by the Makefile's wheel-X.Y) and GOFUTURES_WHEEL_PYTHON (the interpreter
whose wheel is tested); without them these tests are skipped. The test
process itself may be any Python: each check runs in a fresh venv of the
wheel's Python, with every folder holding a `go` removed from PATH.

What a user relies on:
  * the wheel installs and runs the seed examples on both pools (their
    tests: test_seed_examples.py, test_process_seeds.py) where no Go
    exists, in its own Python and in Debian's /usr/bin/python3 (a Python
    with no shared libpython loaded) when that is the same version, and
    (3.14, 3.15) in the sid root with every shared libpython hidden
    (tools/sidroot.sh --without-libpython, which sets
    SIDROOT_WITHOUT_LIBPYTHON: the test then checks that none loads);
  * importing gofutures maps no libpython into the process (the library
    takes Python's symbols from the interpreter, as every CPython extension
    must for manylinux);
  * the library needs nothing but glibc, has no RPATH/RUNPATH, exports only
    its two modules' entry points, is stripped, and the wheel is tagged
    manylinux;
  * the wheel and the sdist carry the programs worker processes run
    (gofutures/_child/);
  * the sdist, where Go is missing or too old, fails at once with one
    sentence saying what to install.
"""

import glob
import os
import re
import shutil
import subprocess
import tarfile
import zipfile

import pytest

DIST = os.environ.get("GOFUTURES_DIST")
PYTHON = os.environ.get("GOFUTURES_WHEEL_PYTHON")
SYSTEM_PYTHON = "/usr/bin/python3"
NO_LIBPYTHON = bool(os.environ.get("SIDROOT_WITHOUT_LIBPYTHON"))
pytestmark = [
    pytest.mark.skipif(
        not (DIST and PYTHON),
        reason="run by make wheels / make wheel-test (GOFUTURES_DIST and GOFUTURES_WHEEL_PYTHON unset)",
    ),
    pytest.mark.timeout(900),
]
GO_HINT = "building gofutures from source needs Go"
# glibc's own libraries (a library linked against glibc < 2.34 names
# libpthread apart from libc); anything else would have to be in the wheel.
GLIBC_LIBRARIES = {"libc.so.6", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2", "libm.so.6", "librt.so.1"}

# The seed documents' examples, on both pools: their tests, run by the
# wheel's venv against the installed wheel.
SEED_TESTS = ["test_seed_examples.py", "test_process_seeds.py"]
# What worker processes and the zygote run, loaded by path (a subpackage:
# missing from a distribution, only process pools would fail).
CHILD_PROGRAMS = ["_child/__init__.py", "_child/worker.py", "_child/zygote.py"]
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# Which libpython files are mapped before gofutures is imported and after
# both pools ran, and where gofutures was imported from.
MAPS = """
def maps():
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f if "libpython" in line})

before = maps()
import gofutures

if __name__ == "__main__":
    with gofutures.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(pow, [2, 3], [10, 10])) == [1024, 59049]
    with gofutures.ProcessPoolExecutor(2) as ex:
        assert ex.submit(pow, 2, 5).result() == 32
    print("before:", before)
    print("after:", maps())
    print("file:", gofutures.__file__)
    print("version:", gofutures.__version__)
"""

# Whether this Python's shared libpython (its soname, as its build names it)
# can be loaded, in a process of its own.
LIBPYTHON_LOADS = """
import ctypes, sysconfig
try:
    ctypes.CDLL(sysconfig.get_config_var("INSTSONAME"))
    print("loads")
except OSError as e:
    print("absent:", e)
"""


def _version_of(python):
    out = subprocess.run(
        [python, "-c", "import sys; print('%d%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout
    return out.strip()


def _no_go_env():
    """os.environ with every PATH folder that holds a `go` left out."""
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not os.path.exists(os.path.join(d, "go"))]
    env = dict(os.environ, PATH=os.pathsep.join(path))
    for name in ("GOROOT", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    assert shutil.which("go", path=env["PATH"]) is None
    return env


def _venv(python, where):
    subprocess.run([python, "-m", "venv", str(where)], check=True, env=_no_go_env())
    return os.path.join(str(where), "bin", "python")


def _run(cmd, cwd, timeout=600):
    return subprocess.run(
        cmd, cwd=str(cwd), env=_no_go_env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="module")
def wheel():
    tag = "cp" + _version_of(PYTHON)
    found = glob.glob(os.path.join(DIST, "gofutures-*-%s-%s-*.whl" % (tag, tag)))
    assert len(found) == 1, "one %s wheel expected in %s, found %s" % (tag, DIST, found)
    return found[0]


@pytest.fixture(scope="module")
def sdist():
    found = glob.glob(os.path.join(DIST, "gofutures-*.tar.gz"))
    assert len(found) == 1, "one sdist expected in %s, found %s" % (DIST, found)
    return found[0]


def _pythons():
    pythons = [pytest.param(PYTHON, id="its-python")]
    if PYTHON and os.path.exists(SYSTEM_PYTHON) and _version_of(SYSTEM_PYTHON) == _version_of(PYTHON):
        pythons.append(pytest.param(SYSTEM_PYTHON, id="system-python3"))
    return pythons


@pytest.mark.parametrize("python", _pythons())
def test_wheel_runs_the_seed_examples_without_go(python, wheel, tmp_path):
    vpython = _venv(python, tmp_path / "venv")
    # pytest-asyncio: pyproject.toml's pytest options name one of its settings.
    install = _run(
        [vpython, "-m", "pip", "install", "-q", wheel, "pytest", "pytest-timeout", "pytest-asyncio"], tmp_path
    )
    assert install.returncode == 0, install.stdout + install.stderr
    if NO_LIBPYTHON:  # the run's premise
        loads = _run([vpython, "-c", LIBPYTHON_LOADS], tmp_path)
        assert loads.stdout.startswith("absent:"), loads.stdout + loads.stderr
    (tmp_path / "maps.py").write_text(MAPS)
    proc = _run([vpython, "maps.py"], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    assert lines["file"].startswith(str(tmp_path / "venv")), lines
    # Importing gofutures and running both pools brought no libpython in:
    # the interpreter's own symbols served the library.
    assert lines["after"] == lines["before"], lines
    if python == SYSTEM_PYTHON:
        assert lines["after"] == "[]", lines
    metadata = _run([vpython, "-c", "import importlib.metadata as m; print(m.version('gofutures'))"], tmp_path)
    assert metadata.stdout.strip() == lines["version"]
    # The tests folder has no gofutures: they import the installed wheel.
    seeds = _run(
        [vpython, "-m", "pytest", "-q", "-c", "../pyproject.toml", "--rootdir", "..", *SEED_TESTS],
        TESTS_DIR,
        timeout=300,
    )
    assert seeds.returncode == 0, seeds.stdout + seeds.stderr


def _library(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.startswith("gofutures/_native/_native.") and n.endswith(".so")]
        return z.extract(name, str(tmp_path))


def test_wheel_library_needs_only_glibc(wheel, tmp_path):
    from elftools.elf.dynamic import DynamicSection  # pyelftools, in the test's venv
    from elftools.elf.elffile import ELFFile

    with open(_library(wheel, tmp_path), "rb") as f:
        elf = ELFFile(f)
        dynamic = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
        tags = [(t.entry.d_tag, getattr(t, "needed", None)) for t in dynamic.iter_tags()]
        unstripped = [s.name for s in elf.iter_sections() if s.name.startswith(".debug") or s.name == ".symtab"]
        exported = sorted(
            s.name
            for s in elf.get_section_by_name(".dynsym").iter_symbols()
            if s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] == "STB_GLOBAL"
        )
    needed = [lib for tag, lib in tags if tag == "DT_NEEDED"]
    assert "libc.so.6" in needed and set(needed) <= GLIBC_LIBRARIES, needed
    assert not [tag for tag, _ in tags if tag in ("DT_RPATH", "DT_RUNPATH")], tags
    assert exported == ["PyInit__hot", "PyInit__native"], exported
    assert not unstripped, unstripped  # nor debug information naming the build machine's paths
    assert re.search(r"[-.]manylinux_2_\d+_x86_64\.whl$", wheel), wheel


def test_wheel_carries_types_and_license(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = z.read(metadata).decode()
    for stub in ("__init__.pyi", "thread.pyi", "process.pyi", "py.typed"):
        assert "gofutures/" + stub in names
    for program in CHILD_PROGRAMS:
        assert "gofutures/" + program in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in text
    version = _version_of(PYTHON)
    assert "Classifier: Programming Language :: Python :: %s.%s" % (version[0], version[1:]) in text


def _build_sdist(sdist, tmp_path, extra_path=None):
    vpython = _venv(PYTHON, tmp_path / "venv")
    env_path = [extra_path] if extra_path else []
    cmd = [vpython, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "out"), sdist]
    env = _no_go_env()
    env["PATH"] = os.pathsep.join(env_path + [env["PATH"]])
    return subprocess.run(
        cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )


def test_sdist_carries_the_child_programs(sdist):
    with tarfile.open(sdist) as t:
        names = {name.split("/", 1)[1] for name in t.getnames() if "/" in name}
    for program in CHILD_PROGRAMS:
        assert "python/gofutures/" + program in names


def test_sdist_without_go_says_what_to_install(sdist, tmp_path):
    proc = _build_sdist(sdist, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(GO_HINT + r" \d+\.\d+(\.\d+)? or newer on PATH .*; no `go` command was found\.", out), out
    assert "Traceback" not in out, out


def test_sdist_with_an_old_go_says_what_to_install(sdist, tmp_path):
    fake = tmp_path / "oldgo"
    fake.mkdir()
    (fake / "go").write_text("#!/bin/sh\necho go1.20.3\n")
    (fake / "go").chmod(0o755)
    proc = _build_sdist(sdist, tmp_path, extra_path=str(fake))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(GO_HINT + r" .*; .*/oldgo/go is go1\.20\.3\.", out), out
    assert "Traceback" not in out, out
