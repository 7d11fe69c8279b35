package gofutures

import (
	"errors"
	"syscall"
)

// DefaultMaxStartDeaths is ProcessConfig.MaxStartDeaths when left 0.
const DefaultMaxStartDeaths = 3

// ErrTaskKilled fails a task whose worker was killed on request (KillTask).
var ErrTaskKilled = errors.New("the task's worker process was killed on request")

// surviveLocked reports whether the pool outlives death d (Survive mode):
// yes, unless d is the MaxStartDeaths-th consecutive death of a starting
// worker, which means workers cannot start (a crashing initializer, a
// broken environment) and replacing them again would loop forever.
func (p *ProcessPool) surviveLocked(d *WorkerDied) bool {
	if !p.cfg.Survive {
		return false
	}
	if d.Starting {
		p.startDeaths++
		limit := p.cfg.MaxStartDeaths
		if limit <= 0 {
			limit = DefaultMaxStartDeaths
		}
		if p.startDeaths >= limit {
			return false
		}
	}
	p.counts.died++
	p.counts.fail(1)
	return true
}

// replaceLocked starts a worker in place of one that was killed or died
// (as finish does for a retired one: an eager pool keeps its size, a lazy
// one starts workers for queued work in dispatchLocked), dispatches, and
// unlocks p.mu.
func (p *ProcessPool) replaceLocked() {
	var err error
	if !p.cfg.Lazy && (!p.shutdown || p.queue.len() > 0) {
		err = p.spawnLocked()
	}
	p.unlockAfterDispatch(err)
}

// KillTask kills (SIGKILL) the worker running the task of future f; the
// task then fails alone with ErrTaskKilled (sink.Failed) and the worker is
// replaced. A task sent to a worker behind another (procpipeline.go) is
// killed so when its turn comes. It reports whether f's task was in a
// worker (false: queued, already answered, or not this pool's).
func (p *ProcessPool) KillTask(f *Future) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for w := range p.workers {
		for i, t := range w.inflight {
			switch {
			case t.Future != f:
			case i == 0:
				return p.killTaskLocked(w, t, ErrTaskKilled)
			case w.state == workerKilled || p.broken != nil || t.kill != nil:
				return false
			default:
				t.kill = ErrTaskKilled // finish kills it once it is the head
				return true
			}
		}
	}
	return false
}

// killTaskLocked SIGKILLs w for its task t with reason why, unless t is no
// longer w's task (it was answered meanwhile) or the pool is broken. From
// here on w's death is expected and a late answer from it is ignored.
func (p *ProcessPool) killTaskLocked(w *procWorker, t *ProcTask, why error) bool {
	if w.head() != t || w.state == workerKilled || p.broken != nil {
		return false
	}
	w.state, w.kill = workerKilled, &workerKill{why: why, task: w.popHeadLocked()}
	w.stopTimerLocked()
	p.counts.killed++
	if why == ErrTaskKilled {
		p.counts.cancelled++ // the binding ends its future cancelled
	} else {
		p.counts.fail(1)
	}
	w.proc.signal(syscall.SIGKILL)
	return true
}
