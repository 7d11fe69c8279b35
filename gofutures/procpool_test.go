package gofutures

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The worker processes of these tests are this test binary itself: TestMain
// runs testWorkerMain instead of the tests when GOFUTURES_TEST_WORKER=1.

const testWorkerEnv = "GOFUTURES_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(testWorkerEnv) == "1" {
		os.Exit(testWorkerMain())
	}
	os.Exit(m.Run())
}

// testWorkerMain is a worker speaking the frame protocol on fds 3 (tasks,
// read) and 4 (results, write), as python/gofutures/_child/worker.py does. A FrameInit
// is answered with FrameReady, or, if its payload is "fail", with a FrameError
// of id 0 and exit status 1; if it is "sleep:MS", after sleeping MS
// milliseconds. A task's payload is a command:
//
//	echo:X             FrameResult X
//	raise:X            FrameError X
//	exit:N             exit with status N, answering nothing
//	kill               SIGKILL itself
//	sleep:MS           sleep MS milliseconds, then FrameResult "slept MS"
//	pid                FrameResult with its pid in decimal
//	readfd:N           FrameResult with a line read from its fd N
//	number             FrameResult with its GOFUTURES_WORKER number
//	exitafter:MS:N     sleep MS milliseconds, send a FrameError of id 0
//	                   "exiting pid=<pid>" (the worker's last words), exit N
//	grandchild         start `sleep 30` holding its fds 3 and 4 (as a task's
//	                   `sleep 30 &` would if they leaked); FrameResult with
//	                   that process's pid
//
// FrameExit or EOF on fd 3 ends it with status 0.
func testWorkerMain() int {
	in := os.NewFile(3, "tasks")
	out := os.NewFile(4, "results")
	if in == nil || out == nil {
		fmt.Fprintln(os.Stderr, "test worker: fds 3 and 4 are not open")
		return 2
	}
	reply := func(kind FrameKind, id uint64, data string) {
		if err := WriteFrame(out, Frame{Kind: kind, ID: id, Data: []byte(data)}); err != nil {
			os.Exit(2)
		}
	}
	var linger time.Duration // how long FrameExit takes
	var acked []string       // descriptors the supervisor acknowledged (FrameAck), closed
	for {
		f, err := ReadFrame(in)
		if err != nil {
			return 0 // EOF: the supervisor went away
		}
		switch f.Kind {
		case FrameInit:
			if string(f.Data) == "fail" {
				reply(FrameError, 0, "initializer failed: fail")
				return 1
			}
			if ms, ok := strings.CutPrefix(string(f.Data), "sleep:"); ok {
				d, _ := strconv.Atoi(ms)
				time.Sleep(time.Duration(d) * time.Millisecond)
			}
			reply(FrameReady, 0, "")
		case FrameExit:
			time.Sleep(linger)
			return 0
		case FrameAck:
			syscall.Close(int(f.ID))
			acked = append(acked, strconv.FormatUint(f.ID, 10))
		case FrameTask:
			cmd, arg, _ := strings.Cut(string(f.Data), ":")
			switch cmd {
			case "echo":
				reply(FrameResult, f.ID, arg)
			case "raise":
				reply(FrameError, f.ID, arg)
			case "exit":
				n, _ := strconv.Atoi(arg)
				os.Exit(n)
			case "kill":
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			case "sleep":
				ms, _ := strconv.Atoi(arg)
				time.Sleep(time.Duration(ms) * time.Millisecond)
				reply(FrameResult, f.ID, "slept "+arg)
			case "pid":
				reply(FrameResult, f.ID, strconv.Itoa(os.Getpid()))
			case "lingerpid": // "pid", and exit arg ms after being told to
				ms, _ := strconv.Atoi(arg)
				linger = time.Duration(ms) * time.Millisecond
				reply(FrameResult, f.ID, strconv.Itoa(os.Getpid()))
			case "number":
				reply(FrameResult, f.ID, os.Getenv(WorkerNumberEnv))
			case "shared": // arg as an answer in shared memory
				fd, err := testSharedMemory([]byte(arg))
				if err != nil {
					reply(FrameError, f.ID, err.Error())
				} else {
					reply(FrameResult, f.ID, string(testSharedRef(os.Getpid(), fd, len(arg))))
				}
			case "sharedgone": // a reference to a descriptor that is not open
				reply(FrameResult, f.ID, string(testSharedRef(os.Getpid(), 1000, 10)))
			case "acked":
				reply(FrameResult, f.ID, strings.Join(acked, ","))
			case "readfd":
				n, _ := strconv.Atoi(arg)
				buf := make([]byte, 64)
				k, err := os.NewFile(uintptr(n), "passed").Read(buf)
				if err != nil {
					reply(FrameError, f.ID, err.Error())
				} else {
					reply(FrameResult, f.ID, strings.TrimSpace(string(buf[:k])))
				}
			case "grandchild":
				cmd := exec.Command("sleep", "30")
				cmd.ExtraFiles = []*os.File{in, out}
				if err := cmd.Start(); err != nil {
					reply(FrameError, f.ID, err.Error())
				} else {
					reply(FrameResult, f.ID, strconv.Itoa(cmd.Process.Pid))
				}
			case "exitafter":
				ms, code, _ := strings.Cut(arg, ":")
				d, _ := strconv.Atoi(ms)
				n, _ := strconv.Atoi(code)
				time.Sleep(time.Duration(d) * time.Millisecond)
				reply(FrameError, 0, fmt.Sprintf("exiting pid=%d", os.Getpid()))
				os.Exit(n)
			default:
				reply(FrameError, f.ID, "unknown command "+string(f.Data))
			}
		}
	}
}

// testWorkerConfig returns a config whose workers are testWorkerMain.
func testWorkerConfig(workers int) ProcessConfig {
	// Under -race a process exiting with status 0 sleeps atexit_sleep_ms
	// (1 s by default) before it goes; the workers need not.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return ProcessConfig{
		Workers: workers,
		Command: []string{os.Args[0], "-test.run=^$"},
		Env:     append(os.Environ(), testWorkerEnv+"=1", "GORACE="+gorace),
	}
}

const procTimeout = 10 * time.Second // a failure guard, never waited for in a passing run

// procCompletion is one ProcessSink.Completed call.
type procCompletion struct {
	task *ProcTask
	kind FrameKind
	data string
}

// procBroken is one ProcessSink.Broken call.
type procBroken struct {
	err   error
	tasks []*ProcTask
}

// procSink records what a ProcessPool tells it.
type procSink struct {
	// onCompleted, if set, is called at the start of every Completed call
	// (a test blocks it to hold a supervisor goroutine there).
	onCompleted func(t *ProcTask)
	// onBroken, if set, is called at the start of the Broken call.
	onBroken func()

	mu        sync.Mutex
	completed []procCompletion
	broken    []procBroken
	failed    []procFailed
	cancelled []*ProcTask
	changed   chan struct{} // gets a token after every call
}

// procFailed is one ProcessSink.Failed call.
type procFailed struct {
	task *ProcTask
	err  error
}

func newProcSink() *procSink { return &procSink{changed: make(chan struct{}, 1)} }

func (s *procSink) Completed(t *ProcTask, kind FrameKind, data []byte, _ bool) { // Go's heap: nothing to free
	if s.onCompleted != nil {
		s.onCompleted(t)
	}
	s.mu.Lock()
	s.completed = append(s.completed, procCompletion{t, kind, string(data)})
	s.mu.Unlock()
	s.poke()
}

func (s *procSink) Broken(err error, tasks []*ProcTask) {
	if s.onBroken != nil {
		s.onBroken()
	}
	s.mu.Lock()
	s.broken = append(s.broken, procBroken{err, slices.Clone(tasks)})
	s.mu.Unlock()
	s.poke()
}

// Cancelled acknowledges the cancel, as the binding does, and records it.
func (s *procSink) Cancelled(t *ProcTask) {
	if running, err := t.Future.SetRunningOrNotifyCancel(); running || err != nil {
		panic(fmt.Sprintf("Cancelled for a future that was not cancelled: %v %v", running, err))
	}
	s.mu.Lock()
	s.cancelled = append(s.cancelled, t)
	s.mu.Unlock()
	s.poke()
}

func (s *procSink) Failed(t *ProcTask, err error) {
	s.mu.Lock()
	s.failed = append(s.failed, procFailed{t, err})
	s.mu.Unlock()
	s.poke()
}

// waitCancelled waits for at least n Cancelled calls and returns them.
func (s *procSink) waitCancelled(t *testing.T, n int) []*ProcTask {
	t.Helper()
	return waitRecorded(t, s, &s.cancelled, n, "Cancelled")
}

// waitFailed waits for at least n Failed calls and returns them.
func (s *procSink) waitFailed(t *testing.T, n int) []procFailed {
	t.Helper()
	return waitRecorded(t, s, &s.failed, n, "Failed")
}

// waitRecorded waits until the sink list calls (guarded by s.mu) has at
// least n entries and returns a copy.
func waitRecorded[T any](t *testing.T, s *procSink, calls *[]T, n int, what string) []T {
	t.Helper()
	deadline := time.After(procTimeout)
	for {
		s.mu.Lock()
		got := slices.Clone(*calls)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %d %s calls; got %v", n, what, got)
		}
	}
}

func (s *procSink) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// snapshot returns copies of what was recorded so far.
func (s *procSink) snapshot() ([]procCompletion, []procBroken) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.completed), slices.Clone(s.broken)
}

// waitFor waits until cond holds for the recorded calls, failing the test
// after procTimeout.
func (s *procSink) waitFor(t *testing.T, what string, cond func(c []procCompletion, b []procBroken) bool) {
	t.Helper()
	deadline := time.After(procTimeout)
	for {
		if cond(s.snapshot()) {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			c, b := s.snapshot()
			t.Fatalf("timed out waiting for %s; %d completions, %d Broken calls: %v", what, len(c), len(b), b)
		}
	}
}

// waitCompleted waits for at least n Completed calls and returns them.
func (s *procSink) waitCompleted(t *testing.T, n int) []procCompletion {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("%d completions", n), func(c []procCompletion, _ []procBroken) bool { return len(c) >= n })
	c, _ := s.snapshot()
	return c
}

// waitBroken waits for the first Broken call and returns it.
func (s *procSink) waitBroken(t *testing.T) procBroken {
	t.Helper()
	s.waitFor(t, "Broken", func(_ []procCompletion, b []procBroken) bool { return len(b) > 0 })
	_, b := s.snapshot()
	return b[0]
}

// newTestPool starts a pool of test workers; the test's cleanup kills
// whatever is left of it.
func newTestPool(t *testing.T, cfg ProcessConfig) (*ProcessPool, *procSink) {
	t.Helper()
	sink := newProcSink()
	p, err := NewProcessPool(cfg, sink)
	if err != nil {
		t.Fatalf("NewProcessPool: %v", err)
	}
	t.Cleanup(func() {
		p.TerminateWorkers(syscall.SIGKILL)
		if !p.Join(time.Now().Add(procTimeout)) {
			t.Errorf("cleanup: workers %v still running", p.PIDs())
		}
	})
	return p, sink
}

// submit submits a task with a fresh future, failing the test on error.
func submit(t *testing.T, p *ProcessPool, id uint64, payload string) *ProcTask {
	t.Helper()
	task := &ProcTask{ID: id, Future: NewFuture(), Payload: []byte(payload)}
	if err := p.Submit(task); err != nil {
		t.Fatalf("Submit(%d, %q): %v", id, payload, err)
	}
	return task
}

// shutdownAndJoin shuts p down, waiting for its queue, and checks that every
// worker process has exited and been reaped.
func shutdownAndJoin(t *testing.T, p *ProcessPool, pids []int) {
	t.Helper()
	if dropped := p.Shutdown(false); len(dropped) != 0 {
		t.Errorf("Shutdown(false) returned %d tasks, want none", len(dropped))
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatalf("Join after Shutdown timed out; workers %v", p.PIDs())
	}
	assertReaped(t, p, pids)
}

// assertReaped checks that p has no worker left and that none of pids is a
// live process or an unreaped zombie.
func assertReaped(t *testing.T, p *ProcessPool, pids []int) {
	t.Helper()
	if left := p.PIDs(); len(left) != 0 {
		t.Errorf("PIDs() after Join = %v, want none", left)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("kill(%d, 0) after Join = %v, want ESRCH (exited and reaped)", pid, err)
		}
	}
}

// taskIDs returns the ids of tasks, sorted.
func taskIDs(tasks []*ProcTask) []uint64 {
	ids := make([]uint64, 0, len(tasks))
	for _, t := range tasks {
		ids = append(ids, t.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestProcessPoolResultsAndErrors(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(2))
	pids := p.PIDs()
	if len(pids) != 2 {
		t.Fatalf("PIDs() = %v, want 2 workers", pids)
	}
	tasks := map[uint64]*ProcTask{
		1: submit(t, p, 1, "echo:hello"),
		2: submit(t, p, 2, "raise:ValueError: boom"),
		3: submit(t, p, 3, "echo:"),
		4: submit(t, p, 4, "raise:"),
	}
	want := map[uint64]procCompletion{
		1: {tasks[1], FrameResult, "hello"},
		2: {tasks[2], FrameError, "ValueError: boom"},
		3: {tasks[3], FrameResult, ""},
		4: {tasks[4], FrameError, ""},
	}
	got := sink.waitCompleted(t, len(want))
	for _, c := range got {
		w, ok := want[c.task.ID]
		if !ok {
			t.Errorf("unexpected completion of task %d", c.task.ID)
			continue
		}
		delete(want, c.task.ID)
		if c != w {
			t.Errorf("task %d completed with (%d, %q), want (%d, %q)", c.task.ID, c.kind, c.data, w.kind, w.data)
		}
		if s, _ := c.task.Future.State(); s != Running {
			t.Errorf("task %d: future state %v, want RUNNING (the pool sets it running; the sink finishes it)", c.task.ID, s)
		}
	}
	shutdownAndJoin(t, p, pids)
	if c, b := sink.snapshot(); len(c) != 4 || len(b) != 0 {
		t.Errorf("after shutdown: %d completions (want 4), Broken calls %v (want none)", len(c), b)
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

func TestProcessPoolInitializer(t *testing.T) {
	cfg := testWorkerConfig(2)
	cfg.Init = []byte("ok")
	p, sink := newTestPool(t, cfg)
	pids := p.PIDs()
	submit(t, p, 1, "echo:a")
	submit(t, p, 2, "echo:b")
	submit(t, p, 3, "pid")
	if c := sink.waitCompleted(t, 3); len(c) != 3 {
		t.Fatalf("%d completions, want 3", len(c))
	}
	shutdownAndJoin(t, p, pids)
	if _, b := sink.snapshot(); len(b) != 0 {
		t.Errorf("Broken calls %v, want none", b)
	}
}

func TestProcessPoolManyTasksEachCompletesOnce(t *testing.T) {
	const n = 300
	p, sink := newTestPool(t, testWorkerConfig(2))
	pids := p.PIDs()
	for i := uint64(1); i <= n; i++ {
		submit(t, p, i, fmt.Sprintf("echo:%d", i))
	}
	shutdownAndJoin(t, p, pids)
	got, broken := sink.snapshot()
	if len(broken) != 0 {
		t.Fatalf("Broken calls %v, want none", broken)
	}
	seen := map[uint64]int{}
	for _, c := range got {
		seen[c.task.ID]++
		if c.kind != FrameResult || c.data != strconv.FormatUint(c.task.ID, 10) {
			t.Errorf("task %d completed with (%d, %q)", c.task.ID, c.kind, c.data)
		}
	}
	for i := uint64(1); i <= n; i++ {
		if seen[i] != 1 {
			t.Errorf("task %d completed %d times, want once", i, seen[i])
		}
	}
	if len(got) != n {
		t.Errorf("%d completions, want %d", len(got), n)
	}
}

func TestProcessPoolCancelledWhileQueuedIsNotSent(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	pids := p.PIDs()
	submit(t, p, 1, "sleep:100")
	cancelled := submit(t, p, 2, "echo:must not run")
	if ok, _ := cancelled.Future.Cancel(); !ok {
		t.Fatal("could not cancel a queued task's future")
	}
	submit(t, p, 3, "echo:after")
	got := sink.waitCompleted(t, 2)
	byID := map[uint64]procCompletion{}
	for _, c := range got {
		if _, dup := byID[c.task.ID]; dup {
			t.Errorf("task %d completed twice", c.task.ID)
		}
		byID[c.task.ID] = c
	}
	if c, ok := byID[2]; ok {
		t.Errorf("cancelled task completed with (%d, %q); it must only be reported Cancelled", c.kind, c.data)
	}
	cancelledTasks := sink.waitCancelled(t, 1)
	if len(cancelledTasks) != 1 || cancelledTasks[0] != cancelled {
		t.Errorf("sink.Cancelled calls %v, want the cancelled task once", cancelledTasks)
	}
	if s, _ := cancelled.Future.State(); s != CancelledAndNotified {
		t.Errorf("cancelled task's future is %v, want CANCELLED_AND_NOTIFIED (acknowledged by the sink)", s)
	}
	if c := byID[3]; c.kind != FrameResult || c.data != "after" {
		t.Errorf("task after the cancelled one completed with (%d, %q)", c.kind, c.data)
	}
	shutdownAndJoin(t, p, pids)
}

// TestProcessPoolWorkerExitBreaksPool: a worker that exits while running a
// task breaks the pool; the sink hears once, with a *WorkerDied naming the
// worker, its status and its task, and with every task not completed.
func TestProcessPoolWorkerExitBreaksPool(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(2))
	pids := p.PIDs()
	sleeper := submit(t, p, 1, "sleep:10000") // running on one worker
	dying := submit(t, p, 2, "exitafter:300:3")
	queued := []*ProcTask{submit(t, p, 3, "echo:c"), submit(t, p, 4, "echo:d")}

	b := sink.waitBroken(t)
	var d *WorkerDied
	if !errors.As(b.err, &d) {
		t.Fatalf("Broken(%v); want a *WorkerDied", b.err)
	}
	if !slices.Contains(pids, d.PID) {
		t.Errorf("WorkerDied.PID = %d, not one of the workers %v", d.PID, pids)
	}
	if want := fmt.Sprintf("exiting pid=%d", d.PID); d.Detail != want {
		t.Errorf("WorkerDied.Detail = %q, want %q (the dying worker's own last words)", d.Detail, want)
	}
	if d.ExitCode != 3 || d.Signal != nil || d.TaskID != dying.ID {
		t.Errorf("WorkerDied = %+v, want ExitCode 3, no signal, TaskID %d", *d, dying.ID)
	}
	msg := d.Error()
	for _, part := range []string{strconv.Itoa(d.PID), "exited with code 3", "task 2", d.Detail} {
		if !strings.Contains(msg, part) {
			t.Errorf("WorkerDied.Error() = %q; want it to mention %q", msg, part)
		}
	}
	wantIDs := taskIDs(append([]*ProcTask{sleeper, dying}, queued...))
	if got := taskIDs(b.tasks); !slices.Equal(got, wantIDs) {
		t.Errorf("Broken tasks = %v, want %v (running and queued)", got, wantIDs)
	}

	err := p.Submit(&ProcTask{ID: 5, Future: NewFuture(), Payload: []byte("echo:e")})
	if !errors.Is(err, ErrBroken) || !errors.As(err, &d) {
		t.Errorf("Submit after the break = %v; want ErrBroken wrapping the *WorkerDied", err)
	}
	if p.Err() != b.err {
		t.Errorf("Err() = %v, want %v", p.Err(), b.err)
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatalf("Join after the break timed out; workers %v", p.PIDs())
	}
	assertReaped(t, p, pids) // the sleeper was killed
	c, all := sink.snapshot()
	if len(all) != 1 {
		t.Errorf("Broken called %d times, want once: %v", len(all), all)
	}
	if len(c) != 0 {
		t.Errorf("completions %v, want none", c)
	}
}

// A worker that dies after Shutdown breaks the pool; Join returns only once
// the sink has heard of it, since the binding stops delivering outcomes
// after Join (a lost outcome would leave its future pending forever).
func TestProcessPoolJoinWaitsForTheBrokenCall(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(2))
	sink.onBroken = func() { time.Sleep(200 * time.Millisecond) }
	dying := submit(t, p, 1, "exitafter:100:3")
	p.Shutdown(false)
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatalf("Join timed out; workers %v", p.PIDs())
	}
	if _, b := sink.snapshot(); len(b) != 1 || !slices.Equal(taskIDs(b[0].tasks), []uint64{dying.ID}) {
		t.Fatalf("after Join, Broken calls %v; want one, with task %d", b, dying.ID)
	}
}

func TestProcessPoolWorkerKilledBySignal(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	pids := p.PIDs()
	killed := submit(t, p, 7, "kill")
	b := sink.waitBroken(t)
	var d *WorkerDied
	if !errors.As(b.err, &d) {
		t.Fatalf("Broken(%v); want a *WorkerDied", b.err)
	}
	if d.PID != pids[0] || d.ExitCode != -1 || d.Signal != syscall.SIGKILL || d.TaskID != killed.ID {
		t.Errorf("WorkerDied = %+v, want PID %d, ExitCode -1, Signal SIGKILL, TaskID %d", *d, pids[0], killed.ID)
	}
	msg := d.Error()
	for _, part := range []string{strconv.Itoa(pids[0]), "signal 9", syscall.SIGKILL.String(), "task 7"} {
		if !strings.Contains(msg, part) {
			t.Errorf("WorkerDied.Error() = %q; want it to mention %q", msg, part)
		}
	}
	if got := taskIDs(b.tasks); !slices.Equal(got, []uint64{7}) {
		t.Errorf("Broken tasks = %v, want [7]", got)
	}
	assertBrokenAndReaped(t, p, pids)
}

func TestProcessPoolInitFailure(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Init = []byte("fail")
	p, sink := newTestPool(t, cfg)
	pids := p.PIDs()
	b := sink.waitBroken(t)
	var d *WorkerDied
	if !errors.As(b.err, &d) {
		t.Fatalf("Broken(%v); want a *WorkerDied", b.err)
	}
	if d.PID != pids[0] || d.ExitCode != 1 || d.Signal != nil || d.TaskID != 0 || !d.Starting {
		t.Errorf("WorkerDied = %+v, want PID %d, ExitCode 1, no signal, TaskID 0, Starting", *d, pids[0])
	}
	if !strings.Contains(d.Detail, "initializer failed: fail") {
		t.Errorf("WorkerDied.Detail = %q; want the worker's message", d.Detail)
	}
	if msg := d.Error(); !strings.Contains(msg, "while starting") || !strings.Contains(msg, "initializer failed: fail") {
		t.Errorf("WorkerDied.Error() = %q; want \"while starting\" and the worker's message", msg)
	}
	if len(b.tasks) != 0 {
		t.Errorf("Broken tasks = %v, want none", taskIDs(b.tasks))
	}
	assertBrokenAndReaped(t, p, pids)
}

func TestProcessPoolMaxTasksPerChild(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.MaxTasksPerChild = 2
	cfg.Init = []byte("ok") // replacements are initialized too
	p, sink := newTestPool(t, cfg)
	allPIDs := p.PIDs()
	const n = 6
	for i := uint64(1); i <= n; i++ {
		submit(t, p, i, "pid")
	}
	got := sink.waitCompleted(t, n)
	pidOf := map[uint64]int{}
	for _, c := range got {
		if c.kind != FrameResult {
			t.Fatalf("task %d completed with (%d, %q)", c.task.ID, c.kind, c.data)
		}
		pid, err := strconv.Atoi(c.data)
		if err != nil {
			t.Fatalf("task %d: bad pid %q", c.task.ID, c.data)
		}
		pidOf[c.task.ID] = pid
		if !slices.Contains(allPIDs, pid) {
			allPIDs = append(allPIDs, pid)
		}
	}
	// One worker, FIFO: tasks 1-2 on the first process, 3-4 on a second,
	// 5-6 on a third.
	for i := uint64(1); i <= n; i += 2 {
		if pidOf[i] != pidOf[i+1] {
			t.Errorf("tasks %d and %d ran in processes %d and %d; want the same", i, i+1, pidOf[i], pidOf[i+1])
		}
		if i > 1 && pidOf[i] == pidOf[i-1] {
			t.Errorf("tasks %d and %d both ran in process %d; want a new process after 2 tasks", i-1, i, pidOf[i])
		}
	}
	if len(allPIDs) != 3 {
		t.Errorf("worker processes %v; want 3", allPIDs)
	}
	shutdownAndJoin(t, p, allPIDs)
	if _, b := sink.snapshot(); len(b) != 0 {
		t.Errorf("Broken calls %v, want none (retired workers exit on purpose)", b)
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

// TestProcessPoolMaxTasksPerChildAcrossShutdown: a worker retired after
// Shutdown is still replaced while tasks are queued.
func TestProcessPoolMaxTasksPerChildAcrossShutdown(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.MaxTasksPerChild = 1
	p, sink := newTestPool(t, cfg)
	pids := p.PIDs()
	for i := uint64(1); i <= 3; i++ {
		submit(t, p, i, "pid")
	}
	if p.Join(past) {
		t.Fatal("Join before Shutdown returned true")
	}
	shutdownAndJoin(t, p, nil)
	got, b := sink.snapshot()
	if len(got) != 3 || len(b) != 0 {
		t.Fatalf("%d completions (want 3), Broken calls %v (want none)", len(got), b)
	}
	for _, c := range got {
		pid, _ := strconv.Atoi(c.data)
		if slices.Contains(pids, pid) && c.task.ID != 1 {
			t.Errorf("task %d ran in the first worker %d, which should have retired after task 1", c.task.ID, pid)
		}
		pids = append(pids, pid)
	}
	assertReaped(t, p, pids)
}

// TestProcessPoolReplacementFailsToStart: when a retired worker cannot be
// replaced, the pool breaks with the start error and hands back the queue.
func TestProcessPoolReplacementFailsToStart(t *testing.T) {
	link := workerLink(t)
	cfg := testWorkerConfig(1)
	cfg.Command[0] = link
	cfg.MaxTasksPerChild = 1
	p, sink := newTestPool(t, cfg)
	pids := p.PIDs()
	if err := os.Remove(link); err != nil { // the next worker cannot start
		t.Fatal(err)
	}
	submit(t, p, 1, "sleep:200")
	submit(t, p, 2, "echo:b")
	submit(t, p, 3, "echo:c")
	b := sink.waitBroken(t)
	if b.err == nil || !strings.Contains(b.err.Error(), "cannot start a worker process") {
		t.Errorf("Broken(%v); want the start error", b.err)
	}
	if got := taskIDs(b.tasks); !slices.Equal(got, []uint64{2, 3}) {
		t.Errorf("Broken tasks = %v, want [2 3]", got)
	}
	c := sink.waitCompleted(t, 1)
	if len(c) != 1 || c[0].task.ID != 1 || c[0].data != "slept 200" {
		t.Errorf("completions %v; want task 1 only", c)
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatal("Join after the break timed out")
	}
	assertReaped(t, p, pids)
}

func TestProcessPoolShutdownWaitRunsQueuedTasks(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(2))
	pids := p.PIDs()
	const n = 6
	for i := uint64(1); i <= n; i++ {
		submit(t, p, i, "sleep:50")
	}
	shutdownAndJoin(t, p, pids) // Join only returns once all of them ran
	got, b := sink.snapshot()
	if len(got) != n || len(b) != 0 {
		t.Errorf("%d completions (want %d), Broken calls %v (want none)", len(got), n, b)
	}
	if err := p.Submit(&ProcTask{ID: 99, Future: NewFuture()}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Submit after Shutdown = %v, want ErrShutdown", err)
	}
}

func TestProcessPoolShutdownIdle(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(3))
	pids := p.PIDs()
	if len(pids) != 3 {
		t.Fatalf("PIDs() = %v, want 3", pids)
	}
	if p.Join(time.Now().Add(50 * time.Millisecond)) {
		t.Fatal("Join returned true before Shutdown")
	}
	shutdownAndJoin(t, p, pids)
	if c, b := sink.snapshot(); len(c) != 0 || len(b) != 0 {
		t.Errorf("completions %v, Broken calls %v; want none", c, b)
	}
}

func TestProcessPoolShutdownCancelPending(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	pids := p.PIDs()
	running := submit(t, p, 1, "sleep:200")
	queued := []*ProcTask{submit(t, p, 2, "echo:b"), submit(t, p, 3, "echo:c")}
	dropped := p.Shutdown(true)
	if !slices.Equal(dropped, queued) {
		t.Errorf("Shutdown(true) returned %v, want tasks [2 3] in order", taskIDs(dropped))
	}
	for _, d := range dropped {
		if s, _ := d.Future.State(); s != Pending {
			t.Errorf("dropped task %d: future %v, want PENDING (untouched)", d.ID, s)
		}
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatal("Join after Shutdown(true) timed out")
	}
	assertReaped(t, p, pids)
	got, b := sink.snapshot()
	if len(got) != 1 || got[0].task != running || got[0].data != "slept 200" {
		t.Errorf("completions %v; want only the running task", got)
	}
	if len(b) != 0 {
		t.Errorf("Broken calls %v, want none", b)
	}
	if err := p.Submit(&ProcTask{ID: 4, Future: NewFuture()}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Submit after Shutdown(true) = %v, want ErrShutdown", err)
	}
}

func TestProcessPoolTerminateWorkers(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	pids := p.PIDs()
	submit(t, p, 1, "echo:up") // the worker is up and reading tasks
	sink.waitCompleted(t, 1)
	running := submit(t, p, 2, "sleep:10000")
	queued := submit(t, p, 3, "echo:c")
	time.Sleep(50 * time.Millisecond) // let it start sleeping
	start := time.Now()
	dropped := p.TerminateWorkers(syscall.SIGTERM)
	if len(dropped) != 1 || dropped[0] != queued {
		t.Errorf("TerminateWorkers returned %v, want [3]", taskIDs(dropped))
	}
	b := sink.waitBroken(t)
	if !errors.Is(b.err, ErrTerminated) {
		t.Errorf("Broken(%v), want ErrTerminated", b.err)
	}
	if len(b.tasks) != 1 || b.tasks[0] != running {
		t.Errorf("Broken tasks = %v, want [2]", taskIDs(b.tasks))
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatal("Join after TerminateWorkers timed out")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("TerminateWorkers took %v; the sleeping task was not interrupted", d)
	}
	assertReaped(t, p, pids)
	c, all := sink.snapshot()
	if len(c) != 1 || len(all) != 1 {
		t.Errorf("completions %v, Broken calls %v; want only the first task's and one", c, all)
	}
}

func TestProcessPoolTerminateIdleWorkers(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(2))
	pids := p.PIDs()
	if dropped := p.TerminateWorkers(syscall.SIGTERM); len(dropped) != 0 {
		t.Errorf("TerminateWorkers returned %v, want none", taskIDs(dropped))
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatal("Join after TerminateWorkers timed out")
	}
	assertReaped(t, p, pids)
	if c, b := sink.snapshot(); len(c) != 0 || len(b) != 0 {
		t.Errorf("completions %v, Broken calls %v; want none (no task was running)", c, b)
	}
}

func TestNewProcessPoolErrors(t *testing.T) {
	good := testWorkerConfig(1)
	for _, tt := range []struct {
		name string
		cfg  func(ProcessConfig) ProcessConfig
		want string
	}{
		{"no workers", func(c ProcessConfig) ProcessConfig { c.Workers = 0; return c }, "greater than 0"},
		{"negative workers", func(c ProcessConfig) ProcessConfig { c.Workers = -1; return c }, "greater than 0"},
		{"no command", func(c ProcessConfig) ProcessConfig { c.Command = nil; return c }, "no worker command"},
		{"missing executable", func(c ProcessConfig) ProcessConfig {
			c.Workers = 2
			c.Command = []string{t.TempDir() + "/no-such-worker"}
			return c
		}, "cannot start a worker process"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := newProcSink()
			p, err := NewProcessPool(tt.cfg(good), sink)
			if err == nil {
				p.TerminateWorkers(syscall.SIGKILL)
				t.Fatal("NewProcessPool succeeded, want an error")
			}
			if p != nil {
				t.Errorf("NewProcessPool returned a pool with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewProcessPool error %q; want it to mention %q", err, tt.want)
			}
			time.Sleep(20 * time.Millisecond)
			if c, b := sink.snapshot(); len(c) != 0 || len(b) != 0 {
				t.Errorf("sink got completions %v, Broken calls %v; want none", c, b)
			}
		})
	}
}

// workerLink returns a symlink to this test binary, in a temporary
// directory: a worker command that a test can make fail to start by
// removing it.
func workerLink(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	link := t.TempDir() + "/worker"
	if err := os.Symlink(exe, link); err != nil {
		t.Skip(err)
	}
	return link
}

// TestProcessPoolBrokenCalledOnce: ProcessSink.Broken is "called at most
// once", even when a second failure comes while the sink is still hearing
// of the first. Here a retired worker's replacement fails to start, which
// breaks the pool (finish decides it under the pool's lock, then calls
// Broken before Completed); while that Broken call is held, the other worker
// is killed and reaped: its reap must find the pool broken already and not
// report a second break.
func TestProcessPoolBrokenCalledOnce(t *testing.T) {
	link := workerLink(t)
	cfg := testWorkerConfig(2)
	cfg.Command[0] = link
	cfg.MaxTasksPerChild = 1
	sink := newProcSink()
	inBroken, release := make(chan struct{}), make(chan struct{})
	sink.onBroken = func() {
		close(inBroken)
		<-release
	}
	p, err := NewProcessPool(cfg, sink)
	if err != nil {
		t.Fatalf("NewProcessPool: %v", err)
	}
	t.Cleanup(func() {
		p.TerminateWorkers(syscall.SIGKILL)
		p.Join(time.Now().Add(procTimeout))
	})
	pids := p.PIDs()
	if err := os.Remove(link); err != nil { // no replacement can start
		t.Fatal(err)
	}
	submit(t, p, 1, "echo:a")
	select {
	case <-inBroken: // task 1's worker retired; its replacement failed
	case <-time.After(procTimeout):
		t.Fatal("the pool never broke")
	}
	for _, pid := range pids { // the other worker dies meanwhile: a second failure
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Wait until no worker is listed but the retired one (its supervisor
	// is held in Broken): the killed one has been reaped.
	deadline := time.Now().Add(procTimeout)
	for len(p.PIDs()) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the killed worker was not reaped; workers %v", p.PIDs())
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(release)
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatal("Join after the break timed out")
	}
	assertReaped(t, p, pids)
	time.Sleep(20 * time.Millisecond) // a second call would come at once
	if _, all := sink.snapshot(); len(all) != 1 {
		t.Errorf("Broken called %d times, want once:", len(all))
		for _, b := range all {
			t.Errorf("  Broken(%v, %d tasks)", b.err, len(b.tasks))
		}
	}
}

// TestNewProcessPoolPartialStartFailure: when NewProcessPool fails after
// starting some workers, it kills them and returns an error; the caller
// never gets the pool, so its sink must not hear of those workers' deaths
// (as a *WorkerDied breaking a pool nobody has).
func TestNewProcessPoolPartialStartFailure(t *testing.T) {
	cfg := testWorkerConfig(2)
	// The workers start together (fillLocked): the second one's start
	// fails, the first one's succeeds.
	var pid atomic.Int64
	execStarter = func(spec workerSpec) (workerProc, error) {
		if slices.Contains(spec.env, WorkerNumberEnv+"=2") {
			return nil, errors.New("cannot start a worker process: refused by the test")
		}
		w, err := execStart(spec)
		if err == nil {
			pid.Store(int64(w.pid()))
		}
		return w, err
	}
	t.Cleanup(func() { execStarter = execStart })
	sink := newProcSink()
	p, err := NewProcessPool(cfg, sink)
	if err == nil {
		p.TerminateWorkers(syscall.SIGKILL)
		t.Fatal("NewProcessPool succeeded; want the second worker's start error")
	}
	if p != nil || !strings.Contains(err.Error(), "cannot start a worker process") {
		t.Errorf("NewProcessPool = %v, %v; want nil and the start error", p, err)
	}
	if pid.Load() == 0 {
		t.Fatal("the first worker did not start")
	}
	// The first worker must be killed and reaped.
	deadline := time.Now().Add(procTimeout)
	for syscall.Kill(int(pid.Load()), 0) != syscall.ESRCH {
		if time.Now().After(deadline) {
			t.Fatalf("the first worker (pid %d) was left running", pid.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // its supervisor has reaped it: give it time to misreport
	if c, b := sink.snapshot(); len(c) != 0 || len(b) != 0 {
		for _, x := range b {
			t.Errorf("sink.Broken(%v, %d tasks) called for a pool NewProcessPool never returned", x.err, len(x.tasks))
		}
		if len(c) != 0 {
			t.Errorf("sink.Completed called %d times", len(c))
		}
	}
}

// assertBrokenAndReaped checks what every break leaves: submits fail with
// ErrBroken, Join returns, and no worker in pids is left running.
func assertBrokenAndReaped(t *testing.T, p *ProcessPool, pids []int) {
	t.Helper()
	if err := p.Submit(&ProcTask{ID: 1 << 40, Future: NewFuture()}); !errors.Is(err, ErrBroken) {
		t.Errorf("Submit after the break = %v, want ErrBroken", err)
	}
	if !p.Join(time.Now().Add(procTimeout)) {
		t.Fatal("Join after the break timed out")
	}
	assertReaped(t, p, pids)
}

func TestProcessPoolLazyStartsWorkersOnDemand(t *testing.T) {
	cfg := testWorkerConfig(3)
	cfg.Lazy = true
	p, sink := newTestPool(t, cfg)
	if pids := p.PIDs(); len(pids) != 0 {
		t.Fatalf("a lazy pool started workers %v before any task", pids)
	}
	// One task at a time: the idle worker is reused, never a second one.
	for i := uint64(1); i <= 3; i++ {
		submit(t, p, i, "pid")
		sink.waitCompleted(t, int(i))
	}
	if pids := p.PIDs(); len(pids) != 1 {
		t.Errorf("sequential tasks started workers %v, want one", pids)
	}
	// Tasks that overlap start workers up to the limit, and no further.
	for i := uint64(4); i <= 8; i++ {
		submit(t, p, i, "sleep:100")
	}
	if pids := p.PIDs(); len(pids) != 3 {
		t.Errorf("5 overlapping tasks: workers %v, want 3", pids)
	}
	sink.waitCompleted(t, 8)
	shutdownAndJoin(t, p, p.PIDs())
}

func TestProcessPoolLazyMaxTasksPerChildReplacesOnlyForWork(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Lazy = true
	cfg.MaxTasksPerChild = 1
	p, sink := newTestPool(t, cfg)
	first := submit(t, p, 1, "pid")
	c := sink.waitCompleted(t, 1)
	pid, _ := strconv.Atoi(c[0].data)
	deadline := time.Now().Add(procTimeout)
	for len(p.PIDs()) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if pids := p.PIDs(); len(pids) != 0 {
		t.Errorf("after its one task worker %d was not retired, or was replaced with nothing to do: %v", pid, pids)
	}
	submit(t, p, 2, "pid")
	c = sink.waitCompleted(t, 2)
	if c[1].data == c[0].data {
		t.Errorf("task 2 ran in the retired worker %s (task %d)", c[1].data, first.ID)
	}
	shutdownAndJoin(t, p, []int{pid})
}

// TestProcessPoolLazyReplacesARetiredWorkerOnceReaped: a worker slow to
// exit after its last task still holds its place, so the pool never runs
// more than Workers processes (the stdlib joins a retired worker before it
// starts the next; CPython's test_max_tasks_per_child counts them).
func TestProcessPoolLazyReplacesARetiredWorkerOnceReaped(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Lazy = true
	cfg.MaxTasksPerChild = 1
	p, sink := newTestPool(t, cfg)
	submit(t, p, 1, "lingerpid:300")
	submit(t, p, 2, "pid")
	c := sink.waitCompleted(t, 2)
	first, _ := strconv.Atoi(c[0].data)
	if pids := p.PIDs(); slices.Contains(pids, first) {
		t.Errorf("task 2 ran while the retired worker %d was still there: workers %v", first, pids)
	}
	shutdownAndJoin(t, p, []int{first})
}

func TestProcessPoolLazyStartFailureFailsTheTask(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Lazy = true
	cfg.Command = []string{"/nonexistent/gofutures-worker"}
	p, sink := newTestPool(t, cfg)
	if err := p.Submit(&ProcTask{ID: 1, Future: NewFuture()}); err != nil {
		t.Fatalf("Submit: %v; want the task accepted and failed through the sink", err)
	}
	b := sink.waitBroken(t)
	if !strings.Contains(b.err.Error(), "cannot start a worker process") || !slices.Equal(taskIDs(b.tasks), []uint64{1}) {
		t.Errorf("Broken(%v, %v); want the start error and task 1", b.err, taskIDs(b.tasks))
	}
	assertBrokenAndReaped(t, p, nil)
}

func TestProcessPoolFilesReachEveryWorker(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg := testWorkerConfig(1)
	cfg.Lazy = true
	cfg.MaxTasksPerChild = 1 // a second worker must get the file too
	cfg.Files = []*os.File{r}
	p, sink := newTestPool(t, cfg)
	for i := uint64(1); i <= 2; i++ {
		fmt.Fprintf(w, "line %d\n", i)
		submit(t, p, i, "readfd:5")
		if c := sink.waitCompleted(t, int(i)); c[i-1].kind != FrameResult || c[i-1].data != fmt.Sprintf("line %d", i) {
			t.Fatalf("worker %d read %q (kind %d) from fd 5", i, c[i-1].data, c[i-1].kind)
		}
	}
	shutdownAndJoin(t, p, nil)
	// The pool owned the file and closed it once no worker could start.
	if _, err := r.Stat(); err == nil {
		t.Error("the pool's file is still open after every worker exited")
	}
}

func TestProcessPoolWorkersAreNumbered(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.MaxTasksPerChild = 1
	p, sink := newTestPool(t, cfg)
	for i := uint64(1); i <= 3; i++ {
		submit(t, p, i, "number")
	}
	var got []string
	for _, c := range sink.waitCompleted(t, 3) {
		got = append(got, c.data)
	}
	if !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("worker numbers %v, want [1 2 3] (one worker per task)", got)
	}
	shutdownAndJoin(t, p, nil)
}

func TestProcessPoolDeathWhileStartingNamesTheWaitingTask(t *testing.T) {
	cfg := testWorkerConfig(1)
	cfg.Lazy = true
	cfg.Init = []byte("fail")
	p, sink := newTestPool(t, cfg)
	submit(t, p, 9, "echo:never")
	b := sink.waitBroken(t)
	var d *WorkerDied
	if !errors.As(b.err, &d) || !d.Starting || d.TaskID != 9 {
		t.Fatalf("Broken(%v); want a *WorkerDied while starting, task 9", b.err)
	}
	if msg := d.Error(); !strings.Contains(msg, "while starting, with task 9 waiting for it") {
		t.Errorf("WorkerDied.Error() = %q; want it to say the worker was starting and task 9 waited", msg)
	}
	if !slices.Equal(taskIDs(b.tasks), []uint64{9}) {
		t.Errorf("Broken tasks = %v, want [9]", taskIDs(b.tasks))
	}
}

// BenchmarkEagerPoolStart: an eager pool of 4 exec workers with an Init
// larger than a pipe holds (a big initializer argument): NewProcessPool
// returns once every worker has read it. Started together (fillLocked),
// the workers' start-ups overlap.
func BenchmarkEagerPoolStart(b *testing.B) {
	cfg := testWorkerConfig(4)
	cfg.Init = make([]byte, 1<<20)
	for b.Loop() {
		p, err := NewProcessPool(cfg, newProcSink())
		if err != nil {
			b.Fatal(err)
		}
		p.Shutdown(false)
		if !p.Join(time.Now().Add(procTimeout)) {
			b.Fatal("Join timed out")
		}
	}
}
