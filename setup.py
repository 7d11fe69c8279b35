"""setup.py exists only for its build hook: building the package builds the
native library (Go core + gopy bindings + C hot path) with
pybind/build_native.py and places it inside the package. Metadata is in
pyproject.toml."""
import os
import re
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_go():
    """Stops the build at its start, in one sentence, where no Go toolchain as
    new as go.mod's `go` line is on PATH; otherwise the failure would be a
    traceback from deep inside the Go/gopy build."""
    with open(os.path.join(HERE, "go.mod")) as f:
        required = re.search(r"^go\s+(\S+)", f.read(), re.MULTILINE).group(1)
    hint = ("building gofutures from source needs Go %s or newer on PATH (https://go.dev/dl/), or a "
            "Python and platform that gofutures publishes a wheel for" % required)
    go = shutil.which("go")
    if go is None:
        sys.exit("error: %s; no `go` command was found." % hint)
    # GOTOOLCHAIN=local: the version of this go binary, without a download.
    found = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, cwd=HERE,
                           env=dict(os.environ, GOTOOLCHAIN="local")).stdout.strip()
    if _version_tuple(found) < _version_tuple(required):
        sys.exit("error: %s; %s is %s." % (hint, go, found or "an unknown version"))


class BuildWithNative(build_py):
    def run(self):
        check_go()
        super().run()
        script = os.path.join(HERE, "pybind", "build_native.py")
        dest = os.path.join(os.path.abspath(self.build_lib), "gofutures")
        cmd = [sys.executable, script, dest]
        print("running " + " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=HERE, check=True)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: it is platform-specific."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithNative}, distclass=BinaryDistribution)
