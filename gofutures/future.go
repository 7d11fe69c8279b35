package gofutures

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidState is returned when a transition is asked of a future whose
// state forbids it, e.g. finishing a future twice. The binding turns it into
// concurrent.futures.InvalidStateError (or RuntimeError where the stdlib
// raises that).
var ErrInvalidState = errors.New("future is in an invalid state for this transition")

// Future is the state machine of one future: Pending -> Running -> Finished,
// or Pending -> Cancelled -> CancelledAndNotified. It holds no result: the
// binding keeps the value beside it and publishes it before calling Finish,
// so anyone who observes Finished may read the value.
//
// The zero value is a Pending future ready to use. A Future must not be
// copied after first use.
type Future struct {
	// Tag is opaque to the core: its owner sets it before sharing the
	// future (the binding stores its Python object's address) and errors
	// that name the future print it.
	Tag uintptr
	// at is where a pool has the future: its queue slot while queued, its
	// worker's slot once taken; nil for a future no pool scheduled. Only
	// deadlock detection reads it, and only while the future is not done.
	at atomic.Pointer[Slot]
	// isDone mirrors state.Done() for readers that must not take mu for
	// each of many futures (deadlock detection). Written with mu held.
	isDone atomic.Bool

	mu      sync.Mutex    // protects every field below
	state   State         //
	failed  bool          // Finished with an exception (for FIRST_EXCEPTION)
	watches []watch       // told once when the state becomes Settled
	done    chan struct{} // made on first Wait; closed when the state becomes Done
	// observed: the owner has something to run when the future ends (the
	// binding: a Python done-callback, the stdlib's _condition or _waiters),
	// so it must be finished by a path that can run it. See Observe.
	observed bool
}

// watch is one registration of a Completions on a Future.
type watch struct {
	c   *Completions
	tag int
}

// NewFuture returns a Pending future.
func NewFuture() *Future { return &Future{} }

// State returns the current state and whether the future finished with an
// exception.
func (f *Future) State() (State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.failed
}

// Cancel cancels a Pending future. It reports whether the future is cancelled
// after the call, and whether this call was the one that cancelled it (the
// caller then runs the done-callbacks, as the stdlib does).
func (f *Future) Cancel() (cancelled, changed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.state {
	case Running, Finished:
		return false, false
	case Cancelled, CancelledAndNotified:
		return true, false
	}
	f.state = Cancelled
	f.closeDoneLocked()
	return true, true
}

// SetRunningOrNotifyCancel is what an executor calls before running the
// future's work: a Pending future becomes Running (true); a Cancelled one
// becomes CancelledAndNotified and its watchers are told (false). Any other
// state is a bug in the caller and returns ErrInvalidState.
func (f *Future) SetRunningOrNotifyCancel() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	running, err := f.startLocked()
	if !running && err == nil {
		f.state = CancelledAndNotified
		f.countLocked(outcomeSkipped) // before the watchers hear of it, as in finishLocked
		f.notifyLocked()
	}
	return running, err
}

// Start is what an executor calls before running or sending away the
// future's work when it leaves cancellations to the owner that can also
// tell the binding's own waiters, the stdlib's wait() among them: a Pending
// future becomes Running (true). A Cancelled one is left Cancelled (false):
// acknowledging it (SetRunningOrNotifyCancel) is that owner's. Any other
// state is a bug in the caller and returns ErrInvalidState.
func (f *Future) Start() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.startLocked()
}

// startLocked moves Pending to Running (true); Cancelled stays (false).
func (f *Future) startLocked() (bool, error) {
	switch f.state {
	case Pending:
		f.state = Running
		return true, nil
	case Cancelled:
		return false, nil
	}
	return false, ErrInvalidState
}

// Finish completes a Pending or Running future, with an exception when
// failed is true. It returns ErrInvalidState if the future is already
// cancelled or finished.
func (f *Future) Finish(failed bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state.Done() {
		return ErrInvalidState
	}
	f.finishLocked(failed)
	return nil
}

// Observe marks the future observed and returns its state, as State does.
// From then on FinishUnobserved refuses it: an owner that registers
// something to run at the end (after Observe said "not done") can count on
// the future being finished by Finish, on the path that runs it.
func (f *Future) Observe() (State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observed = true
	return f.state, f.failed
}

// FinishUnobserved finishes a Pending or Running future that nobody has
// observed: publish runs first, with the future's lock held (so no Observe
// can come between it and the state change), then the future becomes
// Finished as by Finish. It reports false, and calls nothing, when the
// future is observed or already done; the caller then takes the path that
// Finish serves.
func (f *Future) FinishUnobserved(failed bool, publish func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.observed || f.state.Done() {
		return false
	}
	publish()
	f.finishLocked(failed)
	return true
}

// finishLocked counts the outcome (which also drops at) before it wakes
// anyone: a waiter that sees the future done must find it nowhere and
// counted in its pool's stats (the other order failed a test now and then).
func (f *Future) finishLocked(failed bool) {
	f.state, f.failed = Finished, failed
	if failed {
		f.countLocked(outcomeFailed)
	} else {
		f.countLocked(outcomeSucceeded)
	}
	f.closeDoneLocked()
	f.notifyLocked()
}

// countLocked tells the pool that scheduled f how it ended.
func (f *Future) countLocked(o taskOutcome) {
	// A done future is nowhere: dropping at also lets a finished pool be
	// collected while its futures live on.
	if at := f.at.Swap(nil); at != nil {
		at.pool.outcome(o)
	}
}

// Force puts the future in state s whatever its current state, waking
// whoever the new state concerns. It exists for callers that assign the
// stdlib's private _state attribute directly (CPython's own tests do); an
// executor never needs it.
func (f *Future) Force(s State, failed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.failed = s, failed
	if s.Done() {
		f.closeDoneLocked()
	} else {
		f.isDone.Store(false)
	}
	if !s.Done() && f.done != nil {
		select {
		case <-f.done: // a closed channel cannot be reopened: start a new one
			f.done = nil
		default:
		}
	}
	if s.Settled() {
		f.notifyLocked()
	}
}

// Wait blocks until the future is Done or the deadline passes, and reports
// whether it is Done. A zero deadline means no deadline.
func (f *Future) Wait(deadline time.Time) bool {
	f.mu.Lock()
	if f.state.Done() {
		f.mu.Unlock()
		return true
	}
	if f.done == nil {
		f.done = make(chan struct{})
	}
	done := f.done
	f.mu.Unlock()
	return receive(done, deadline)
}

// Watch registers c to receive one event tagged tag when the future becomes
// Settled; if it already is, the event is pushed at once. Watch and Unwatch
// let one Completions follow many futures.
func (f *Future) Watch(c *Completions, tag int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state.Settled() {
		c.Push(tag, f.failed)
		return
	}
	f.watches = append(f.watches, watch{c, tag})
}

// Unwatch removes every registration of c. It is cheap when the future has
// already told c (the registration is gone then).
func (f *Future) Unwatch(c *Completions) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.watches[:0]
	for _, w := range f.watches {
		if w.c != c {
			kept = append(kept, w)
		}
	}
	clear(f.watches[len(kept):])
	f.watches = kept
}

func (f *Future) closeDoneLocked() {
	f.isDone.Store(true)
	if f.done == nil {
		f.done = closedChan
		return
	}
	select {
	case <-f.done:
	default:
		close(f.done)
	}
}

// notifyLocked tells every watcher once; Completions.Push takes only the
// Completions' own lock, so holding f.mu here cannot deadlock.
func (f *Future) notifyLocked() {
	for _, w := range f.watches {
		w.c.Push(w.tag, f.failed)
	}
	f.watches = nil
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// receive blocks until it can receive from ch (a value or the close) or the
// deadline passes (zero: no deadline), and reports whether it received.
func receive(ch <-chan struct{}, deadline time.Time) bool {
	if deadline.IsZero() {
		<-ch
		return true
	}
	d := time.Until(deadline)
	if d <= 0 {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}
