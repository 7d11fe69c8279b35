package gofutures

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

const (
	shortWait = 30 * time.Millisecond // how long something must stay blocked
	longWait  = 2 * time.Second       // how long something may take to return
)

// past is a non-zero deadline that has already passed: a blocking call given
// it only polls.
var past = time.Unix(1, 0)

// async runs fn on a new goroutine; the channel receives its result.
func async[T any](fn func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- fn() }()
	return ch
}

// assertBlocked fails if ch delivers within shortWait.
func assertBlocked[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s returned %v; want it still blocked", what, v)
	case <-time.After(shortWait):
	}
}

// awaitResult returns what ch delivers, failing if that takes over longWait.
func awaitResult[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(longWait):
		t.Fatalf("%s did not return within %v", what, longWait)
		panic("unreachable")
	}
}

// newFutureIn returns a future brought to state s through the ordinary
// transitions (not Force); failed only matters for Finished.
func newFutureIn(t *testing.T, s State, failed bool) *Future {
	t.Helper()
	f := NewFuture()
	mustRun := func() {
		if ok, err := f.SetRunningOrNotifyCancel(); !ok || err != nil {
			t.Fatalf("SetRunningOrNotifyCancel() = %v, %v; want true, nil", ok, err)
		}
	}
	switch s {
	case Pending:
	case Running:
		mustRun()
	case Cancelled:
		f.Cancel()
	case CancelledAndNotified:
		f.Cancel()
		if ok, err := f.SetRunningOrNotifyCancel(); ok || err != nil {
			t.Fatalf("SetRunningOrNotifyCancel() on cancelled = %v, %v; want false, nil", ok, err)
		}
	case Finished:
		mustRun()
		if err := f.Finish(failed); err != nil {
			t.Fatalf("Finish(%v) = %v", failed, err)
		}
	default:
		t.Fatalf("newFutureIn: bad state %v", s)
	}
	assertState(t, f, s, failed && s == Finished)
	return f
}

func assertState(t *testing.T, f *Future, want State, wantFailed bool) {
	t.Helper()
	if s, failed := f.State(); s != want || failed != wantFailed {
		t.Fatalf("State() = %v, %v; want %v, %v", s, failed, want, wantFailed)
	}
}

// startState names a starting point for table tests.
type startState struct {
	state  State
	failed bool
}

func (s startState) String() string {
	if s.failed {
		return s.state.String() + "(failed)"
	}
	return s.state.String()
}

var startStates = []startState{
	{Pending, false}, {Running, false}, {Cancelled, false},
	{CancelledAndNotified, false}, {Finished, false}, {Finished, true},
}

func TestNewFutureAndZeroValueArePending(t *testing.T) {
	var zero Future
	assertState(t, &zero, Pending, false)
	assertState(t, NewFuture(), Pending, false)
	if zero.Wait(past) {
		t.Error("Wait on a zero Future reported done")
	}
	// The zero value is usable: the ordinary lifecycle works on it.
	if ok, err := zero.SetRunningOrNotifyCancel(); !ok || err != nil {
		t.Fatalf("SetRunningOrNotifyCancel() = %v, %v", ok, err)
	}
	if err := zero.Finish(false); err != nil {
		t.Fatalf("Finish() = %v", err)
	}
	if !zero.Wait(past) {
		t.Error("Wait on a finished zero Future reported not done")
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		from                       startState
		wantCancelled, wantChanged bool
		wantState                  State
	}{
		{startState{Pending, false}, true, true, Cancelled},
		{startState{Running, false}, false, false, Running},
		{startState{Finished, false}, false, false, Finished},
		{startState{Finished, true}, false, false, Finished},
		{startState{Cancelled, false}, true, false, Cancelled},
		{startState{CancelledAndNotified, false}, true, false, CancelledAndNotified},
	}
	for _, tt := range tests {
		t.Run(tt.from.String(), func(t *testing.T) {
			f := newFutureIn(t, tt.from.state, tt.from.failed)
			cancelled, changed := f.Cancel()
			if cancelled != tt.wantCancelled || changed != tt.wantChanged {
				t.Errorf("Cancel() = %v, %v; want %v, %v", cancelled, changed, tt.wantCancelled, tt.wantChanged)
			}
			assertState(t, f, tt.wantState, tt.from.failed)
			if got, want := f.Wait(past), tt.wantState.Done(); got != want {
				t.Errorf("Wait after Cancel = %v, want %v", got, want)
			}
		})
	}
}

func TestSetRunningOrNotifyCancel(t *testing.T) {
	tests := []struct {
		from      startState
		wantOK    bool
		wantErr   error
		wantState State
	}{
		{startState{Pending, false}, true, nil, Running},
		{startState{Cancelled, false}, false, nil, CancelledAndNotified},
		{startState{Running, false}, false, ErrInvalidState, Running},
		{startState{CancelledAndNotified, false}, false, ErrInvalidState, CancelledAndNotified},
		{startState{Finished, false}, false, ErrInvalidState, Finished},
		{startState{Finished, true}, false, ErrInvalidState, Finished},
	}
	for _, tt := range tests {
		t.Run(tt.from.String(), func(t *testing.T) {
			f := newFutureIn(t, tt.from.state, tt.from.failed)
			ok, err := f.SetRunningOrNotifyCancel()
			if ok != tt.wantOK || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("SetRunningOrNotifyCancel() = %v, %v; want %v, %v", ok, err, tt.wantOK, tt.wantErr)
			}
			assertState(t, f, tt.wantState, tt.from.failed)
		})
	}
}

func TestFinish(t *testing.T) {
	tests := []struct {
		from       startState
		failed     bool
		wantErr    error
		wantFailed bool
	}{
		{startState{Pending, false}, false, nil, false},
		{startState{Pending, false}, true, nil, true},
		{startState{Running, false}, false, nil, false},
		{startState{Running, false}, true, nil, true},
		// Finishing twice fails and keeps the first outcome.
		{startState{Finished, false}, true, ErrInvalidState, false},
		{startState{Finished, true}, false, ErrInvalidState, true},
		{startState{Finished, false}, false, ErrInvalidState, false},
		// A cancelled future cannot be finished.
		{startState{Cancelled, false}, false, ErrInvalidState, false},
		{startState{Cancelled, false}, true, ErrInvalidState, false},
		{startState{CancelledAndNotified, false}, false, ErrInvalidState, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/failed=%v", tt.from, tt.failed), func(t *testing.T) {
			f := newFutureIn(t, tt.from.state, tt.from.failed)
			err := f.Finish(tt.failed)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Finish(%v) = %v, want %v", tt.failed, err, tt.wantErr)
			}
			wantState := Finished
			if tt.wantErr != nil {
				wantState = tt.from.state
			}
			assertState(t, f, wantState, tt.wantFailed)
		})
	}
}

func TestWaitPollReflectsDone(t *testing.T) {
	for _, from := range startStates {
		t.Run(from.String(), func(t *testing.T) {
			f := newFutureIn(t, from.state, from.failed)
			if got, want := f.Wait(past), from.state.Done(); got != want {
				t.Errorf("Wait(past) = %v, want %v", got, want)
			}
			if from.state.Done() {
				// No deadline: must return at once, not block.
				if !awaitResult(t, async(func() bool { return f.Wait(time.Time{}) }), "Wait(no deadline)") {
					t.Error("Wait(no deadline) on a done future = false")
				}
			}
		})
	}
}

func TestWaitDeadlineThenFinish(t *testing.T) {
	f := NewFuture()
	deadline := time.Now().Add(20 * time.Millisecond)
	if f.Wait(deadline) {
		t.Fatal("Wait on a pending future = true before the deadline")
	}
	if now := time.Now(); now.Before(deadline) {
		t.Fatalf("Wait returned %v before its deadline", deadline.Sub(now))
	}

	waited := async(func() bool { return f.Wait(time.Now().Add(time.Minute)) })
	assertBlocked(t, waited, "Wait before Finish")
	go func() {
		if err := f.Finish(false); err != nil {
			t.Errorf("Finish: %v", err)
		}
	}()
	if !awaitResult(t, waited, "Wait after Finish") {
		t.Error("Wait after Finish = false")
	}
}

func TestWaitWakesEveryWaiter(t *testing.T) {
	f := NewFuture()
	if ok, err := f.SetRunningOrNotifyCancel(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	const n = 8
	results := make(chan bool, n)
	for range n {
		go func() { results <- f.Wait(time.Time{}) }()
	}
	assertBlocked(t, results, "Wait on a running future")
	if err := f.Finish(true); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !awaitResult(t, results, fmt.Sprintf("waiter %d", i)) {
			t.Errorf("waiter %d: Wait = false", i)
		}
	}
}

func TestWaitOnCancelledFuture(t *testing.T) {
	f := NewFuture()
	waited := async(func() bool { return f.Wait(time.Time{}) })
	assertBlocked(t, waited, "Wait on a pending future")
	if cancelled, changed := f.Cancel(); !cancelled || !changed {
		t.Fatalf("Cancel() = %v, %v", cancelled, changed)
	}
	if !awaitResult(t, waited, "Wait after Cancel") {
		t.Error("blocked Wait after Cancel = false")
	}
	// Done before the executor acknowledges the cancellation, and after.
	if !f.Wait(past) {
		t.Error("Wait on a Cancelled future = false")
	}
	if _, err := f.SetRunningOrNotifyCancel(); err != nil {
		t.Fatal(err)
	}
	if !f.Wait(time.Now().Add(longWait)) {
		t.Error("Wait on a CancelledAndNotified future = false")
	}
}

func TestForce(t *testing.T) {
	for _, from := range startStates {
		for _, to := range allStates {
			for _, failed := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v->%v/failed=%v", from, to, failed), func(t *testing.T) {
					f := newFutureIn(t, from.state, from.failed)
					f.Force(to, failed)
					assertState(t, f, to, failed)
					if got, want := f.Wait(past), to.Done(); got != want {
						t.Errorf("Wait(past) = %v, want %v", got, want)
					}
				})
			}
		}
	}
}

func TestForceBackToPendingWaitBlocksAgain(t *testing.T) {
	for _, from := range startStates {
		if !from.state.Done() {
			continue
		}
		t.Run(from.String(), func(t *testing.T) {
			f := newFutureIn(t, from.state, from.failed)
			f.Force(Pending, false)
			if f.Wait(time.Now().Add(10 * time.Millisecond)) {
				t.Fatal("Wait after Force(Pending) = true")
			}
			waited := async(func() bool { return f.Wait(time.Time{}) })
			assertBlocked(t, waited, "Wait after Force(Pending)")
			// A Pending future can run and finish again.
			if ok, err := f.SetRunningOrNotifyCancel(); !ok || err != nil {
				t.Fatalf("SetRunningOrNotifyCancel() = %v, %v", ok, err)
			}
			assertBlocked(t, waited, "Wait on the running future")
			if err := f.Finish(false); err != nil {
				t.Fatalf("Finish() = %v", err)
			}
			if !awaitResult(t, waited, "Wait after Finish") {
				t.Error("Wait after Finish = false")
			}
		})
	}
}

func TestForceWakesBlockedWaiter(t *testing.T) {
	for _, to := range []State{Cancelled, CancelledAndNotified, Finished} {
		t.Run(to.String(), func(t *testing.T) {
			f := NewFuture()
			waited := async(func() bool { return f.Wait(time.Time{}) })
			assertBlocked(t, waited, "Wait on a pending future")
			// Moving between states that are not done keeps the waiter blocked.
			f.Force(Running, false)
			f.Force(Pending, false)
			assertBlocked(t, waited, "Wait after Force to a state not done")
			f.Force(to, false)
			if !awaitResult(t, waited, "Wait after Force(done)") {
				t.Errorf("Wait after Force(%v) = false", to)
			}
			// Forcing into a done state twice must not close twice (panic).
			f.Force(to, true)
			f.Force(Finished, false)
		})
	}
}

func TestForceNotifiesWatchersWhenSettled(t *testing.T) {
	for _, to := range allStates {
		for _, failed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/failed=%v", to, failed), func(t *testing.T) {
				f := NewFuture()
				c := NewCompletions()
				f.Watch(c, 7)
				f.Force(to, failed)
				want := []Event(nil)
				if to.Settled() {
					want = []Event{{7, failed}}
				}
				assertEvents(t, c, want)
				// Forcing into a settled state again tells nobody twice.
				f.Force(Finished, true)
				if to.Settled() {
					assertEvents(t, c, nil)
				} else {
					assertEvents(t, c, []Event{{7, true}})
				}
			})
		}
	}
}

func TestForceCancelledThenNotify(t *testing.T) {
	f := NewFuture()
	c := NewCompletions()
	f.Watch(c, 1)
	f.Force(Cancelled, false)
	assertEvents(t, c, nil)
	if ok, err := f.SetRunningOrNotifyCancel(); ok || err != nil {
		t.Fatalf("SetRunningOrNotifyCancel() = %v, %v; want false, nil", ok, err)
	}
	assertEvents(t, c, []Event{{1, false}})
	assertState(t, f, CancelledAndNotified, false)
}

// assertEvents takes every event c holds that Next has not returned yet and
// compares them with want.
func assertEvents(t *testing.T, c *Completions, want []Event) {
	t.Helper()
	var got []Event
	for {
		e, ok := c.Next(past)
		if !ok {
			break
		}
		got = append(got, e)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestWatchOnSettledFuturePushesAtOnce(t *testing.T) {
	for _, from := range startStates {
		t.Run(from.String(), func(t *testing.T) {
			f := newFutureIn(t, from.state, from.failed)
			c := NewCompletions()
			f.Watch(c, 42)
			if from.state.Settled() {
				assertEvents(t, c, []Event{{42, from.failed}})
			} else {
				assertEvents(t, c, nil)
			}
		})
	}
}

func TestWatchCancelledPushesOnlyWhenNotified(t *testing.T) {
	f := NewFuture()
	c := NewCompletions()
	f.Watch(c, 3)
	f.Cancel()
	if c.Await(FirstCompleted, 1, time.Now().Add(10*time.Millisecond)) {
		t.Fatal("Await(FirstCompleted) satisfied by a Cancelled future that was not notified")
	}
	assertEvents(t, c, nil)

	// Watching a Cancelled (not notified) future registers, it does not push.
	c2 := NewCompletions()
	f.Watch(c2, 4)
	assertEvents(t, c2, nil)

	awaited := async(func() bool { return c.Await(FirstCompleted, 1, time.Time{}) })
	assertBlocked(t, awaited, "Await before NotifyCancel")
	if ok, err := f.SetRunningOrNotifyCancel(); ok || err != nil {
		t.Fatalf("SetRunningOrNotifyCancel() = %v, %v", ok, err)
	}
	if !awaitResult(t, awaited, "Await after NotifyCancel") {
		t.Error("Await after NotifyCancel = false")
	}
	assertEvents(t, c, []Event{{3, false}})
	assertEvents(t, c2, []Event{{4, false}})
}

func TestWatchTellsEachRegistrationOnce(t *testing.T) {
	f := NewFuture()
	c1, c2 := NewCompletions(), NewCompletions()
	f.Watch(c1, 1)
	f.Watch(c2, 2)
	f.Watch(c1, 3) // one Completions may follow a future under several tags
	if err := f.Finish(true); err != nil {
		t.Fatal(err)
	}
	assertEvents(t, c1, []Event{{1, true}, {3, true}})
	assertEvents(t, c2, []Event{{2, true}})
	if settled, failed := c1.Counts(); settled != 2 || failed != 2 {
		t.Errorf("c1.Counts() = %d, %d; want 2, 2", settled, failed)
	}
	// Nothing more happens after the future settled.
	f.Finish(false)
	f.Cancel()
	f.Unwatch(c1)
	assertEvents(t, c1, nil)
	assertEvents(t, c2, nil)
}

func TestUnwatch(t *testing.T) {
	f := NewFuture()
	c1, c2, c3 := NewCompletions(), NewCompletions(), NewCompletions()
	f.Unwatch(c1) // no registration yet: no-op
	f.Watch(c2, 1)
	f.Watch(c1, 2)
	f.Watch(c3, 3)
	f.Watch(c1, 4)
	f.Unwatch(c1) // removes both of c1's registrations, keeps the others
	f.Unwatch(c1)
	if err := f.Finish(false); err != nil {
		t.Fatal(err)
	}
	assertEvents(t, c1, nil)
	assertEvents(t, c2, []Event{{1, false}})
	assertEvents(t, c3, []Event{{3, false}})
}

func TestUnwatchThenWatchAgain(t *testing.T) {
	f := NewFuture()
	c := NewCompletions()
	f.Watch(c, 1)
	f.Unwatch(c)
	f.Watch(c, 2)
	f.Cancel()
	f.SetRunningOrNotifyCancel()
	assertEvents(t, c, []Event{{2, false}})
}

// outcome is how TestWatchManyFuturesConcurrently settles future i.
func outcome(i int) (failed, cancel bool) {
	switch i % 3 {
	case 0:
		return true, false
	case 1:
		return false, false
	}
	return false, true
}

func settle(t *testing.T, f *Future, i int) {
	failed, cancel := outcome(i)
	if cancel {
		f.Cancel()
		if ok, err := f.SetRunningOrNotifyCancel(); ok || err != nil {
			t.Errorf("future %d: SetRunningOrNotifyCancel() = %v, %v", i, ok, err)
		}
		return
	}
	if ok, err := f.SetRunningOrNotifyCancel(); !ok || err != nil {
		t.Errorf("future %d: SetRunningOrNotifyCancel() = %v, %v", i, ok, err)
	}
	if err := f.Finish(failed); err != nil {
		t.Errorf("future %d: Finish() = %v", i, err)
	}
}

// checkEachTagOnce reads n events from c and checks that each tag in [0, n)
// is seen exactly once, with the failure outcome(tag) says.
func checkEachTagOnce(t *testing.T, c *Completions, n int) {
	t.Helper()
	seen := make([]int, n)
	for k := range n {
		e, ok := c.Next(time.Now().Add(10 * time.Second))
		if !ok {
			t.Fatalf("Next: no event after %d of %d", k, n)
		}
		if e.Tag < 0 || e.Tag >= n {
			t.Fatalf("Next: unknown tag %d", e.Tag)
		}
		seen[e.Tag]++
		if wantFailed, _ := outcome(e.Tag); e.Failed != wantFailed {
			t.Errorf("tag %d: Failed = %v, want %v", e.Tag, e.Failed, wantFailed)
		}
	}
	for tag, k := range seen {
		if k != 1 {
			t.Errorf("tag %d seen %d times, want once", tag, k)
		}
	}
	if e, ok := c.Next(past); ok {
		t.Errorf("extra event %v", e)
	}
	wantFailed := 0
	for i := range n {
		if failed, _ := outcome(i); failed {
			wantFailed++
		}
	}
	if settled, failed := c.Counts(); settled != n || failed != wantFailed {
		t.Errorf("Counts() = %d, %d; want %d, %d", settled, failed, n, wantFailed)
	}
}

func TestWatchManyFuturesConcurrently(t *testing.T) {
	const goroutines, perGoroutine = 16, 200
	const n = goroutines * perGoroutine
	c := NewCompletions()
	futures := make([]*Future, n)
	for i := range futures {
		futures[i] = NewFuture()
		futures[i].Watch(c, i)
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			// Interleave the goroutines' futures so neighbours race.
			for k := range perGoroutine {
				i := k*goroutines + g
				settle(t, futures[i], i)
			}
		})
	}
	defer wg.Wait() // also when checkEachTagOnce gives up
	// Consume while the finishers run.
	checkEachTagOnce(t, c, n)
	wg.Wait()
	if !c.Await(AllCompleted, n, past) || !c.Await(FirstException, n, past) {
		t.Error("Await after every future settled = false")
	}
}

func TestWatchRacingWithSettle(t *testing.T) {
	// Watch and the settling transition race: whichever wins, exactly one
	// event per future.
	const n = 2000
	c := NewCompletions()
	futures := make([]*Future, n)
	for i := range futures {
		futures[i] = NewFuture()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, f := range futures {
			f.Watch(c, i)
		}
	})
	wg.Go(func() {
		for i, f := range futures {
			settle(t, f, i)
		}
	})
	defer wg.Wait()
	checkEachTagOnce(t, c, n)
	wg.Wait()
}

func TestFinishUnobserved(t *testing.T) {
	f := NewFuture()
	published := false
	if !f.FinishUnobserved(true, func() { published = true }) || !published {
		t.Fatal("an unobserved future was not finished by FinishUnobserved")
	}
	if s, failed := f.State(); s != Finished || !failed {
		t.Fatalf("state %v failed %v, want Finished with an exception", s, failed)
	}
	if !f.Wait(time.Time{}) {
		t.Fatal("Wait did not see the finish")
	}
	if f.FinishUnobserved(false, func() { t.Fatal("publish ran on a done future") }) {
		t.Fatal("FinishUnobserved finished a done future")
	}
	if s, _ := f.Observe(); s != Finished {
		t.Fatalf("Observe returned %v, want Finished", s)
	}
}

func TestObserveMakesFinishUnobservedRefuse(t *testing.T) {
	f := NewFuture()
	if s, _ := f.Observe(); s != Pending {
		t.Fatalf("Observe returned %v, want Pending", s)
	}
	if f.FinishUnobserved(false, func() { t.Fatal("publish ran on an observed future") }) {
		t.Fatal("FinishUnobserved finished an observed future")
	}
	if err := f.Finish(false); err != nil {
		t.Fatal(err)
	}
}

// Whichever of Observe and FinishUnobserved comes first, the observer sees
// either "done" (and runs its callbacks itself) or "not done" (and the
// finisher falls back to Finish): never neither.
func TestObserveRacesFinishUnobserved(t *testing.T) {
	for i := 0; i < 2000; i++ {
		f := NewFuture()
		var observedDone, lazy bool
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); s, _ := f.Observe(); observedDone = s.Done() }()
		go func() {
			defer wg.Done()
			if lazy = f.FinishUnobserved(false, func() {}); !lazy {
				if err := f.Finish(false); err != nil {
					t.Error(err)
				}
			}
		}()
		wg.Wait()
		if lazy != observedDone {
			t.Fatalf("lazy finish %v but observer saw done %v", lazy, observedDone)
		}
	}
}

// TestStartLeavesTheCancelAcknowledgementToTheOwner: an executor that sends
// work away starts a pending future, but a cancelled one stays Cancelled
// (not yet Settled) until its owner acknowledges it, telling its waiters.
func TestStartLeavesTheCancelAcknowledgementToTheOwner(t *testing.T) {
	f := NewFuture()
	if ok, err := f.Start(); !ok || err != nil {
		t.Fatalf("Start of a pending future = %v, %v; want true, nil", ok, err)
	}
	if _, err := f.Start(); err != ErrInvalidState {
		t.Errorf("Start of a running future: err %v, want ErrInvalidState", err)
	}
	g := NewFuture()
	g.Cancel()
	if ok, err := g.Start(); ok || err != nil {
		t.Fatalf("Start of a cancelled future = %v, %v; want false, nil", ok, err)
	}
	if s, _ := g.State(); s != Cancelled || s.Settled() {
		t.Fatalf("after Start the cancelled future is %v; want Cancelled, not settled", s)
	}
	if ok, err := g.SetRunningOrNotifyCancel(); ok || err != nil {
		t.Fatalf("acknowledging the cancel = %v, %v", ok, err)
	}
	if s, _ := g.State(); s != CancelledAndNotified {
		t.Errorf("after the acknowledgement the future is %v; want CancelledAndNotified", s)
	}
}
