package gofutures

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// ProcessConfig describes the worker processes of a ProcessPool.
type ProcessConfig struct {
	Workers int      // how many worker processes run at once (>= 1)
	Command []string // argv that starts one worker (exec, never a bare fork)
	Env     []string // its environment; nil inherits this process's
	// Each worker's environment also gets GOFUTURES_WORKER=<n>, n counting
	// the workers this pool started from 1, so that it can name itself.
	Init             []byte // FrameInit payload sent to every new worker; nil for none
	MaxTasksPerChild int    // replace a worker after this many tasks; 0: never
	// Lazy starts workers on demand, as the stdlib's spawn and forkserver
	// pools do: a task that finds no idle worker starts one, up to Workers.
	// Otherwise all Workers start in NewProcessPool, or, with Fork, at the
	// first Submit, as the stdlib's fork pools start them (so that they
	// inherit what the program set up until then).
	Lazy bool
	// Fork, if set, starts each worker by forking this process (procfork.go)
	// instead of Command and Zygote: workers then inherit this process's
	// memory as it is when they start.
	Fork ForkFunc
	// Files are passed to every worker as its fds 5, 6, ... (what the
	// parent pickled into Init may refer to them, e.g. a multiprocessing
	// Queue in initargs). The pool owns them and closes them once no worker
	// can start any more (every worker exited after Shutdown or a break).
	Files []*os.File

	// The opt-in extras (procsurvive.go, proclimits.go); their zero values
	// keep the stdlib's behaviour.

	// Survive: a worker that dies unexpectedly fails only the task it was
	// running (sink.Failed with a *WorkerDied) and is replaced; the pool
	// goes on. Workers that keep dying while starting still break it
	// (MaxStartDeaths).
	Survive bool
	// MaxStartDeaths: in Survive mode, this many consecutive deaths of
	// starting workers, with no task completed in between, break the pool
	// (a crashing initializer would otherwise respawn forever). 0 means
	// DefaultMaxStartDeaths.
	MaxStartDeaths int
	// TaskTimeout: a task still running this long after it was written to
	// its worker (or, if the worker was still starting, after it became
	// ready) has the worker killed (SIGKILL) and replaced, and fails with a
	// *TaskTimeout. 0: no limit.
	TaskTimeout time.Duration
	// MaxWorkerMemory: a worker whose resident set (VmRSS) exceeds this
	// many bytes after a task is retired as MaxTasksPerChild retires one.
	// 0: no limit. Read from /proc/<pid>/statm; where there is none it
	// never acts.
	MaxWorkerMemory int64
	// Zygote, if set, forks the workers from a helper process that has
	// already started an interpreter and imported what workers need
	// (zygote.go); a worker it cannot start is started by exec of Command.
	// nil: every worker is started by exec.
	Zygote *Zygote
	// ZygotePrepare is what the Zygote readies (once per distinct value)
	// before it forks this pool's workers, so that each worker does not do
	// it again: a JSON object that only the helper reads (_child/zygote.py: the
	// modules every worker would import, the parent's main script to
	// compile). Per pool, since pools of one program may differ (another
	// main script); the helper is shared. nil or invalid JSON: nothing.
	ZygotePrepare []byte
	// AnswerMemory holds the big answers read from workers' shared memory
	// (procshared.go); nil: Go's heap.
	AnswerMemory AnswerMemory
}

// ProcTask is one call to run in a worker process.
type ProcTask struct {
	ID      uint64
	Future  *Future
	Payload []byte // the FrameTask payload
	// Timeout is this task's own time limit (see ProcessConfig.TaskTimeout);
	// 0: the pool's.
	Timeout time.Duration

	// Set by the pool under its mu:
	started bool      // its future is running (it was sent to a worker once)
	sent    time.Time // when it was last written to a worker
	kill    error     // KillTask asked while it waited behind another task
}

// ProcessSink receives what a ProcessPool's tasks produce. Its methods are
// called from the pool's supervisor goroutines, never with a pool lock held.
type ProcessSink interface {
	// Completed: t's worker answered with kind (FrameResult or FrameError)
	// and data. If shared, data is a big answer read from the worker's
	// shared memory (procshared.go) into memory from the pool's
	// AnswerMemory, the sink's from now on: it frees it there once it no
	// longer needs it.
	Completed(t *ProcTask, kind FrameKind, data []byte, shared bool)
	// Broken: the pool broke (err says why, e.g. a *WorkerDied); tasks are
	// every task accepted and not completed, which will never run. Called
	// at most once.
	Broken(err error, tasks []*ProcTask)
	// Failed: t alone failed with err and the pool goes on: its worker
	// was killed for it (*TaskTimeout, ErrTaskKilled), in Survive mode
	// died running it (*WorkerDied), or answered in shared memory that
	// could not be read (*AnswerUnreadable). Called once per such task.
	Failed(t *ProcTask, err error)
	// Cancelled: t's future was cancelled while queued, so t was never
	// sent. Its future is still Cancelled: the sink acknowledges the cancel
	// (Future.SetRunningOrNotifyCancel) where it can tell its own waiters,
	// and releases what it holds for t.
	Cancelled(t *ProcTask)
}

// WorkerDied says which worker process ended unexpectedly, how, and what it
// was running.
type WorkerDied struct {
	PID      int
	ExitCode int       // -1 when killed by a signal
	Signal   os.Signal // nil unless killed by a signal
	TaskID   uint64    // 0 when it was not running a task
	Detail   string    // what the worker said before dying, if anything
	Starting bool      // it died before it was ready (during its Init)
}

func (e *WorkerDied) Error() string {
	how := fmt.Sprintf("exited with code %d", e.ExitCode)
	if e.Signal != nil {
		how = fmt.Sprintf("was killed by signal %d (%v)", e.Signal.(syscall.Signal), e.Signal)
	}
	what := "while idle"
	switch {
	case e.Starting && e.TaskID != 0:
		what = fmt.Sprintf("while starting, with task %d waiting for it", e.TaskID)
	case e.Starting:
		what = "while starting"
	case e.TaskID != 0:
		what = fmt.Sprintf("while running task %d", e.TaskID)
	}
	msg := fmt.Sprintf("worker process %d %s %s", e.PID, how, what)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// WorkerNumberEnv names the environment variable that tells a worker its
// number in its pool (1 for the first worker started).
const WorkerNumberEnv = "GOFUTURES_WORKER"

// ErrTerminated breaks a pool whose workers were stopped on request
// (TerminateWorkers).
var ErrTerminated = errors.New("the worker processes were terminated on request")

// ProcessPool runs tasks in worker processes started by exec (or forked by
// a Zygote) and supervised here: one goroutine per worker reads its answers
// and notices its death at once (its pidfd, procpipe.go: whatever else holds
// its pipes; then wait reports the exit status). Each worker runs one task at a time, in the order it was sent
// them (procpipeline.go), so a death is always attributed to the right
// task.
type ProcessPool struct {
	cfg  ProcessConfig
	sink ProcessSink

	mu       sync.Mutex // protects the fields below
	queue    queue[*ProcTask]
	idle     []*procWorker
	workers  map[*procWorker]struct{}
	shutdown bool  // no more submits; workers exit when the queue is empty
	broken   error // set once
	killing  bool  // TerminateWorkers: deaths are expected
	started  int   // workers started so far
	// startDeaths counts consecutive unexpected deaths of starting workers
	// (reset by a completed task), for the Survive crash-loop guard.
	startDeaths int
	counts      procCounts  // for Stats
	service     serviceTime // how long tasks take: the pipeline depth
	// sinking counts sink calls decided under mu and made after unlocking:
	// exited stays open until they have returned, so that whoever Joins
	// the pool (and then stops delivering outcomes) has every one of them.
	sinking int
	exited  chan struct{}
	forking int // workers being forked (procfork.go), not yet in workers
	// forksDone, if not nil, is closed when forking drops to 0 (ForksDone).
	forksDone chan struct{}
	filled    bool // an eager pool has started its Workers (at the first Submit)
}

type procWorker struct {
	proc workerProc
	pid  int
	exit procExit // how it ended; set by its supervisor before reap
	in   *outbox  // the writer of the worker's task pipe (frames queued under p.mu)
	out  *pipeEnd // our end of the worker's result pipe (read by its supervisor)
	// death tells when the process exits (nil if no pidfd could be had);
	// closed by the supervisor once the worker is reaped.
	death *pidFD
	// inflight: the tasks written to it and not answered, in order; the
	// first (head) is the one it runs.
	inflight []*ProcTask
	done     int // tasks completed
	state    workerState
	kill     *workerKill // set when state is workerKilled
	ready    bool        // answered FrameInit (or had none to answer); a fact apart from state
	readyAt  time.Time
	answered time.Time // its last answer (for serviceTime)
	detail   string
	timer    *time.Timer // TaskTimeout of the head; stopped when it ends
	memory   memoryMeter // MaxWorkerMemory; its supervisor goroutine's own
}

// workerState is where a worker is in its life in the pool, which moves it
// under p.mu (its process's own end, the reap, comes from its supervisor):
//
//	serving --retireLocked (FrameExit sent)--> retiring --exit--> reaped
//	   |                                          |
//	   +------ killTaskLocked (SIGKILL) ------+---+--> killed --exit--> reaped
//
// Only a serving worker is sent new tasks. A retiring one answers what it
// was sent, then exits; its exit is expected once nothing is unanswered. A
// killed one's exit is expected; its kill says for which task.
type workerState uint8

const (
	workerServing workerState = iota
	workerRetiring
	workerKilled
)

// workerKill records why the pool SIGKILLed a worker: why is the error its
// task fails with once the worker is reaped; task was its head, taken out
// of inflight so that a late answer is ignored; answered: that late answer
// came, so the worker had gone on to its next task when the kill landed.
type workerKill struct {
	why      error
	task     *ProcTask
	answered bool
}

// NewProcessPool returns a pool, with its workers started unless they
// start later (see ProcessConfig.Lazy).
func NewProcessPool(cfg ProcessConfig, sink ProcessSink) (*ProcessPool, error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("max_workers must be greater than 0, got %d", cfg.Workers)
	}
	if len(cfg.Command) == 0 && cfg.Fork == nil {
		return nil, errors.New("no worker command")
	}
	if cfg.AnswerMemory == nil {
		cfg.AnswerMemory = goMemory{}
	}
	p := &ProcessPool{cfg: cfg, sink: sink, workers: map[*procWorker]struct{}{}, exited: make(chan struct{})}
	for _, f := range cfg.Files {
		ownFile(f)
	}
	if cfg.Fork != nil {
		return p, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.fillLocked(); err != nil {
		p.broken = err // the deaths that follow are expected; nobody gets this pool
		p.killAllLocked(syscall.SIGKILL)
		for _, f := range cfg.Files { // the caller's again
			disownFD(int(f.Fd()))
		}
		return nil, err
	}
	return p, nil
}

// fillLocked starts an eager pool's workers, once. Exec and zygote
// workers start together (errgroup): a start includes writing the
// worker's Init, which waits for the worker to read it when it is more
// than a pipe holds (a big initializer argument), so one after another the
// starts would add up. It returns the first start error; the workers that
// did start are in the pool by then (the caller breaks it, killing them).
func (p *ProcessPool) fillLocked() error {
	if p.cfg.Lazy || p.filled {
		return nil
	}
	p.filled = true
	if p.cfg.Fork != nil {
		for range p.cfg.Workers {
			p.forkLocked() // one at a time, on the forker thread (procfork.go)
		}
		return nil
	}
	started := make([]startedWorker, p.cfg.Workers)
	var g errgroup.Group
	for i := range started {
		env := p.nextEnvLocked()
		g.Go(func() (err error) {
			started[i], err = p.startProcess(env)
			return err
		})
	}
	err := g.Wait()
	for _, s := range started {
		if s.proc != nil {
			p.addWorkerLocked(s)
		}
	}
	return err
}

func (p *ProcessPool) spawnLocked() error {
	if p.cfg.Fork != nil {
		p.forkLocked()
		return nil
	}
	s, err := p.startProcess(p.nextEnvLocked())
	if err != nil {
		return err
	}
	p.addWorkerLocked(s)
	return nil
}

// nextEnvLocked numbers the next worker the pool starts and returns its
// environment.
func (p *ProcessPool) nextEnvLocked() []string {
	env := p.cfg.Env
	if env == nil {
		env = os.Environ()
	}
	p.started++
	return append(env[:len(env):len(env)], fmt.Sprintf("%s=%d", WorkerNumberEnv, p.started))
}

// startedWorker is a worker process started, its Init queued, not yet a
// worker of the pool (addWorkerLocked).
type startedWorker struct {
	proc  workerProc
	in    *outbox
	resR  *pipeEnd
	death *pidFD
}

// newStarted gives a worker just started its task writer (procoutbox.go)
// and queues the pool's Init, if it has one, as its first frame.
func (p *ProcessPool) newStarted(proc workerProc, taskW, resR *pipeEnd) startedWorker {
	s := startedWorker{proc: proc, in: newOutbox(taskW), resR: resR, death: taskW.death}
	if p.cfg.Init != nil {
		s.in.queue(AppendFrame(nil, Frame{Kind: FrameInit, Data: p.cfg.Init}))
	}
	return s
}

// startProcess starts a worker with env, by the Zygote if the pool has one
// (quietly by exec if it cannot), and queues its Init. It touches no pool
// state, so that several may run at once (fillLocked).
func (p *ProcessPool) startProcess(env []string) (startedWorker, error) {
	var proc workerProc
	var taskW, resR *pipeEnd
	var err error
	if p.cfg.Zygote != nil {
		proc, taskW, resR, err = p.startWith(env, p.cfg.Zygote.start)
		if err != nil {
			// Quietly exec instead: the pool must not depend on the zygote.
			// With new pipes: a child it may have forked before failing
			// holds the old ones, now closed, so it exits at once.
			proc = nil
		}
	}
	if proc == nil {
		proc, taskW, resR, err = p.startWith(env, execStarter)
		if err != nil {
			return startedWorker{}, err
		}
	}
	return p.newStarted(proc, taskW, resR), nil
}

// addWorkerLocked makes a started process, sent its Init, a worker of the
// pool: supervised, and idle.
func (p *ProcessPool) addWorkerLocked(s startedWorker) *procWorker {
	w := &procWorker{proc: s.proc, pid: s.proc.pid(), in: s.in, out: s.resR, death: s.death,
		ready: p.cfg.Init == nil}
	p.workers[w] = struct{}{}
	go p.supervise(w)
	// At the bottom of the idle stack: the workers started before it are
	// further along in their start and get tasks first.
	p.idle = append([]*procWorker{w}, p.idle...)
	return w
}

// startWith makes a worker's pipes and starts it with start; it returns
// the worker and our ends of its task and result pipes, which also watch
// its pidfd (procpipe.go), or an error and no open pipe. The worker's ends
// are passed to start as blocking files and closed here.
func (p *ProcessPool) startWith(env []string, start func(workerSpec) (workerProc, error)) (
	proc workerProc, taskW, resR *pipeEnd, err error) {
	taskR, taskWfd, err := newPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	resRfd, resW, err := newPipe()
	if err != nil {
		closeFD(taskR)
		closeFD(taskWfd)
		return nil, nil, nil, err
	}
	theirs := []*os.File{blockingFile(taskR, "task pipe"), blockingFile(resW, "result pipe")}
	proc, err = start(workerSpec{
		argv:    p.cfg.Command,
		env:     env,
		files:   append(theirs, p.cfg.Files...), // the worker's fds 3, 4, 5...
		prepare: p.cfg.ZygotePrepare,
	})
	closeOwnedFile(theirs[0])
	closeOwnedFile(theirs[1])
	if err != nil {
		closeFD(taskWfd)
		closeFD(resRfd)
		return nil, nil, nil, err
	}
	// Unreaped until its supervisor waits for it (a Zygote's child stays a
	// zombie until released): the pid still names it.
	death := openPidFD(proc.pid())
	return proc, newPipeEnd(taskWfd, death), newPipeEnd(resRfd, death), nil
}

// supervise reads w's frames until the worker has exited (its pidfd says
// so, or its pipe closes) and everything it wrote is read, then reaps it.
func (p *ProcessPool) supervise(w *procWorker) {
	r := bufio.NewReaderSize(w.out, 64<<10) // answers that arrived together: one read
	for {
		f, err := ReadFrame(r)
		if err != nil {
			if errors.Is(err, errClosedUnder) {
				w.detail = err.Error()
				w.proc.signal(syscall.SIGKILL) // it cannot be told anything any more
			}
			break
		}
		switch f.Kind {
		case FrameReady:
			// A new worker counts as idle from its start and may already
			// have its first task waiting in its pipe, which it reads once
			// initialized (so a slow start delays, never loses, that task);
			// ready only tells a death during start-up from a later one.
			// A task's time limit counts from here for a task that was
			// waiting for the worker to start (the initializer's time is
			// not the task's).
			p.mu.Lock()
			w.ready, w.readyAt = true, time.Now()
			if t := w.head(); t != nil {
				p.armLocked(w, t)
			}
			p.mu.Unlock()
		case FrameHandBack:
			p.handBack(w, f.Data)
		case FrameResult, FrameError:
			if f.ID == 0 { // an error outside any task: the worker is about to exit
				w.detail = string(f.Data)
				continue
			}
			held := p.holdAnswer(w, f)
			// Read outside the lock: the worker is between tasks.
			over := p.cfg.MaxWorkerMemory > 0 && w.memory.residentBytes(w.pid) > p.cfg.MaxWorkerMemory
			p.finish(w, f, held, over)
		}
	}
	w.out.Close()
	w.memory.close()
	exit := w.proc.wait()
	p.mu.Lock()
	w.exit = exit
	p.mu.Unlock()
	w.proc.release() // reaped before the pool stops listing it
	p.reap(w)
	<-w.in.done     // its writer, aborted by reap, no longer waits on its pipe
	w.death.close() // nothing reads or writes w's pipes any more
}

// heldAnswer is what holds a big answer (f's payload in the worker's
// shared memory) from the moment its frame is read until it is read:
// this process's own descriptor of that memory (fd, -1 if none), or why
// it could not be had (err).
type heldAnswer struct {
	shared bool
	ref    sharedRef
	fd     int
	err    error
}

// holdAnswer opens the memory of f's answer if it is in shared memory
// (procshared.go), before anything can make w exit.
func (p *ProcessPool) holdAnswer(w *procWorker, f Frame) heldAnswer {
	ref, ok := parseSharedRef(f.Data)
	if !ok {
		return heldAnswer{fd: -1}
	}
	fd, err := openShared(w.pid, ref)
	return heldAnswer{shared: true, ref: ref, fd: fd, err: err}
}

// drop lets go of an answer nobody will read (its task is not w's any more).
func (h heldAnswer) drop(w *procWorker) {
	if h.fd >= 0 {
		syscall.Close(h.fd)
	}
	if h.shared {
		ackShared(w, h.ref)
	}
}

// takeAnswer returns the data of f, read from shared memory if h holds it
// there (shared: from AnswerMemory, the caller's to hand on), or why that
// read failed (lost: this task's failure, not the pool's); either way w is
// told that the memory is free again. With no lock held: reading a big
// answer takes a while.
func (p *ProcessPool) takeAnswer(w *procWorker, f Frame, h heldAnswer) (data []byte, shared bool, lost error) {
	if !h.shared {
		return f.Data, false, nil
	}
	err := h.err
	if err == nil {
		data, err = readShared(h.fd, h.ref, p.cfg.AnswerMemory)
	}
	ackShared(w, h.ref)
	if err != nil {
		var nomem *noMemory
		return nil, false, &AnswerUnreadable{PID: w.pid, Err: err, NoMemory: errors.As(err, &nomem)}
	}
	return data, true, nil
}

// ackShared tells w that the memory of its answer ref is free again.
func ackShared(w *procWorker, ref sharedRef) {
	w.in.queue(AppendFrame(nil, Frame{Kind: FrameAck, ID: uint64(ref.fd)}))
}

// finish completes w's head task and gives w new work, or retires it
// (after MaxTasksPerChild tasks, or when over its memory limit). A big
// answer is read only once w has its next task (takeAnswer).
func (p *ProcessPool) finish(w *procWorker, f Frame, held heldAnswer, over bool) {
	p.mu.Lock()
	t := w.head()
	if t == nil || t.ID != f.ID {
		if w.kill != nil && w.kill.task.ID == f.ID {
			w.kill.answered = true
		}
		p.mu.Unlock()
		held.drop(w)
		return // not ours (a protocol error, or a killed task's); the worker's death will tell
	}
	w.popHeadLocked()
	w.stopTimerLocked()
	now := time.Now()
	if w.done > 0 { // a worker's first answer includes its own start
		p.service.observe(now.Sub(latest(t.sent, w.answered, w.readyAt)))
	}
	w.answered = now
	w.done++
	p.startDeaths = 0
	if f.Kind == FrameResult {
		p.counts.done++
	} else {
		p.counts.fail(1)
	}
	var err error
	switch {
	case w.state != workerServing:
		// Draining: it answers what it was sent, then exits.
	case over || (p.cfg.MaxTasksPerChild > 0 && w.done >= p.cfg.MaxTasksPerChild):
		if over {
			p.counts.recycled++
		}
		p.retireLocked(w)
		// An eager pool keeps its size; a lazy one starts a replacement only
		// for queued work (dispatchLocked). After Shutdown, queued tasks
		// still need a worker.
		if !p.cfg.Lazy && p.broken == nil && (!p.shutdown || p.queue.len() > 0) {
			err = p.spawnLocked()
		}
	default:
		p.newHeadLocked(w)
		if w.state == workerServing { // not killed for its new head
			p.feedLocked(w, min(p.acceptingLocked(w), p.shareLocked(len(p.workers))))
			if len(w.inflight) == 0 {
				p.idle = append(p.idle, w)
			}
		}
	}
	p.sinking++
	p.unlockAfterDispatch(err)
	if data, shared, lost := p.takeAnswer(w, f, held); lost != nil {
		if f.Kind == FrameResult { // counted done above
			p.mu.Lock()
			p.counts.done--
			p.counts.fail(1)
			p.mu.Unlock()
		}
		p.sink.Failed(t, lost)
	} else {
		p.sink.Completed(t, f.Kind, data, shared)
	}
	p.sunk()
}

// latest returns the latest of times (the zero time for none).
func latest(times ...time.Time) time.Time {
	var l time.Time
	for _, t := range times {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// sunk ends a sink call counted in sinking.
func (p *ProcessPool) sunk() {
	p.mu.Lock()
	p.sinking--
	p.closeExitedLocked()
	p.mu.Unlock()
}

func (p *ProcessPool) retireLocked(w *procWorker) {
	w.state = workerRetiring
	w.in.queue(AppendFrame(nil, Frame{Kind: FrameExit}))
	w.in.closeAfter()
}

// dispatchLocked pairs idle workers with queued tasks and starts the
// workers a lazy pool lacks for what stays queued; once shut down with
// nothing queued, it retires the idle workers. It returns the error of a
// worker that could not be started.
func (p *ProcessPool) dispatchLocked() error {
	for {
		for len(p.idle) > 0 && p.queue.len() > 0 {
			w := p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
			n := min(p.acceptingLocked(w), p.shareLocked(len(p.idle)+1))
			if n > 0 && p.feedLocked(w, n) == 0 {
				p.idle = append(p.idle, w) // every task it took was cancelled
			}
		}
		// A retired worker keeps its place until it is reaped: as the
		// stdlib's pool, which joins it before starting its replacement,
		// this one never runs more than Workers processes (reap dispatches).
		if !p.cfg.Lazy || p.queue.len() == 0 || len(p.workers)+p.forking >= p.cfg.Workers {
			break
		}
		if err := p.spawnLocked(); err != nil {
			return err
		}
	}
	if p.shutdown && p.queue.len() == 0 {
		for _, w := range p.idle {
			p.retireLocked(w)
		}
		p.idle = nil
	}
	return nil
}

// shareLocked: how many queued tasks one worker may take at once, so that
// the queue is spread over among workers (at least one task). An idle
// worker shares with the other idle ones (dispatchLocked); one that
// answered, with all of them (finish): a batch queued while every worker
// ran would otherwise go a whole pipeline at a time to whichever answered
// a short task first, committed to it even if the batch turns out long.
func (p *ProcessPool) shareLocked(among int) int {
	return max(1, p.queue.len()/max(1, among))
}

// unlockAfterDispatch dispatches, unlocks, and breaks the pool if a worker
// could not be started (err, or in the dispatch), since the tasks waiting
// for it would otherwise wait forever. Callers may have started a worker
// (err is then its start error).
func (p *ProcessPool) unlockAfterDispatch(err error) {
	if err == nil {
		err = p.dispatchLocked()
	}
	var tasks []*ProcTask
	broke := false
	if err != nil {
		tasks, broke = p.breakLocked(err)
	} else {
		p.closeExitedLocked() // a replacement's predecessor was the last worker of a shut-down pool
	}
	p.mu.Unlock()
	if broke {
		p.sink.Broken(err, tasks)
		p.sunk()
	}
}

// reap handles a worker whose pipe closed. An unexpected death breaks the
// pool, unless Survive is set and the crash-loop guard allows (then only
// its task fails); a worker the pool killed for its task (kill) fails that
// task alone. Either way the pool then replaces the worker.
func (p *ProcessPool) reap(w *procWorker) {
	p.mu.Lock()
	delete(p.workers, w)
	w.stopTimerLocked()
	p.removeIdleLocked(w)
	w.in.abort() // what a retiring worker was still to be sent no longer matters
	unanswered := w.inflight
	w.inflight = nil
	v := p.judgeDeathLocked(w, unanswered)
	p.sinking += len(v.failures) // for the sink.Failed calls below
	switch {
	case v.breakErr != nil:
		tasks, broke := p.breakLocked(v.breakErr, v.orphans...)
		p.closeExitedLocked()
		p.mu.Unlock()
		if broke {
			p.sink.Broken(v.breakErr, tasks)
			p.sunk()
		}
	case v.replace && p.broken == nil:
		p.replaceLocked() // unlocks
	case w.state == workerRetiring && p.broken == nil:
		p.unlockAfterDispatch(nil) // its place is free: a lazy pool may start a worker for queued tasks
	default:
		p.closeExitedLocked()
		p.mu.Unlock()
	}
	for _, f := range v.failures {
		p.sink.Failed(f.task, f.err)
		p.sunk()
	}
}

// deathVerdict is what the end of a worker means for the pool
// (judgeDeathLocked): the pool breaks (breakErr, failing orphans with it),
// and/or tasks fail alone (failures, in the order the sink hears them)
// and the worker is replaced (replace).
type deathVerdict struct {
	breakErr error
	orphans  []*ProcTask
	failures []taskFailure
	replace  bool
}

// taskFailure is one task that fails alone (sink.Failed).
type taskFailure struct {
	task *ProcTask
	err  error
}

// judgeDeathLocked decides what w's end means, given the tasks it left
// unanswered (the first was running). It requeues the tasks that never
// started and may go on elsewhere, and counts a task failed by it.
func (p *ProcessPool) judgeDeathLocked(w *procWorker, unanswered []*ProcTask) (v deathVerdict) {
	if w.kill != nil { // the task we killed it for
		v.failures = append(v.failures, taskFailure{w.kill.task, w.kill.why})
		v.replace = true
	}
	expected := (w.state == workerRetiring && len(unanswered) == 0) || w.state == workerKilled ||
		p.killing || p.broken != nil
	switch {
	case !expected:
		d := p.deathLocked(w, unanswered)
		if !p.surviveLocked(d) {
			v.breakErr, v.orphans = d, unanswered
			return v
		}
		v.replace = true // replaced either way
		if len(unanswered) > 0 {
			v.failures = append(v.failures, taskFailure{unanswered[0], d}) // it was running (d.TaskID)
			p.requeueLocked(unanswered[1:])                                // never started
		}
	case w.state == workerKilled && p.broken == nil && !p.killing:
		// Killed for its head task: the tasks sent after it never started,
		// unless the killed one had answered before the kill landed (then
		// the next one was running, and fails as its worker died).
		if w.kill.answered && len(unanswered) > 0 {
			v.failures = append(v.failures, taskFailure{unanswered[0], p.deathLocked(w, unanswered)})
			unanswered = unanswered[1:]
			p.counts.fail(1)
		}
		p.requeueLocked(unanswered)
	case p.killing && len(unanswered) > 0 && p.broken == nil:
		v.breakErr, v.orphans = ErrTerminated, unanswered
	}
	return v
}

// deathLocked describes the death of w, whose unanswered tasks were
// unanswered (the first was running).
func (p *ProcessPool) deathLocked(w *procWorker, unanswered []*ProcTask) *WorkerDied {
	d := &WorkerDied{PID: w.pid, ExitCode: w.exit.code, Detail: w.detail, Starting: !w.ready}
	if w.exit.signal != 0 {
		d.Signal = w.exit.signal
	}
	if !w.exit.known && d.Detail == "" {
		d.Detail = "its exit status is unknown (the zygote that forked it died)"
	}
	if len(unanswered) > 0 {
		d.TaskID = unanswered[0].ID
	}
	return d
}

func (p *ProcessPool) removeIdleLocked(w *procWorker) {
	for i, x := range p.idle {
		if x == w {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			return
		}
	}
}

// breakLocked breaks the pool once: the other workers are killed, later
// submits fail, and it returns every task not completed, which the caller
// passes to sink.Broken after unlocking, then calls sunk (ok counts that
// call in sinking). ok is false when the pool was already broken (the sink
// has heard of it; extra was collected then).
func (p *ProcessPool) breakLocked(err error, extra ...*ProcTask) ([]*ProcTask, bool) {
	if p.broken != nil {
		return nil, false
	}
	p.broken = err
	tasks := append(extra, p.queue.drain()...)
	for w := range p.workers {
		tasks = append(tasks, w.inflight...)
		w.inflight = nil
	}
	p.counts.fail(len(tasks))
	p.sinking++
	p.killAllLocked(syscall.SIGKILL)
	p.closeExitedLocked()
	return tasks, true
}

func (p *ProcessPool) killAllLocked(sig syscall.Signal) {
	for w := range p.workers {
		w.proc.signal(sig)
	}
}

func (p *ProcessPool) closeExitedLocked() {
	if len(p.workers) > 0 || p.forking > 0 || p.sinking > 0 || !(p.shutdown || p.broken != nil) {
		return
	}
	select {
	case <-p.exited:
	default:
		close(p.exited)
		for _, f := range p.cfg.Files {
			closeOwnedFile(f)
		}
	}
}

// Submit queues t. It fails with ErrBroken (wrapping the cause) or
// ErrShutdown.
func (p *ProcessPool) Submit(t *ProcTask) error {
	p.mu.Lock()
	if p.broken != nil {
		err := p.broken
		p.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrBroken, err)
	}
	if p.shutdown {
		p.mu.Unlock()
		return ErrShutdown
	}
	p.queue.push(t)
	p.counts.submitted++
	p.unlockAfterDispatch(p.fillLocked()) // a failed start fails t through the sink
	return nil
}

// Shutdown stops accepting tasks; workers exit once the queue is done. With
// cancelPending the queued tasks are removed and returned (futures untouched).
func (p *ProcessPool) Shutdown(cancelPending bool) []*ProcTask {
	p.mu.Lock()
	p.shutdown = true
	var dropped []*ProcTask
	if cancelPending {
		dropped = p.queue.drain()
		p.counts.cancelled += int64(len(dropped))
	}
	p.closeExitedLocked()
	p.unlockAfterDispatch(nil)
	return dropped
}

// TerminateWorkers shuts the pool down, cancelling queued tasks (returned),
// and sends sig to every worker; tasks they were running fail with
// ErrTerminated.
func (p *ProcessPool) TerminateWorkers(sig syscall.Signal) []*ProcTask {
	dropped := p.Shutdown(true)
	p.mu.Lock()
	p.killing = true
	p.killAllLocked(sig)
	p.mu.Unlock()
	return dropped
}

// Join waits until every worker process has exited (after Shutdown or a
// break) or the deadline passes (zero: none).
func (p *ProcessPool) Join(deadline time.Time) bool { return receive(p.exited, deadline) }

// Err returns the error that broke the pool, or nil.
func (p *ProcessPool) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.broken
}

// PIDs returns the process ids of the live workers.
func (p *ProcessPool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := make([]int, 0, len(p.workers))
	for w := range p.workers {
		pids = append(pids, w.pid)
	}
	return pids
}
