package gofutures

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A worker's pipes, on our side: non-blocking, close-on-exec descriptors,
// registered with the Go runtime's poller, so that a supervisor or writer
// that waits parks its goroutine instead of holding a thread (and its P) in
// a poll(2): a P held in a system call keeps the runtime's sysmon thread
// from sleeping, which then woke every 20 us to 10 ms, about 15 times per
// answer (two thirds of the parent's context switches in a CPU-bound map).
//
// A worker's death must end those waits even when a process the worker
// started still holds the other end (the pipe then never reaches EOF): the
// worker's pidfd (pidfd.go) is watched by the poller too, and its watcher
// marks the worker's pipe ends dead and expires their deadlines, which
// wakes any wait. A read then returns what is left in the pipe, then EOF.
//
// os.closerange cannot close these under us (gofutures._fdguard keeps the
// descriptors owned.go lists); one closed by number with os.close would
// leave its waiter parked (the runtime's poller forgets a closed
// descriptor), as for any Go file.

// errWorkerGone: a write to a worker that has exited (a process it
// started may still hold its task pipe, which then never fails by itself).
var errWorkerGone = errors.New("the worker process has exited")

// errClosedUnder: one of the pool's descriptors was closed by other code
// in this process.
var errClosedUnder = errors.New("a descriptor of the process pool was closed by other code in this process " +
	"(os.closerange or os.close on descriptors it does not own, as some daemonizing code does)")

// pipeEnd is our end of one of a worker's pipes. A reader is used by the
// worker's supervisor goroutine alone; a writer by the worker's outbox
// (procoutbox.go). close may be called once the other methods are no
// longer in use.
type pipeEnd struct {
	fd    int
	file  *os.File        // fd, registered with the runtime's poller; closes it
	conn  syscall.RawConn // file's: I/O that waits in the poller
	death *pidFD          // the worker's; nil: its death shows only as EOF or EPIPE
	dead  atomic.Bool     // the worker exited: what it wrote is all in the pipe
	lost  atomic.Bool     // its death can no longer be seen: the pidfd was closed under us
	once  sync.Once
}

// newPipe returns a pipe's read and write ends, both close-on-exec,
// blocking and registered as owned (owned.go): close them with closeFD, or
// hand one to newPipeEnd.
func newPipe() (r, w int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, -1, os.NewSyscallError("pipe2", err)
	}
	ownFD(p[0], p[1])
	return p[0], p[1], nil
}

// newPipeEnd takes fd (ours from then on), makes it non-blocking and
// registers it with the runtime's poller, and with death's watcher.
func newPipeEnd(fd int, death *pidFD) *pipeEnd {
	unix.SetNonblock(fd, true) // cannot fail on a pipe we just made
	file := os.NewFile(uintptr(fd), "worker pipe")
	conn, _ := file.SyscallConn() // fails only for a closed file
	e := &pipeEnd{fd: fd, file: file, conn: conn, death: death}
	death.watch(e)
	return e
}

// exited marks the worker gone (or, lost, its pidfd closed under us) and
// wakes whoever waits on e (death's watcher calls it).
func (e *pipeEnd) exited(lost bool) {
	if lost {
		e.lost.Store(true)
	} else {
		e.dead.Store(true)
	}
	e.file.SetDeadline(time.Unix(1, 0)) // in the past: every wait ends at once
}

// Read reads what is in the pipe, waiting for data, EOF, or the worker's
// exit; once the worker has exited, the pipe's contents are all it wrote,
// and Read returns io.EOF when they are read (whatever still holds the
// other end).
func (e *pipeEnd) Read(b []byte) (int, error) {
	for {
		var n int
		var err error
		if e.dead.Load() { // the deadline has passed: read without waiting
			n, err = unix.Read(e.fd, b)
		} else {
			werr := e.conn.Read(func(fd uintptr) bool {
				n, err = unix.Read(int(fd), b)
				return err != unix.EAGAIN
			})
			if werr != nil {
				if e.dead.Load() {
					continue
				}
				return 0, e.waitError(werr)
			}
		}
		switch {
		case n > 0:
			return n, nil
		case err == nil:
			return 0, io.EOF
		case err == unix.EINTR:
			continue
		case err == unix.EBADF:
			return 0, errClosedUnder
		case err == unix.EAGAIN: // only after the worker's death
			return 0, io.EOF
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

// waitError is what a wait in the poller that did not end by the worker's
// death means: the pidfd closed under us, our own Close while in use (a
// bug), or a descriptor the poller refused.
func (e *pipeEnd) waitError(err error) error {
	if e.lost.Load() || errors.Is(err, os.ErrClosed) {
		return errClosedUnder
	}
	return fmt.Errorf("waiting for a worker's pipe: %w", err)
}

// writev writes all of bufs, in order, waiting while the pipe is full; it
// fails once the worker has exited (errWorkerGone) or has closed its end
// (EPIPE).
func (e *pipeEnd) writev(bufs [][]byte) error {
	for {
		var err error
		if e.dead.Load() {
			n, werr := e.tryWritev(bufs)
			if bufs = skipWritten(bufs, n); werr != nil {
				return werr
			} else if len(bufs) > 0 {
				return errWorkerGone
			}
			return nil
		}
		werr := e.conn.Write(func(uintptr) bool {
			var n int
			n, err = e.tryWritev(bufs)
			bufs = skipWritten(bufs, n)
			return err != nil || len(bufs) == 0
		})
		switch {
		case err != nil:
			return err
		case werr == nil:
			return nil
		case !e.dead.Load():
			return e.waitError(werr)
		}
	}
}

// Write writes all of b (see writev).
func (e *pipeEnd) Write(b []byte) (int, error) {
	if err := e.writev([][]byte{b}); err != nil {
		return 0, err
	}
	return len(b), nil
}

// maxIOV bounds the buffers of one writev (Linux's IOV_MAX is 1024).
const maxIOV = 1024

// tryWritev writes what the pipe takes of bufs now, never waiting: how
// many bytes, or an error as writev's.
func (e *pipeEnd) tryWritev(bufs [][]byte) (int, error) {
	written := 0
	for len(bufs) > 0 {
		batch := bufs[:min(len(bufs), maxIOV)]
		n, err := unix.Writev(e.fd, batch)
		switch {
		case n > 0:
			written += n
			bufs = skipWritten(bufs, n)
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return written, nil
		case err == unix.EBADF:
			return written, errClosedUnder
		case err != nil:
			return written, os.NewSyscallError("writev", err)
		case n == 0:
			return written, nil // nothing to write (empty buffers)
		}
	}
	return written, nil
}

// Close closes our end (once).
func (e *pipeEnd) Close() error {
	e.once.Do(func() {
		e.file.Close() // leaves the poller, then closes fd
		disownFD(e.fd)
	})
	return nil
}

// closeFD closes an owned raw descriptor, then unregisters it.
func closeFD(fd int) {
	unix.Close(fd)
	disownFD(fd)
}

// blockingFile wraps fd, which must be blocking and owned, in an *os.File
// that the runtime's poller never registers (os.NewFile of a blocking
// descriptor), to pass it to a starter; close it with closeOwnedFile.
func blockingFile(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }
