// Package pybind is gofutures' binding layer: the only code that sees both
// the Go core (package gofutures) and Python.
//
// It has two halves in one c-shared library. The exported Go functions in
// this file are the cold API (creating, joining and inspecting pools);
// gopy generates their Python bindings. Everything on the hot path
// (submitting, running a Python callable on a worker, completing and waiting
// on futures) is hand-written CPython C-API code in the *.c files, which
// reaches the core through the cgo exports in the other Go files.
package pybind

import (
	"time"

	core "github.com/gofutures/gofutures/gofutures"
)

// NewThreadPool creates a thread pool of at most maxWorkers workers and
// returns its id. The Python executor then binds its hooks to it (C hot
// path) before submitting. name names it in errors (its workers are
// name_0, name_1, ...); growOnBlock lets a worker that waits for a future
// make room for one more worker (core.ThreadPoolOptions.GrowOnBlock).
func NewThreadPool(maxWorkers int, name string, growOnBlock, parallel bool) (int64, error) {
	p, err := newThreadPool(maxWorkers, core.ThreadPoolOptions{Name: name, GrowOnBlock: growOnBlock}, parallel)
	if err != nil {
		return 0, err
	}
	return p.id, nil
}

// JoinThreadPool waits up to timeoutMillis for every worker of the pool to
// exit (after a shutdown) and reports whether they have. An unknown id
// (already released) counts as joined. gopy releases the GIL around this
// call, so workers can finish their tasks meanwhile; callers loop with a
// short timeout so that Ctrl-C is handled between calls.
func JoinThreadPool(id int64, timeoutMillis int) bool {
	poolsMu.RLock()
	p := pools[id]
	poolsMu.RUnlock()
	if p == nil {
		return true
	}
	return p.core.Join(time.Now().Add(time.Duration(timeoutMillis) * time.Millisecond))
}

// JoinAllThreadPools waits up to timeoutMillis for the workers of every
// pool that has been shut down (including pools whose executor object is
// gone) and reports whether they have all exited. It is the interpreter-exit
// join: no worker may still hold a Python thread state when the interpreter
// finalizes.
func JoinAllThreadPools(timeoutMillis int) bool {
	deadline := time.Now().Add(time.Duration(timeoutMillis) * time.Millisecond)
	poolsMu.RLock()
	var stopping []*threadPool
	for _, p := range pools {
		if s := p.core.Stats(); s.Shutdown || s.Broken {
			stopping = append(stopping, p)
		}
	}
	poolsMu.RUnlock()
	for _, p := range stopping {
		if !p.core.Join(deadline) {
			return false
		}
	}
	return true
}

// PoolStats is a snapshot of a thread pool's counters.
type PoolStats struct {
	Workers   int   // workers started so far
	Live      int   // workers started and not exited
	Idle      int   // workers waiting for work
	Queued    int   // tasks waiting for a worker
	Submitted int64 // tasks accepted
	Taken     int64 // tasks handed to a worker
	Running   int64 // taken and not yet done
	Done      int64 // finished with a result or an exception
	Failed    int64 // of those, with an exception
	Cancelled int64 // cancelled while queued (never ran)
	Shutdown  bool
	Broken    bool
}

// ThreadPoolStats returns the pool's counters; an unknown id gives zeros.
func ThreadPoolStats(id int64) PoolStats {
	poolsMu.RLock()
	p := pools[id]
	poolsMu.RUnlock()
	if p == nil {
		return PoolStats{Shutdown: true}
	}
	s := p.core.Stats()
	return PoolStats{
		Workers: s.Workers, Live: s.Live, Idle: s.Idle, Queued: s.Queued,
		Submitted: s.Submitted, Taken: s.Taken, Running: s.Running(),
		Done: s.Succeeded + s.Failed, Failed: s.Failed, Cancelled: s.Skipped,
		Shutdown: s.Shutdown, Broken: s.Broken,
	}
}

// JoinProcessPool waits up to timeoutMillis for the pool's worker processes
// to exit (after a shutdown or a break) and for every outcome to be
// delivered, and reports whether both happened. An unknown id counts as
// joined.
func JoinProcessPool(id int64, timeoutMillis int) bool {
	procsMu.RLock()
	p := procs[id]
	procsMu.RUnlock()
	if p == nil {
		return true
	}
	return joinProcessPool(p, time.Now().Add(time.Duration(timeoutMillis)*time.Millisecond))
}

// ProcessPoolConfig is what a process pool starts with (core.ProcessConfig
// in the binding's terms: plain values gopy can carry). Python fills it in
// ProcessPoolExecutor.__init__; nothing about a pool is set anywhere else.
type ProcessPoolConfig struct {
	Workers          int      // at most this many worker processes
	Command          []string // argv that starts a worker by exec (spawn, forkserver)
	Init             []byte   // what every new worker gets first (FrameInit): the pickled initializer
	MaxTasksPerChild int      // 0: no limit
	Lazy             bool     // start workers on demand (spawn, forkserver)
	Fork             bool     // workers are forks of this process (fork.c)
	Survive          bool     // the opt-in extras; zero values keep the stdlib's behaviour
	TaskTimeoutNs    int64
	MaxWorkerMemory  int64
	// Fds are passed to every worker as its fds 5, 6, ...; the pool owns
	// them from the call on, also when it fails.
	Fds []int
	// Env is the workers' environment, NAME=value (os.environ as it is
	// now: the Go runtime's copy is the one it saw at load time), unless
	// InheritEnv (an environment that is not valid text): the runtime's.
	Env        []string
	InheritEnv bool
	// ZygoteCommand starts the shared zygote that forks the workers (one
	// helper per distinct command, for the life of the process); empty:
	// every worker starts by exec. ZygotePrepare: a JSON object the zygote
	// readies for this pool's workers (core.ProcessConfig.ZygotePrepare).
	ZygoteCommand []string
	ZygotePrepare string
}

// NewProcessPool starts a process pool as cfg says and returns its id; the
// Python executor binds its hooks to it (C: _bind) before the first submit.
func NewProcessPool(cfg ProcessPoolConfig) (int64, error) {
	p, err := newProcessPool(cfg)
	if err != nil {
		return 0, err
	}
	return p.id, nil
}

// ProcessPoolPIDs returns the process ids of the pool's live workers.
func ProcessPoolPIDs(id int64) []int {
	procsMu.RLock()
	p := procs[id]
	procsMu.RUnlock()
	if p == nil {
		return nil
	}
	return p.core.PIDs()
}

// JoinAllProcessPools shuts down every process pool (queued tasks still
// run) and waits up to timeoutMillis for all their workers to exit and all
// outcomes to be delivered. It is the interpreter-exit join for process
// pools, including those whose executor object is gone.
func JoinAllProcessPools(timeoutMillis int) bool {
	deadline := time.Now().Add(time.Duration(timeoutMillis) * time.Millisecond)
	procsMu.RLock()
	all := make([]*processPool, 0, len(procs))
	for _, p := range procs {
		all = append(all, p)
	}
	procsMu.RUnlock()
	for _, p := range all {
		p.core.Shutdown(false)
		if !joinProcessPool(p, deadline) {
			return false
		}
	}
	return true
}

// ProcPoolStats is a snapshot of a process pool's counters
// (core.ProcessStats).
type ProcPoolStats struct {
	Workers   int // live worker processes
	Idle      int // of those, waiting for a task
	Queued    int // tasks waiting for a worker
	Running   int // tasks in a worker
	Started   int // worker processes started in all
	Submitted int64
	Done      int64 // ended with a result or an exception
	Failed    int64 // of those, with an exception
	Cancelled int64 // cancelled while queued, at shutdown, or by kill_task
	Killed    int64 // workers killed for their task (task_timeout, kill_task)
	Died      int64 // unexpected worker deaths survived (survive mode)
	Recycled  int64 // workers retired over max_worker_memory
	Shutdown  bool
	Broken    bool
}

// ProcessPoolStats returns the pool's counters; an unknown id (released)
// gives zeros and Shutdown.
func ProcessPoolStats(id int64) ProcPoolStats {
	procsMu.RLock()
	p := procs[id]
	procsMu.RUnlock()
	if p == nil {
		return ProcPoolStats{Shutdown: true}
	}
	s := p.core.Stats()
	return ProcPoolStats{
		Workers: s.Workers, Idle: s.Idle, Queued: s.Queued, Running: s.Running, Started: s.Started,
		Submitted: s.Submitted, Done: s.Done, Failed: s.Failed, Cancelled: s.Cancelled,
		Killed: s.Killed, Died: s.Died, Recycled: s.Recycled,
		Shutdown: s.Shutdown, Broken: s.Broken,
	}
}
