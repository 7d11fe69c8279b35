package pybind

import (
	"runtime"
	"testing"
)

// Interpreter-pool workers each get a P, with two to spare, while they
// live; when the last one stops, GOMAXPROCS is what it was.
func TestAdjustProcsFollowsTheParallelWorkers(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(base)
	capped := 2 * runtime.NumCPU()
	for _, n := range []int{1, 2, capped + 3} {
		for range n {
			parallelStarted()
		}
		want := max(base, min(n, capped)+2)
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Errorf("GOMAXPROCS with %d parallel workers = %d; want %d (base %d, %d cores)", n, got, want, base, runtime.NumCPU())
		}
		for range n {
			parallelStopped()
		}
		if got := runtime.GOMAXPROCS(0); got != base {
			t.Errorf("GOMAXPROCS after the %d workers stopped = %d; want %d, as before", n, got, base)
		}
	}
}
