package gofutures

import (
	"sync"

	"golang.org/x/sys/unix"
)

// pidFD is a pidfd (pidfd_open(2)) of one worker process: a descriptor
// that becomes readable when that process exits, however the process was
// started (exec'd by us, forked by a Zygote, forked from this process),
// and whoever else holds its pipes. The supervisor polls it together with
// the worker's pipes, so that a worker's death is seen from the process
// itself: a grandchild the worker left running with the result pipe open
// (a task's `sleep 15 &`, a daemon) would otherwise hide it until it exits.
//
// Opening needs the pid to name the process still: the worker must be
// unreaped (our child before wait; a Zygote's child before release, which
// keeps it a zombie until then). A nil *pidFD (pidfd_open failed: kernel
// before 5.3, or refused) means death is seen from the pipe's end only.
//
// Ownership: the procWorker that opened it; its supervisor goroutine closes
// it once the worker is reaped and nothing reads or writes its pipes any
// more. The descriptor is close-on-exec and blocking: never registered with
// the Go runtime's poller (procpipe.go).
type pidFD struct {
	fd   int
	once sync.Once
}

// openPidFD returns a pidfd for process pid, or nil when none can be had.
func openPidFD(pid int) *pidFD {
	fd, err := unix.PidfdOpen(pid, 0) // close-on-exec always
	if err != nil {
		return nil
	}
	ownFD(fd)
	return &pidFD{fd: fd}
}

// close closes the pidfd (once; later calls do nothing).
func (p *pidFD) close() {
	if p != nil {
		p.once.Do(func() { closeFD(p.fd) })
	}
}
