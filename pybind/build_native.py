"""Builds gofutures' native library: the Go core, the gopy-generated cold API
and the hand-written C hot path, as ONE c-shared library.

Usage: python pybind/build_native.py DEST_PACKAGE_DIR

Run with the Python the library is for (its headers and EXT_SUFFIX are used).
It needs Go on PATH; everything else comes from the project's go.mod (gopy
and goimports are pinned there as tools) and from the build requirements
(pybindgen). Each command is printed before it runs. The result is
DEST_PACKAGE_DIR/_native/: gopy's wrapper modules and the shared library,
which also defines the `_hot` extension module.

gopy only generates the bindings here (`gopy gen`); this script links the
library itself, because gopy's own build links libpython with an rpath to the
build machine's Python (link_library says why that must not ship).
"""
import os
import shutil
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env=None, cwd=ROOT):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


# The only symbols the library exports: the two extension modules' entry
# points. Everything else (the Go runtime, cgo's glue, gopy's and the hot
# path's C functions) binds inside the library and stays out of the process's
# global symbol namespace, where a second Go runtime (another gopy extension)
# could otherwise interpose on it.
EXPORTS = "{ global: PyInit__native; PyInit__hot; local: *; };\n"


def unlink_python(go_file):
    """Drops gopy's `#cgo LDFLAGS:` line (-L/-l for libpython, -Wl,-rpath to
    its folder) from the generated main package."""
    with open(go_file) as f:
        lines = f.readlines()
    kept = [line for line in lines if not line.startswith("#cgo LDFLAGS:")]
    if len(kept) != len(lines) - 1:
        sys.exit("build_native.py: expected one '#cgo LDFLAGS:' line in %s (has gopy's output changed?)" % go_file)
    with open(go_file, "w") as f:
        f.writelines(kept)


def link_library(out, name, env):
    """Builds gopy's generated main package in `out` as the c-shared library
    `name` and returns its path.

    Python's symbols are left undefined, resolved at load time from the
    interpreter that imports the library, as for any CPython extension (and
    as manylinux requires): no libpython in NEEDED, no RPATH/RUNPATH. A
    library linked to libpython works only where that exact file exists, and
    loads a second copy of the interpreter's code into a Python that has its
    own (one built without --enable-shared, as most are).
    """
    unlink_python(os.path.join(out, "native.go"))
    run(["goimports", "-w", "native.go"], env, cwd=out)
    # A first build only writes native_go.h, which pybindgen's C (build.py
    # writes native.c) includes; the library itself is the second build.
    run(["go", "build", "-buildmode=c-shared", "-o", "native_go.so", "."], env, cwd=out)
    os.remove(os.path.join(out, "native_go.so"))
    run([sys.executable, "build.py"], env, cwd=out)
    exports = os.path.join(out, "exports.map")
    with open(exports, "w") as f:
        f.write(EXPORTS)
    link_env = dict(env, CGO_LDFLAGS="")  # nothing from the environment either
    # -trimpath, -s -w and --strip-all: no symbol table, debug information or
    # path of the build machine in the library (Go's -s reaches GNU ld, not
    # every linker: zig's, used for the wheels, kept the C's DWARF without it).
    ldflags = "-s -w '-extldflags=-Wl,--version-script=%s -Wl,--strip-all'" % exports
    run(["go", "build", "-trimpath", "-buildmode=c-shared", "-ldflags=" + ldflags, "-o", name, "."],
        link_env, cwd=out)
    return os.path.join(out, name)


def build(dest_pkg):
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    work = os.path.join(ROOT, ".build")
    out = os.path.join(work, "gopy-" + suffix.split(".")[1])  # must be inside the Go module
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir, exist_ok=True)
    if os.path.isdir(out):
        shutil.rmtree(out)
    env = dict(os.environ)
    # gopy runs goimports by name, and its `go build` of the package while
    # generating does not pass the Python include path itself.
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    # GOFUTURES_CFLAGS: extra C flags, for checking builds (make sanitize).
    env["CGO_CFLAGS"] = "-I" + sysconfig.get_paths()["include"] + " -O2 " + os.environ.get("GOFUTURES_CFLAGS", "")
    env.setdefault("GOFLAGS", "-mod=mod")
    run(["go", "build", "-o", os.path.join(bindir, "goimports"), "golang.org/x/tools/cmd/goimports"], env)
    run(["go", "tool", "gopy", "gen", "-vm=" + sys.executable, "-output=" + out,
         "-name=native", "-no-make", "./pybind"], env)
    library = link_library(out, "_native" + suffix, env)
    target = os.path.join(dest_pkg, "_native")
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.makedirs(target)
    for path in (os.path.join(out, "pybind.py"), os.path.join(out, "go.py"), library):
        shutil.copy2(path, os.path.join(target, os.path.basename(path)))
    with open(os.path.join(target, "__init__.py"), "w") as f:
        f.write('"""Generated by pybind/build_native.py: gopy\'s bindings and the native library."""\n')
    print("native library ready in " + target, flush=True)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build(os.path.abspath(sys.argv[1]))
