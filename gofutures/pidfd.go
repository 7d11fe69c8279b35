package gofutures

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// pidFD is a pidfd (pidfd_open(2)) of one worker process: a descriptor
// that becomes readable when that process exits, however the process was
// started (exec'd by us, forked by a Zygote, forked from this process),
// and whoever else holds its pipes. Its watcher goroutine waits for that
// in the runtime's poller and then tells the worker's pipe ends
// (procpipe.go), ending their waits: a worker's death is seen from the
// process itself, even when a grandchild the worker left running (a
// task's `sleep 15 &`, a daemon) holds the result pipe open and would
// otherwise hide it until it exits.
//
// Opening needs the pid to name the process still: the worker must be
// unreaped (our child before wait; a Zygote's child before release, which
// keeps it a zombie until then). A nil *pidFD (pidfd_open failed: kernel
// before 5.3, or refused) means death is seen from the pipe's end only.
// A pidfd closed under us (os.close by number: os.closerange spares it)
// leaves the poller without a word: death is then seen as without one;
// if the watcher does see it closed (POLLNVAL), the pipe ends fail with
// errClosedUnder, and the supervisor kills the worker.
//
// Ownership: the procWorker that opened it; its supervisor goroutine closes
// it once the worker is reaped and nothing reads or writes its pipes any
// more, which also ends the watcher. The descriptor is close-on-exec and
// non-blocking (no one waits on it but the poller).
//
// Locking: mu guards ends and gone.
type pidFD struct {
	fd   int
	file *os.File // fd, registered with the runtime's poller; closes it
	once sync.Once

	mu   sync.Mutex
	ends []*pipeEnd // told when the process exits
	gone bool       // it has exited: ends added later are told at once
	lost bool       // gone because the pidfd was closed under us, not by an exit
}

// openPidFD returns a pidfd for process pid, watched from then on, or nil
// when none can be had.
func openPidFD(pid int) *pidFD {
	// Close-on-exec always. PIDFD_NONBLOCK is Linux 5.10's: before, EINVAL.
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err == unix.EINVAL {
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			unix.SetNonblock(fd, true)
		}
	}
	if err != nil {
		return nil
	}
	ownFD(fd)
	p := &pidFD{fd: fd, file: os.NewFile(uintptr(fd), "pidfd")}
	go p.await()
	return p
}

// await waits until the process exits and tells the pipe ends; it ends
// without telling them if the pidfd is closed first.
func (p *pidFD) await() {
	conn, err := p.file.SyscallConn()
	if err != nil {
		return
	}
	// The poller reports a change of readiness, not a state: one that came
	// before the wait began is forgotten, so each try looks for itself.
	lost := false // the pidfd was closed under us
	exited := func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 0); err != nil || n == 0 {
			return false
		}
		lost = fds[0].Revents&unix.POLLNVAL != 0
		return true
	}
	if conn.Read(exited) != nil {
		return // closed: the worker was reaped, nothing waits on its pipes
	}
	p.mu.Lock()
	p.gone, p.lost = true, lost
	ends := p.ends
	p.ends = nil
	p.mu.Unlock()
	for _, e := range ends {
		e.exited(lost)
	}
}

// watch has e told when the process exits (at once if it has). A nil p
// tells nothing.
func (p *pidFD) watch(e *pipeEnd) {
	if p == nil {
		return
	}
	p.mu.Lock()
	gone, lost := p.gone, p.lost
	if !gone {
		p.ends = append(p.ends, e)
	}
	p.mu.Unlock()
	if gone {
		e.exited(lost)
	}
}

// close closes the pidfd (once; later calls do nothing).
func (p *pidFD) close() {
	if p != nil {
		p.once.Do(func() {
			p.file.Close() // leaves the poller (ending await), then closes fd
			disownFD(p.fd)
		})
	}
}
