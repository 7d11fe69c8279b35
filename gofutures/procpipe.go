package gofutures

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// A worker's pipes, on our side: raw descriptors, close-on-exec, that the
// Go runtime's poller never sees. Two reasons:
//
//   - A read or write that must wait polls the pipe together with the
//     worker's pidfd (pidfd.go), so it ends when the worker does, even when
//     a process the worker started still holds the other end (the pipe
//     then never reaches EOF).
//   - Files made with os.Pipe or os.Open are registered with the runtime's
//     poller; keeping ours out of it means that a descriptor closed under
//     us (os.closerange in a daemonizing library) is seen as closed
//     (POLLNVAL, EBADF) instead of silently leaving a goroutine parked.
//
// Ours are non-blocking (the O_NONBLOCK flag belongs to our open file
// description only; the worker's ends stay blocking): a read or write
// first tries, and polls only when it would block, so a batch of answers
// that arrived together still costs one read.

// errWorkerGone: a write to a worker that has exited (a process it
// started may still hold its task pipe, which then never fails by itself).
var errWorkerGone = errors.New("the worker process has exited")

// errClosedUnder: one of the pool's descriptors was closed by other code
// in this process.
var errClosedUnder = errors.New("a descriptor of the process pool was closed by other code in this process " +
	"(os.closerange or os.close on descriptors it does not own, as some daemonizing code does)")

// pipeEnd is our end of one of a worker's pipes. A reader is used by the
// worker's supervisor goroutine alone; a writer under the pool's mu. close
// may be called once the other methods are no longer in use.
type pipeEnd struct {
	fd    int
	death *pidFD // the worker's; nil: its death shows only as EOF or EPIPE
	dead  bool   // the worker exited: what it wrote is all in the pipe
	once  sync.Once
}

// newPipe returns a pipe's read and write ends, both close-on-exec,
// blocking and registered as owned (owned.go): close them with closeFD.
func newPipe() (r, w int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, -1, os.NewSyscallError("pipe2", err)
	}
	ownFD(p[0], p[1])
	return p[0], p[1], nil
}

// newPipeEnd takes fd (ours from then on) and makes it non-blocking.
func newPipeEnd(fd int, death *pidFD) *pipeEnd {
	unix.SetNonblock(fd, true) // cannot fail on a pipe we just made
	return &pipeEnd{fd: fd, death: death}
}

// Read reads what is in the pipe, waiting for data, EOF, or the worker's
// exit; once the worker has exited, the pipe's contents are all it wrote,
// and Read returns io.EOF when they are read (whatever still holds the
// other end).
func (e *pipeEnd) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(e.fd, b)
		switch {
		case n > 0:
			return n, nil
		case err == nil:
			return 0, io.EOF
		case err == unix.EINTR:
			continue
		case err == unix.EBADF:
			return 0, errClosedUnder
		case err != unix.EAGAIN:
			return 0, os.NewSyscallError("read", err)
		case e.dead:
			return 0, io.EOF
		}
		if err := e.wait(unix.POLLIN); err != nil {
			return 0, err
		}
	}
}

// writev writes all of bufs, in order, waiting while the pipe is full; it
// fails once the worker has exited (errWorkerGone) or has closed its end
// (EPIPE).
func (e *pipeEnd) writev(bufs [][]byte) error {
	for {
		n, err := e.tryWritev(bufs)
		bufs = skipWritten(bufs, n)
		switch {
		case err != nil:
			return err
		case len(bufs) == 0:
			return nil
		case e.dead:
			return errWorkerGone
		}
		if err := e.wait(unix.POLLOUT); err != nil {
			return err
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

// wait blocks until the pipe is ready for events (or hung up) or the
// worker exits (then e.dead is set).
func (e *pipeEnd) wait(events int16) error {
	fds := []unix.PollFd{{Fd: int32(e.fd), Events: events}}
	if e.death != nil {
		fds = append(fds, unix.PollFd{Fd: int32(e.death.fd), Events: unix.POLLIN})
	}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		break
	}
	if fds[0].Revents&unix.POLLNVAL != 0 || (len(fds) > 1 && fds[1].Revents&unix.POLLNVAL != 0) {
		return errClosedUnder
	}
	if len(fds) > 1 && fds[1].Revents != 0 {
		e.dead = true
	}
	return nil
}

// Close closes our end (once).
func (e *pipeEnd) Close() error {
	e.once.Do(func() { closeFD(e.fd) })
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
