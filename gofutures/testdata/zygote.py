"""A stand-in for the zygote in the Go tests of its client (zygote_test.go):
the protocol of zygote.go's doc comment, with a worker built in (one
command on fd 3, the answer on fd 4) in place of a worker program. The
real helper is checked against the same protocol on the Python side.
Needs python3 3.9+ (socket.recv_fds)."""
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys

LEN = struct.Struct(">I")
PARENT_PID = os.getppid()  # the process under test, which exec'd this one


def main():
    sock = socket.socket(fileno=3)
    children = {}  # pid: whether its exit was reported
    buf, fds = b"", []
    while True:
        readable, _, _ = select.select([sock], [], [], 0.005)
        report_exits(sock, children)
        if not readable:
            continue
        msg, got, _, _ = socket.recv_fds(sock, 1 << 16, 250)
        if not msg:
            break
        buf, fds = buf + msg, fds + got
        while len(buf) >= LEN.size and len(buf) >= LEN.size + LEN.unpack_from(buf)[0]:
            end = LEN.size + LEN.unpack_from(buf)[0]
            request, buf = json.loads(buf[LEN.size:end]), buf[end:]
            if "reap" in request:
                if children.pop(request["reap"], None) is not None:
                    os.waitpid(request["reap"], 0)
                sock.sendall(b"reaped %d\n" % request["reap"])
                continue
            pid = os.fork()
            if pid == 0:
                sock.close()  # the client must see EOF when this helper dies, not when its workers do
                os._exit(become_worker(request, fds))
            for fd in fds:
                os.close(fd)
            fds = []
            children[pid] = False
            sock.sendall(b"forked %d\n" % pid)
    # EOF: the client is gone, so are its workers.
    for pid, reported in children.items():
        if not reported:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return 0


def report_exits(sock, children):
    # Left zombies (WNOWAIT) until the client releases them.
    for pid in [pid for pid, reported in children.items() if not reported]:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            children[pid] = True
            code, sig = (info.si_status, 0) if info.si_code == os.CLD_EXITED else (-1, info.si_status)
            sock.sendall(b"exited %d %d %d\n" % (pid, code, sig))


def become_worker(request, fds):
    # stdout, stderr, 3, 4, ... as the request's descriptors, moved out of
    # the way first so that placing one never overwrites another.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in fds]
    for target, fd in zip([1, 2] + list(range(3, len(fds) + 1)), high):
        os.dup2(fd, target)
    os.environ.clear()
    os.environ.update(entry.split("=", 1) for entry in request["env"] if "=" in entry)
    try:
        return serve()
    except BaseException:
        return 70


def serve():
    command = os.read(3, 100).decode()
    if command.startswith("exit:"):
        return int(command[5:])
    if command == "info":
        os.write(4, ("%d %d %s" % (PARENT_PID, os.getppid(), os.environ.get("GOFUTURES_WORKER"))).encode())
        return 0
    if command == "wait":
        os.write(4, b"ready")
        os.read(3, 1)  # until EOF or killed
    return 0


if __name__ == "__main__":
    sys.exit(main())
