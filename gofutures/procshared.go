package gofutures

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// A big answer does not come through the result pipe: the worker leaves it
// in an anonymous memfd (shared memory with no name) and its frame carries
// a reference (SharedMagic, then the worker's pid, its descriptor number
// and the payload's size; python/gofutures/_bigpayload.py writes and reads
// both directions). The supervisor reads it as it reads the frame
// (readShared): it opens /proc/<pid>/fd/<n>, which gives this process its
// own descriptor of the same memory, copies the payload out and closes
// that descriptor, then tells the worker (FrameAck, with the descriptor
// number as id) that the memory is free again: the worker writes its next
// big answer there. Nothing has a name to leak: a worker's descriptors
// close with it, and the copy is freed by whoever holds it (AnswerMemory).
//
// Big calls go the other way the same: the binding keeps the parent's
// descriptor open until the call's outcome is known, so the worker can
// always open it while it runs the call, and reuses it for a later call
// once the worker has answered (it has read the call by then).

// SharedMagic begins the data of a frame whose payload is in shared memory.
// It cannot begin a pickle (protocol 2 and later begin with 0x80), which is
// what every other task, result or error frame carries.
const SharedMagic = "GFSHM"

// sharedRefLen: SharedMagic, pid int64, descriptor int32, size int64.
const sharedRefLen = len(SharedMagic) + 8 + 4 + 8

// sharedRef is a frame's reference to a payload in shared memory.
type sharedRef struct {
	pid  int
	fd   int
	size int
}

// parseSharedRef reads a shared-memory reference at the start of data;
// false if data is a plain payload.
func parseSharedRef(data []byte) (sharedRef, bool) {
	if len(data) < sharedRefLen || !bytes.HasPrefix(data, []byte(SharedMagic)) {
		return sharedRef{}, false
	}
	d := data[len(SharedMagic):]
	return sharedRef{
		pid:  int(int64(binary.BigEndian.Uint64(d))),
		fd:   int(int32(binary.BigEndian.Uint32(d[8:]))),
		size: int(int64(binary.BigEndian.Uint64(d[12:]))),
	}, true
}

// AnswerUnreadable is the failure of a task whose worker answered in
// shared memory that this process could not read (the worker died before
// its answer was read, /proc is not mounted or not ours to read, or
// there was no memory for its copy).
type AnswerUnreadable struct {
	PID int
	Err error
	// NoMemory: the answer did not fit in this process's memory (the
	// call's outcome is then a MemoryError, as unpickling it would be).
	NoMemory bool
}

func (e *AnswerUnreadable) Error() string {
	return fmt.Sprintf("the answer of worker process %d came back in shared memory that could not be read here: %v",
		e.PID, e.Err)
}

func (e *AnswerUnreadable) Unwrap() error { return e.Err }

// AnswerMemory allocates the memory that big answers are read into, and
// frees what the pool does not hand on: Free gets the whole slice Alloc
// returned (whoever the pool hands an answer on to gives back that slice
// too). The binding's is C memory (its answer.c), so that an answer goes
// to C as it is, and it reuses the memory of answers already dropped,
// where fresh pages would cost a fault each (several times the copy on a
// virtual machine). Called from supervisor goroutines, concurrently.
type AnswerMemory interface {
	Alloc(n int) ([]byte, error)
	Free(b []byte)
}

// goMemory is the AnswerMemory of Go's heap (the garbage collector frees).
type goMemory struct{}

func (goMemory) Alloc(n int) ([]byte, error) { return make([]byte, n), nil }
func (goMemory) Free([]byte)                 {}

// noMemory is readShared's failure to allocate.
type noMemory struct{ error }

func (e *noMemory) Unwrap() error { return e.error }

// openShared opens this process's own descriptor of the memory that the
// worker pid left an answer in (its descriptor ref.fd), as soon as the
// answer's frame is read: from then on the answer outlives the worker,
// which may die in its very next call, before the answer is read. pid is
// the worker's as the pool knows it, not the one the frame claims.
func openShared(pid int, ref sharedRef) (int, error) {
	if ref.size <= 0 || ref.fd < 0 {
		return -1, fmt.Errorf("bad shared-memory reference (descriptor %d, %d bytes)", ref.fd, ref.size)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, ref.fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /proc/%d/fd/%d: %w", pid, ref.fd, err)
	}
	return fd, nil
}

// readShared reads the answer ref from fd (openShared's, which it closes)
// into memory from mem (the one copy on this side, made here, off the
// GIL). A copy, not a mapping of the worker's memory: the worker can then
// write its next big answer into the same memory, whose pages are already
// there (a memfd's first write of a page costs several times its copy).
// The memory is the caller's, to free with mem.Free.
func readShared(fd int, ref sharedRef, mem AnswerMemory) ([]byte, error) {
	defer unix.Close(fd)
	data, err := mem.Alloc(ref.size)
	if err != nil {
		return nil, &noMemory{fmt.Errorf("no memory for an answer of %d bytes: %w", ref.size, err)}
	}
	for done := 0; done < len(data); {
		n, err := unix.Pread(fd, data[done:], int64(done))
		if err == unix.EINTR {
			continue
		}
		if err == nil && n == 0 {
			err = fmt.Errorf("shared memory holds %d of the %d bytes announced", done, len(data))
		}
		if err != nil {
			mem.Free(data)
			return nil, err
		}
		done += n
	}
	return data, nil
}
