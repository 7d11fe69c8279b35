package gofutures

import (
	"sync"
	"testing"
)

func TestHandlesStoreFindDeleteReuse(t *testing.T) {
	var hs Handles[int]
	a, b := new(int), new(int)
	*a, *b = 1, 2
	ha, hb := hs.New(a), hs.New(b)
	if ha == 0 || hb == 0 || ha == hb {
		t.Fatalf("handles %d, %d: want two distinct non-zero handles", ha, hb)
	}
	if hs.Value(ha) != a || hs.Value(hb) != b {
		t.Fatal("Value does not return what New stored")
	}
	hs.Delete(ha)
	c := new(int)
	if hc := hs.New(c); hc != ha || hs.Value(hc) != c {
		t.Errorf("a deleted slot is not reused: got handle %d, want %d", hc, ha)
	}
	if hs.Value(hb) != b {
		t.Error("Delete of one handle disturbed another")
	}
}

func TestHandlesAcrossChunksConcurrently(t *testing.T) {
	var hs Handles[int]
	const goroutines, each = 4, 3 * handleChunkSize / 2
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals := make([]*int, each)
			handles := make([]uintptr, each)
			for i := range vals {
				vals[i] = new(int)
				handles[i] = hs.New(vals[i])
			}
			for i, h := range handles {
				if hs.Value(h) != vals[i] {
					t.Errorf("handle %d: wrong value", h)
					return
				}
				hs.Delete(h)
			}
		}()
	}
	wg.Wait()
	if len(hs.free) != int(hs.next) {
		t.Errorf("%d slots free after deleting every handle, want all %d", len(hs.free), hs.next)
	}
}
