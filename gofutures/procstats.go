package gofutures

// procCounts are a ProcessPool's task and worker counters, protected by
// the pool's mu.
type procCounts struct {
	submitted int64 // tasks accepted
	done      int64 // ended with a result or an exception (a break, a kill, a death)
	failed    int64 // of done, with an exception
	cancelled int64 // cancelled while queued, at shutdown, or by KillTask
	killed    int64 // workers killed for their task (TaskTimeout, KillTask)
	died      int64 // unexpected deaths survived (Survive)
	recycled  int64 // workers retired over MaxWorkerMemory
}

func (c *procCounts) fail(n int) {
	c.done += int64(n)
	c.failed += int64(n)
}

// ProcessStats is a snapshot of a ProcessPool's counters.
type ProcessStats struct {
	Workers  int // live worker processes (including retiring ones)
	Idle     int // of those, waiting for a task
	Queued   int // tasks waiting for a worker
	Running  int // tasks written to a worker and not answered
	Started  int // worker processes started in all
	Shutdown bool
	Broken   bool

	Submitted, Done, Failed, Cancelled int64
	Killed, Died, Recycled             int64
}

// Stats returns a snapshot of the pool's counters.
func (p *ProcessPool) Stats() ProcessStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := ProcessStats{
		Workers: len(p.workers), Idle: len(p.idle), Queued: p.queue.len(), Started: p.started,
		Shutdown: p.shutdown, Broken: p.broken != nil,
		Submitted: p.counts.submitted, Done: p.counts.done, Failed: p.counts.failed,
		Cancelled: p.counts.cancelled, Killed: p.counts.killed, Died: p.counts.died,
		Recycled: p.counts.recycled,
	}
	for w := range p.workers {
		s.Running += len(w.inflight)
	}
	return s
}
