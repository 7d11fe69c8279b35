"""How a big call, result or exception travels between the pool's process
and a worker: in shared memory, not through the worker's pipe.

Everything is pickled with protocol 5 through a Pickler that writes to
Pickled (below), which keeps the big parts by reference instead of copying
them into one bytes object: a bytes or bytearray value of 64 KiB or more
reaches its write() as the object itself (CPython's pickler hands big ones
to the file directly), and a buffer that pickles out-of-band (a numpy array,
a pickle.PickleBuffer) reaches buffer_callback. What pickles to less than
THRESHOLD goes through the pipe as before, joined into one bytes object.

What reaches THRESHOLD is written, in one writev (the only copy on this
side, made by the kernel with the GIL released), into an anonymous memfd:
shared memory with no name, so nothing can be left behind in /dev/shm. Its
layout: a header (the stream's length and, for each out-of-band buffer,
its offset and length), the pickle stream, then each out-of-band buffer at
a page boundary. The frame carries only a reference: the magic, the
writer's pid, its descriptor's number and the size (reference()).

The reader opens /proc/<pid>/fd/<n>, which gives it a descriptor of its own
of the same memory, maps it and unpickles from the mapping (loads): bytes
values are copied out of it (the one copy on this side); out-of-band
buffers are not: a numpy array arrives as a writable view of the mapping,
which lives as long as the array does (a memoryview holds the mapping;
nothing can unmap it under the array).

Lifetime of the writer's descriptor: it must stay open until the reader has
its own. A call's: the Go pool owns it from submit on and closes it once
the call's outcome is known (pybind/procpool.go's take). A result's: the
worker keeps it (answered) until the supervisor says it has mapped it
(FRAME_ACK, release()). A process that dies loses nothing to leak: the
kernel closes its descriptors and unmaps its mappings, and memory with
neither is freed.

Both the package (the parent) and the worker (gofutures/_child/worker.py,
which loads this file by path, without the package) use this module: it
imports nothing but the standard library.
"""

import errno
import mmap
import os
import pickle
import struct
import threading

# A payload at least this big (its pickle and out-of-band buffers together)
# goes in shared memory; a buffer at least this big goes out-of-band. Below
# it, a memfd's system calls on both sides cost more than the pipe.
THRESHOLD = 256 << 10

MAGIC = b"GFSHM"  # gofutures/procshared.go's SharedMagic
_REF = struct.Struct(">qiq")  # pid, descriptor, size (after MAGIC)
_HEADER = struct.Struct(">QI")  # stream length, number of out-of-band buffers
_SPAN = struct.Struct(">QQ")  # an out-of-band buffer's offset and length
_PAGE = mmap.PAGESIZE
_ZEROS = memoryview(bytes(_PAGE))
_IOV_MAX = 1024  # Linux's writev limit on buffers per call


class Pickled:
    """A Pickler's file: the stream's parts, big ones kept by reference, and
    the buffers it sent out-of-band. Reusable (clear)."""

    __slots__ = ("buffers", "nbytes", "parts", "size")

    def __init__(self):
        self.clear()

    def clear(self):
        self.parts = []
        self.size = 0
        self.buffers = []
        self.nbytes = 0

    def write(self, data):
        self.parts.append(data)
        self.size += len(data) if type(data) is bytes else memoryview(data).nbytes

    def buffer_callback(self, buffer):
        raw = buffer.raw()  # contiguous bytes, whatever the array's order
        if raw.nbytes < THRESHOLD:
            return True  # in-band
        self.buffers.append(raw)
        self.nbytes += raw.nbytes
        return False

    def big(self):
        return self.size + self.nbytes >= THRESHOLD

    def joined(self):
        """The stream as one bytes object (not big(): no out-of-band buffer)."""
        parts = self.parts
        if len(parts) == 1 and type(parts[0]) is bytes:
            return parts[0]
        return b"".join(parts)


class Picklers(threading.local):
    """One reusable Pickler per thread and pickler class: making one costs
    about as much as pickling a small call with it."""

    def get(self, cls):
        cached = self.__dict__.get(cls)
        if cached is None or cached[2]:  # none yet, or in use by an enclosing dump
            out = Pickled()
            cached = [cls(out, 5, buffer_callback=out.buffer_callback), out, False]
            self.__dict__[cls] = cached
        return cached


_picklers = Picklers()


def dump(obj, cls=pickle.Pickler):
    """Pickles obj with a Pickler of class cls (protocol 5); returns the
    Pickled it wrote to, which the caller must encode() before it pickles
    anything else on this thread."""
    cached = _picklers.get(cls)
    pickler, out = cached[0], cached[1]
    out.clear()
    cached[2] = True
    try:
        pickler.dump(obj)
    except BaseException:
        out.clear()
        raise
    finally:
        pickler.clear_memo()  # the memo would keep obj alive
        cached[2] = False
    return out


def encode(pickled, about=None):
    """What the frame carries for pickled, and the memfd's descriptor the
    writer must keep open as the module's docstring says (-1: none, the
    pickle itself travels). about: the called function, named in the
    reference (a failure's message says which call it was)."""
    if not pickled.big():
        data = pickled.joined()
        pickled.clear()
        return data, -1
    try:
        fd, size = _write(pickled)
    finally:
        pickled.clear()
    name = "" if about is None else getattr(about, "__qualname__", None) or repr(about)
    return MAGIC + _REF.pack(os.getpid(), fd, size) + name[:200].encode("utf-8", "replace"), fd


def _write(pickled):
    stream = pickled.size
    header = _HEADER.size + _SPAN.size * len(pickled.buffers)
    segments = [None]  # the header, once the offsets are known
    segments += pickled.parts
    spans, offset = [], header + stream
    for buffer in pickled.buffers:
        pad = -offset % _PAGE
        if pad:
            segments.append(_ZEROS[:pad])
        offset += pad
        spans.append(_SPAN.pack(offset, buffer.nbytes))
        segments.append(buffer)
        offset += buffer.nbytes
    segments[0] = _HEADER.pack(stream, len(spans)) + b"".join(spans)
    fd = os.memfd_create("gofutures", os.MFD_CLOEXEC)
    try:
        _writev_all(fd, segments, offset)
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOMEM, errno.ENOSPC, errno.EFBIG):
            raise MemoryError("no memory for a payload of %d bytes in shared memory: %s" % (offset, exc)) from exc
        raise
    return fd, offset


def _writev_all(fd, segments, total):
    written = 0
    while segments:
        n = os.writev(fd, segments[:_IOV_MAX])
        written += n
        if written >= total:
            return
        # Drop what was written; a partial last buffer goes on as a view.
        while segments:
            size = memoryview(segments[0]).nbytes
            if n < size:
                segments[0] = memoryview(segments[0]).cast("B")[n:]
                break
            n -= size
            segments.pop(0)


def is_reference(data):
    return data[:5] == MAGIC


def describe(data):
    """The description a reference carries (a big call's function)."""
    return bytes(data[len(MAGIC) + _REF.size :]).decode("utf-8", "replace")


def open_reference(data):
    """Maps the shared memory a frame's reference names (its writer's
    descriptor, through /proc); the mapping closes when the last object
    using it goes."""
    pid, fd, size = _REF.unpack_from(data, len(MAGIC))
    path = "/proc/%d/fd/%d" % (pid, fd)
    try:
        own = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(
            exc.errno,
            "could not open the shared memory of a big payload at %s (%s): is /proc mounted, and may this process "
            "read the other's descriptors (same user, not made undumpable)?" % (path, exc.strerror),
        ) from exc
    try:
        return mmap.mmap(own, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
    except OSError as exc:
        if exc.errno == errno.ENOMEM:
            raise MemoryError("could not map a payload of %d bytes: %s" % (size, exc)) from exc
        raise
    finally:
        os.close(own)


def loads(region):
    """Unpickles what _write laid out in region (an mmap, or the SharedRegion
    the binding makes of an answer Go mapped). Out-of-band buffers become
    views of region; the stream's view is released before returning."""
    with memoryview(region) as whole:
        stream, count = _HEADER.unpack_from(whole, 0)
        start = _HEADER.size + _SPAN.size * count
        buffers = []
        for i in range(count):
            offset, length = _SPAN.unpack_from(whole, _HEADER.size + _SPAN.size * i)
            buffers.append(whole[offset : offset + length])
        with whole[start : start + stream] as view:
            return pickle.loads(view, buffers=buffers)


# The worker's side of a result's descriptor: those sent and not yet
# acknowledged (FRAME_ACK), closed by release().
_answered = set()
_answered_lock = threading.Lock()


def answered(fd):
    with _answered_lock:
        _answered.add(fd)


def release(fd):
    """The supervisor mapped the answer in fd: close it (if it is one)."""
    with _answered_lock:
        if fd not in _answered:
            return
        _answered.discard(fd)
    os.close(fd)
