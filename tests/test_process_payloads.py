"""Big arguments and results through a process pool arrive whole and exact
(issue 14's first step: the worker reads a frame of any size in time linear
in its size)."""

import hashlib
import multiprocessing

import pytest

import gofutures

TIMEOUT = 120
SIZES = [0, 1, 1 << 10, (1 << 16) - 1, 1 << 16, (1 << 16) + 13, 16 << 20, 64 << 20]


def _digest(data):
    return len(data), hashlib.sha256(data).hexdigest()


def _pattern(size):
    # Not one repeated byte: a frame boundary off by one would show.
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


@pytest.fixture(scope="module", params=["spawn", "fork"])
def pool(request):
    with gofutures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(request.param)) as ex:
        yield ex


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_argument_arrives_exact(pool, size):
    data = _pattern(size)
    assert pool.submit(_digest, data).result(timeout=TIMEOUT) == _digest(data)


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_result_comes_back_exact(pool, size):
    assert pool.submit(_pattern, size).result(timeout=TIMEOUT) == _pattern(size)


def test_big_and_small_calls_interleaved_in_a_chunked_map(pool):
    sizes = [3, 5 << 20, 0, 1 << 16, 7, 9 << 20] * 3
    data = [_pattern(n) for n in sizes]
    assert list(pool.map(_digest, data, chunksize=2, timeout=TIMEOUT)) == [_digest(d) for d in data]
