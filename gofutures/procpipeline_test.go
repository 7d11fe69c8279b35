package gofutures

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestServiceTimeDepth feeds one serviceTime a sequence of workloads, in
// order, each followed by the depth it must allow.
func TestServiceTimeDepth(t *testing.T) {
	var s serviceTime
	if d := s.depth(); d != 1 {
		t.Errorf("depth with nothing measured = %d; want 1 (one at a time until tasks are known to be short)", d)
	}
	steps := []struct {
		tasks    int
		each     time.Duration
		min, max int // the depth allowed after them (the average rounds down)
		why      string
	}{
		{50, 20 * time.Microsecond, maxPipelineDepth, maxPipelineDepth, "short tasks"},
		{1, 10 * time.Millisecond, 1, 1, "the latest task was long: at once"},
		{1, 20 * time.Microsecond, 2, 2, "short again: 2 while the average comes down"},
		{30, 20 * time.Microsecond, maxPipelineDepth, maxPipelineDepth, "short tasks"},
		{1, time.Second, 1, 1, "one long task is enough to stop pipelining"},
		{200, 100 * time.Microsecond, 1, 1, "a long task is remembered"},
		{2000, 100 * time.Microsecond, maxPipelineDepth, maxPipelineDepth, "forgotten after many short ones"},
		{50, 190 * time.Microsecond, 10, 11, "2 ms of work per worker"},
		{50, time.Millisecond, 2, 2, "2 at least, so that a round trip is not taken for work"},
		{50, 3 * time.Millisecond, 1, 1, "over the budget: one at a time"},
	}
	for _, step := range steps {
		for range step.tasks {
			s.observe(step.each)
		}
		if d := s.depth(); d < step.min || d > step.max {
			t.Errorf("depth after %d tasks of %v = %d; want %d..%d (%s)", step.tasks, step.each, d, step.min, step.max, step.why)
		}
	}
}

// warmUp runs n short tasks (ids from 1000), so that the worker is up and
// idle, and then makes the pool pipeline: it sets the measured service
// time to that of short tasks. What the n tasks measured depends on the
// machine: under -race on a busy machine an echo took 0.6-1.2 ms, a depth
// of 2 or 3, and the tests that need 5 tasks in flight failed.
func warmUp(t *testing.T, p *ProcessPool, sink *procSink, n int) {
	t.Helper()
	before, _ := sink.snapshot()
	payloads := make([]string, n)
	for i := range payloads {
		payloads[i] = "echo:warm"
	}
	submitTogether(p, 1000, payloads...)
	sink.waitCompleted(t, len(before)+n)
	p.mu.Lock()
	p.service = serviceTime{}
	for range n {
		p.service.observe(20 * time.Microsecond)
	}
	p.mu.Unlock()
	if d := p.service.depth(); d < 5 {
		t.Fatalf("after %d short tasks the pipeline depth is %d (tasks took %v); want >= 5", n, d, p.service.avg)
	}
}

// submitTogether queues payloads (ids from first) at once, as a fast
// submitter would, so that an idle worker is sent them all in one go.
func submitTogether(p *ProcessPool, first uint64, payloads ...string) []*ProcTask {
	var tasks []*ProcTask
	p.mu.Lock()
	for i, payload := range payloads {
		task := &ProcTask{ID: first + uint64(i), Future: NewFuture(), Payload: []byte(payload)}
		tasks = append(tasks, task)
		p.queue.push(task)
		p.counts.submitted++
	}
	p.unlockAfterDispatch(nil)
	return tasks
}

// completedAfter waits for n completions after the first skip and
// returns their data, in order, as "[a b ...]".
func completedAfter(t *testing.T, sink *procSink, skip, n int) string {
	t.Helper()
	var got []string
	for _, x := range sink.waitCompleted(t, skip+n)[skip:] {
		got = append(got, x.data)
	}
	return fmt.Sprint(got)
}

// waitPipelined waits until task is sent to a worker behind another task.
func waitPipelined(t *testing.T, p *ProcessPool, task *ProcTask) {
	t.Helper()
	deadline := time.Now().Add(procTimeout)
	for {
		p.mu.Lock()
		behind := false
		for w := range p.workers {
			for i, x := range w.inflight {
				behind = behind || (x == task && i > 0)
			}
		}
		p.mu.Unlock()
		if behind {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %d was never sent behind another (no pipelining)", task.ID)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProcessPoolPipelinesShortTasksInOrder(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	warmUp(t, p, sink, 20)
	var payloads []string
	for i := range 100 {
		payloads = append(payloads, fmt.Sprintf("echo:%d", i))
	}
	payloads = append(payloads, "sleep:300", "echo:behind")
	tasks := submitTogether(p, 1, payloads...)
	waitPipelined(t, p, tasks[len(tasks)-1])
	if s := p.Stats(); s.Running < 2 {
		t.Errorf("Stats().Running = %d while a task waits behind the sleep; want >= 2", s.Running)
	}
	c := sink.waitCompleted(t, 20+len(tasks))
	for i, x := range c[20:] {
		if x.task != tasks[i] {
			t.Fatalf("answer %d is task %d; one worker answers in the order it was sent", i, x.task.ID)
		}
	}
	if p.service.depth() != 1 {
		t.Errorf("depth after a 300 ms task = %d; want 1", p.service.depth())
	}
	// Later short tasks are sent one at a time: one behind a long task
	// would wait for it while another worker may be free.
	for _, x := range submitTogether(p, 500, "sleep:100", "echo:x", "echo:y") {
		waitRunning(t, x)
		if s := p.Stats(); s.Running > 1 {
			t.Errorf("Stats().Running = %d soon after a long task; want 1", s.Running)
		}
	}
}

func TestProcessPoolSurviveRequeuesTasksSentBehindTheDeadOne(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Survive = true
	p, sink := newTestPool(t, cfg)
	warmUp(t, p, sink, 20)
	tasks := submitTogether(p, 1, "sleep:100", "exit:3", "echo:a", "echo:b", "echo:c")
	waitPipelined(t, p, tasks[4])
	f := sink.waitFailed(t, 1)
	var d *WorkerDied
	if !errors.As(f[0].err, &d) || f[0].task != tasks[1] || d.TaskID != 2 || d.ExitCode != 3 {
		t.Fatalf("Failed(%d, %v); want task 2, its worker exited with 3", f[0].task.ID, f[0].err)
	}
	if got := completedAfter(t, sink, 20, 4); got != "[slept 100 a b c]" {
		t.Errorf("completions after the warm-up: %v; want the tasks behind the dead one run by its replacement", got)
	}
	if s := p.Stats(); s.Died != 1 || s.Done != 25 || s.Failed != 1 || s.Running != 0 || s.Queued != 0 {
		t.Errorf("Stats() = %+v; want 1 died, 25 done (1 failed), nothing running or queued", s)
	}
}

func TestProcessPoolDeathBreaksWithTheTasksSentBehind(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	warmUp(t, p, sink, 20)
	tasks := submitTogether(p, 1, "sleep:100", "exit:3", "echo:a", "echo:b")
	waitPipelined(t, p, tasks[3])
	b := sink.waitBroken(t)
	if fmt.Sprint(taskIDs(b.tasks)) != "[2 3 4]" {
		t.Errorf("Broken with tasks %v; want [2 3 4] (the dead one first, then those sent behind it)", taskIDs(b.tasks))
	}
}

func TestProcessPoolKillTaskSentBehindAnother(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	warmUp(t, p, sink, 20)
	tasks := submitTogether(p, 1, "sleep:200", "sleep:20000", "echo:after")
	waitPipelined(t, p, tasks[1])
	start := time.Now()
	if !p.KillTask(tasks[1].Future) {
		t.Fatalf("KillTask of a task sent behind another = false")
	}
	if p.KillTask(tasks[1].Future) {
		t.Errorf("KillTask twice = true")
	}
	if f := sink.waitFailed(t, 1); f[0].err != ErrTaskKilled || f[0].task != tasks[1] {
		t.Fatalf("Failed(%d, %v); want task 2, ErrTaskKilled", f[0].task.ID, f[0].err)
	}
	c := sink.waitCompleted(t, 20+2)
	if c[20].data != "slept 200" || c[21].data != "after" {
		t.Errorf("completions: %q, %q; want the task ahead to finish, the one behind to run after the kill",
			c[20].data, c[21].data)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the killed task ran: %v", took)
	}
	if s := p.Stats(); s.Killed != 1 || s.Cancelled != 1 || s.Broken {
		t.Errorf("Stats() = %+v; want 1 killed, 1 cancelled", s)
	}
}

// pipelinedBehind starts a one-worker pool whose worker runs head (task 1)
// with tasks 2 and 3 ("echo:a", "echo:b") sent behind it, after 20
// warm-up completions.
func pipelinedBehind(t *testing.T, head string) (*ProcessPool, *procSink, *procWorker) {
	t.Helper()
	p, sink := newTestPool(t, testWorkerConfig(1))
	warmUp(t, p, sink, 20)
	tasks := submitTogether(p, 1, head, "echo:a", "echo:b")
	waitPipelined(t, p, tasks[2])
	p.mu.Lock()
	defer p.mu.Unlock()
	for w := range p.workers {
		return p, sink, w
	}
	t.Fatal("no worker")
	return nil, nil, nil
}

func TestProcessPoolHandBackRequeuesTasksSentBehind(t *testing.T) {
	p, sink, w := pipelinedBehind(t, "sleep:300")
	// As a worker says it: ids of tasks behind its head (and one that is
	// not its task, ignored).
	ids := binary.BigEndian.AppendUint64(nil, 3)
	ids = binary.BigEndian.AppendUint64(ids, 99)
	ids = binary.BigEndian.AppendUint64(ids, 2)
	p.handBack(w, ids)
	if s := p.Stats(); s.Running != 1 || s.Queued != 2 {
		t.Errorf("after the hand-back: Stats() = %+v; want 1 running (the head), 2 queued", s)
	}
	if got := completedAfter(t, sink, 20, 3); got != "[slept 300 b a]" {
		t.Errorf("completions: %v; want the head, then the handed-back tasks in the order handed back", got)
	}
}

// The worker may answer the task ahead of those it hands back before the
// hand-back arrives: one of them is then the head here. (The test worker
// knows nothing of hand-backs and runs every task it was sent; only the
// pool's bookkeeping is checked: the head moves on, nothing is lost, the
// worker keeps getting work.)
func TestProcessPoolHandBackOfTheHead(t *testing.T) {
	p, sink, w := pipelinedBehind(t, "sleep:200")
	p.handBack(w, binary.BigEndian.AppendUint64(nil, 1))
	if s := p.Stats(); s.Running != 2 || s.Queued != 1 {
		t.Errorf("after handing back the head: Stats() = %+v; want 2 running, 1 queued", s)
	}
	if got := completedAfter(t, sink, 20, 3); got != "[a b slept 200]" {
		t.Errorf("completions: %v; want the tasks behind, then the handed-back one run again", got)
	}
	submit(t, p, 9, "echo:after")
	if got := completedAfter(t, sink, 23, 1); got != "[after]" {
		t.Errorf("after the hand-back: %v", got)
	}
}

// A worker that answers takes at most its share of what is queued (the
// rest waits for the other workers), however deep its pipeline may be:
// a batch queued while every worker ran would otherwise go to whichever
// answered first, committed to it even if the batch turns out long.
func TestProcessPoolShareOfTheQueue(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(2))
	warmUp(t, p, sink, 20)
	p.mu.Lock()
	for _, c := range []struct{ queued, want int }{{0, 1}, {1, 1}, {3, 1}, {7, 3}, {40, 20}} {
		for p.queue.len() < c.queued {
			p.queue.push(&ProcTask{ID: uint64(p.queue.len() + 1), Future: NewFuture(), Payload: []byte("echo:q")})
		}
		if got := p.shareLocked(len(p.workers)); got != c.want {
			t.Errorf("share of %d queued tasks among 2 workers = %d; want %d", c.queued, got, c.want)
		}
	}
	for p.queue.len() > 0 { // never submitted: not the pool's to run
		p.queue.pop()
	}
	p.mu.Unlock()
}
