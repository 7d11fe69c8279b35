package gofutures

// queue is a FIFO of unbounded length backed by a ring buffer. It is not safe
// for concurrent use: its owner's mutex protects it.
type queue[T any] struct {
	buf  []T
	head int // index of the first item
	n    int // number of items
}

func (q *queue[T]) len() int { return q.n }

func (q *queue[T]) push(v T) {
	q.growIfFull()
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
}

func (q *queue[T]) growIfFull() {
	if q.n < len(q.buf) {
		return
	}
	grown := make([]T, max(16, 2*len(q.buf)))
	for i := 0; i < q.n; i++ {
		grown[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = grown, 0
}

// pop removes and returns the first item; ok is false when empty.
func (q *queue[T]) pop() (v T, ok bool) {
	if q.n == 0 {
		return v, false
	}
	var zero T
	v, q.buf[q.head] = q.buf[q.head], zero // drop the queue's reference
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return v, true
}

// drain removes and returns every item, oldest first.
func (q *queue[T]) drain() []T {
	out := make([]T, 0, q.n)
	for {
		v, ok := q.pop()
		if !ok {
			return out
		}
		out = append(out, v)
	}
}

// pushFront puts v before every other item (a task given back to the queue
// keeps its turn).
func (q *queue[T]) pushFront(v T) {
	q.growIfFull()
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = v
	q.n++
}
