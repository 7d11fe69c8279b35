/* future_parked.c: a process call's outcome parked in its future.
 *
 * Go parks the outcome (kind, bytes) of a future that nobody observes (no
 * done-callback, no _condition/_waiters asked for) in f->raw and finishes
 * the Go future without the GIL; the first reader that needs the value
 * builds it (fut_materialize, through outcome.c). Observing a future
 * (fut_observe) makes Go complete it through the pool's results worker
 * instead, which runs the callbacks and tells the waiters: observe and
 * Go's park are serialized by the Go future's lock.
 */
#include "future.h"
#include "_cgo_export.h"
#include <stdlib.h>
#include <unistd.h>

long gf_future_park(PyObject *o, char *raw, Py_ssize_t len, int kind, int shared) {
    FutureObject *f = (FutureObject *)o;
    f->raw = raw;
    f->raw_len = len;
    f->raw_kind = kind;
    f->raw_shared = shared;
    /* Released before Go finishes the future, so that a reader woken by the
     * finish finds the reference already releasable by its own drain (a
     * future must not outlive its last user's reference for long: the
     * stdlib's tests check that results are freed). A drain that releases
     * the last reference first is harmless: Go touches only its own future
     * after this. */
    return gf_release_later(o);
}

/* Builds f's parked outcome (outcome.c) into f->result or f->exception,
 * once; the caller has seen f done (so Go's writes of raw are visible). 0,
 * or -1 with an exception set (raw then stays parked for the next reader).
 *
 * Unpickling runs Python code, which may release the GIL: a second reader
 * meanwhile waits for the first instead of building again (a
 * __setstate__'s side effects must happen once, and both readers must get
 * the same object). A KeyboardInterrupt (Ctrl-C while this thread
 * unpickles, which an eager delivery on the results worker never sees)
 * leaves the outcome parked. */
int fut_materialize(FutureObject *f) {
    unsigned long me = PyThread_get_thread_ident();
    while (f->loading) {
        if (f->loading_tid == me) {
            PyErr_SetString(PyExc_RuntimeError, "the future's outcome was asked for while it was being unpickled");
            return -1;
        }
        Py_BEGIN_ALLOW_THREADS
        usleep(100);
        Py_END_ALLOW_THREADS
        if (PyErr_CheckSignals() < 0) return -1;
    }
    if (f->raw == NULL) return 0; /* the other reader stored it */
    f->loading = 1;
    f->loading_tid = me;
    int is_error;
    PyObject *value = gf_outcome_build(f->raw_kind, f->raw, f->raw_len, f->raw_shared, &f->raw_region, &is_error);
    if (value == NULL) {
        f->loading = 0;
        return -1;
    }
    /* Go finished it as a success when the value cannot be unpickled here:
     * FIRST_EXCEPTION waits asking later should see the failure. */
    if (is_error && f->raw_kind == GF_FRAME_RESULT && fut_state(f) == ST_FINISHED)
        gf_future_force(f, ST_FINISHED, 1);
    f->loading = 0;
    if (f->raw == NULL) { /* completed anew meanwhile (after a forced _state): that wins */
        Py_DECREF(value);
        return 0;
    }
    fut_discard_raw(f);
    if (is_error) Py_XSETREF(f->exception, value);
    else Py_XSETREF(f->result, value);
    return 0;
}

/* fut_materialize() if f is done with an outcome parked; any reader of
 * f->result or f->exception that has not just seen f done calls this. */
int fut_settle(FutureObject *f) {
    if (fut_state(f) < ST_CANCELLED || f->raw == NULL) return 0;
    return fut_materialize(f);
}

/* Drops a parked outcome that a new completion replaces. */
void fut_discard_raw(FutureObject *f) {
    PyObject *region = f->raw_region;
    char *raw = f->raw;
    f->raw = NULL, f->raw_region = NULL;
    if (raw != NULL || region != NULL) gf_raw_free(raw, f->raw_len, f->raw_shared, region);
}

