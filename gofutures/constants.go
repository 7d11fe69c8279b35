package gofutures

import "time"

// The numbers and names that the binding's C (pybind/) and the Python
// package (python/gofutures/) share with the core are defined once, in Go:
// here, or with their type (FrameKind in wire.go, State in state.go, Mode in
// completions.go, WorkerNumberEnv in procpool.go). `go generate` writes them
// into pybind/gf_constants.h and python/gofutures/_constants.py (the
// generator, tools/genconst, lists which ones); both files are committed, so
// that building from source needs no generate step, and tools/genconst's
// test fails when they differ from what the generator writes now.
//
//go:generate go run ../tools/genconst -root ..

// Delivery kinds: how a process-pool task's outcome comes back to the
// binding (pybind/procpool.go's deliver; pybind/outcome.c builds it),
// besides the frame kinds FrameResult and FrameError (a pickled value or
// exception from the worker).
const (
	// DeliverBroken: the pool broke before the task completed; the data is
	// the reason, UTF-8.
	DeliverBroken = 100 + iota
	// DeliverDied: the task's worker died (survive mode); the task failed
	// alone.
	DeliverDied
	// DeliverTimeout: the task ran past its time limit; its worker was
	// killed.
	DeliverTimeout
	// DeliverKilled: the task's worker was killed on request (kill_task),
	// which already ended its future: nothing to build.
	DeliverKilled
	// DeliverCancelled: the task's future was cancelled while queued, so
	// it was never sent: the binding acknowledges the cancel, telling the
	// stdlib's waiters (ProcessSink.Cancelled).
	DeliverCancelled
	// DeliverUnreadable: the task's answer came back in shared memory that
	// could not be read here (*AnswerUnreadable); the data is the reason,
	// UTF-8. The task failed alone.
	DeliverUnreadable
)

// Submit codes: what the binding's submit answers its C caller.
const (
	SubmitOK       = iota // accepted
	SubmitBroken          // the pool is broken
	SubmitShutdown        // the pool is shut down
	SubmitUnknown         // no pool has this id (a thread pool closed under it)
	SubmitSpawned         // accepted, and a new worker is starting (thread pools)
)

// FirstFD is a process-pool worker's first passed descriptor
// (ProcessConfig.Files): fds 3 and 4 are its task and result pipes.
const FirstFD = 5

// ZygoteMaxFDs: at most this many descriptors go with one request to the
// zygote (SCM_MAX_FD is 253 on Linux); a worker with more starts by exec.
const ZygoteMaxFDs = 250

// PipelineBudget is how much predicted work may wait in one worker's pipe
// behind the task it runs (procpipeline.go). A task that runs longer than
// this proves the prediction wrong: its worker keeps the next task and hands
// back the rest (FrameHandBack), which the pool no longer pipelines then.
const PipelineBudget = 2 * time.Millisecond

// HandBackAfter: a worker whose task has run this long hands back the tasks
// sent behind it (FrameHandBack), and once the pool has seen a task this
// long it stops pipelining for a while (procpipeline.go).
const HandBackAfter = 20 * time.Millisecond

// WaitSlice is the longest one blocking wait of the binding lasts before it
// checks for Ctrl-C (Python's signal handlers run between slices).
const WaitSlice = 50 * time.Millisecond
