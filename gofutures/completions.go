package gofutures

import (
	"sync"
	"time"
)

// Mode says when Completions.Await is satisfied; the values match the
// stdlib's return_when constants.
type Mode uint8

const (
	// AllCompleted: every followed future has settled.
	AllCompleted Mode = iota
	// FirstCompleted: at least one has settled.
	FirstCompleted
	// FirstException: one has finished with an exception, or all have settled.
	FirstException
)

// Event says that the future registered under Tag settled, and whether it
// finished with an exception.
type Event struct {
	Tag    int
	Failed bool
}

// Completions collects the settle events of many futures in the order they
// happened; it is what wait() and as_completed() block on. Futures push into
// it (Future.Watch); one consumer awaits a condition (Await) or takes events
// one at a time (Next). A Completions is used for one wait and then dropped.
type Completions struct {
	mu      sync.Mutex    // protects the fields below
	events  []Event       // every event pushed so far
	taken   int           // events[:taken] were returned by Next
	failed  int           // events with Failed set
	changed chan struct{} // capacity 1: a token means "events grew"
}

// NewCompletions returns an empty Completions.
func NewCompletions() *Completions {
	return &Completions{changed: make(chan struct{}, 1)}
}

// Push records that the future tagged tag settled.
func (c *Completions) Push(tag int, failed bool) {
	c.mu.Lock()
	c.events = append(c.events, Event{tag, failed})
	if failed {
		c.failed++
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default: // a token is already there; the consumer will see every event
	}
}

// Counts returns how many events were pushed and how many of them failed.
func (c *Completions) Counts() (settled, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events), c.failed
}

func (m Mode) satisfied(settled, failed, total int) bool {
	switch m {
	case FirstCompleted:
		return settled > 0 || total == 0
	case FirstException:
		return failed > 0 || settled >= total
	}
	return settled >= total
}

// Await blocks until mode is satisfied for total followed futures, or the
// deadline passes (zero: no deadline), and reports whether it was satisfied.
func (c *Completions) Await(mode Mode, total int, deadline time.Time) bool {
	for {
		settled, failed := c.Counts()
		if mode.satisfied(settled, failed, total) {
			return true
		}
		if !receive(c.changed, deadline) {
			settled, failed = c.Counts()
			return mode.satisfied(settled, failed, total)
		}
	}
}

// Next returns the oldest event not yet returned, blocking until there is one
// or the deadline passes (then ok is false).
func (c *Completions) Next(deadline time.Time) (e Event, ok bool) {
	for {
		c.mu.Lock()
		if c.taken < len(c.events) {
			e = c.events[c.taken]
			c.taken++
			c.mu.Unlock()
			return e, true
		}
		c.mu.Unlock()
		if !receive(c.changed, deadline) {
			return Event{}, false
		}
	}
}
