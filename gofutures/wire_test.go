package gofutures

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"testing"
	"testing/iotest"
)

// encodeFrame is WriteFrame into a fresh buffer, failing the test on error.
func encodeFrame(t testing.TB, f Frame) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteFrame(&buf, f); err != nil {
		t.Fatalf("WriteFrame(%v) = %v", f.Kind, err)
	}
	return buf.Bytes()
}

// rawHeader returns the 4-byte length prefix followed by kind and id, as a
// hand-built frame start (the length says n bytes follow the prefix).
func rawHeader(n uint32, kind FrameKind, id uint64) []byte {
	b := binary.BigEndian.AppendUint32(nil, n)
	b = append(b, byte(kind))
	return binary.BigEndian.AppendUint64(b, id)
}

// countingWriter counts Write calls, to check that a frame is one write.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestFrameRoundTrip(t *testing.T) {
	large := make([]byte, 1<<20+3)
	for i := range large {
		large[i] = byte(i * 7)
	}
	tests := []struct {
		name string
		f    Frame
	}{
		{"empty data nil", Frame{Kind: FrameReady, ID: 0}},
		{"empty data non-nil", Frame{Kind: FrameExit, ID: 1, Data: []byte{}}},
		{"one byte", Frame{Kind: FrameTask, ID: 2, Data: []byte{0}}},
		{"large data", Frame{Kind: FrameResult, ID: 3, Data: large}},
		{"init", Frame{Kind: FrameInit, ID: 0, Data: []byte("init payload")}},
		{"task", Frame{Kind: FrameTask, ID: 42, Data: []byte("task payload")}},
		{"result", Frame{Kind: FrameResult, ID: 42, Data: []byte("result payload")}},
		{"error", Frame{Kind: FrameError, ID: 42, Data: []byte("Traceback ...")}},
		{"ready", Frame{Kind: FrameReady, ID: 0, Data: nil}},
		{"exit", Frame{Kind: FrameExit, ID: 0, Data: nil}},
		{"id max uint64", Frame{Kind: FrameResult, ID: math.MaxUint64, Data: []byte("max")}},
		{"unknown kind 0", Frame{Kind: 0, ID: 5, Data: []byte("x")}},
		{"unknown kind 255", Frame{Kind: 255, ID: 1 << 63, Data: []byte("y")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w countingWriter
			if err := WriteFrame(&w, tt.f); err != nil {
				t.Fatalf("WriteFrame = %v", err)
			}
			if w.writes != 1 {
				t.Errorf("WriteFrame made %d Write calls, want 1", w.writes)
			}
			enc := w.Bytes()
			if want := 4 + frameHeader + len(tt.f.Data); len(enc) != want {
				t.Fatalf("encoded %d bytes, want %d", len(enc), want)
			}
			if n := binary.BigEndian.Uint32(enc); int(n) != frameHeader+len(tt.f.Data) {
				t.Errorf("length prefix = %d, want %d", n, frameHeader+len(tt.f.Data))
			}
			// Read back from the whole buffer and from a reader that hands
			// out one byte per Read: the result must not depend on chunking.
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", bytes.NewReader(enc)},
				{"one byte at a time", iotest.OneByteReader(bytes.NewReader(enc))},
				{"half then rest", iotest.HalfReader(bytes.NewReader(enc))},
			} {
				got, err := ReadFrame(r.r)
				if err != nil {
					t.Fatalf("%s: ReadFrame = %v", r.name, err)
				}
				if got.Kind != tt.f.Kind || got.ID != tt.f.ID || !bytes.Equal(got.Data, tt.f.Data) {
					t.Errorf("%s: ReadFrame = {%d %d %d bytes}, want {%d %d %d bytes}", r.name,
						got.Kind, got.ID, len(got.Data), tt.f.Kind, tt.f.ID, len(tt.f.Data))
				}
				if _, err := ReadFrame(r.r); err != io.EOF {
					t.Errorf("%s: ReadFrame after the only frame = %v, want io.EOF", r.name, err)
				}
			}
		})
	}
}

func TestReadFrameSequence(t *testing.T) {
	frames := []Frame{
		{Kind: FrameInit, Data: []byte("i")},
		{Kind: FrameTask, ID: 1, Data: []byte("first")},
		{Kind: FrameTask, ID: 2},
		{Kind: FrameExit},
	}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, encodeFrame(t, f)...)
	}
	r := bytes.NewReader(stream)
	for i, want := range frames {
		got, err := ReadFrame(r)
		if err != nil {
			t.Fatalf("frame %d: ReadFrame = %v", i, err)
		}
		if got.Kind != want.Kind || got.ID != want.ID || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("frame %d = %+v, want %+v", i, got, want)
		}
	}
	for range 2 { // io.EOF is sticky at a clean boundary
		if _, err := ReadFrame(r); err != io.EOF {
			t.Fatalf("ReadFrame at end = %v, want io.EOF", err)
		}
	}
}

func TestReadFrameEOF(t *testing.T) {
	enc := encodeFrame(t, Frame{Kind: FrameResult, ID: 0x0102030405060708, Data: []byte("payload")})
	// Every proper prefix of a frame is a stream cut mid-frame, except the
	// empty one, which is a clean boundary.
	for cut := 0; cut < len(enc); cut++ {
		want := io.ErrUnexpectedEOF
		where := "mid-length"
		switch {
		case cut == 0:
			want, where = io.EOF, "clean boundary"
		case cut >= 4+frameHeader:
			where = "mid-data"
		case cut >= 4:
			where = "mid-header"
		}
		_, err := ReadFrame(bytes.NewReader(enc[:cut]))
		if err != want { // exact: callers compare with ==
			t.Errorf("cut at %d (%s): ReadFrame = %v, want %v", cut, where, err, want)
		}
	}
	// A frame followed by a partial one: the first reads fine, then the
	// partial one is unexpected.
	stream := append(bytes.Clone(enc), enc[:6]...)
	r := bytes.NewReader(stream)
	if _, err := ReadFrame(r); err != nil {
		t.Fatalf("first frame: %v", err)
	}
	if _, err := ReadFrame(r); err != io.ErrUnexpectedEOF {
		t.Errorf("partial second frame: ReadFrame = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReadFramePassesOnReadErrors(t *testing.T) {
	boom := errors.New("boom")
	enc := encodeFrame(t, Frame{Kind: FrameTask, ID: 9, Data: []byte("some data")})
	for _, cut := range []int{0, 2, 4, 8, 4 + frameHeader, len(enc) - 1} {
		r := io.MultiReader(bytes.NewReader(enc[:cut]), iotest.ErrReader(boom))
		if _, err := ReadFrame(r); !errors.Is(err, boom) {
			t.Errorf("error after %d bytes: ReadFrame = %v, want %v", cut, err, boom)
		}
	}
}

func TestReadFrameLengthOutOfRange(t *testing.T) {
	for _, n := range []uint32{0, 1, frameHeader - 1, MaxFrame + 1, math.MaxUint32} {
		// Give it plenty of bytes after the prefix: the length alone must
		// be rejected, before anything else is read.
		stream := append(binary.BigEndian.AppendUint32(nil, n), make([]byte, 64)...)
		r := bytes.NewReader(stream)
		_, err := ReadFrame(r)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("length %d: ReadFrame = %v, want an error wrapping ErrFrameTooLarge", n, err)
			continue
		}
		if want := fmt.Sprint(n); !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("length %d: error %q does not name the length", n, err)
		}
		if r.Len() != 64 {
			t.Errorf("length %d: ReadFrame consumed %d bytes past the prefix, want 0", n, 64-r.Len())
		}
	}
	// The bounds themselves are in range.
	if _, err := ReadFrame(bytes.NewReader(rawHeader(frameHeader, FrameReady, 0))); err != nil {
		t.Errorf("length %d (header only): ReadFrame = %v", frameHeader, err)
	}
	if _, err := ReadFrame(bytes.NewReader(rawHeader(MaxFrame, FrameResult, 1))); err != io.ErrUnexpectedEOF {
		t.Errorf("length MaxFrame, truncated: ReadFrame = %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestReadFrameCorruptLengthDoesNotAllocate: a length of nearly MaxFrame
// followed by a few bytes must cost about those bytes, not the announced 2 GiB.
func TestReadFrameCorruptLengthDoesNotAllocate(t *testing.T) {
	for _, n := range []uint32{MaxFrame, MaxFrame - 1, 1 << 30} {
		stream := append(rawHeader(n, FrameResult, 7), bytes.Repeat([]byte("z"), 100)...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadFrame(bytes.NewReader(stream))
		runtime.ReadMemStats(&after)
		if err != io.ErrUnexpectedEOF {
			t.Errorf("length %d with 100 data bytes: ReadFrame = %v, want io.ErrUnexpectedEOF", n, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("length %d with 100 data bytes: ReadFrame allocated %d bytes; want well under 1 MiB", n, got)
		}
	}
}

func TestWriteFramePassesOnWriteError(t *testing.T) {
	boom := errors.New("boom")
	if err := WriteFrame(errWriter{boom}, Frame{Kind: FrameTask, ID: 1}); err != boom {
		t.Errorf("WriteFrame to a failing writer = %v, want %v", err, boom)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func ExampleWriteFrame() {
	var buf bytes.Buffer
	WriteFrame(&buf, Frame{Kind: FrameResult, ID: 7, Data: []byte("hi")})
	fmt.Printf("% x\n", buf.Bytes())
	// length 11 (kind + id + 2 data bytes), kind 3, id 7, "hi"

	f, err := ReadFrame(&buf)
	fmt.Println(f.Kind == FrameResult, f.ID, string(f.Data), err)
	_, err = ReadFrame(&buf)
	fmt.Println(err)
	// Output:
	// 00 00 00 0b 03 00 00 00 00 00 00 00 07 68 69
	// true 7 hi <nil>
	// EOF
}
