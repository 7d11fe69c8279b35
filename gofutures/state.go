package gofutures

// State is where a Future is in its life. The values and their meaning are
// those of Python's concurrent.futures, so the binding can translate them one
// to one.
type State uint8

const (
	// Pending: created or queued; not yet taken by a worker, can be cancelled.
	Pending State = iota
	// Running: a worker took it; it can no longer be cancelled.
	Running
	// Cancelled: cancelled while pending; waiters registered with Watch are
	// not told until the executor acknowledges it (NotifyCancel), as in the
	// stdlib. Done() is already true.
	Cancelled
	// CancelledAndNotified: cancelled, and the executor has acknowledged it.
	CancelledAndNotified
	// Finished: completed with a result or an exception.
	Finished
)

var stateNames = [...]string{"PENDING", "RUNNING", "CANCELLED", "CANCELLED_AND_NOTIFIED", "FINISHED"}

// String returns the stdlib's name for the state, e.g. "FINISHED".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "INVALID"
}

// Done reports whether a future in this state has stopped changing for
// result() and done(): cancelled (notified or not) or finished.
func (s State) Done() bool { return s >= Cancelled }

// Settled reports whether waiters registered with Watch count the future as
// complete: the stdlib's wait() and as_completed() treat a Cancelled future as
// not yet complete until the executor acknowledges the cancellation.
func (s State) Settled() bool { return s == CancelledAndNotified || s == Finished }
