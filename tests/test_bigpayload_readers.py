"""The readers that unpickle a big payload (gofutures._bigpayload): the
worker's over the payload's memfd and the parent's over the memory an answer
was read into. A value above glibc's largest mmap threshold (32 MiB) is read
into memory advised for huge pages; what a user relies on is that it comes
out exact, however the input hands it over."""

import io
import os
import pickle

import numpy as np
import pytest

from gofutures import _bigpayload

BIG = 40 << 20  # above _OWN_MAPPING: the advised path


def _payload(value):
    """value laid out as _write lays it out, in a memfd; its descriptor."""
    pickled = _bigpayload.dump(value)
    fd, _size = _bigpayload._write(pickled, -1)
    pickled.clear()
    return fd


def _region(fd):
    size = os.fstat(fd).st_size
    region = bytearray(size)
    assert os.preadv(fd, [region], 0) == size
    return region


class _ShortReads(io.RawIOBase):
    """A raw file that hands out at most limit bytes per read, as read(2)
    does past 2 GiB."""

    def __init__(self, fd, limit):
        self._fd, self._position, self._limit = fd, 0, limit

    def readable(self):
        return True

    def readinto(self, buffer):
        with memoryview(buffer) as view:
            n = os.preadv(self._fd, [view[: self._limit]], self._position)
        self._position += n
        return n


@pytest.fixture
def big_value():
    data = os.urandom(BIG)
    array = np.arange(BIG // 8, dtype=np.float64)
    return {"data": data, "array": array, "text": "ünïcode " * (1 << 18), "small": [1, "two", b"3"]}


def _same(got, want):
    assert got["data"] == want["data"] and got["small"] == want["small"] and got["text"] == want["text"]
    assert np.array_equal(got["array"], want["array"])


def test_the_worker_reads_a_big_value_whole_through_short_reads(big_value):
    fd = _payload(big_value)
    try:
        file = _ShortReads(fd, 3 << 20)
        _stream, count = _bigpayload._HEADER.unpack(file.read(_bigpayload._HEADER.size))
        spans = [_bigpayload._SPAN.unpack(file.read(_bigpayload._SPAN.size)) for _ in range(count)]
        buffers = [_region(fd)[offset : offset + length] for offset, length in spans]
        got = pickle.Unpickler(_bigpayload._FileReader(file), buffers=buffers).load()
    finally:
        os.close(fd)
    _same(got, big_value)


def test_the_parent_unpickles_a_big_stream_exact_and_releases_its_views(big_value):
    fd = _payload(big_value)
    try:
        region = _region(fd)
    finally:
        os.close(fd)
    got = _bigpayload.loads(region)
    _same(got, big_value)
    del got
    region.append(0)  # no view of the region is left behind (a bytearray with exports cannot grow)


def test_a_truncated_stream_is_an_error_not_a_short_value():
    fd = _payload(os.urandom(BIG))
    try:
        region = _region(fd)
    finally:
        os.close(fd)
    stream, _count = _bigpayload._HEADER.unpack_from(region, 0)
    cut = region[: _bigpayload._HEADER.size + stream // 2]
    cut[:8] = (stream).to_bytes(8, "big")  # the header still announces the whole stream
    with pytest.raises(pickle.UnpicklingError):
        _bigpayload.loads(cut)
