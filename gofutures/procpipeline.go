package gofutures

import (
	"encoding/binary"
	"time"
)

// Pipelining: a worker may be sent its next tasks before it has answered
// the one it runs, so that it never sits idle for a round trip through
// this process, and several tasks travel in one write. How many depends
// on how long tasks take: only tasks observed to be short are pipelined,
// since a task sent to a worker is committed to it (marked running, no
// longer cancellable, and waiting behind the worker's current task even if
// another worker frees up). Long or unknown tasks go one at a time, as the
// stdlib sends them.
//
// A worker runs its tasks in order and writes each answer before it starts
// the next task, so of its unanswered tasks only the first (its head) can
// have started: a death is still attributed to one task, and the others,
// never started, are given back to the queue. A worker whose head runs
// long hands back the tasks behind it (FrameHandBack, handBack) so that a
// free worker runs them: at once after a head that ran longer than
// PipelineBudget (the prediction was wrong: tasks that each end before
// HandBackAfter could otherwise queue up far longer behind one another),
// keeping the next task only, as depth now allows; and while a head runs
// past HandBackAfter, all of them.
//
// The tasks a worker is fed as it answers are limited to its share of the
// queue (shareLocked), so that a wrong prediction commits at most that.

// maxPipelineDepth bounds the unanswered tasks of one worker.
const maxPipelineDepth = 16

// serviceTime is how long the pool's tasks take in their workers, from
// the worker's point of view (from when it could start the task to its
// answer): a moving average, and a slowly fading memory of the longest
// task. Protected by the pool's mu.
type serviceTime struct {
	avg     time.Duration // 0: nothing measured yet
	last    time.Duration // the latest task's
	longest time.Duration // fades by 1/256 per task
}

// longTask: once a task this long was seen recently, nothing is pipelined
// (tasks sent behind such a task would wait for it while another worker
// may be free) until some thousand short tasks have faded its memory.
const longTask = HandBackAfter

// observe adds one task's duration (the average weighs it 1/8: a change of
// workload shows within a few tasks).
func (s *serviceTime) observe(d time.Duration) {
	if d <= 0 {
		d = 1
	}
	s.last = d
	s.longest = max(d, s.longest-s.longest/256)
	if s.avg == 0 {
		s.avg = d
		return
	}
	s.avg += (d - s.avg) / 8
}

// depth is how many unanswered tasks a worker may have: 1 until tasks
// are known to be short, and at once when one is not (the average follows
// a change of workload only in some tasks), else what fits in
// PipelineBudget, but at least 2.
// A task measured alone includes a round trip through this process (some
// tens of microseconds, more on a busy machine), so only a task sent behind
// another shows what the worker really spends: with one at a time, short
// tasks could look too long to ever be pipelined.
func (s *serviceTime) depth() int {
	if s.avg == 0 || s.avg > PipelineBudget || s.last > PipelineBudget || s.longest >= longTask {
		return 1
	}
	return max(2, min(maxPipelineDepth, int(PipelineBudget/s.avg)))
}

// head is the task w runs (or will run first), nil if it has none.
func (w *procWorker) head() *ProcTask {
	if len(w.inflight) == 0 {
		return nil
	}
	return w.inflight[0]
}

// popHeadLocked removes w's head after its answer (or its kill).
func (w *procWorker) popHeadLocked() *ProcTask {
	t := w.inflight[0]
	w.inflight[0] = nil
	w.inflight = w.inflight[1:]
	if len(w.inflight) == 0 {
		w.inflight = w.inflight[:0:0] // let the backing array go
	}
	return t
}

// acceptingLocked is how many more tasks w may be sent now: none while it
// retires or is being killed, else what its pipeline depth and its task
// quota (MaxTasksPerChild) leave.
func (p *ProcessPool) acceptingLocked(w *procWorker) int {
	if w.state != workerServing {
		return 0
	}
	n := p.service.depth() - len(w.inflight)
	if p.cfg.MaxTasksPerChild > 0 {
		n = min(n, p.cfg.MaxTasksPerChild-w.done-len(w.inflight))
	}
	return max(n, 0)
}

// bigPayload: a task payload at least this big is queued as a buffer of
// its own (written with writev), not copied into the frame buffer.
const bigPayload = 64 << 10

// feedLocked sends w up to n queued tasks in one write and returns how
// many it sent. A task whose future was cancelled while queued is not
// sent: the sink hears of it (outside the lock) so that it releases what
// it holds.
func (p *ProcessPool) feedLocked(w *procWorker, n int) int {
	now := time.Now()
	var bufs [][]byte // small frames packed together; a big payload as its own buffer, not copied
	var buf []byte
	sent := 0
	for sent < n {
		t, ok := p.queue.pop()
		if !ok {
			break
		}
		if t.kill != nil {
			// KillTask while it waited behind another task, whose worker
			// then died: never to run.
			p.dropLocked(func() { p.sink.Failed(t, t.kill) })
			continue
		}
		if !t.started {
			if running, _ := t.Future.Start(); !running {
				p.dropLocked(func() { p.sink.Cancelled(t) })
				continue
			}
			t.started = true
		}
		if len(t.Payload) < bigPayload {
			buf = AppendFrame(buf, Frame{Kind: FrameTask, ID: t.ID, Data: t.Payload})
		} else {
			buf = AppendFrameHeader(buf, FrameTask, t.ID, len(t.Payload))
			bufs = append(bufs, buf, t.Payload)
			buf = nil
		}
		t.sent = now
		w.inflight = append(w.inflight, t)
		sent++
	}
	if len(buf) > 0 {
		bufs = append(bufs, buf)
	}
	if len(bufs) > 0 {
		// A failed write means the worker is dying; its supervisor reports
		// its unanswered tasks with it.
		w.in.queue(bufs...)
	}
	if sent > 0 && len(w.inflight) == sent && w.ready {
		p.armLocked(w, w.inflight[0]) // else once it is ready (FrameReady)
	}
	return sent
}

// dropLocked counts a queued task that will never be sent as cancelled and
// tells the sink (tell) from a goroutine of its own, outside p.mu, counted
// in sinking.
func (p *ProcessPool) dropLocked(tell func()) {
	p.counts.cancelled++
	p.sinking++
	go func() {
		tell()
		p.sunk()
	}()
}

// handBack requeues the tasks w handed back (FrameHandBack: ids, 8 bytes
// each): sent behind a task that runs long, they go to a free worker
// instead. The worker never started them, but may have answered the task
// ahead of them meanwhile: one of them can be our head by now. An id that
// is not one of w's tasks is ignored.
func (p *ProcessPool) handBack(w *procWorker, ids []byte) {
	p.mu.Lock()
	var back []*ProcTask
	head := w.head()
	for ; len(ids) >= 8; ids = ids[8:] {
		id := binary.BigEndian.Uint64(ids)
		for i, t := range w.inflight {
			if t.ID == id {
				back = append(back, t)
				w.inflight = append(w.inflight[:i], w.inflight[i+1:]...)
				break
			}
		}
	}
	if w.head() != head {
		w.stopTimerLocked()
		p.newHeadLocked(w)
		if len(w.inflight) == 0 && w.state == workerServing {
			p.idle = append(p.idle, w)
		}
	}
	p.requeueLocked(back)
	p.unlockAfterDispatch(nil)
}

// newHeadLocked starts what w's head needs now that it is the task w
// runs: the kill KillTask asked for while it waited, or its time limit.
func (p *ProcessPool) newHeadLocked(w *procWorker) {
	next := w.head()
	switch {
	case next == nil:
	case next.kill != nil:
		p.killTaskLocked(w, next, next.kill)
	case w.ready:
		p.armLocked(w, next)
	}
}

// requeueLocked gives tasks that w was sent and never started back to the
// front of the queue, in their order.
func (p *ProcessPool) requeueLocked(tasks []*ProcTask) {
	for i := len(tasks) - 1; i >= 0; i-- {
		p.queue.pushFront(tasks[i])
	}
}
