// Package gofutures is the Go core of the gofutures Python package: the
// futures' state machine, waiting on many futures at once, the thread
// pool's scheduling, deadlock detection for waits on pool workers, and the
// process pool's supervision.
//
// The core knows nothing about Python. It deals in futures, states, worker
// indexes and opaque task payloads; the binding layer (package pybind) gives
// the payloads their meaning and runs them. Every type here is safe for
// concurrent use unless its doc comment says otherwise, and every blocking
// call takes a deadline so that a caller that must stay responsive (the
// binding checks for Ctrl-C between slices) never blocks for longer than it
// asked.
package gofutures
