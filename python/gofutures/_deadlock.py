"""DeadlockError: what a wait that could never end raises instead of hanging.

Pure Python (no native library), so that `import gofutures` can export it
eagerly and the C half of the binding can import it at load time.
"""

__all__ = ["DeadlockError"]


class DeadlockError(RuntimeError):
    """A task on a gofutures thread-pool worker waited for a future that can
    never finish: the futures wait on each other in a cycle, or the future is
    queued in a pool whose workers are all blocked waiting (for instance a
    task that submits to its own single-worker pool and waits for the
    result). With the stdlib the wait would hang forever.

    `futures` holds the futures named in the message, in its order. To let a
    pool take nested submits instead, create it with grow_on_block=True; a
    cycle of waits is a bug in the program either way.
    """

    def __init__(self, message, futures=()):
        super().__init__(message)
        self.futures = tuple(futures)

    def __reduce__(self):
        # Futures do not pickle; the message says what they were.
        return type(self), (self.args[0],)
