package gofutures

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The wire between the process supervisor and a worker process is a stream
// of frames, each:
//
//	length uint32, big endian: bytes that follow (kind + id + data)
//	kind   uint8
//	id     uint64, big endian: the task the frame is about (0 if none)
//	data   length-9 bytes, opaque here (pickles, in practice)
//
// A worker written in any language can speak it with a dozen lines; the
// Python one is python/gofutures/_child/worker.py.

// FrameKind says what a frame carries.
type FrameKind uint8

const (
	FrameInit   FrameKind = 1 + iota // supervisor -> worker: initializer payload, before any task
	FrameTask                        // supervisor -> worker: run this payload
	FrameResult                      // worker -> supervisor: the task returned this
	FrameError                       // worker -> supervisor: the task raised this
	FrameReady                       // worker -> supervisor: initialized, waiting for tasks
	FrameExit                        // supervisor -> worker: finish and exit
	// FrameHandBack, worker -> supervisor: the tasks whose ids the data
	// holds (8 bytes each, big endian), sent behind the one it runs, were
	// not started and never will be by this worker (procpipeline.go).
	FrameHandBack
	// FrameAck, supervisor -> worker: the answer the worker left in shared
	// memory under descriptor id is taken over (procshared.go); the worker
	// closes that descriptor.
	FrameAck
)

// frameHeader is the fixed part after the length: kind and id.
const frameHeader = 1 + 8

// MaxFrame bounds one frame's length so that a corrupt length cannot make
// the reader allocate without limit.
const MaxFrame = 1 << 31

// smallFrame: frames up to this size are read into a buffer of their
// announced length.
const smallFrame = 64 << 10

// ErrFrameTooLarge is returned for a frame whose length exceeds MaxFrame or
// is too short to hold the header.
var ErrFrameTooLarge = errors.New("frame length out of range")

// Frame is one message on the wire.
type Frame struct {
	Kind FrameKind
	ID   uint64
	Data []byte
}

// WriteFrame writes f to w in one Write call.
func WriteFrame(w io.Writer, f Frame) error {
	if frameHeader+len(f.Data) > MaxFrame {
		return ErrFrameTooLarge
	}
	_, err := w.Write(AppendFrame(nil, f))
	return err
}

// AppendFrame appends f's encoding to buf, so that several frames can go
// in one Write. f.Data must be shorter than MaxFrame-frameHeader (WriteFrame
// checks; a task's payload is bounded by the binding's int lengths).
func AppendFrame(buf []byte, f Frame) []byte {
	return append(AppendFrameHeader(buf, f.Kind, f.ID, len(f.Data)), f.Data...)
}

// AppendFrameHeader appends to buf what comes before a frame's data of
// dataLen bytes, for a writer that sends the data from its own buffer.
func AppendFrameHeader(buf []byte, kind FrameKind, id uint64, dataLen int) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(frameHeader+dataLen))
	buf = append(buf, byte(kind))
	return binary.BigEndian.AppendUint64(buf, id)
}

// ReadFrame reads one frame. It returns io.EOF only at a clean frame
// boundary, io.ErrUnexpectedEOF for a stream cut mid-frame.
func ReadFrame(r io.Reader) (Frame, error) {
	var head [4 + frameHeader]byte
	if _, err := io.ReadFull(r, head[:4]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(head[:4])
	if n < frameHeader || uint64(n) > MaxFrame {
		return Frame{}, fmt.Errorf("%w: %d", ErrFrameTooLarge, n)
	}
	if _, err := io.ReadFull(r, head[4:]); err != nil {
		return Frame{}, noEOF(err)
	}
	f := Frame{Kind: FrameKind(head[4]), ID: binary.BigEndian.Uint64(head[5:])}
	// A large frame is read as it arrives rather than allocated up front:
	// a corrupt length then costs only the bytes that really come.
	want := int(n - frameHeader)
	var data []byte
	if want <= smallFrame {
		data = make([]byte, want)
		if _, err := io.ReadFull(r, data); err != nil {
			return Frame{}, noEOF(err)
		}
	} else {
		var err error
		data, err = io.ReadAll(io.LimitReader(r, int64(want)))
		if err != nil {
			return Frame{}, err
		}
		if len(data) < want {
			return Frame{}, io.ErrUnexpectedEOF
		}
	}
	f.Data = data
	return f, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
