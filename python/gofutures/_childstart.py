"""How the pool's process starts the child programs (_child/): the
commands that run them by path, and what the zygote readies for a pool's
workers before it forks them. Runs in the parent only; the children never
import it."""

import os
import sys

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child")
WORKER_FILE = os.path.join(_CHILD, "worker.py")
ZYGOTE_FILE = os.path.join(_CHILD, "zygote.py")

# The code passed to `python -c` to run a worker by path (argv[1]): the
# module is named gofutures_worker, which also names the process in `ps`,
# and the gofutures package is never imported.
WORKER_COMMAND = (
    "import importlib.util as u, sys; "
    "s = u.spec_from_file_location('gofutures_worker', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); sys.exit(m.main())"
)

# The code passed to `python -c` to run the zygote by path: argv[1] is its
# file, argv[2] the worker's, which it loads (zygote.load) under the name an
# exec'd worker gives it.
ZYGOTE_COMMAND = (
    "import importlib.util as u, sys; "
    "s = u.spec_from_file_location('gofutures_zygote', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); "
    "sys.exit(m.main(m.load('gofutures_worker', sys.argv[2])))"
)


def worker_command():
    """The argv of a worker started by exec of this interpreter."""
    return [sys.executable, "-c", WORKER_COMMAND, WORKER_FILE]


def zygote_command():
    """The argv of the zygote, or [] where GOFUTURES_ZYGOTE=0 (read per
    pool, so that a program, or a test, can switch it)."""
    if os.environ.get("GOFUTURES_ZYGOTE", "1") == "0":
        return []
    return [sys.executable, "-c", ZYGOTE_COMMAND, ZYGOTE_FILE, WORKER_FILE]


# Standard modules never preloaded: they touch the terminal, print, open a
# browser, or are only for interactive use.
_NEVER_PRELOAD = frozenset(
    [
        "__main__",
        "__mp_main__",
        "_curses",
        "_curses_panel",
        "_pyrepl",
        "_tkinter",
        "antigravity",
        "code",
        "curses",
        "ensurepip",
        "idlelib",
        "pdb",
        "pydoc",
        "readline",
        "rlcompleter",
        "site",
        "test",
        "this",
        "tkinter",
        "turtle",
        "turtledemo",
        "webbrowser",
    ]
)


def stdlib_modules(modules):
    """The modules (names, in import order) of the standard library that
    the parent has loaded from the standard library's own directory: the
    ones a worker re-importing the parent's main script would most likely
    import again, and the zygote can import for all workers at once. A
    module of the parent that shadows a standard one (a random.py next to
    the script) is not the standard one, so it is left out."""
    stdlib = os.path.dirname(os.__file__) + os.sep
    names = []
    for name, module in list(modules.items()):
        if name.partition(".")[0] in _NEVER_PRELOAD:
            continue
        path = getattr(module, "__file__", None)
        if (
            isinstance(path, str)
            and path.startswith(stdlib)
            and "site-packages" not in path
            and "dist-packages" not in path
        ):
            names.append(name)
    return names


def preparation(modules, main):
    """What the zygote readies for the parent's workers before it forks
    them (the "prepare" object of each fork request, read by
    zygote._Prepared): the standard modules to preload (stdlib_modules),
    the gofutures package where the parent has it (`package`: name and
    __init__ file), and main, the script that each worker runs as
    __mp_main__ (init_main_from_path of multiprocessing's spawn
    preparation, or None), to compile once."""
    data = {"preload": stdlib_modules(modules)}
    package = modules.get(__name__.rpartition(".")[0])
    if package is not None and isinstance(getattr(package, "__file__", None), str):
        data["package"] = [package.__name__, package.__file__]
    if main is not None:
        data["main"] = main
    return data
