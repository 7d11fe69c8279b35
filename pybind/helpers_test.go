package pybind

// Tests of the binding's pure-Go helpers. The test binary links the Python
// library (the package's C calls the C API; make go-test passes
// CGO_LDFLAGS), but no interpreter is started: nothing here may call C.

import (
	"sync"
	"testing"
)

// C slices its waits with the GIL released; a token that is there must be
// taken at once, and a wait with none must end when its time is up, or
// Ctrl-C would go unseen.
func TestReceiveWithin(t *testing.T) {
	ch := make(chan struct{}, 1)
	ch <- struct{}{}
	if got := receiveWithin(ch, 3600e9); got != 1 { // waits up to an hour (ns)
		t.Fatalf("receiveWithin with a token waiting = %d, want 1", got)
	}
	if got := receiveWithin(ch, 1e6); got != 0 { // waits up to 1 ms
		t.Fatalf("receiveWithin with no token = %d, want 0 (timed out)", got)
	}
}

// Both pools hand C their dropped jobs one at a time, oldest first, then
// nothing; concurrent takers get each job once.
func TestPopFrontTakesEachOnceInOrder(t *testing.T) {
	var mu sync.Mutex
	s := make([]int, 1000)
	for i := range s {
		s[i] = i + 1
	}
	var wg sync.WaitGroup
	taken := make([][]int, 4)
	for g := range taken {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := popFront(&mu, &s); v != 0; v = popFront(&mu, &s) {
				taken[g] = append(taken[g], v)
			}
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, vs := range taken {
		for i, v := range vs {
			if seen[v] || (i > 0 && v < vs[i-1]) {
				t.Fatalf("job %d taken twice or out of order: %v", v, vs)
			}
			seen[v] = true
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("%d of 1000 jobs taken", len(seen))
	}
}
