package gofutures

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// maxFuzzInput bounds the inputs FuzzReadFrame looks at. Longer ones reach
// no new code in ReadFrame (the length is 4 bytes whatever the frame's size;
// large frames are TestFrameRoundTrip's business) but, once one counts as
// interesting (io.ReadAll growing past its first 512-byte buffer, say), the
// fuzzer spends seconds minimizing it, trying every cut of its bytes, with no
// other progress meanwhile.
const maxFuzzInput = 512

// FuzzReadFrame feeds arbitrary bytes to ReadFrame, frame after frame until
// it fails. ReadFrame must never panic; every frame it returns must re-encode
// (WriteFrame) to exactly the bytes it consumed; and it must fail only in the
// documented ways: io.EOF at a clean boundary (and only there),
// io.ErrUnexpectedEOF for a cut frame, ErrFrameTooLarge for a bad length.
// The committed corpus is in testdata/fuzz/FuzzReadFrame.
func FuzzReadFrame(f *testing.F) {
	frame := func(kind FrameKind, id uint64, data string) []byte {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, Frame{Kind: kind, ID: id, Data: []byte(data)}); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	f.Add([]byte{})
	f.Add(frame(FrameReady, 0, ""))
	f.Add(frame(FrameTask, 1, "echo:hello"))
	f.Add(append(frame(FrameResult, 1, "hello"), frame(FrameError, 2, "boom")...))
	f.Add(frame(FrameError, ^uint64(0), "max id")[:10]) // cut mid-header
	f.Add(frame(FrameInit, 0, "cut")[:15])              // cut mid-data
	f.Add([]byte{0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})   // length below the header
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})      // length above MaxFrame
	f.Add(append(binary.BigEndian.AppendUint32(nil, MaxFrame), make([]byte, 32)...))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip("input too long") // see maxFuzzInput
		}
		r := bytes.NewReader(data)
		for frames := 0; ; frames++ {
			start := len(data) - r.Len()
			got, err := ReadFrame(r)
			end := len(data) - r.Len()
			if err != nil {
				switch {
				case err == io.EOF:
					if start != len(data) {
						t.Fatalf("frame %d at offset %d: io.EOF with %d bytes left", frames, start, len(data)-start)
					}
				case err == io.ErrUnexpectedEOF:
					if start == len(data) || end != len(data) {
						t.Fatalf("frame %d at offset %d: io.ErrUnexpectedEOF, but the input is %d bytes and %d were consumed",
							frames, start, len(data), end)
					}
				case errors.Is(err, ErrFrameTooLarge):
					if n := binary.BigEndian.Uint32(data[start:]); n >= frameHeader && n <= MaxFrame {
						t.Fatalf("frame %d at offset %d: %v for an in-range length %d", frames, start, err, n)
					}
				default:
					t.Fatalf("frame %d at offset %d: unexpected error %v", frames, start, err)
				}
				return
			}
			var buf bytes.Buffer
			if err := WriteFrame(&buf, got); err != nil {
				t.Fatalf("frame %d at offset %d: WriteFrame of what ReadFrame returned: %v", frames, start, err)
			}
			if !bytes.Equal(buf.Bytes(), data[start:end]) {
				t.Fatalf("frame %d at offset %d: re-encoded as\n%x\nbut ReadFrame consumed\n%x", frames, start, buf.Bytes(), data[start:end])
			}
		}
	})
}
