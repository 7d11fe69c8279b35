/* future.h: what the files of the Future type share (future.c,
 * future_parked.c, future_stdlib.c). Every function here needs the GIL. */
#ifndef GOFUTURES_FUTURE_H
#define GOFUTURES_FUTURE_H
#include "hot.h"

enum { /* the core's states (gf_constants.h) */
    ST_PENDING = GF_STATE_PENDING,
    ST_RUNNING = GF_STATE_RUNNING,
    ST_CANCELLED = GF_STATE_CANCELLED,
    ST_CANCELLED_AND_NOTIFIED = GF_STATE_CANCELLED_AND_NOTIFIED,
    ST_FINISHED = GF_STATE_FINISHED
};

/* future.c: f's state (a detached future's own, else Go's). */
int fut_state(FutureObject *f);
/* future.c: marks f observed (future_parked.c) and returns its state. */
int fut_observe(FutureObject *f);
/* future.c: concurrent.futures.Future.<name>(f, *args), what a detached
 * future (one made in a forked child: h == 0) runs instead of Go. */
PyObject *fut_detached(FutureObject *f, const char *name, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames);

/* future_parked.c: builds f's parked outcome into result/exception, once
 * (f is done). 0, or -1 with an exception set. */
int fut_materialize(FutureObject *f);
/* future_parked.c: fut_materialize if f is done with an outcome parked. */
int fut_settle(FutureObject *f);
/* future_parked.c: drops a parked outcome that a new completion replaces. */
void fut_discard_raw(FutureObject *f);

/* future_stdlib.c: acquires f->condition if it exists (*held: a strong
 * reference for fut_unlock); fut_unlock releases it, notifying first if
 * notify is set, keeping any exception already set. */
int fut_lock(FutureObject *f, PyObject **held);
void fut_unlock(PyObject *held, int notify);
/* future_stdlib.c: calls method (add_result, ...) on each of f's stdlib
 * waiters. */
void fut_notify_waiters(FutureObject *f, const char *method);
/* future_stdlib.c: result()'s wait on a condition assigned from outside:
 * the (done) state, or -1 with TimeoutError or another exception set. */
int fut_wait_on_condition(FutureObject *f, PyObject *timeout);
/* future_stdlib.c: the stdlib's private attributes (_state, _result, ...). */
extern PyGetSetDef fut_getset[];

/* A future inherited from the parent through a fork cannot be used: its
 * state lives in the parent's Go runtime (fork.c). */
#define GUARD(failed) \
    if (f->h != 0 && gf_forked && gf_refuse_in_child("this future") < 0) return failed
/* As GUARD, and a detached future runs the stdlib's method instead. */
#define GUARD_OR_DETACHED(name, args, nargs, kwnames) \
    GUARD(NULL);                                     \
    if (f->h == 0) return fut_detached(f, name, args, nargs, kwnames)

#endif
