package gofutures

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Zygote starts worker processes by fork instead of exec: it asks a
// helper process (the zygote; the Python package's is
// python/gofutures/_child/zygote.py) to fork one. The helper was started
// once by exec of argv and never loads a Go runtime, so forking it is safe
// (forking this process is not: a child of a Go program cannot use its
// runtime), and it has already paid the interpreter's start and the
// worker's imports, which a fresh exec pays again per worker.
//
// Protocol, over a unix stream socket that is the helper's fd 3:
//   - fork request (us -> helper): a 4-byte big-endian length, then JSON
//     {"env": [...], "cwd": "...", "prepare": {...}} (prepare: the
//     requesting pool's ProcessConfig.ZygotePrepare, passed on as is);
//     SCM_RIGHTS carries the worker's stdout, stderr and its fds 3, 4, 5,
//     ... in that order.
//     One fork request is in flight at a time (Zygote.mu), so the
//     descriptors the helper receives are always that request's.
//   - answers (helper -> us), lines: "forked <pid>" or "failed <why>" for
//     the request; "exited <pid> <code> <signal>" whenever one of its
//     children ends, so that the pool learns exit codes and signals it
//     cannot wait for itself.
//   - release (us -> helper): the same framing, {"reap": <pid>}, no
//     descriptors, once the worker's exit is known; the helper reaps it and
//     answers "reaped <pid>" (the pool forgets the worker after that, so a
//     pid it no longer lists is gone, not a zombie). Until then the
//     helper leaves it a zombie (it learns the status with WNOWAIT), so
//     that its pid is not reused while the pool may still signal it or
//     report it alive, as with a child of our own.
//
// Lifetime: the helper starts at the first request and lives as long as
// this process; it exits (killing any child left) when its socket reaches
// EOF, that is when this process is gone. If it dies, the next request
// starts a new one; a request it cannot serve returns an error and the
// caller starts that worker by exec instead.
type Zygote struct {
	argv []string

	mu   sync.Mutex  // serializes requests; protects proc
	proc *zygoteProc // the running helper; nil before the first request
}

// NewZygote returns a Zygote whose helper is started, on first use, by
// exec of argv.
func NewZygote(argv []string) *Zygote { return &Zygote{argv: argv} }

// zygoteReplyTimeout bounds the wait for the helper's answer; the first
// answer includes the helper's own start. Past it the helper is killed and
// the worker is started by exec.
var zygoteReplyTimeout = 30 * time.Second

// zygoteProc is one running helper.
type zygoteProc struct {
	cmd     *exec.Cmd
	conn    *net.UnixConn
	connFD  int              // conn's descriptor, registered as owned (owned.go) until read closes conn
	wmu     sync.Mutex       // serializes writes to conn (requests and releases)
	owner   int              // the pid that started it: a forked copy of this process must not share it
	replies chan zygoteReply // the answer to the request in flight (buffered 1)
	done    chan struct{}    // closed once the helper's socket reached EOF

	mu     sync.Mutex // protects waits and reaped
	waits  map[int]chan procExit
	reaped map[int]chan struct{} // closed at "reaped <pid>" (or the helper's end)
}

type zygoteReply struct {
	pid    int
	exit   chan procExit // receives its exit status; closed if the helper dies first
	reaped chan struct{} // closed once the helper reaped it (or died)
	err    error
}

func startZygote(argv []string) (*zygoteProc, error) {
	// Close-on-exec from the start, under ForkLock, so that no exec running
	// meanwhile (another pool's worker) inherits the socket.
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("cannot make the zygote's socket: %w", err)
	}
	ownFD(fds[0], fds[1])
	ours := os.NewFile(uintptr(fds[0]), "zygote socket")
	theirs := os.NewFile(uintptr(fds[1]), "zygote socket (its end)")
	stdin, err := openDevNull()
	if err != nil {
		closeOwnedFile(ours)
		closeOwnedFile(theirs)
		return nil, fmt.Errorf("cannot start the zygote: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{theirs} // its fd 3
	err = cmd.Start()
	closeOwnedFile(stdin)
	closeOwnedFile(theirs)
	if err != nil {
		closeOwnedFile(ours)
		return nil, fmt.Errorf("cannot start the zygote (%s): %w", argv[0], err)
	}
	ownPID(cmd.Process.Pid)
	c, err := net.FileConn(ours)
	var connFD int
	if err == nil {
		if err = controlFD(c.(*net.UnixConn), &connFD); err != nil {
			c.Close()
		}
	}
	closeOwnedFile(ours)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		disownPID(cmd.Process.Pid)
		return nil, fmt.Errorf("cannot use the zygote's socket: %w", err)
	}
	zp := &zygoteProc{cmd: cmd, conn: c.(*net.UnixConn), connFD: connFD, owner: os.Getpid(),
		replies: make(chan zygoteReply, 1), done: make(chan struct{}), waits: map[int]chan procExit{},
		reaped: map[int]chan struct{}{}}
	go zp.read()
	return zp, nil
}

// read handles the helper's lines until EOF, then reaps the helper.
func (zp *zygoteProc) read() {
	r := bufio.NewReader(zp.conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "forked":
			pid, _ := strconv.Atoi(f[1])
			ch, reaped := make(chan procExit, 1), make(chan struct{})
			zp.mu.Lock()
			zp.waits[pid], zp.reaped[pid] = ch, reaped
			zp.mu.Unlock()
			zp.reply(zygoteReply{pid: pid, exit: ch, reaped: reaped})
		case len(f) == 2 && f[0] == "reaped":
			pid, _ := strconv.Atoi(f[1])
			zp.mu.Lock()
			if ch := zp.reaped[pid]; ch != nil {
				close(ch)
				delete(zp.reaped, pid)
			}
			zp.mu.Unlock()
		case len(f) >= 1 && f[0] == "failed":
			zp.reply(zygoteReply{err: fmt.Errorf("the zygote could not fork a worker: %s",
				strings.TrimSpace(strings.TrimPrefix(line, "failed")))})
		case len(f) == 4 && f[0] == "exited":
			pid, _ := strconv.Atoi(f[1])
			code, _ := strconv.Atoi(f[2])
			sig, _ := strconv.Atoi(f[3])
			zp.mu.Lock()
			ch := zp.waits[pid]
			delete(zp.waits, pid)
			zp.mu.Unlock()
			if ch != nil {
				if sig != 0 {
					code = -1
				}
				ch <- procExit{code: code, signal: syscall.Signal(sig), known: true}
			}
		}
	}
	zp.conn.Close()
	disownFD(zp.connFD)
	zp.mu.Lock()
	for _, ch := range zp.waits { // their exit status is lost with the helper
		close(ch)
	}
	for _, ch := range zp.reaped { // init reaps them now
		close(ch)
	}
	zp.waits, zp.reaped = nil, nil
	zp.mu.Unlock()
	close(zp.done)
	zp.cmd.Wait()
	disownPID(zp.cmd.Process.Pid)
}

// controlFD registers c's descriptor as owned and stores it in fd.
func controlFD(c *net.UnixConn, fd *int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return raw.Control(func(d uintptr) {
		*fd = int(d)
		ownFD(*fd)
	})
}

func (zp *zygoteProc) reply(r zygoteReply) {
	select {
	case zp.replies <- r:
	default: // an answer nobody asked for (the request timed out): dropped
	}
}

// send writes one request (length-prefixed msg, with oob's descriptors).
func (zp *zygoteProc) send(msg, oob []byte) error {
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
	frame = append(frame, msg...)
	zp.wmu.Lock()
	defer zp.wmu.Unlock()
	_, _, err := zp.conn.WriteMsgUnix(frame, oob, nil)
	return err
}

func (zp *zygoteProc) alive() bool {
	select {
	case <-zp.done:
		return false
	default:
		return zp.owner == os.Getpid()
	}
}

// start asks the helper (starting it if needed) to fork a worker as spec
// describes; spec.argv is not used (the helper runs the worker's code
// itself). An error means no worker was started; the caller falls back to
// exec.
func (z *Zygote) start(spec workerSpec) (workerProc, error) {
	if len(spec.files)+2 > ZygoteMaxFDs {
		return nil, fmt.Errorf("too many descriptors for the zygote (%d)", len(spec.files))
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc == nil || !z.proc.alive() {
		zp, err := startZygote(z.argv)
		if err != nil {
			return nil, err
		}
		z.proc = zp
	}
	zp := z.proc
	cwd, _ := os.Getwd()
	var prepare json.RawMessage
	if json.Valid(spec.prepare) {
		prepare = spec.prepare
	}
	msg, err := json.Marshal(struct {
		Env     []string        `json:"env"`
		Cwd     string          `json:"cwd"`
		Prepare json.RawMessage `json:"prepare,omitempty"`
	}{spec.env, cwd, prepare})
	if err != nil {
		return nil, err
	}
	fds := []int{int(os.Stdout.Fd()), int(os.Stderr.Fd())}
	for _, f := range spec.files {
		fds = append(fds, int(f.Fd()))
	}
	err = zp.send(msg, syscall.UnixRights(fds...))
	runtime.KeepAlive(spec.files)
	if err != nil {
		zp.cmd.Process.Kill() // its state is unknown now; the next request starts another
		return nil, fmt.Errorf("cannot send a request to the zygote: %w", err)
	}
	timer := time.NewTimer(zygoteReplyTimeout)
	defer timer.Stop()
	select {
	case r := <-zp.replies:
		if r.err != nil {
			return nil, r.err
		}
		return &zygoteWorker{pidv: r.pid, exit: r.exit, reaped: r.reaped, zp: zp}, nil
	case <-zp.done:
		select { // its answer, if it came before its end, is in replies by now
		case r := <-zp.replies:
			if r.err == nil {
				return &zygoteWorker{pidv: r.pid, exit: r.exit, reaped: r.reaped, zp: zp}, nil
			}
		default:
		}
		return nil, errors.New("the zygote exited")
	case <-timer.C:
		zp.cmd.Process.Kill()
		return nil, fmt.Errorf("the zygote did not answer within %v", zygoteReplyTimeout)
	}
}

// zygoteWorker is a worker forked by the helper: its child, not ours, so
// its exit status comes from the helper's "exited" line.
type zygoteWorker struct {
	pidv   int
	exit   chan procExit
	reaped chan struct{}
	zp     *zygoteProc
	exited atomic.Bool // set by release: the pid may be reused from then on
}

func (w *zygoteWorker) pid() int { return w.pidv }

func (w *zygoteWorker) signal(sig syscall.Signal) {
	if !w.exited.Load() { // a zombie until released: never a reused pid
		syscall.Kill(w.pidv, sig)
	}
}

func (w *zygoteWorker) wait() procExit {
	e, ok := <-w.exit
	if !ok {
		w.exited.Store(true)
		return procExit{code: -1}
	}
	return e
}

func (w *zygoteWorker) release() {
	if w.exited.Swap(true) {
		return
	}
	// If the helper is gone it cannot reap, and need not: its children
	// went to init (and reaped is closed).
	if w.zp.send([]byte(fmt.Sprintf(`{"reap": %d}`, w.pidv)), nil) != nil {
		return
	}
	select { // bounded: a hung helper must not hang the pool
	case <-w.reaped:
	case <-time.After(zygoteReplyTimeout):
	}
}
