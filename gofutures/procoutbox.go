package gofutures

import "sync"

// outbox writes a worker's task pipe from a goroutine of its own, so that
// no pool lock (and no submitter: the binding's submit holds the GIL) waits
// while a worker reads a big payload. The pool queues whole frames under
// its mu (queue, never blocking); they are written in the order queued:
// at once, as far as the pipe takes them, when nothing is waiting (small
// tasks then cost no goroutine hand-off), the rest by the writer, without
// any pool lock. Frames come as a list of buffers, written with writev, so
// that a big payload is never copied into a frame buffer.
//
// Ownership and lifetime: the buffers queued are the outbox's from then on
// (never modified by the caller; a task's payload may be queued again,
// e.g. after a hand-back). The writer goroutine owns the pipe end from
// newOutbox on and is the only one to close it, so the descriptor is never
// closed under a write or poll of it. closeAfter has it close the pipe once
// everything queued is written (a retiring worker: FrameExit is the last
// frame); abort has it drop what is still queued and close (the worker has
// exited); done is closed when the writer has closed the pipe and
// returned, and the worker's pidfd, whose watcher ends its writes' waits at
// the worker's death, must stay open until then. A failed write (the worker
// is dying; its supervisor reports its tasks) drops the rest.
type outbox struct {
	end  *pipeEnd
	wake chan struct{} // buffered 1: there is something to do
	done chan struct{} // closed when the writer has closed end and returned

	mu      sync.Mutex // protects the fields below, and writes to end
	pending [][]byte   // buffers queued and not yet taken by the writer
	writing bool       // the writer has taken a batch and is writing it
	failed  bool       // a write failed: the rest is dropped
	closing bool       // close end once pending is written
	aborted bool       // drop pending and close end now
}

func newOutbox(end *pipeEnd) *outbox {
	o := &outbox{end: end, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go o.run()
	return o
}

// queue appends bufs (whole frames, encoded, in order) to what is written
// next; ignored once closeAfter or abort was called, or a write failed.
func (o *outbox) queue(bufs ...[]byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closing || o.aborted || o.failed:
		return
	case len(o.pending) == 0 && !o.writing:
		n, err := o.end.tryWritev(bufs)
		if err != nil {
			o.failed = true
			return
		}
		bufs = skipWritten(bufs, n)
		if len(bufs) == 0 {
			return
		}
	}
	o.pending = append(o.pending, bufs...)
	o.poke()
}

// closeAfter: close the pipe once what is queued is written.
func (o *outbox) closeAfter() {
	o.mu.Lock()
	o.closing = true
	o.mu.Unlock()
	o.poke()
}

// abort: drop what is queued and close the pipe as soon as the writer is
// out of any write (the worker is gone: a write in progress fails at once,
// its pidfd having fired). done says when.
func (o *outbox) abort() {
	o.mu.Lock()
	o.aborted, o.pending = true, nil
	o.mu.Unlock()
	o.poke()
}

func (o *outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) run() {
	defer close(o.done)
	defer o.end.Close()
	for range o.wake {
		for {
			o.mu.Lock()
			batch, closing, aborted := o.pending, o.closing, o.aborted
			o.pending = nil
			o.writing = len(batch) > 0 && !aborted && !o.failed
			writing := o.writing
			o.mu.Unlock()
			if aborted {
				return
			}
			if len(batch) == 0 {
				if closing {
					return
				}
				break // wait for more
			}
			if writing {
				err := o.end.writev(batch)
				o.mu.Lock()
				o.writing, o.failed = false, err != nil
				o.mu.Unlock()
			}
		}
	}
}

// skipWritten returns what is left of bufs once its first n bytes are
// written (the first buffer left may be a tail of one queued).
func skipWritten(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 && n > 0 {
		bufs = append([][]byte{bufs[0][n:]}, bufs[1:]...)
	}
	return bufs
}
