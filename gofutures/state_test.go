package gofutures

import "testing"

// allStates lists every valid State, in declaration order.
var allStates = []State{Pending, Running, Cancelled, CancelledAndNotified, Finished}

func TestStateString(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{Pending, "PENDING"},
		{Running, "RUNNING"},
		{Cancelled, "CANCELLED"},
		{CancelledAndNotified, "CANCELLED_AND_NOTIFIED"},
		{Finished, "FINISHED"},
		{Finished + 1, "INVALID"},
		{State(255), "INVALID"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(tt.s), got, tt.want)
		}
	}
}

func TestStateDoneAndSettled(t *testing.T) {
	tests := []struct {
		s             State
		done, settled bool
	}{
		{Pending, false, false},
		{Running, false, false},
		{Cancelled, true, false}, // done for result()/done(), not yet for wait()
		{CancelledAndNotified, true, true},
		{Finished, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.s.String(), func(t *testing.T) {
			if got := tt.s.Done(); got != tt.done {
				t.Errorf("Done() = %v, want %v", got, tt.done)
			}
			if got := tt.s.Settled(); got != tt.settled {
				t.Errorf("Settled() = %v, want %v", got, tt.settled)
			}
			if tt.s.Settled() && !tt.s.Done() {
				t.Errorf("Settled but not Done")
			}
		})
	}
}
