package gofutures

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// ForkSpec is what ProcessConfig.Fork gets to start one worker by forking
// this process (the stdlib's 'fork' start method).
type ForkSpec struct {
	Number   int // the worker's number in its pool (1 for the first started)
	TaskFD   int // the child's end of its task pipe: it reads frames from it
	ResultFD int // the child's end of its result pipe: it writes answers to it
}

// ForkFunc forks this process into one worker and returns the child's
// pid. The child must never call into this Go runtime (it has none of its
// threads): it runs the worker loop and exits. The pool owns the pipes;
// the function only lends their fd numbers to the child. It is called
// without any pool lock held (forking a Python process needs the
// interpreter's lock, which a thread holding a pool lock must never wait
// for), on the forker thread (see onForker), one fork at a time.
type ForkFunc func(ForkSpec) (pid int, err error)

var (
	forkerOnce sync.Once
	forkCalls  chan func()
)

// onForker runs f on the forker: one goroutine locked to its OS thread for
// the life of the process. Why one thread, which never exits: a forked
// worker asks the kernel to kill it when the thread that forked it exits
// (PR_SET_PDEATHSIG follows that thread, not the process), so that no
// worker outlives this process however it ends. And one fork at a time:
// each worker's pipes are made, used and closed on this thread, so no
// worker forked meanwhile inherits another's pipe ends.
func onForker(f func()) {
	forkerOnce.Do(func() {
		forkCalls = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for call := range forkCalls {
				call()
			}
		}()
	})
	done := make(chan struct{})
	forkCalls <- func() { f(); close(done) }
	<-done
}

// forkLocked starts one worker with cfg.Fork, asynchronously (see
// ForkFunc). Until the child is known it counts in p.forking, so that the
// pool neither starts more than Workers nor reports itself exited.
func (p *ProcessPool) forkLocked() {
	p.started++
	p.forking++
	go p.forkOne(p.started)
}

// forkOne forks worker number n and adds it to the pool, or breaks the
// pool if it could not fork (the tasks waiting for a worker would
// otherwise wait forever).
func (p *ProcessPool) forkOne(n int) {
	var proc workerProc
	var taskW, resR *pipeEnd
	var err error
	onForker(func() {
		proc, taskW, resR, err = p.startWith(nil, func(spec workerSpec) (workerProc, error) {
			pid, err := p.cfg.Fork(ForkSpec{Number: n, TaskFD: int(spec.files[0].Fd()), ResultFD: int(spec.files[1].Fd())})
			if err != nil {
				return nil, fmt.Errorf("cannot fork a worker process: %w", err)
			}
			return adoptChild(pid)
		})
	})
	p.mu.Lock()
	p.forking--
	if p.forking == 0 && p.forksDone != nil {
		close(p.forksDone)
		p.forksDone = nil
	}
	if err != nil && p.broken == nil {
		p.unlockAfterDispatch(err)
		return
	}
	if err != nil { // the pool broke meanwhile: this start no longer matters
		p.closeExitedLocked()
		p.mu.Unlock()
		return
	}
	w := p.addWorkerLocked(p.newStarted(proc, taskW, resR))
	if p.broken != nil || p.killing {
		w.proc.signal(syscall.SIGKILL) // it came too late; its supervisor reaps it
	}
	p.unlockAfterDispatch(nil)
}

// StartWorkers starts an eager pool's workers now if they have not started
// (the first Submit starts them otherwise), unless the pool is shut down or
// broken.
func (p *ProcessPool) StartWorkers() {
	p.mu.Lock()
	if p.broken != nil || p.shutdown {
		p.mu.Unlock()
		return
	}
	p.unlockAfterDispatch(p.fillLocked())
}

// ForksDone returns a channel closed once no worker is being forked (at
// once if none is). The first submitter of a fork pool waits on it, so
// that the workers are forks of the program as it was at that submit, as
// the stdlib's are, and not of whatever its thread did next (printing, for
// one: text buffered in the parent at the fork would be printed again by
// every child).
func (p *ProcessPool) ForksDone() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.forking == 0 {
		return closedChan
	}
	if p.forksDone == nil {
		p.forksDone = make(chan struct{})
	}
	return p.forksDone
}

// childProc is a worker forked by this process itself: our own child, so
// it is waited for and signalled through a pidfd (os.Process), which
// cannot reach another process once the pid is reused.
type childProc struct {
	proc   *os.Process
	exited atomic.Bool // set by wait: the pid may be reused from then on
}

func adoptChild(pid int) (workerProc, error) {
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("cannot supervise forked worker %d: %w", pid, err)
	}
	ownPID(pid) // the pidfd os.Process keeps for it (owned.go)
	return &childProc{proc: proc}, nil
}

func (c *childProc) pid() int { return c.proc.Pid }

func (c *childProc) signal(sig syscall.Signal) {
	if !c.exited.Load() {
		c.proc.Signal(sig) // os.Process itself refuses once waited
	}
}

func (c *childProc) wait() procExit {
	state, err := c.proc.Wait()
	c.exited.Store(true)
	disownPID(c.proc.Pid)
	if err != nil {
		return procExit{code: -1}
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok {
		return exitOf(ws)
	}
	return procExit{code: state.ExitCode(), known: true}
}

// release: nothing to do; wait reaped it.
func (c *childProc) release() {}
