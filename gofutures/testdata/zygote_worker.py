"""A stand-in for gofutures/_worker.py in the Go tests of the zygote
(zygote_test.go): one command on fd 3, the answer on fd 4."""
import os

PARENT_PID = None  # set by the zygote


def main():
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
