"""gofutures.ProcessPoolExecutor used from a Jupyter notebook.

A notebook's functions live in a __main__ that has no file, so workers
cannot import them and gofutures sends them by value (cloudpickle). This
runs tests/notebooks/process_pool.ipynb under a real IPython kernel (via
nbclient) started with this very interpreter, checks what every cell
printed, and checks that the workers the notebook started (and the kernel
itself) are gone once the kernel has shut down, including those of a pool
the notebook never shut down. It also checks that map(progress=True) draws
its bar as a notebook widget.
"""

import json
import os
import re
import sys
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

import gofutures  # noqa: E402

NOTEBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notebooks", "process_pool.ipynb")
KERNEL_NAME = "gofutures-test-python"
CELL_TIMEOUT = 60

pytestmark = [
    # Warnings some jupyter_core / jupyter_client versions raise in this
    # process (not gofutures'); filterwarnings=error would turn them into failures.
    pytest.mark.filterwarnings("ignore:Jupyter is migrating its paths:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:There is no current event loop:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow.. is deprecated:DeprecationWarning"),
]

# What each code cell must print on stdout, by cell id: a regular expression
# for the whole text (fullmatch).
EXPECTED = {
    "cell-1": (
        r"kernel pid (?P<kernel>\d+)\n"
        r"python (?P<python>.+)\n"
        r"main has a file: False\n"
    ),
    "cell-2": re.escape(
        "[100, 101, 104, 109, 116, 125]\n[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\nran in a worker: True\n"
    ),
    "cell-3": re.escape("701\n[0, 3, 6, 9]\n"),
    "cell-4": re.escape(
        "[(97, True), (100, False), (7919, True), (7921, False), (104729, True)]\n"
        "TypeError: '<=' not supported between instances of 'int' and 'str'\n"
        "Point back: True 42\n"
        "NotebookError: 5\n"
    ),
    "cell-5": (
        r"1285\n"
        r"inner pids (?P<inner>\d+( \d+)?)\n"
        r"inner workers after with: \[\]\n"
    ),
    "cell-6": (
        r"worker count ok: True\n"
        r"worker pids (?P<workers>\d+( \d+)?)\n"
    ),
}


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernelspec that runs this interpreter, and Jupyter/IPython dirs in
    tmp_path (the user's own are neither read for kernels nor written)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "gofutures test (%s)" % sys.executable,
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jupyter-config"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    # The kernel imports the gofutures this test imported.
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(gofutures.__file__)))
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([pkg_parent] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
    )
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    return workdir


def _is_gone(pid, marker):
    """True if pid no longer runs the process we started: no such process,
    a zombie waiting for its (re)parent to reap it, or a reused pid."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in (b"Z", b"X") or marker not in cmdline


def _wait_gone(pids, marker, seconds):
    deadline = time.monotonic() + seconds
    while True:
        left = [p for p in pids if not _is_gone(p, marker)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _stdout_of(cell):
    stdout = []
    for out in cell.outputs:
        assert out.output_type == "stream", "cell %s: unexpected output %r" % (cell.id, out)
        assert out.name == "stdout", "cell %s wrote to %s: %r" % (cell.id, out.name, out.text)
        stdout.append(out.text)
    return "".join(stdout)


def test_process_pool_notebook(kernel_env):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.id for c in code_cells] == list(EXPECTED)
    assert all(not c.outputs for c in code_cells), "the notebook is committed with outputs"

    client = _client(nb, kernel_env)
    started = time.monotonic()
    client.execute()  # raises CellExecutionError if a cell fails; shuts the kernel down
    elapsed = time.monotonic() - started

    found = {}
    for cell in code_cells:
        text = _stdout_of(cell)
        match = re.fullmatch(EXPECTED[cell.id], text)
        assert match, "cell %s printed %r, expected /%s/" % (cell.id, text, EXPECTED[cell.id])
        found.update(match.groupdict())
        assert not [o for o in cell.outputs if o.output_type == "error"]

    assert os.path.samefile(found["python"], sys.executable), "the kernel ran another interpreter"
    kernel_pid = int(found["kernel"])
    assert kernel_pid != os.getpid()
    inner = [int(p) for p in found["inner"].split()]
    workers = [int(p) for p in found["workers"].split()]
    assert not set(inner) & set(workers)
    assert kernel_pid not in inner + workers

    # The pool of the with block was shut down inside the kernel; the open
    # one (ex) must go with the kernel.
    assert _wait_gone(inner, b"gofutures_worker", 10) == [], "with-block workers outlived their pool"
    assert _wait_gone([kernel_pid], b"ipykernel_launcher", 15) == [], "the kernel did not exit"
    assert _wait_gone(workers, b"gofutures_worker", 10) == [], "workers outlived the kernel"
    assert elapsed < 60, "the notebook took %.1fs" % elapsed


# ------------------------------------------------------------ progress bars


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_progress_bar_is_a_notebook_widget(kernel_env):
    # map(progress=True) uses tqdm.auto: in a notebook with ipywidgets, the
    # bar is a widget (not text on stderr) and it reaches the total.
    pytest.importorskip("tqdm", reason="tqdm not installed: pip install 'gofutures[progress]'")
    pytest.importorskip("ipywidgets", reason="ipywidgets not installed: a notebook bar needs it")
    code = (
        "import gofutures\n"
        "with gofutures.ThreadPoolExecutor(2) as ex:\n"
        "    print(sum(ex.map(abs, range(-20, 0), progress=True)))\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    client = _client(nb, kernel_env)
    client.execute()

    outputs = nb.cells[0].outputs
    streams = [o for o in outputs if o.output_type == "stream"]
    assert [(o.name, o.text) for o in streams] == [("stdout", "210\n")], outputs
    widgets = [o for o in outputs if o.output_type == "display_data" and WIDGET_MIME in o.data]
    assert len(widgets) == 1, outputs
    # nbclient keeps the widgets' last state: the bar's progress model ended at 20 of 20.
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    bars = [
        m["state"]
        for m in state.get("state", {}).values()
        if m.get("model_name") in ("FloatProgressModel", "IntProgressModel")
    ]
    assert [(b["value"], b["max"]) for b in bars] == [(20, 20)], state


def _client(nb, kernel_env):
    """A client that runs nb in the test kernel, from kernel_env."""
    return nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT,
        startup_timeout=60,
        allow_errors=False,
        resources={"metadata": {"path": str(kernel_env)}},
    )
