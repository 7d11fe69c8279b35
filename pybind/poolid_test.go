package pybind

import (
	"sync"
	"testing"

	core "github.com/gofutures/gofutures/gofutures"
)

// Thread and process pools share one id namespace (Python holds only the
// number), and threads create them concurrently (gopy releases the GIL):
// every id must be unique, and, under -race, the numbering free of races.
// No worker ever starts here: a lazy process pool without work starts no
// process, and a thread pool starts a worker only for a task.
func TestPoolIDsAreUniqueAcrossKindsAndThreads(t *testing.T) {
	const perKind = 50
	var mu sync.Mutex
	seen := map[int64]string{}
	record := func(id int64, kind string) {
		mu.Lock()
		defer mu.Unlock()
		if other, dup := seen[id]; dup {
			t.Errorf("id %d given to a %s pool and a %s pool", id, other, kind)
		}
		seen[id] = kind
	}
	var wg sync.WaitGroup
	for range perKind {
		wg.Go(func() {
			p, err := newThreadPool(1, core.ThreadPoolOptions{Name: "t"}, false)
			if err != nil {
				t.Error(err)
				return
			}
			record(p.id, "thread")
			p.core.Shutdown(false)
			forgetPool(p.id)
		})
		wg.Go(func() {
			p, err := newProcessPool(ProcessPoolConfig{Workers: 1, Lazy: true, Command: []string{"/bin/false"}})
			if err != nil {
				t.Error(err)
				return
			}
			record(p.id, "process")
			p.core.Shutdown(false)
			p.results.core.Shutdown(false)
			forgetPool(p.results.id)
			procsMu.Lock()
			delete(procs, p.id)
			procsMu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != 2*perKind {
		t.Errorf("%d distinct ids for %d pools", len(seen), 2*perKind)
	}
}
