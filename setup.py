"""setup.py exists only for its build hook: building the package builds the
native library (Go core + gopy bindings + C hot path) with
pybind/build_native.py and places it inside the package. Metadata is in
pyproject.toml."""
import os
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithNative(build_py):
    def run(self):
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
