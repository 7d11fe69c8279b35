package gofutures

import (
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
)

// workerProc is a started worker process as the pool sees it, however it
// was started (exec here, or forked by a Zygote). Its supervisor goroutine
// calls wait once, after the worker's result pipe closed, then release
// (which returns once the process is reaped: from then on its pid may be
// reused) before the pool forgets the worker; signal may be called from any
// goroutine, before or after, and does nothing once release began.
type workerProc interface {
	pid() int
	signal(sig syscall.Signal)
	wait() procExit
	release()
}

// procExit is how a worker process ended. known is false when nobody could
// tell (its Zygote died before reporting it); code is then -1.
type procExit struct {
	code   int            // exit code; -1 when killed by a signal or unknown
	signal syscall.Signal // 0 unless killed by a signal
	known  bool
}

func exitOf(ws syscall.WaitStatus) procExit {
	if ws.Signaled() {
		return procExit{code: -1, signal: ws.Signal(), known: true}
	}
	return procExit{code: ws.ExitStatus(), known: true}
}

// workerSpec is what starts one worker: argv (for exec), its environment,
// and its extra descriptors, which become its fds 3, 4, 5, ... The caller
// keeps ownership of files (a starter dups what it keeps).
type workerSpec struct {
	argv    []string
	env     []string
	files   []*os.File
	prepare []byte // for a Zygote: ProcessConfig.ZygotePrepare
}

// execWorker is a worker started by exec of spec.argv: the classic way,
// and the fallback whenever a Zygote cannot start one.
type execWorker struct {
	cmd    *exec.Cmd
	exited atomic.Bool // set by wait: the pid may be reused from then on
}

// execStarter starts the pools' exec workers: execStart, a variable only
// so that a test can make one start fail.
var execStarter = execStart

func execStart(spec workerSpec) (workerProc, error) {
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Env = spec.env
	stdin, err := openDevNull()
	if err != nil {
		return nil, fmt.Errorf("cannot start a worker process: %w", err)
	}
	defer closeOwnedFile(stdin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = spec.files
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start a worker process (%s): %w", spec.argv[0], err)
	}
	ownPID(cmd.Process.Pid) // the pidfd os/exec keeps for it (owned.go)
	return &execWorker{cmd: cmd}, nil
}

// openDevNull opens /dev/null for a child's stdin as os/exec would for a
// nil Stdin, but with a blocking descriptor that the runtime's poller
// never registers (os.Open would, and would create the poller if this
// process had none yet: see procpipe.go).
func openDevNull() (*os.File, error) {
	fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: os.DevNull, Err: err}
	}
	ownFD(fd)
	return blockingFile(fd, os.DevNull), nil
}

func (w *execWorker) pid() int { return w.cmd.Process.Pid }

func (w *execWorker) signal(sig syscall.Signal) {
	if !w.exited.Load() {
		w.cmd.Process.Signal(sig) // os.Process itself refuses once waited
	}
}

// release: nothing to do; wait reaped it (os.Process refuses to signal it
// from then on).
func (w *execWorker) release() {}

func (w *execWorker) wait() procExit {
	w.cmd.Wait() // an exit status other than 0 is an error here; the state says which
	w.exited.Store(true)
	disownPID(w.cmd.Process.Pid)
	if w.cmd.ProcessState == nil { // the wait itself failed: its status is unknown
		return procExit{code: -1}
	}
	if ws, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		return exitOf(ws)
	}
	return procExit{code: w.cmd.ProcessState.ExitCode(), known: true}
}
