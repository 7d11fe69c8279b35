package gofutures

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The descriptors this process must keep for gofutures to go on working:
// what the process pools opened (worker pipes, pidfds, the zygote's socket,
// the files passed to workers) and what the Go runtime itself holds open
// (its poller, created by the first timer or pollable file and by the
// garbage collector's scavenger, so present in any Go process sooner or
// later; a closed poller aborts the whole process: "fatal error: runtime:
// netpoll failed").
//
// Code that closes descriptors it does not own (os.closerange(3, N) in a
// daemonizing library) must spare these; the Python package asks
// OwnedDescriptors before closing a range (python/gofutures/_fdguard.py).
//
// Registration: whoever creates a descriptor registers it at once (ownFD)
// and unregisters it after closing it (disownFD): a number closed and not
// yet unregistered may be spared by a range close that meant another
// descriptor reusing it, which is harmless; the reverse order would let a
// range close hit our descriptor. Processes we started are registered too
// (ownPID), so that the pidfds os/exec keeps for them are found.
var owned = struct {
	mu   sync.Mutex // protects the maps
	fds  map[int]int
	pids map[int]int
}{fds: map[int]int{}, pids: map[int]int{}}

func ownFD(fds ...int) {
	owned.mu.Lock()
	for _, fd := range fds {
		owned.fds[fd]++
	}
	owned.mu.Unlock()
}

func disownFD(fds ...int) {
	owned.mu.Lock()
	for _, fd := range fds {
		if owned.fds[fd]--; owned.fds[fd] <= 0 {
			delete(owned.fds, fd)
		}
	}
	owned.mu.Unlock()
}

func ownPID(pid int) {
	owned.mu.Lock()
	owned.pids[pid]++
	owned.mu.Unlock()
}

func disownPID(pid int) {
	owned.mu.Lock()
	if owned.pids[pid]--; owned.pids[pid] <= 0 {
		delete(owned.pids, pid)
	}
	owned.mu.Unlock()
}

// ownFile registers f's descriptor and returns f.
func ownFile(f *os.File) *os.File {
	if f != nil {
		ownFD(int(f.Fd()))
	}
	return f
}

// closeOwnedFile closes f, then unregisters its descriptor.
func closeOwnedFile(f *os.File) {
	fd := int(f.Fd())
	f.Close()
	disownFD(fd)
}

// GofuturesDescriptors returns the descriptors gofutures itself made and
// holds (the registry above, without the runtime's): what a worker forked
// from this process closes, cheaply, at every fork.
func GofuturesDescriptors() []int {
	owned.mu.Lock()
	defer owned.mu.Unlock()
	fds := make([]int, 0, len(owned.fds))
	for fd := range owned.fds {
		fds = append(fds, fd)
	}
	return fds
}

// OwnedDescriptors returns, sorted, the descriptors of this process that
// gofutures and the Go runtime need open (see owned above). It reads
// /proc/self to find the runtime's; where there is none, it returns only
// gofutures' own.
func OwnedDescriptors() []int {
	owned.mu.Lock()
	keep := make([]int, 0, len(owned.fds)+4)
	for fd := range owned.fds {
		keep = append(keep, fd)
	}
	pids := make(map[int]bool, len(owned.pids))
	for pid := range owned.pids {
		pids[pid] = true
	}
	owned.mu.Unlock()
	keep = append(keep, runtimeDescriptors(pids)...)
	slices.Sort(keep)
	return slices.Compact(keep)
}

// runtimeDescriptors finds, in /proc/self/fd, the Go runtime's poller (an
// epoll instance watching an eventfd, and that eventfd), the cgroup CPU
// limit files it keeps open, and the pidfds os/exec keeps for the
// processes in pids.
func runtimeDescriptors(pids map[int]bool) []int {
	dir, err := os.ReadDir("/proc/self/fd") // a directory: never offered to the poller
	if err != nil {
		return nil
	}
	var keep []int
	eventfds := map[int]bool{}
	var epolls []int
	for _, e := range dir {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		switch {
		case target == "anon_inode:[eventfd]":
			eventfds[fd] = true
		case target == "anon_inode:[eventpoll]":
			epolls = append(epolls, fd)
		case target == "anon_inode:[pidfd]":
			if pid, ok := fdinfoField(fd, "Pid:"); ok && pids[pid] {
				keep = append(keep, fd)
			}
		case strings.HasPrefix(target, "/sys/fs/cgroup/") &&
			(strings.HasSuffix(target, "/cpu.max") || strings.Contains(target, "/cpu.cfs_")):
			keep = append(keep, fd)
		}
	}
	for _, fd := range epolls {
		// The runtime's poller watches its eventfd (netpollBreak); an
		// epoll of other code (asyncio's) has no business being kept.
		info := readSmall("/proc/self/fdinfo/" + strconv.Itoa(fd))
		for line := range bytes.Lines(info) {
			f := bytes.Fields(line)
			if len(f) >= 2 && string(f[0]) == "tfd:" {
				if t, err := strconv.Atoi(string(f[1])); err == nil && eventfds[t] {
					keep = append(keep, fd, t)
				}
			}
		}
	}
	return keep
}

// fdinfoField returns the integer after name in /proc/self/fdinfo/<fd>.
func fdinfoField(fd int, name string) (int, bool) {
	for line := range bytes.Lines(readSmall("/proc/self/fdinfo/" + strconv.Itoa(fd))) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			n, err := strconv.Atoi(string(bytes.TrimSpace(rest)))
			return n, err == nil
		}
	}
	return 0, false
}

// readSmall reads up to 4 KiB of a /proc file (without os.Open, whose file
// would be offered to the runtime's poller); nil on error.
func readSmall(path string) []byte {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	buf := make([]byte, 4096)
	n, err := syscall.Read(fd, buf)
	if err != nil || n < 0 {
		return nil
	}
	return buf[:n]
}
