"""Shared fixtures for the gofutures test suite.

Everything here is a fixture (nothing autouse, nothing imported at module
level beyond the stdlib), so it stays harmless for other test folders under
tests/ and an import failure of gofutures shows up in the tests themselves.

Fixtures:
  make_pool     -- factory for gofutures.ThreadPoolExecutor; every pool it made
                   is shut down (wait=False, cancel_futures=True) at teardown,
                   so a failing test never leaves a pool that blocks exit.
  gate          -- a threading.Event that is always set at teardown; tasks
                   that block on it are released even if the test fails.
  http_server   -- a local HTTP server (127.0.0.1, port 0) with pages of
                   known sizes, a 403 page, and a refused URL.
  run_script    -- run Python code in a subprocess of the current interpreter
                   with gofutures importable, with a timeout.
  subprocess_env -- the environment those subprocesses get.
  spawn_script  -- start such a subprocess and interact with it (read lines
                   with a timeout, signal it, kill it).
"""

import http.server
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

# ---------------------------------------------------------------- pools


@pytest.fixture
def make_pool():
    import gofutures

    pools = []

    def make(*args, **kwargs):
        ex = gofutures.ThreadPoolExecutor(*args, **kwargs)
        pools.append(ex)
        return ex

    yield make
    for ex in pools:
        ex.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def gate():
    ev = threading.Event()
    yield ev
    ev.set()


# ---------------------------------------------------------------- HTTP

# Page sizes chosen after the outputs printed in the seed documents.
PAGES = {
    "/www.cnn.com/": 346963,
    "/europe.wsj.com/": 1001,
    "/www.bbc.co.uk/": 28325,
    "/empty/": 0,
}
FORBIDDEN = "/www.foxnews.com/"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == FORBIDDEN:
            self.send_error(403)
            return
        size = PAGES.get(self.path)
        if size is None:
            self.send_error(404)
            return
        body = b"x" * size
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output clean
        pass


class LocalWeb:
    """What the http_server fixture yields."""

    def __init__(self, base, refused_url):
        self.base = base
        self.refused_url = refused_url

    def url(self, path):
        return self.base + path

    @property
    def ok_urls(self):
        return {self.url(p): size for p, size in PAGES.items()}

    @property
    def forbidden_url(self):
        return self.url(FORBIDDEN)


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    # A socket bound to a port but never listening: connecting to it is
    # refused at once (ECONNREFUSED), and holding it keeps the port ours.
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    refused_url = "http://127.0.0.1:%d/" % closed.getsockname()[1]
    try:
        yield LocalWeb("http://127.0.0.1:%d" % server.server_address[1], refused_url)
    finally:
        server.shutdown()
        server.server_close()
        closed.close()
        thread.join(5)


# ---------------------------------------------------------------- subprocesses


def _subprocess_env():
    import gofutures

    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(gofutures.__file__)))
    env = os.environ.copy()
    parts = [pkg_parent]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONSAFEPATH", None)
    return env


class Spawned:
    """A running `python -c code` subprocess whose stdout lines are read
    by a background thread, so the test can wait for a line with a timeout."""

    def __init__(self, code, cwd):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=_subprocess_env(),
        )
        self.lines = []
        self._queue = queue.Queue()
        self._err = []
        self._out_thread = threading.Thread(target=self._pump_out, daemon=True)
        self._err_thread = threading.Thread(target=self._pump_err, daemon=True)
        self._out_thread.start()
        self._err_thread.start()

    def _pump_out(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def _pump_err(self):
        for chunk in self.proc.stderr:
            self._err.append(chunk)

    def wait_for_line(self, expected, timeout):
        """Wait until a stdout line equal to `expected` arrives; return True,
        or False on timeout / end of output."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            if line == expected:
                return True

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for exit; return the exit code, or None if still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._out_thread.join(5)
        self._err_thread.join(5)
        if not self._out_thread.is_alive():
            self.proc.stdout.close()
        if not self._err_thread.is_alive():
            self.proc.stderr.close()

    @property
    def stdout(self):
        self._out_thread.join(5)
        return "\n".join(self.lines) + ("\n" if self.lines else "")

    @property
    def stderr(self):
        self._err_thread.join(5)
        return "".join(self._err)


@pytest.fixture(scope="session")
def subprocess_env():
    """Environment for a child interpreter that must import the same gofutures."""
    return _subprocess_env()


@pytest.fixture
def spawn_script(tmp_path):
    spawned = []

    def spawn(code):
        s = Spawned(code, cwd=str(tmp_path))
        spawned.append(s)
        return s

    yield spawn
    for s in spawned:
        s.kill()


@pytest.fixture
def run_script(tmp_path):
    """run_script(code, timeout=30) -> CompletedProcess (text stdout/stderr).

    Fails the test (rather than hanging) if the script outlives the timeout."""

    def run(code, timeout=30):
        try:
            return subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=str(tmp_path),
                env=_subprocess_env(),
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail("script did not finish within %ss; output so far: %r" % (timeout, exc.stdout))

    return run
