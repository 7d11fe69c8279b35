package gofutures

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// newTestOutbox returns an outbox writing a fresh pipe, and the pipe's
// read end (blocking) for the test to read.
func newTestOutbox(t *testing.T) (*outbox, *os.File) {
	t.Helper()
	r, w, err := newPipe()
	if err != nil {
		t.Fatal(err)
	}
	o := newOutbox(newPipeEnd(w, nil))
	rf := blockingFile(r, "test read end")
	t.Cleanup(func() { closeOwnedFile(rf) })
	return o, rf
}

// Frames come out whole and in the order queued, also when one is far
// bigger than a pipe holds and the reader is slow; closeAfter ends the
// stream only after the last of them.
func TestOutboxWritesInOrderThenCloses(t *testing.T) {
	o, r := newTestOutbox(t)
	var want []byte
	for i, size := range []int{10, 4 << 20, 0, 70000, 3} {
		frame := AppendFrame(nil, Frame{Kind: FrameTask, ID: uint64(i + 1), Data: bytes.Repeat([]byte{byte(i)}, size)})
		want = append(want, frame...)
		o.queue(frame)
	}
	o.closeAfter()
	o.queue([]byte("after close: never written"))
	time.Sleep(20 * time.Millisecond) // a slow reader: the writer waits, the queue does not
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d in the order queued", len(got), len(want))
	}
	select {
	case <-o.done:
	case <-time.After(procTimeout):
		t.Fatal("the writer did not end after closeAfter")
	}
}

// queue never blocks, however much is queued and unread: the pool calls it
// under its lock.
func TestOutboxQueueDoesNotBlock(t *testing.T) {
	o, r := newTestOutbox(t)
	start := time.Now()
	for range 8 {
		o.queue(make([]byte, 8<<20)) // nobody reads yet: the pipe is full after 64 KiB
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("queueing 64 MiB unread took %v", el)
	}
	o.closeAfter()
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != 64<<20 {
		t.Fatalf("read %d bytes (%v), want all 64 MiB", n, err)
	}
	<-o.done
}

func TestSkipWritten(t *testing.T) {
	bufs := [][]byte{[]byte("ab"), nil, []byte("cde"), []byte("f")}
	for _, c := range []struct {
		n    int
		want string
	}{{0, "ab|cde|f"}, {1, "b|cde|f"}, {2, "cde|f"}, {4, "e|f"}, {5, "f"}, {6, ""}} {
		var parts []string
		for _, b := range skipWritten(bufs, c.n) {
			if len(b) > 0 {
				parts = append(parts, string(b))
			}
		}
		if got := strings.Join(parts, "|"); got != c.want {
			t.Errorf("skipWritten(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	if string(bufs[0]) != "ab" {
		t.Error("skipWritten changed the caller's buffers")
	}
}

// A payload past bigPayload goes as a buffer of its own (writev), between
// small frames packed together: the worker reads every frame whole.
func TestBigPayloadsTravelWhole(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	big := strings.Repeat("b", 3*bigPayload+5)
	want := map[uint64]string{1: "s1", 2: big, 3: "s3", 4: big + "!", 5: "s5"}
	for id := uint64(1); id <= 5; id++ {
		submit(t, p, id, "echo:"+want[id])
	}
	for _, c := range sink.waitCompleted(t, 5) {
		if c.kind != FrameResult || c.data != want[c.task.ID] {
			t.Errorf("task %d answered (%d, %d bytes), want its %d bytes echoed", c.task.ID, c.kind, len(c.data), len(want[c.task.ID]))
		}
	}
}
