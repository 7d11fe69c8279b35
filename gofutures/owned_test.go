package gofutures

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// closeOthersEnv makes TestClosingAllButOwnedDescriptors run its body: in
// a child test process, since it closes descriptors under the whole process.
const closeOthersEnv = "GOFUTURES_TEST_CLOSE_OTHERS"

// What a daemonizing library's os.closerange(3, N) does through the
// Python guard: close every descriptor but OwnedDescriptors. The pool and
// the runtime (its poller: timers) must go on; closing the poller too
// aborts the process ("fatal error: runtime: netpoll failed").
func TestClosingAllButOwnedDescriptors(t *testing.T) {
	if os.Getenv(closeOthersEnv) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestClosingAllButOwnedDescriptors$", "-test.v")
		cmd.Env = append(os.Environ(), closeOthersEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the child test failed (%v):\n%s", err, out)
		}
		return
	}
	cfg := testWorkerConfig(2)
	cfg.MaxWorkerMemory = 1 << 40 // its statm files are owned too
	p, sink := newTestPool(t, cfg)
	submit(t, p, 1, "echo:before")
	sink.waitCompleted(t, 1)
	time.Sleep(time.Millisecond) // a timer: the runtime has its poller by now
	keep := OwnedDescriptors()
	if !slices.ContainsFunc(keep, func(fd int) bool { return fdTarget(fd) == "anon_inode:[eventpoll]" }) {
		t.Fatalf("OwnedDescriptors() = %v: no poller among them", keep)
	}
	for fd := 3; fd < 1<<12; fd++ {
		if !slices.Contains(keep, fd) {
			syscall.Close(fd)
		}
	}
	for i := uint64(2); i < 20; i++ {
		submit(t, p, i, "echo:after")
	}
	time.AfterFunc(time.Millisecond, func() {})
	time.Sleep(10 * time.Millisecond)
	sink.waitCompleted(t, 19)
	submit(t, p, 20, "kill") // its death is still seen, from its pidfd
	sink.waitBroken(t)
}

func fdTarget(fd int) string {
	target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return target
}
