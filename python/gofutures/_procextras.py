"""The Python half of the process pool's opt-in extras (survive,
task_timeout, max_worker_memory): checking their arguments (a call that
failed alone is worded by _outcome).

Kept out of process.py so that the executor reads as the stdlib's, with
the extras' details here.
"""

import operator
import resource


def check_extras(survive, task_timeout, max_worker_memory):
    """Validates the opt-in keywords; returns them as the pool config takes them:
    (survive, task timeout in ns or 0, memory limit in bytes or 0)."""
    if not isinstance(survive, bool):
        raise TypeError("survive must be True or False, got %r" % (survive,))
    ns = 0 if task_timeout is None else timeout_ns("task_timeout", task_timeout)
    if max_worker_memory is None:
        max_worker_memory = 0
    elif isinstance(max_worker_memory, bool) or not isinstance(max_worker_memory, int):
        raise TypeError("max_worker_memory must be a number of bytes (an int) or None, got %r" % (max_worker_memory,))
    elif max_worker_memory <= 0:
        raise ValueError("max_worker_memory must be a positive number of bytes, got %r" % (max_worker_memory,))
    return survive, ns, max_worker_memory


def timeout_ns(name, seconds):
    """A time limit in seconds, checked, in nanoseconds (at least 1)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError("%s must be a number of seconds, got %r" % (name, seconds))
    if not 0 < seconds < 10**9:  # also rejects NaN and infinity
        raise ValueError("%s must be a positive, finite number of seconds, got %r" % (name, seconds))
    return max(1, int(seconds * 1e9))


def check_worker_count(max_workers):
    """max_workers as an int, refused (before anything starts) when it is
    not a whole number or more processes than this system can have: a
    'fork' pool starts them all at its first task, and 10**9 of them would
    bring the machine to its out-of-memory killer before failing."""
    try:
        count = operator.index(max_workers)
    except TypeError:
        raise TypeError("max_workers must be an integer, got %r" % (max_workers,)) from None
    limit, why = _process_limit()
    if limit is not None and count > limit:
        raise ValueError(
            "max_workers=%d is more worker processes than this system allows (%s=%d); "
            "a process pool needs at most one worker per CPU to be busy" % (count, why, limit)
        )
    return count


def _process_limit():
    """The most processes this user may have: the smallest of
    RLIMIT_NPROC, kernel.pid_max and kernel.threads-max that is known."""
    found = []
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY:
        found.append((soft, "RLIMIT_NPROC"))
    for name in ("pid_max", "threads-max"):
        try:
            with open("/proc/sys/kernel/" + name) as f:
                found.append((int(f.read()), "kernel." + name))
        except (OSError, ValueError):
            pass
    return min(found) if found else (None, None)
