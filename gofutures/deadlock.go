package gofutures

import (
	"fmt"
	"strings"
	"sync"
)

// Deadlock detection. A thread-pool worker that waits for a future blocks
// its pool's capacity; when that wait can provably never end, the core says
// so instead of letting it hang. The proof uses only what the core knows for
// certain:
//
//   - where each pending future is: queued in a pool (Future.at is the
//     pool's queue slot) or running on a worker (Future.at is that worker's
//     slot); a future the core did not schedule (a plain Future, a process
//     pool's) has no place and counts as able to finish;
//   - which workers are blocked, and on what: a worker registers with Block
//     before it waits without a deadline and leaves with Unblock. A wait
//     with a deadline ends on its own, so the worker counts as free.
//
// A set S of blocked workers is stuck when each of them waits for futures
// that can only finish through S: a future running on a member of S, or
// queued in a pool that can start no worker and whose workers are all in S.
// The largest such set is found by starting from every blocked worker in
// reach and removing those that have a way out until none has. Only the
// wait being registered can make a new stuck set (every other member was
// checked when it blocked, and the rest of the system only frees workers),
// so checking it alone finds every deadlock, when it forms.
//
// Locking: graphMu protects every Slot's waiting fields. It is taken before
// a pool's mutex and before a Future's, never after them.
var graphMu sync.Mutex

// Slot is a place a future can be in a pool: one worker of that pool, or
// (Index -1) the pool's queue. A pool makes its slots; Future.at points to
// one.
type Slot struct {
	pool  scheduler
	Index int // worker index, -1 for the queue

	// Protected by graphMu.
	waits   []*Future // what the worker waits for; nil when it is not blocked
	waitAll bool      // it needs all of waits (else any one)
	timed   bool      // the wait has a deadline: it ends on its own
}

// scheduler is what the analysis needs of a pool. Both methods take the
// pool's own lock; graphMu is held by the caller.
type scheduler interface {
	// capacity returns the pool's live worker slots and whether a task
	// queued now could start without one of them finishing (the pool may
	// still start a worker, or grows when its workers block).
	capacity() (workers []*Slot, canStart bool)
	// name is how errors name the pool ("ThreadPoolExecutor-0").
	name() string
	// blocking is told when one of its workers starts (+1) or stops (-1)
	// waiting, with or without a deadline; a growing pool starts a worker.
	blocking(delta int)
	// outcome counts how one of its tasks ended.
	outcome(o taskOutcome)
}

type taskOutcome uint8

const (
	outcomeSucceeded taskOutcome = iota
	outcomeFailed
	outcomeSkipped // cancelled while queued, never ran
)

// DeadlockError says why a wait can never end: the chain of futures and
// workers from the waiting worker back to itself, or to a pool whose
// workers are all blocked.
type DeadlockError struct {
	// Futures involved, in the order the message names them; their Tag
	// lets a binding find its own objects.
	Futures []*Future
	msg     string
}

func (e *DeadlockError) Error() string { return e.msg }

// Block registers that the worker at s is about to wait for fs (all of
// them when all is true, else any one), with a deadline when timed. It
// returns a *DeadlockError, and registers nothing, when the wait could never
// end; otherwise the caller waits and then calls Unblock. s must be a worker
// slot, used by one goroutine at a time.
func (s *Slot) Block(fs []*Future, all, timed bool) error {
	graphMu.Lock()
	defer graphMu.Unlock()
	s.waits, s.waitAll, s.timed = fs, all, timed
	if !timed {
		if err := s.deadlockLocked(); err != nil {
			s.waits = nil
			return err
		}
	}
	s.pool.blocking(+1)
	return nil
}

// Unblock ends the wait registered by Block.
func (s *Slot) Unblock() {
	graphMu.Lock()
	defer graphMu.Unlock()
	s.waits = nil
	s.pool.blocking(-1)
}

// blockedLocked reports whether the worker waits without a deadline.
func (s *Slot) blockedLocked() bool { return s.waits != nil && !s.timed }

// deadlockLocked finds the largest stuck set in reach of s and reports a
// DeadlockError if s is in it.
func (s *Slot) deadlockLocked() error {
	caps := map[scheduler]poolCapacity{}
	capOf := func(p scheduler) poolCapacity {
		c, ok := caps[p]
		if !ok {
			c.workers, c.canStart = p.capacity()
			caps[p] = c
		}
		return c
	}
	// Every blocked worker in reach, starting from s.
	stuck := map[*Slot]bool{}
	todo := []*Slot{s}
	for len(todo) > 0 {
		w := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if stuck[w] || !w.blockedLocked() {
			continue
		}
		stuck[w] = true
		for _, f := range w.waits {
			at := f.at.Load()
			switch {
			case at == nil:
			case at.Index >= 0:
				todo = append(todo, at)
			default:
				todo = append(todo, capOf(at.pool).workers...)
			}
		}
	}
	// Remove every worker with a way out until none is left to remove.
	for changed := true; changed; {
		changed = false
		for w := range stuck {
			if !w.waitStuck(stuck, capOf) {
				delete(stuck, w)
				changed = true
			}
		}
	}
	if !stuck[s] {
		return nil
	}
	return s.explain(stuck, capOf)
}

type poolCapacity struct {
	workers  []*Slot
	canStart bool
}

// waitStuck reports whether w's wait can only end through the workers in
// stuck.
func (w *Slot) waitStuck(stuck map[*Slot]bool, capOf func(scheduler) poolCapacity) bool {
	pending := 0
	for _, f := range w.waits {
		if f.isDone() {
			if !w.waitAll {
				return false // an any-wait with a done future ends now
			}
			continue
		}
		pending++
		fs := futureStuck(f, stuck, capOf)
		if w.waitAll && fs {
			return true
		}
		if !w.waitAll && !fs {
			return false
		}
	}
	return !w.waitAll && pending > 0
}

// futureStuck reports whether pending future f can only finish through the
// workers in stuck.
func futureStuck(f *Future, stuck map[*Slot]bool, capOf func(scheduler) poolCapacity) bool {
	at := f.at.Load()
	switch {
	case at == nil:
		return false
	case at.Index >= 0:
		return stuck[at]
	}
	c := capOf(at.pool)
	if c.canStart || len(c.workers) == 0 {
		return false
	}
	for _, w := range c.workers {
		if !stuck[w] {
			return false
		}
	}
	return true
}

// explain follows the wait from s through the stuck set and says what it
// found: a cycle back to s, or a pool whose workers are all blocked.
func (s *Slot) explain(stuck map[*Slot]bool, capOf func(scheduler) poolCapacity) error {
	var b strings.Builder
	var futures []*Future
	seen := map[*Slot]bool{}
	w := s
	fmt.Fprintf(&b, "this wait would never end: worker %s waits for ", s.name())
	for {
		seen[w] = true
		f := w.stuckWait(stuck, capOf)
		futures = append(futures, f)
		at := f.at.Load()
		fmt.Fprintf(&b, "%s, ", describe(f))
		if at.Index < 0 {
			names := []string{}
			for _, x := range capOf(at.pool).workers {
				names = append(names, x.name())
			}
			fmt.Fprintf(&b, "which is queued in %s, whose workers (all it may have) are all blocked waiting: %s",
				at.pool.name(), strings.Join(names, ", "))
			break
		}
		if at == s {
			b.WriteString("which this very worker is running (a cycle of waits)")
			break
		}
		if seen[at] {
			fmt.Fprintf(&b, "which runs on worker %s (a cycle of waits)", at.name())
			break
		}
		fmt.Fprintf(&b, "which runs on worker %s, which waits for ", at.name())
		w = at
	}
	return &DeadlockError{Futures: futures, msg: b.String()}
}

// stuckWait returns one of w's pending futures that is stuck.
func (w *Slot) stuckWait(stuck map[*Slot]bool, capOf func(scheduler) poolCapacity) *Future {
	for _, f := range w.waits {
		if !f.isDone() && futureStuck(f, stuck, capOf) {
			return f
		}
	}
	panic("gofutures: a stuck worker waits for no stuck future")
}

func (s *Slot) name() string {
	if s.Index < 0 {
		return s.pool.name()
	}
	return fmt.Sprintf("%s_%d", s.pool.name(), s.Index)
}

// describe names f as Python's repr of the future that Tag points to
// begins, so that a reader can match it with the futures they hold.
func describe(f *Future) string {
	st, _ := f.State()
	return fmt.Sprintf("<Future at %#x state=%s>", f.Tag, strings.ToLower(st.String()))
}
