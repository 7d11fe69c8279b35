"""Keeps os.closerange from closing the descriptors the Go runtime and the
pools need.

A process that holds a Go runtime aborts ("fatal error: runtime: netpoll
failed") when its poller's descriptor is closed, and a process pool whose
pipes are closed under it could only break. Code that closes every
descriptor it does not know of, os.closerange(3, N) as daemonizing
libraries do, would do both. Once the native library is loaded,
os.closerange closes the range except those descriptors (the Go side lists
them: gofutures/owned.go); everything else in the range is closed as
before. Descriptors closed one by one with os.close are not guarded (code
that closes a descriptor by number owns it, or has a bug).
"""

import functools
import os


def install(owned):
    """Replaces os.closerange by a guarded one; owned() returns the
    descriptors to keep (a sequence of ints)."""
    original = os.closerange
    if getattr(original, "_gofutures_guarded", False):
        return

    runtime_pid = os.getpid()

    @functools.wraps(original)
    def closerange(fd_low, fd_high, /):
        if os.getpid() != runtime_pid:
            # A forked child (a daemon's): the runtime's threads and the
            # pools stayed in the parent; nothing here can use them, and
            # calling into the runtime could hang on a lock some thread
            # held at the fork.
            return original(fd_low, fd_high)
        low = fd_low
        for fd in sorted(owned()):
            if low <= fd < fd_high:
                original(low, fd)
                low = fd + 1
        original(low, fd_high)

    closerange._gofutures_guarded = True
    os.closerange = closerange
