package gofutures

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testSharedMemory puts data in a new memfd, as a worker does with a big
// answer (python/gofutures/_bigpayload.py), and returns its descriptor.
func testSharedMemory(data []byte) (int, error) {
	fd, err := unix.MemfdCreate("gofutures-test", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, err
	}
	if _, err := unix.Write(fd, data); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// testSharedRef is a frame's reference to size bytes in descriptor fd of
// process pid.
func testSharedRef(pid, fd, size int) []byte {
	b := []byte(SharedMagic)
	b = binary.BigEndian.AppendUint64(b, uint64(pid))
	b = binary.BigEndian.AppendUint32(b, uint32(fd))
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	return append(b, "fn"...)
}

func TestSharedRefParses(t *testing.T) {
	ref, ok := parseSharedRef(testSharedRef(1234, 7, 1<<30))
	if !ok || ref != (sharedRef{pid: 1234, fd: 7, size: 1 << 30}) {
		t.Fatalf("parseSharedRef = %+v, %v", ref, ok)
	}
	for _, plain := range []string{"", "\x80\x05K\x01.", SharedMagic} {
		if _, ok := parseSharedRef([]byte(plain)); ok {
			t.Errorf("parseSharedRef(%q) took a plain payload for a reference", plain)
		}
	}
}

func TestReadSharedCopiesThePayload(t *testing.T) {
	want := []byte(strings.Repeat("shared memory ", 5000))
	fd, err := testSharedMemory(want)
	if err != nil {
		t.Fatal(err)
	}
	ref := sharedRef{pid: -1, fd: fd, size: len(want)}
	own, err := openShared(os.Getpid(), ref)
	if err != nil {
		t.Fatalf("openShared: %v", err)
	}
	unix.Close(fd) // the worker exits: its answer is held by our own descriptor
	data, err := readShared(own, ref, goMemory{})
	if err != nil {
		t.Fatalf("readShared: %v", err)
	}
	if string(data) != string(want) {
		t.Fatalf("read %d bytes that differ from the %d written", len(data), len(want))
	}
	data[0] = 'S' // writable, as unpickled out-of-band buffers must be
}

func TestReadSharedRefusesWhatIsNotThere(t *testing.T) {
	fd, err := testSharedMemory([]byte("short"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for name, ref := range map[string]sharedRef{
		"longer than the memory": {fd: fd, size: 1 << 20},
		"closed descriptor":      {fd: 999, size: 5},
		"empty":                  {fd: fd, size: 0},
	} {
		own, err := openShared(os.Getpid(), ref)
		if err == nil {
			_, err = readShared(own, ref, goMemory{})
		}
		if err == nil {
			t.Errorf("%s: the answer was read", name)
		}
	}
}

func TestProcessPoolSharedAnswerIsReadAndAcknowledged(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	submit(t, p, 1, "shared:a big answer")
	c := sink.waitCompleted(t, 1)
	if c[0].kind != FrameResult || c[0].data != "a big answer" {
		t.Fatalf("completion = %v %q, want the shared memory's content", c[0].kind, c[0].data)
	}
	submit(t, p, 2, "acked")
	c = sink.waitCompleted(t, 2)
	if c[1].data == "" {
		t.Fatal("the worker was never told that its shared answer was taken over")
	}
	if _, err := strconv.Atoi(strings.Split(c[1].data, ",")[0]); err != nil {
		t.Fatalf("acked = %q", c[1].data)
	}
}

func TestProcessPoolUnreadableSharedAnswerFailsTheTaskAlone(t *testing.T) {
	p, sink := newTestPool(t, testWorkerConfig(1))
	submit(t, p, 1, "sharedgone")
	f := sink.waitFailed(t, 1)
	var unreadable *AnswerUnreadable
	if !errors.As(f[0].err, &unreadable) || f[0].task.ID != 1 {
		t.Fatalf("failure = %v, want *AnswerUnreadable for task 1", f[0].err)
	}
	submit(t, p, 2, "echo:still serving")
	if c := sink.waitCompleted(t, 1); c[0].data != "still serving" {
		t.Fatalf("next task answered %q", c[0].data)
	}
}
