package gofutures

import (
	"fmt"
	"slices"
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
// Limits, by design: the proof treats a queued future as one that only a
// worker can finish, so a wait that someone outside the pools would have
// ended by cancelling it (Future.cancel, shutdown with cancel_futures) is
// still reported; and only waits that go through the core (gofutures' own
// result, exception, wait, as_completed) are seen, not a stdlib wait on the
// same futures.
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
	// Extra marks a worker a growing pool started because its workers
	// blocked, not for a submit. Set before the worker starts; read-only.
	Extra bool

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
// DeadlockError if s is in it. Each blocked worker's futures are read once,
// into the few places they can finish (deps), so a pass costs per place,
// not per future.
func (s *Slot) deadlockLocked() error {
	g := &stuckSet{members: map[*Slot]bool{}, deps: map[*Slot]*waitDeps{}, caps: map[scheduler]poolCapacity{}}
	// Every blocked worker in reach, starting from s; a pool's workers are
	// in reach once any future queued in it is.
	queues := map[scheduler]bool{}
	todo := []*Slot{s}
	for len(todo) > 0 {
		w := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if g.members[w] || !w.blockedLocked() {
			continue
		}
		d := w.depsLocked()
		if d.free {
			continue // its wait ends, or can end without any worker
		}
		g.members[w], g.deps[w] = true, d
		todo = append(todo, d.workers...)
		for _, p := range d.queues {
			if !queues[p] {
				queues[p] = true
				todo = append(todo, g.capOf(p).workers...)
			}
		}
	}
	// Remove every worker with a way out until none is left to remove. A
	// pass judges each pool's queue once (full: every worker in the set);
	// judging it before some removals of the same pass only delays those to
	// the next pass, so the result is the same largest stuck set.
	for changed := true; changed; {
		changed = false
		g.full = map[scheduler]bool{}
		for w := range g.members {
			if !g.deps[w].stuck(g) {
				delete(g.members, w)
				changed = true
			}
		}
	}
	if !g.members[s] {
		return nil
	}
	return s.explain(g)
}

type poolCapacity struct {
	workers  []*Slot
	canStart bool
}

// stuckSet is the candidate stuck set of one deadlockLocked call.
type stuckSet struct {
	members map[*Slot]bool
	deps    map[*Slot]*waitDeps        // each member's
	caps    map[scheduler]poolCapacity // read once per call
	full    map[scheduler]bool         // per pass: the pool may start no worker and all its workers are members
}

func (g *stuckSet) capOf(p scheduler) poolCapacity {
	c, ok := g.caps[p]
	if !ok {
		c.workers, c.canStart = p.capacity()
		g.caps[p] = c
	}
	return c
}

// waitDeps is where a blocked worker's pending futures are: running on
// workers, queued in pools. Each place is listed once.
type waitDeps struct {
	all     bool // the wait needs all of its futures, else any one
	free    bool // the wait can end without any worker: an any-wait with a done future or one the core did not schedule, or an all-wait with nothing pending
	workers []*Slot
	queues  []scheduler
}

func (w *Slot) depsLocked() *waitDeps {
	d := &waitDeps{all: w.waitAll}
	pending := false
	for _, f := range w.waits {
		if f.isDone.Load() {
			if !d.all {
				d.free = true
				return d
			}
			continue
		}
		at := f.at.Load()
		if at == nil {
			if !d.all {
				d.free = true
				return d
			}
			continue // an all-wait may still be stuck on its other futures
		}
		pending = true
		if at.Index >= 0 {
			if !slices.Contains(d.workers, at) {
				d.workers = append(d.workers, at)
			}
		} else if !slices.Contains(d.queues, at.pool) {
			d.queues = append(d.queues, at.pool)
		}
	}
	d.free = !pending
	return d
}

// stuck reports whether the wait can only end through the members of g.
func (d *waitDeps) stuck(g *stuckSet) bool {
	for _, w := range d.workers {
		if g.members[w] == d.all {
			return d.all
		}
	}
	for _, p := range d.queues {
		if g.queueFull(p) == d.all {
			return d.all
		}
	}
	return !d.all
}

// queueFull reports whether a task queued in p can only start once a member
// of g stops waiting.
func (g *stuckSet) queueFull(p scheduler) bool {
	full, ok := g.full[p]
	if !ok {
		c := g.capOf(p)
		full = !c.canStart && len(c.workers) > 0
		for _, w := range c.workers {
			full = full && g.members[w]
		}
		g.full[p] = full
	}
	return full
}

// futureStuck reports whether a pending future that is at at (its Future.at)
// can only finish through the members of g.
func (g *stuckSet) futureStuck(at *Slot) bool {
	switch {
	case at == nil:
		return false
	case at.Index >= 0:
		return g.members[at]
	}
	return g.queueFull(at.pool)
}

// explain follows the wait from s through the stuck set g and says what it
// found: a cycle back to s, or a pool whose workers are all blocked. It
// returns nil if the chain cannot be followed (a future finished while
// graphMu was held: nothing is stuck after all).
func (s *Slot) explain(g *stuckSet) error {
	var b strings.Builder
	var futures []*Future
	seen := map[*Slot]bool{}
	w := s
	fmt.Fprintf(&b, "this wait would never end: worker %s waits for ", s.name())
	for {
		seen[w] = true
		f, at := w.stuckWait(g)
		if f == nil {
			return nil
		}
		futures = append(futures, f)
		fmt.Fprintf(&b, "%s, ", describe(f))
		if at.Index < 0 {
			names := []string{}
			for _, x := range g.capOf(at.pool).workers {
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

// stuckWait returns one of w's pending futures that is stuck, and where it
// is; nil if there is none.
func (w *Slot) stuckWait(g *stuckSet) (*Future, *Slot) {
	for _, f := range w.waits {
		at := f.at.Load()
		if at != nil && !f.isDone.Load() && g.futureStuck(at) {
			return f, at
		}
	}
	return nil, nil
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
