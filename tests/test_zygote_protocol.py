"""The real zygote (python/gofutures/_child/zygote.py), started by the
command the pools use, against the protocol its client speaks
(gofutures/zygote.go's doc comment; the Go tests run a stand-in): fork
requests with their descriptors, exits reported with the pid kept until
released, and EOF ending the helper and its workers. A stand-in worker
(one command on fd 3, the answer on fd 4) takes the real one's place.
Linux only where it reads /proc. No timing is asserted."""

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from gofutures import _childstart

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")

TIMEOUT = 30

STAND_IN_WORKER = """\
import os

PARENT_PID = None  # set by the zygote


def main():
    command = os.read(3, 100).decode()
    if command.startswith("exit:"):
        return int(command[5:])
    if command == "info":
        number = os.environ.get("GOFUTURES_WORKER")
        os.write(4, ("%d %d %s %s" % (PARENT_PID, os.getppid(), number, os.getcwd())).encode())
        return 0
    if command == "wait":
        os.write(4, b"ready")
        os.read(3, 1)  # until EOF or killed
    return 0
"""

# Puts descriptor argv[1] on fd 3 and execs the rest of argv, as the Go
# client starts the helper.
PLACE_ON_FD_3 = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.execv(sys.argv[2], sys.argv[2:])"


class Zygote:
    """The helper, on the other end of a unix stream socket (its fd 3)."""

    def __init__(self, worker_file):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # The pools' command (_childstart.zygote_command), with the stand-in worker.
        argv = [sys.executable, "-c", _childstart.ZYGOTE_COMMAND, _childstart.ZYGOTE_FILE, worker_file]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PLACE_ON_FD_3, str(theirs.fileno())] + argv,
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = ours
        self._buf = b""
        self.lines = []  # answers received and not yet expected

    def request(self, data, fds=()):
        body = json.dumps(data).encode()
        socket.send_fds(self.sock, [struct.pack(">I", len(body)) + body], list(fds))

    def fork(self, env, cwd):
        """Asks for a worker; returns (pid, its task pipe, its result pipe)."""
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        self.request({"env": env, "cwd": cwd, "prepare": {}}, [1, 2, task_r, result_w])
        os.close(task_r)
        os.close(result_w)
        return int(self.expect("forked")[1]), task_w, result_r

    def expect(self, *words):
        """The first answer starting with words (as text), waited for."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for line in self.lines:
                fields = line.split()
                if fields[: len(words)] == [str(w) for w in words]:
                    self.lines.remove(line)
                    return fields
            left = deadline - time.monotonic()
            assert left > 0, "no answer %r from the zygote (got %r)" % (words, self.lines)
            if select.select([self.sock], [], [], left)[0]:
                chunk = self.sock.recv(4096)
                assert chunk, "the zygote closed its socket"
                self._buf += chunk
                *complete, self._buf = self._buf.split(b"\n")
                self.lines += [line.decode() for line in complete]

    def close(self):
        self.sock.close()
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def zygote(tmp_path):
    worker = tmp_path / "stand_in_worker.py"
    worker.write_text(STAND_IN_WORKER)
    z = Zygote(str(worker))
    yield z
    z.close()


def _env(number):
    return ["%s=%s" % item for item in os.environ.items() if item[0] != "GOFUTURES_WORKER"] + [
        "GOFUTURES_WORKER=%d" % number
    ]


def _ask(task_w, result_r, command):
    os.write(task_w, command.encode())
    return os.read(result_r, 4096).decode()


def _state(pid):
    """(state, ppid) of pid, or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0].decode(), int(fields[1])


def _gone(pid):
    deadline = time.monotonic() + TIMEOUT
    while _state(pid) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_worker_gets_its_descriptors_environment_and_directory(zygote, tmp_path):
    pid, task_w, result_r = zygote.fork(_env(3), str(tmp_path))
    parent, ppid, number, cwd = _ask(task_w, result_r, "info").split(" ", 3)
    # PARENT_PID is the pool's process (here: us), though the zygote forked it.
    assert (int(parent), ppid, number, cwd) == (os.getpid(), str(zygote.proc.pid), "3", str(tmp_path))
    os.close(task_w)
    assert zygote.expect("exited", pid) == ["exited", str(pid), "0", "0"]
    os.close(result_r)


def test_exits_are_reported_and_the_pid_kept_until_released(zygote, tmp_path):
    pid, task_w, result_r = zygote.fork(_env(1), str(tmp_path))
    os.write(task_w, b"exit:7")
    assert zygote.expect("exited", pid) == ["exited", str(pid), "7", "0"]
    # A zombie until released: its pid cannot be reused meanwhile.
    assert _state(pid) == ("Z", zygote.proc.pid)
    zygote.request({"reap": pid})
    zygote.expect("reaped", pid)
    assert _gone(pid)

    pid, task_w, result_r = zygote.fork(_env(2), str(tmp_path))
    assert _ask(task_w, result_r, "wait") == "ready"
    os.kill(pid, signal.SIGKILL)
    assert zygote.expect("exited", pid) == ["exited", str(pid), "-1", str(int(signal.SIGKILL))]
    assert _state(pid) == ("Z", zygote.proc.pid)
    zygote.request({"reap": pid})
    zygote.expect("reaped", pid)
    for fd in (task_w, result_r):
        os.close(fd)


def test_eof_ends_the_zygote_and_the_workers_it_still_has(zygote, tmp_path):
    pid, task_w, result_r = zygote.fork(_env(1), str(tmp_path))
    assert _ask(task_w, result_r, "wait") == "ready"
    assert zygote.close() == 0
    assert _gone(pid), "a worker outlived its zygote"
    for fd in (task_w, result_r):
        os.close(fd)
