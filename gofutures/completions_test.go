package gofutures

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestNewCompletionsIsEmpty(t *testing.T) {
	c := NewCompletions()
	if settled, failed := c.Counts(); settled != 0 || failed != 0 {
		t.Errorf("Counts() = %d, %d; want 0, 0", settled, failed)
	}
	if e, ok := c.Next(past); ok {
		t.Errorf("Next on an empty Completions = %v, true", e)
	}
}

func TestAwaitModes(t *testing.T) {
	tests := []struct {
		mode   Mode
		total  int
		pushes []bool // the Failed flag of each pushed event
		want   bool
	}{
		// No futures: every mode is satisfied at once, as in the stdlib.
		{AllCompleted, 0, nil, true},
		{FirstCompleted, 0, nil, true},
		{FirstException, 0, nil, true},

		{AllCompleted, 3, nil, false},
		{AllCompleted, 3, []bool{false, true}, false},
		{AllCompleted, 3, []bool{false, true, false}, true},
		{AllCompleted, 1, []bool{true}, true},

		{FirstCompleted, 3, nil, false},
		{FirstCompleted, 3, []bool{false}, true},
		{FirstCompleted, 3, []bool{true}, true},

		{FirstException, 3, nil, false},
		{FirstException, 3, []bool{false}, false},
		{FirstException, 3, []bool{false, false}, false},
		{FirstException, 3, []bool{true}, true},                // first failure
		{FirstException, 3, []bool{false, true}, true},         // a later failure
		{FirstException, 3, []bool{false, false, false}, true}, // none failed, all settled
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("mode=%d/total=%d/pushes=%v", tt.mode, tt.total, tt.pushes), func(t *testing.T) {
			c := NewCompletions()
			for i, failed := range tt.pushes {
				c.Push(i, failed)
			}
			// A passed deadline polls.
			if got := c.Await(tt.mode, tt.total, past); got != tt.want {
				t.Errorf("Await(past) = %v, want %v", got, tt.want)
			}
			// A short deadline waits, then gives the same answer.
			if got := c.Await(tt.mode, tt.total, time.Now().Add(5*time.Millisecond)); got != tt.want {
				t.Errorf("Await(5ms) = %v, want %v", got, tt.want)
			}
			if tt.want {
				// No deadline: returns at once when satisfied.
				got := awaitResult(t, async(func() bool { return c.Await(tt.mode, tt.total, time.Time{}) }), "Await(no deadline)")
				if !got {
					t.Error("Await(no deadline) = false")
				}
			}
			// Await does not consume events.
			if settled, _ := c.Counts(); settled != len(tt.pushes) {
				t.Errorf("Counts() settled = %d, want %d", settled, len(tt.pushes))
			}
			for i := range tt.pushes {
				if e, ok := c.Next(past); !ok || e.Tag != i {
					t.Errorf("Next() = %v, %v; want tag %d", e, ok, i)
				}
			}
		})
	}
}

func TestAwaitBlocksUntilSatisfied(t *testing.T) {
	tests := []struct {
		mode   Mode
		total  int
		before []bool // pushed first: Await must stay blocked
		last   bool   // pushed then: Await must return true
	}{
		{AllCompleted, 3, []bool{false, true}, false},
		{FirstCompleted, 2, nil, false},
		{FirstException, 3, []bool{false}, true},
		{FirstException, 2, []bool{false}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("mode=%d/total=%d", tt.mode, tt.total), func(t *testing.T) {
			c := NewCompletions()
			awaited := async(func() bool { return c.Await(tt.mode, tt.total, time.Time{}) })
			for i, failed := range tt.before {
				c.Push(i, failed)
				assertBlocked(t, awaited, fmt.Sprintf("Await after %d pushes", i+1))
			}
			assertBlocked(t, awaited, "Await")
			c.Push(len(tt.before), tt.last)
			if !awaitResult(t, awaited, "Await after the satisfying push") {
				t.Error("Await = false")
			}
		})
	}
}

func TestAwaitDeadline(t *testing.T) {
	for _, mode := range []Mode{AllCompleted, FirstCompleted, FirstException} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			c := NewCompletions()
			c.Push(0, false) // one of two settled: only FirstCompleted is satisfied
			deadline := time.Now().Add(20 * time.Millisecond)
			got := c.Await(mode, 2, deadline)
			if want := mode == FirstCompleted; got != want {
				t.Fatalf("Await = %v, want %v", got, want)
			}
			if !got && time.Now().Before(deadline) {
				t.Fatal("Await returned false before its deadline")
			}

			// Satisfied by a push from another goroutine before the deadline.
			awaited := async(func() bool { return c.Await(mode, 2, time.Now().Add(time.Minute)) })
			if !got {
				assertBlocked(t, awaited, "Await")
			}
			go c.Push(1, false)
			if !awaitResult(t, awaited, "Await after the second push") {
				t.Error("Await after the second push = false")
			}
		})
	}
}

func TestAwaitSeesPushesMadeWhileWaiting(t *testing.T) {
	// Many pushes, each possibly coalesced into one wake-up token: Await
	// must still notice when the count is reached.
	const n = 1000
	c := NewCompletions()
	awaited := async(func() bool { return c.Await(AllCompleted, n, time.Time{}) })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				c.Push(i, i%7 == 0)
			}
		})
	}
	wg.Wait()
	if !awaitResult(t, awaited, "Await(AllCompleted)") {
		t.Error("Await = false")
	}
	wantFailed := 0
	for i := 0; i < n; i += 7 {
		wantFailed++
	}
	if settled, failed := c.Counts(); settled != n || failed != wantFailed {
		t.Errorf("Counts() = %d, %d; want %d, %d", settled, failed, n, wantFailed)
	}
}

func TestNextOrder(t *testing.T) {
	c := NewCompletions()
	want := []Event{{5, false}, {2, true}, {9, false}, {2, false}, {0, true}}
	for _, e := range want[:3] {
		c.Push(e.Tag, e.Failed)
	}
	for _, w := range want[:2] {
		if e, ok := c.Next(past); !ok || e != w {
			t.Fatalf("Next() = %v, %v; want %v, true", e, ok, w)
		}
	}
	for _, e := range want[3:] {
		c.Push(e.Tag, e.Failed)
	}
	for _, w := range want[2:] {
		if e, ok := c.Next(time.Time{}); !ok || e != w {
			t.Fatalf("Next() = %v, %v; want %v, true", e, ok, w)
		}
	}
	if e, ok := c.Next(past); ok {
		t.Fatalf("Next() after every event = %v, true", e)
	}
	// Next does not change the counts.
	if settled, failed := c.Counts(); settled != 5 || failed != 2 {
		t.Errorf("Counts() = %d, %d; want 5, 2", settled, failed)
	}
}

func TestNextDeadline(t *testing.T) {
	c := NewCompletions()
	deadline := time.Now().Add(20 * time.Millisecond)
	if e, ok := c.Next(deadline); ok {
		t.Fatalf("Next on an empty Completions = %v, true", e)
	}
	if time.Now().Before(deadline) {
		t.Fatal("Next returned before its deadline")
	}

	got := async(func() Event {
		e, ok := c.Next(time.Now().Add(time.Minute))
		if !ok {
			return Event{Tag: -1}
		}
		return e
	})
	assertBlocked(t, got, "Next on an empty Completions")
	go c.Push(4, true)
	if e := awaitResult(t, got, "Next after Push"); e != (Event{4, true}) {
		t.Errorf("Next() = %v, want {4 true}", e)
	}
}

func TestNextConcurrentPushers(t *testing.T) {
	const pushers, each = 8, 300
	c := NewCompletions()
	var wg sync.WaitGroup
	for g := range pushers {
		wg.Go(func() {
			for k := range each {
				c.Push(g*each+k, false)
			}
		})
	}
	defer wg.Wait()
	seen := make([]bool, pushers*each)
	last := make([]int, pushers) // per pusher, events arrive in push order
	for g := range last {
		last[g] = -1
	}
	for range pushers * each {
		e, ok := c.Next(time.Now().Add(10 * time.Second))
		if !ok {
			t.Fatal("Next timed out")
		}
		if seen[e.Tag] {
			t.Fatalf("tag %d seen twice", e.Tag)
		}
		seen[e.Tag] = true
		g, k := e.Tag/each, e.Tag%each
		if k <= last[g] {
			t.Fatalf("pusher %d: event %d after %d", g, k, last[g])
		}
		last[g] = k
	}
}
