package pybind

import "C"

import (
	"runtime"
	"sync"
)

// Go's scheduler and the workers of an interpreter pool.
//
// A pool worker is a goroutine that spends its life in one cgo call
// (gf_worker_run) and calls back into Go between tasks (gfWorkerMore). To
// the scheduler such a thread holds a P as if in a system call, and the
// runtime's sysmon takes that P back (retake):
//   - at once (after 20 µs) when no P is idle, and
//   - once the goroutine has not been rescheduled for 10 ms, which one that
//     never returns from C never is.
//
// After each retake sysmon polls every 20 µs for a while, and a callback
// has to find a P again. Where the workers run Python in parallel (an
// interpreter pool, one GIL per interpreter) and fill the cores, each of
// those wake-ups takes a core from one of them: a 2-worker pool running
// 16 CPU-bound calls of 6 ms on 2 cores had its other threads switch
// 300-400 times and spend 4.4-6.5 ms of CPU per 58 ms map, as much as
// the gap to the stdlib's plain threads. Hence, for interpreter pools
// only, two measures (either alone left sysmon as busy):
//   - GOMAXPROCS keeps a P for each of their workers, one for the Python
//     thread that calls into Go (it too returns to C holding a P), and one
//     idle (adjustProcs);
//   - a worker that has run tasks in C for some milliseconds lets the
//     scheduler run it again (gfWorkerYield, from worker.c).
//
// Measured with both (same machine, interleaved): 70-110 switches and
// 0.8-1.5 ms of CPU per map; calls of 21 ms as before (their Ps are taken
// at 10 ms either way). Thread pools are left as they are: their workers
// take turns with one GIL, and the spare Ps made a submit-and-wait loop
// (bench scenario 2) 15-25% slower, as a waiting submitter's wake-up then
// found idle Ps and started spinning threads.

var (
	gomaxprocsMu sync.Mutex // protects the two below
	parallel     int        // interpreter-pool workers between Start and Stop
	baseProcs    int        // GOMAXPROCS before the first one (0: not read yet)
)

// parallelStarted and parallelStopped count an interpreter-pool worker from
// its Start to its Stop (the core calls Stop after every Start).
func parallelStarted() { adjustProcs(+1) }
func parallelStopped() { adjustProcs(-1) }

// adjustProcs changes the count of parallel workers by delta and sets
// GOMAXPROCS to what they need: never below what the runtime or the user
// chose, back to it when none is left, and with at most two workers per
// core counted (more cannot run at once). Each change stops the world for
// some µs: it happens only as workers start and stop. Setting GOMAXPROCS
// ends the runtime's own updates of it (from the CPU quota), which a pool's
// life does not need.
func adjustProcs(delta int) {
	gomaxprocsMu.Lock()
	defer gomaxprocsMu.Unlock()
	if baseProcs == 0 {
		baseProcs = runtime.GOMAXPROCS(0)
	}
	parallel += delta
	want := baseProcs
	if parallel > 0 {
		want = max(baseProcs, min(parallel, 2*runtime.NumCPU())+2)
	}
	if want != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(want)
	}
}

// gfWorkerYield lets the scheduler run the calling worker's goroutine again
// (it stays on its locked thread), so that sysmon sees it rescheduled and
// leaves its P alone. worker.c calls it, the GIL held, at most once every
// few ms; it costs a hand-over between two threads, some µs.
//
//export gfWorkerYield
func gfWorkerYield() { runtime.Gosched() }
