package gofutures_test

import (
	"fmt"
	"time"

	"github.com/gofutures/gofutures/gofutures"
)

// The lifecycle an executor drives: the submitter creates a Pending future,
// the worker that takes it calls SetRunningOrNotifyCancel, runs the work and
// calls Finish. A future cancelled while still queued is only acknowledged.
func ExampleFuture() {
	f := gofutures.NewFuture()
	fmt.Println(f.State())

	// A worker takes it.
	run, err := f.SetRunningOrNotifyCancel()
	fmt.Println("run:", run, err)
	cancelled, _ := f.Cancel() // too late: it is running
	fmt.Println("cancelled:", cancelled)

	// The work raised an exception.
	fmt.Println(f.Finish(true))
	fmt.Println(f.State())
	fmt.Println("done:", f.Wait(time.Time{}))
	fmt.Println(f.Finish(false)) // a future finishes once

	// Another future is cancelled while queued; the worker only acknowledges.
	g := gofutures.NewFuture()
	fmt.Println(g.Cancel())
	run, err = g.SetRunningOrNotifyCancel()
	fmt.Println("run:", run, err)
	fmt.Println(g.State())

	// Output:
	// PENDING false
	// run: true <nil>
	// cancelled: false
	// <nil>
	// FINISHED true
	// done: true
	// future is in an invalid state for this transition
	// true true
	// run: false <nil>
	// CANCELLED_AND_NOTIFIED false
}

// Waiting on several futures at once, as wait(return_when=FIRST_COMPLETED)
// and as_completed() do: each future is watched under a tag (its index).
func ExampleCompletions() {
	futures := []*gofutures.Future{gofutures.NewFuture(), gofutures.NewFuture(), gofutures.NewFuture()}
	c := gofutures.NewCompletions()
	for i, f := range futures {
		f.Watch(c, i)
	}
	defer func() {
		for _, f := range futures {
			f.Unwatch(c) // done waiting: stop following the rest
		}
	}()

	deadline := time.Now().Add(10 * time.Millisecond)
	fmt.Println("first completed before anything settled:", c.Await(gofutures.FirstCompleted, len(futures), deadline))

	futures[1].Finish(true)
	fmt.Println("first completed:", c.Await(gofutures.FirstCompleted, len(futures), time.Time{}))
	fmt.Println("all completed:", c.Await(gofutures.AllCompleted, len(futures), deadline))

	futures[2].Finish(false)
	futures[0].Cancel() // not settled until the executor acknowledges it
	futures[0].SetRunningOrNotifyCancel()

	// as_completed: events in the order the futures settled.
	for {
		e, ok := c.Next(time.Now().Add(10 * time.Millisecond))
		if !ok {
			break
		}
		fmt.Printf("future %d settled, failed=%v\n", e.Tag, e.Failed)
	}
	fmt.Println(c.Counts())

	// Output:
	// first completed before anything settled: false
	// first completed: true
	// all completed: false
	// future 1 settled, failed=true
	// future 2 settled, failed=false
	// future 0 settled, failed=false
	// 3 1
}

// funcRunner runs func() payloads. It does what an executor's worker does
// with each task: skip it if it was cancelled while queued, otherwise run it
// and finish its future.
type funcRunner struct{}

func (funcRunner) Start(worker int) error { return nil }

func (funcRunner) Run(worker int, t gofutures.Task[func()], more func() (gofutures.Task[func()], bool)) {
	for ok := true; ok; t, ok = more() {
		if run, _ := t.Future.SetRunningOrNotifyCancel(); run {
			t.Payload()
			t.Future.Finish(false)
		}
	}
}

func (funcRunner) Broken(worker int, err error, dropped []gofutures.Task[func()]) {
	for _, t := range dropped {
		t.Future.Finish(true) // the pool will never run them
	}
}

func (funcRunner) Stop(worker int) {}

func ExampleThreadPool() {
	pool, err := gofutures.NewThreadPool[func()](1, funcRunner{})
	if err != nil {
		panic(err)
	}
	var futures []*gofutures.Future
	for i := range 3 {
		f := gofutures.NewFuture()
		futures = append(futures, f)
		pool.Submit(gofutures.Task[func()]{Future: f, Payload: func() { fmt.Println("task", i) }})
	}

	pool.Shutdown(false) // the queued tasks still run
	fmt.Println("joined:", pool.Join(time.Time{}))
	fmt.Println(pool.Submit(gofutures.Task[func()]{Future: gofutures.NewFuture(), Payload: func() {}}))
	for _, f := range futures {
		fmt.Println(f.State())
	}

	// Output:
	// task 0
	// task 1
	// task 2
	// joined: true
	// cannot schedule new futures after shutdown
	// FINISHED false
	// FINISHED false
	// FINISHED false
}
