package gofutures

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A big answer does not come through the result pipe: the worker leaves it
// in an anonymous memfd (shared memory with no name) and its frame carries
// a reference (SharedMagic, then the worker's pid, its descriptor number
// and the payload's size; python/gofutures/_bigpayload.py writes and reads
// both directions). The supervisor takes the memory over as it reads the
// frame (mapShared): it opens /proc/<pid>/fd/<n>, which gives this process
// its own descriptor of the same memory, maps it and closes that
// descriptor, then tells the worker (FrameAck, with the descriptor number
// as id) that it may close its own. From then on the mapping is the only
// thing that keeps the memory, and whoever holds the mapping frees it
// (ReleaseShared, or the binding's munmap): nothing has a name to leak, and
// a worker that dies before the ack loses nothing the pool still needs
// (its descriptors close with it; the mapping stays valid).
//
// Big calls go the other way the same: the binding keeps the parent's
// descriptor open until the call's outcome is delivered, so the worker can
// always open it while it runs the call.

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
// shared memory that this process could not map (the worker died before
// its answer was taken over, /proc is not mounted or not ours to read, or
// the memory could not be mapped).
type AnswerUnreadable struct {
	PID int
	Err error
}

func (e *AnswerUnreadable) Error() string {
	return fmt.Sprintf("the answer of worker process %d came back in shared memory that could not be read here: %v",
		e.PID, e.Err)
}

func (e *AnswerUnreadable) Unwrap() error { return e.Err }

// mapShared maps the payload that the worker pid left in its descriptor
// ref.fd, readable and writable: out-of-band buffers become arrays over it,
// writable as they would be unpickled from a copy. Shared, not private:
// the memory is this process's alone once the worker is told to close its
// descriptor, and a private writable mapping could not be populated without
// copying every page.
// pid is the worker's as the pool knows it, not the one the frame claims.
// The mapping is the caller's, to free with ReleaseShared.
func mapShared(pid int, ref sharedRef) ([]byte, error) {
	if ref.size <= 0 || ref.fd < 0 {
		return nil, fmt.Errorf("bad shared-memory reference (descriptor %d, %d bytes)", ref.fd, ref.size)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, ref.fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /proc/%d/fd/%d: %w", pid, ref.fd, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Size < int64(ref.size) {
		return nil, fmt.Errorf("shared memory of %d bytes holds less than the %d announced", st.Size, ref.size)
	}
	// MAP_POPULATE: the pages are found here, off the GIL, not one fault at
	// a time by the thread that unpickles.
	ptr, err := unix.MmapPtr(fd, 0, nil, uintptr(ref.size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap of %d bytes: %w", ref.size, err)
	}
	return unsafe.Slice((*byte)(ptr), ref.size), nil
}

// ReleaseShared unmaps a payload mapped by the pool (a shared answer that
// ProcessSink.Completed received and will not hand on).
func ReleaseShared(data []byte) {
	if len(data) > 0 {
		_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(data)), uintptr(len(data)))
	}
}
