package gofutures

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestQueueEmpty(t *testing.T) {
	var q queue[int]
	if q.len() != 0 {
		t.Errorf("len() = %d, want 0", q.len())
	}
	if v, ok := q.pop(); ok {
		t.Errorf("pop() on an empty queue = %d, true", v)
	}
	if got := q.drain(); len(got) != 0 {
		t.Errorf("drain() on an empty queue = %v", got)
	}
}

func TestQueueFIFOAcrossGrowth(t *testing.T) {
	var q queue[int]
	const n = 100 // several doublings past the initial 16
	for i := range n {
		q.push(i)
		if q.len() != i+1 {
			t.Fatalf("len() after %d pushes = %d", i+1, q.len())
		}
	}
	for i := range n {
		v, ok := q.pop()
		if !ok || v != i {
			t.Fatalf("pop() = %d, %v; want %d, true", v, ok, i)
		}
	}
	if _, ok := q.pop(); ok {
		t.Fatal("pop() after draining = ok")
	}
}

func TestQueueWrapAroundThenGrow(t *testing.T) {
	var q queue[int]
	next, want := 0, 0
	push := func(k int) {
		for range k {
			q.push(next)
			next++
		}
	}
	pop := func(k int) {
		t.Helper()
		for range k {
			v, ok := q.pop()
			if !ok || v != want {
				t.Fatalf("pop() = %d, %v; want %d, true", v, ok, want)
			}
			want++
		}
	}
	push(10)
	pop(8)   // head at 8 of 16
	push(14) // 16 items, the last 8 wrapped to the buffer's start
	if q.len() != 16 || len(q.buf) != 16 {
		t.Fatalf("len() = %d, cap %d; want 16 items in 16 slots", q.len(), len(q.buf))
	}
	push(1) // grows while wrapped: the order must survive the copy
	pop(3)
	push(40)
	pop(q.len())
	if q.len() != 0 || next != want {
		t.Fatalf("len() = %d, pushed %d, popped %d", q.len(), next, want)
	}
}

func TestQueueDrainOrderAndReuse(t *testing.T) {
	var q queue[int]
	for i := range 20 {
		q.push(i)
	}
	for range 5 {
		q.pop()
	}
	for i := 20; i < 30; i++ {
		q.push(i)
	}
	got := q.drain()
	want := make([]int, 0, 25)
	for i := 5; i < 30; i++ {
		want = append(want, i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("drain() = %v, want %v", got, want)
	}
	if q.len() != 0 {
		t.Fatalf("len() after drain = %d", q.len())
	}
	q.push(99)
	if v, ok := q.pop(); !ok || v != 99 {
		t.Fatalf("pop() after drain and push = %d, %v", v, ok)
	}
}

func TestQueueDropsReferences(t *testing.T) {
	// Popped and drained items must not stay reachable from the buffer:
	// payloads can be large (or be Python objects).
	var q queue[*int]
	for i := range 40 {
		q.push(&i)
	}
	for range 25 {
		q.pop()
	}
	q.drain()
	for i, p := range q.buf {
		if p != nil {
			t.Fatalf("buf[%d] still holds %d after pop/drain", i, *p)
		}
	}
}

// TestQueueAgainstModel runs random operations against the queue and a plain
// slice, in phases that favour pushing or popping so that the ring wraps and
// grows many times.
func TestQueueAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*7919))
		var q queue[int]
		var model []int
		next := 0
		for step := range 5000 {
			pushBias := []int{20, 50, 80}[(step/250)%3] // percent
			switch op := r.IntN(1000); {
			case op < 5:
				got := q.drain()
				if !slices.Equal(got, model) && !(len(got) == 0 && len(model) == 0) {
					t.Fatalf("seed %d step %d: drain() = %v, want %v", seed, step, got, model)
				}
				model = model[:0]
			case op%100 < pushBias && op%7 == 0:
				q.pushFront(next)
				model = append([]int{next}, model...)
				next++
			case op%100 < pushBias:
				q.push(next)
				model = append(model, next)
				next++
			default:
				v, ok := q.pop()
				if len(model) == 0 {
					if ok {
						t.Fatalf("seed %d step %d: pop() on empty = %d, true", seed, step, v)
					}
					break
				}
				if !ok || v != model[0] {
					t.Fatalf("seed %d step %d: pop() = %d, %v; want %d, true", seed, step, v, ok, model[0])
				}
				model = model[1:]
			}
			if q.len() != len(model) {
				t.Fatalf("seed %d step %d: len() = %d, want %d", seed, step, q.len(), len(model))
			}
			if q.n > len(q.buf) || (len(q.buf) > 0 && (q.head < 0 || q.head >= len(q.buf))) {
				t.Fatalf("seed %d step %d: bad ring: head %d, n %d, cap %d", seed, step, q.head, q.n, len(q.buf))
			}
		}
	}
}
