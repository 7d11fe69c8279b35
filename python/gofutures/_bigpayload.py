"""How a big call, result or exception travels between the pool's process
and a worker: in shared memory, not through the worker's pipe.

Everything is pickled with protocol 5 through a Pickler that writes to
Pickled (below), which keeps the big parts by reference instead of copying
them into one bytes object: a bytes or bytearray value of 64 KiB or more
reaches its write() as the object itself (CPython's pickler hands big ones
to the file directly), and a buffer that pickles out-of-band (a numpy array,
a pickle.PickleBuffer) reaches buffer_callback. What pickles to less than
THRESHOLD goes through the pipe as before, joined into one bytes object.

What reaches THRESHOLD is written, by pwritev (the one copy on this side,
made by the kernel with the GIL released), into an anonymous memfd: shared
memory with no name, so nothing can be left behind in /dev/shm. Its layout:
a header (the stream's length and, for each out-of-band buffer, its offset
and length), the pickle stream, then each out-of-band buffer at a page
boundary. The frame carries only a reference: the magic, the writer's pid,
its descriptor's number and the size (encode).

The reader opens /proc/<pid>/fd/<n>, which gives it a descriptor of its own
of the same memory, and copies the payload out (the one copy on its side):
a worker straight into the objects it unpickles (read); the supervisor
(gofutures/procshared.go) into memory of its own, which the binding then
unpickles in place (loads): numpy arrays sent out-of-band become views of
that memory, which they keep alive.

Lifetime of the writer's descriptor: it must stay open until the reader is
done. A call's: the Go pool owns it from submit on and, once the worker
has answered the call, keeps it for a later big call to write into
(pybind/procpool.go's take and spare; closed when the pool is done, or at
once if the worker died). A result's: the worker keeps it (answered) until
the supervisor says it has read it (FRAME_ACK, release()), then writes its
next big answer there (spare). Writing into a memfd whose pages exist
already costs a third of a first write. A process that dies leaves nothing
behind: the kernel closes its descriptors, and memory no descriptor holds
is freed.

Both the package (the parent) and the worker (gofutures/_child/worker.py,
which loads this file by path, without the package) use this module: it
imports nothing but the standard library.
"""

import errno
import io
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


_SCALARS = frozenset((int, float, bool, complex, type(None)))


def scalars(values):
    """Whether values are all scalars or short strings, in which no big
    buffer can hide: plain pickle.dumps is then faster than dump()."""
    for value in values:
        kind = type(value)
        if kind not in _SCALARS and not (kind is str and len(value) < THRESHOLD // 4):
            return False
    return True


class Pickled:
    """A Pickler's file: the stream's parts, big ones kept by reference, and
    the buffers it sent out-of-band; with its own Pickler (of class cls,
    protocol 5), reused for one thread's calls (dump): making a Pickler
    costs about as much as pickling a small call. write is the parts
    list's own append, so a small call's pickle (one write) runs no Python
    code here."""

    __slots__ = ("buffers", "busy", "nbytes", "parts", "pickler", "write")

    def __init__(self, cls):
        self.parts = []
        self.write = self.parts.append
        self.buffers = []
        self.nbytes = 0
        self.busy = False  # a dump is under way (a nested one gets its own)
        self.pickler = cls(self, 5, buffer_callback=self.buffer_callback)

    def clear(self):
        self.parts.clear()
        if self.buffers:
            self.buffers.clear()
            self.nbytes = 0

    def buffer_callback(self, buffer):
        raw = buffer.raw()  # contiguous bytes, whatever the array's order
        if raw.nbytes < THRESHOLD:
            return True  # in-band
        self.buffers.append(raw)
        self.nbytes += raw.nbytes
        return False

    def size(self):
        """The stream's length."""
        return sum(len(p) if type(p) is bytes else memoryview(p).nbytes for p in self.parts)

    def big(self):
        parts = self.parts
        if self.buffers:  # each one is THRESHOLD or more
            return True
        if len(parts) == 1 and type(parts[0]) is bytes:  # a small call's
            return len(parts[0]) >= THRESHOLD
        return self.size() >= THRESHOLD

    def joined(self):
        """The stream as one bytes object (not big(): no out-of-band buffer);
        clears."""
        parts = self.parts
        data = parts[0] if len(parts) == 1 and type(parts[0]) is bytes else b"".join(parts)
        parts.clear()
        return data


_local = threading.local()


def dump(obj, cls=pickle.Pickler):
    """Pickles obj with this thread's Pickler of class cls (protocol 5);
    returns the Pickled it wrote to, which the caller must encode() (or
    joined()) before it pickles anything else on this thread."""
    cache = _local.__dict__
    out = cache.get(cls)
    if out is None or out.busy:
        out = cache[cls] = Pickled(cls)
    elif out.parts:  # left by a caller that did not encode
        out.clear()
    out.busy = True
    try:
        out.pickler.dump(obj)
    except BaseException:
        out.clear()
        raise
    finally:
        out.pickler.clear_memo()  # the memo would keep obj alive
        out.busy = False
    return out


def encode(pickled, about=None, reuse=-1):
    """For a big() pickled (a smaller one travels as joined()): the
    reference the frame carries, and the memfd's descriptor the writer must
    keep open as the module's docstring says. about: the called function,
    named in the reference (a failure's message says which call it was).
    reuse: a memfd of an earlier payload that no reader uses any more, to
    write into (its pages are there already: a memfd's first write of a
    page costs several times its copy), or -1; closed here if writing
    fails."""
    try:
        fd, size = _write(pickled, reuse)
    finally:
        pickled.clear()
    name = "" if about is None else getattr(about, "__qualname__", None) or repr(about)
    return MAGIC + _REF.pack(os.getpid(), fd, size) + name[:200].encode("utf-8", "replace"), fd


def _write(pickled, fd):
    stream = pickled.size()
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
    try:
        if fd < 0:
            fd = os.memfd_create("gofutures", os.MFD_CLOEXEC)
        _pwritev_all(fd, segments)
        os.ftruncate(fd, offset)  # a reused one may have been bigger
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOMEM, errno.ENOSPC, errno.EFBIG):
            raise MemoryError("no memory for a payload of %d bytes in shared memory: %s" % (offset, exc)) from exc
        raise
    return fd, offset


def _pwritev_all(fd, segments):
    """Writes segments one after the other from the start of fd."""
    position, first = 0, 0
    while first < len(segments):
        n = os.pwritev(fd, segments[first : first + _IOV_MAX], position)
        position += n
        # Skip what was written; a partial last buffer goes on as a view.
        while first < len(segments):
            size = memoryview(segments[first]).nbytes
            if n < size:
                segments[first] = memoryview(segments[first]).cast("B")[n:]
                break
            n -= size
            first += 1


def is_reference(data):
    return data[:5] == MAGIC


def describe(data):
    """The description a reference carries (a big call's function)."""
    return bytes(data[len(MAGIC) + _REF.size :]).decode("utf-8", "replace")


def read(data):
    """Unpickles the payload a frame's reference names, from the writer's
    memfd (its own descriptor of it, through /proc), copying it out: the
    one copy on this side, made by the kernel straight into the objects
    unpickled (a bytes value's own memory, a bytearray for each
    out-of-band buffer). Nothing of the memfd is kept, so once this
    returns the writer may write into it again."""
    pid, fd, _size = _REF.unpack_from(data, len(MAGIC))
    path = "/proc/%d/fd/%d" % (pid, fd)
    try:
        own = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(
            exc.errno,
            "could not open the shared memory of a big payload at %s (%s): is /proc mounted, and may this process "
            "read the other's descriptors (same user, not made undumpable)?" % (path, exc.strerror),
        ) from exc
    try:
        with io.FileIO(own, closefd=False) as file:
            _stream, count = _HEADER.unpack(_read_exactly(file, _HEADER.size))
            spans = [_SPAN.unpack(_read_exactly(file, _SPAN.size)) for _ in range(count)]
            buffers = []
            for offset, length in spans:
                buffer = bytearray(length)
                if os.preadv(own, [buffer], offset) != length:
                    raise EOFError("shared memory ends within a buffer of the payload")
                buffers.append(buffer)
            # The stream follows the header; the unpickler reads a big
            # bytes value into its own memory (readinto).
            return pickle.Unpickler(_FileReader(file), buffers=buffers).load()
    finally:
        os.close(own)


def _read_exactly(file, n):
    data = file.read(n)
    if len(data) != n:
        raise EOFError("shared memory ends within the header of a payload")
    return data


def loads(region):
    """Unpickles what _write laid out, from region: the memory the binding
    read a big answer into (a SharedRegion). Out-of-band buffers become
    views of region, which they keep alive; the stream's view is released
    before returning. A stream that may hold a value big enough to get
    memory mapped for itself is read through _ViewReader, which asks huge
    pages for it."""
    with memoryview(region) as whole:
        stream, count = _HEADER.unpack_from(whole, 0)
        start = _HEADER.size + _SPAN.size * count
        buffers = []
        for i in range(count):
            offset, length = _SPAN.unpack_from(whole, _HEADER.size + _SPAN.size * i)
            buffers.append(whole[offset : offset + length])
        with whole[start : start + stream] as view:
            if stream <= _OWN_MAPPING:
                return pickle.loads(view, buffers=buffers)
            return pickle.Unpickler(_ViewReader(view), buffers=buffers).load()


# ---------------------------------------------------------------- huge pages for what a read makes
# A value unpickled from shared memory is new memory, written once: on a
# virtual machine a 4 KiB page written for the first time costs a few us
# (a fault and its zeroing), several times its copy, where a 2 MiB huge
# page costs little more than the copy (64 MiB: 12 ms instead of 41, on the
# 2-core VM this was measured on). Only a block that glibc maps for itself
# (more than _OWN_MAPPING, its largest mmap threshold on 64-bit Linux) is
# advised: advising part of its heap would split the heap's mapping for
# good. numpy advises its own big arrays the same way.
_HUGE_PAGE = 2 << 20
_OWN_MAPPING = 32 << 20
_madvise = None  # (ctypes, libc's madvise) once needed; False if there is none
_MADV_HUGEPAGE = 14


def _advise_huge_pages(buffer):
    """Advises transparent huge pages for the 2 MiB-aligned inside of
    buffer (a writable memoryview of bytes not yet written) if it is over
    _OWN_MAPPING. Only advice: where it cannot be given, nothing changes."""
    global _madvise
    if buffer.nbytes <= _OWN_MAPPING:
        return
    if _madvise is None:
        try:
            import ctypes

            function = ctypes.CDLL(None, use_errno=True).madvise
            function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            function.restype = ctypes.c_int
            _madvise = (ctypes, function)
        except (ImportError, OSError, AttributeError):
            _madvise = False
    if not _madvise:
        return
    ctypes, function = _madvise
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    start = -(-address // _HUGE_PAGE) * _HUGE_PAGE
    end = (address + buffer.nbytes) // _HUGE_PAGE * _HUGE_PAGE
    if end > start:
        function(start, end - start, _MADV_HUGEPAGE)


_READ_AHEAD = 1 << 16


class _FileReader:
    """The worker's file for the Unpickler over a raw file (the payload's
    memfd): buffered, so that the Unpickler reads ahead (peek) instead of
    one call per opcode, and its read and readinto read fully (a single
    read(2) stops at 2 GiB); readinto (a big bytes value read into its
    own memory) asks huge pages for a big one. The raw file must outlive
    the load."""

    __slots__ = ("_readinto", "peek", "read", "readline")

    def __init__(self, raw):
        file = io.BufferedReader(raw, _READ_AHEAD)
        self.read, self.peek, self.readline, self._readinto = file.read, file.peek, file.readline, file.readinto

    def readinto(self, buffer):
        _advise_huge_pages(buffer)
        return self._readinto(buffer)


class _ViewReader:
    """The parent's file for the Unpickler over a big stream in a region:
    peek hands out views (no copy), read copies what it is asked for,
    readinto copies into the value being made, asking huge pages for a big
    one. Holds no view of the stream beyond what the Unpickler holds."""

    __slots__ = ("_position", "_view")

    def __init__(self, view):
        self._view = view
        self._position = 0

    def _take(self, n):
        start = self._position
        end = len(self._view) if n is None or n < 0 else min(start + n, len(self._view))
        self._position = end
        return self._view[start:end]

    def read(self, n=-1):
        # bytes, not a view: 3.15's Unpickler reads a big value in chunks
        # with read() and resizes what it returns as a bytes object.
        return self._take(n).tobytes()

    def readline(self):
        # Only protocol 0's opcodes read lines; looked for window by window.
        start = position = self._position
        while position < len(self._view):
            end = bytes(self._view[position : position + _READ_AHEAD]).find(b"\n")
            if end >= 0:
                return self._take(position + end + 1 - start).tobytes()
            position += _READ_AHEAD
        return self._take(-1).tobytes()

    def peek(self, n=0):
        return self._view[self._position : self._position + max(n, 1)]

    def readinto(self, buffer):
        _advise_huge_pages(buffer)
        part = self._take(buffer.nbytes)
        buffer[: part.nbytes] = part
        return part.nbytes


# The worker's side of its answers' memfds: those sent and not yet
# acknowledged (FRAME_ACK: the supervisor has read them), and those
# acknowledged, kept for the next big answers (at most _MAX_SPARE).
_answered = set()
_spare = []
_MAX_SPARE = 2
_answered_lock = threading.Lock()


def answered(fd):
    with _answered_lock:
        _answered.add(fd)


def release(fd):
    """The supervisor has read the answer in fd: it may serve again."""
    with _answered_lock:
        if fd not in _answered:
            return
        _answered.discard(fd)
        if len(_spare) < _MAX_SPARE:
            _spare.append(fd)
            return
    os.close(fd)


def spare():
    """A memfd for encode(reuse=) to write an answer into, or -1."""
    with _answered_lock:
        return _spare.pop() if _spare else -1
