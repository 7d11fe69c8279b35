import sys

if sys.version_info >= (3, 14):
    import concurrent.futures.interpreter
    from collections.abc import Callable
    from concurrent.futures.interpreter import BrokenInterpreterPool as BrokenInterpreterPool
    from concurrent.interpreters import ExecutionFailed as ExecutionFailed
    from typing import Any

    from .thread import ThreadPoolExecutor

    __all__ = ["InterpreterPoolExecutor", "BrokenInterpreterPool", "ExecutionFailed"]

    class InterpreterPoolExecutor(ThreadPoolExecutor, concurrent.futures.interpreter.InterpreterPoolExecutor):
        # Each worker thread of gofutures' Go pool owns a subinterpreter with
        # its own GIL; what can be sent is the stdlib's contract.
        def __init__(
            self,
            max_workers: int | None = None,
            thread_name_prefix: str = "",
            initializer: Callable[..., object] | None = None,
            initargs: tuple[Any, ...] = (),
        ) -> None: ...
