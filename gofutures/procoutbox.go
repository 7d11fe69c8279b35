package gofutures

import "sync"

// outbox writes a worker's task pipe from a goroutine of its own, so that
// no pool lock (and no submitter: the binding's submit holds the GIL) waits
// while a worker reads a big payload. The pool queues whole frames under
// its mu (queue, never blocking); the writer writes them in the order
// queued, without any pool lock.
//
// Ownership and lifetime: the writer goroutine owns the pipe end from
// newOutbox on and is the only one to write or close it, so the
// descriptor is never closed under a write or poll of it. closeAfter has
// it close the pipe once everything queued is written (a retiring worker:
// FrameExit is the last frame); abort has it drop what is still queued and
// close (the worker has exited); done is closed when the writer has closed
// the pipe and returned, and the worker's pidfd, which its writes poll,
// must stay open until then. A failed write (the worker is dying; its
// supervisor reports its tasks) drops the rest.
type outbox struct {
	end  *pipeEnd
	wake chan struct{} // buffered 1: there is something to do
	done chan struct{} // closed when the writer has closed end and returned

	mu      sync.Mutex // protects the fields below
	pending []byte     // frames queued and not yet taken by the writer
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

// queue appends frames (whole, encoded; the outbox owns them from now on)
// to what the writer writes next; ignored once closeAfter or abort was
// called.
func (o *outbox) queue(frames []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closing || o.aborted || o.failed:
		return
	case len(o.pending) == 0 && !o.writing:
		// The writer is idle: write what the pipe takes now, without
		// waiting (small tasks then cost no goroutine hand-off), and hand
		// it only the rest.
		n, err := o.end.tryWrite(frames)
		if err != nil {
			o.failed = true
			return
		}
		if n == len(frames) {
			return
		}
		o.pending = frames[n:] // handed over: no copy of a big payload
	default:
		o.pending = append(o.pending, frames...)
	}
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
			if o.writing {
				_, err := o.end.Write(batch)
				o.mu.Lock()
				o.writing, o.failed = false, err != nil
				o.mu.Unlock()
			}
		}
	}
}
