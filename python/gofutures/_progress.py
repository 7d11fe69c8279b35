"""Progress bars for map(), as_completed() and any iterable (gofutures only).

The bar is a tqdm bar from tqdm.auto, so a Jupyter notebook shows a widget
and a terminal a text bar. tqdm is an optional dependency: it is imported
only when a bar is asked for, so `import gofutures` and progress=False
never touch it. A bar advances as the consumer receives each item, on the
consumer's thread: the executors' hot paths carry no per-item hook, and a
call made with progress=False runs exactly the code it runs without it.

What progress= accepts (map(), as_completed()):
  * False or None: no bar;
  * True: a new tqdm bar;
  * a dict: a new tqdm bar made with these keyword arguments (desc, unit,
    leave, ...; "total" overrides the count gofutures works out);
  * a tqdm-like class (tqdm.tqdm for a text bar even in a notebook):
    made with total=;
  * a tqdm-like object (has update() and close()): advanced by one per
    item and left open, since its owner may use it for more work (its
    total is the owner's to set).
"""

_INSTALL_HINT = "pip install 'gofutures[progress]'"


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError(
            "a progress bar was asked for (progress=...) but tqdm, which draws it, "
            "is not installed; install it with: %s" % _INSTALL_HINT
        ) from exc
    return tqdm


def bar_maker(progress):
    """Checks a progress= argument at the call, before any work is
    submitted: a wrong value raises TypeError and a missing tqdm
    ImportError there, not at the first result. Returns None for no bar,
    else make(total) -> (bar, owned)."""
    if progress is None or progress is False:
        return None
    if progress is True:
        tqdm = _tqdm()
        return lambda total: (tqdm(total=total), True)
    if isinstance(progress, dict):
        tqdm = _tqdm()
        kwargs = dict(progress)
        return lambda total: (tqdm(**{"total": total, **kwargs}), True)
    if isinstance(progress, type) and _is_bar(progress):  # a bar class: tqdm.tqdm, tqdm.notebook.tqdm
        return lambda total: (progress(total=total), True)
    if _is_bar(progress):
        return lambda total: (progress, False)
    raise TypeError(
        "progress must be True or False, a dict of tqdm keyword arguments, a "
        "tqdm-like class or object (with update() and close()); got %r" % (progress,)
    )


def _is_bar(obj):
    return callable(getattr(obj, "update", None)) and callable(getattr(obj, "close", None))


def count_of(iterables):
    """How many items map(fn, *iterables) yields, if every iterable has a
    len() (the shortest one wins, as in zip); None for generators and other
    iterators, which a bar cannot count without consuming them."""
    try:
        return min(len(it) for it in iterables) if iterables else 0
    except TypeError:
        return None


class Tracked:
    """An iterator over `items` that advances a bar by one per item it
    yields and closes the bar (if it made it) once the items end, with or
    without an exception: a failed call or a TimeoutError leaves no bar
    spinning. close() also closes the underlying iterator, as closing a
    map() result does, so its pending calls are cancelled."""

    __slots__ = ("_bar", "_items", "_owned")

    def __init__(self, items, bar, owned):
        self._items = items
        self._bar = bar
        self._owned = owned

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = next(self._items)
        except BaseException:  # StopIteration, the call's exception, TimeoutError, Ctrl-C
            self._finish()
            raise
        self._bar.update(1)
        return item

    def close(self):
        close = getattr(self._items, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self._finish()

    def _finish(self):
        bar, self._bar = self._bar, _Closed
        if self._owned and bar is not _Closed:
            bar.close()

    def __del__(self):
        self._finish()


class _Closed:
    """Stands for the bar once it is closed: a stray update() after the end
    changes nothing."""

    @staticmethod
    def update(n=1):
        pass


def track_map(progress, iterables, run):
    """map(..., progress=...): checks progress, calls run() (the same map
    without a bar) and wraps its result. The bar is made only after run()
    has submitted the work, so a map that fails to start leaves no bar."""
    make = bar_maker(progress)
    if make is None:
        return run()
    total = count_of(iterables)
    results = run()
    return Tracked(results, *make(total))


def track_completions(fs, timeout, progress):
    """as_completed(fs, timeout, progress=...): the bar counts the distinct
    futures in fs."""
    from . import _base

    make = bar_maker(progress)
    if make is None:
        return _base.as_completed(fs, timeout)
    fs = set(fs)
    return Tracked(_base.as_completed(fs, timeout), *make(len(fs)))


def _is_future(obj):
    # Duck-typed, as wait() and as_completed() take futures: stdlib,
    # gofutures, and dask's distributed.Future all have these two.
    return callable(getattr(obj, "done", None)) and callable(getattr(obj, "add_done_callback", None))


def progress(iterable_or_futures, total=None, desc=None, **tqdm_kwargs):
    """Shows a progress bar (tqdm.auto) while iterating.

    Given a collection of futures (a list, set, or a dict keyed by futures,
    each with done() and add_done_callback(): gofutures', the stdlib's or
    dask's), yields each future as it completes, as as_completed() does,
    and the bar counts completed futures:

        for f in gofutures.progress(futures):
            print(f.result())

    Given any other iterable (a map() result, an as_completed() iterator, a
    generator), yields its items in order and the bar counts them; total
    is len(iterable) when it has one, else unknown unless given:

        for r in gofutures.progress(ex.map(fn, data), total=len(data)):
            ...

    desc and other keyword arguments go to tqdm (unit, leave, position...).
    Needs tqdm: pip install 'gofutures[progress]'.
    """
    kwargs = dict(tqdm_kwargs, desc=desc)
    items = iterable_or_futures
    if iter(items) is not items:  # a collection: can be looked at twice
        futures = list(items)
        if futures and all(_is_future(f) for f in futures):
            if total is not None:
                kwargs["total"] = total
            return track_completions(futures, None, kwargs)
        if total is None:
            total = len(futures)
        items = futures
    kwargs["total"] = total
    make = bar_maker(kwargs)
    return Tracked(iter(items), *make(total))
