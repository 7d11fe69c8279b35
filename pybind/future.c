/* future.c: FutureBase, the native half of gofutures.Future.
 *
 * The Python class gofutures.Future is `class Future(FutureBase,
 * concurrent.futures.Future)`: isinstance checks against the stdlib pass, and
 * every public method resolves here first. The state machine is the Go
 * core's (reached through f->h); this file keeps the Python objects (result,
 * exception, callbacks) and provides, lazily, the private attributes the
 * stdlib's own wait()/as_completed() read (_condition, _state, _waiters).
 *
 * Process results arrive lazily: Go parks the pickled outcome of a future
 * that nobody observes (no done-callback, no _condition/_waiters asked for)
 * in f->raw and finishes the Go future without the GIL; the first reader
 * that needs the value unpickles it (materialize). Observing a future
 * (observe()) makes Go complete it the eager way instead, through the
 * pool's results worker, which runs the callbacks and tells the waiters:
 * observe() and Go's park are serialized by the Go future's lock.
 *
 * Locking: the GIL protects every field. When someone has asked for
 * _condition, each transition also holds that condition, because the
 * stdlib's wait() reads _state and appends to _waiters under it. Done
 * callbacks run after the transition, outside the condition, as in the
 * stdlib.
 */
#include "hot.h"
#include "_cgo_export.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

enum { ST_PENDING, ST_RUNNING, ST_CANCELLED, ST_CANCELLED_AND_NOTIFIED, ST_FINISHED };

PyTypeObject *gf_FutureBase;

/* A detached future (h == 0) has no Go future: it is one made in a forked
 * child (fork.c), where Go cannot run. Its state is f->dstate, and its
 * transitions and waits are the stdlib's own Python methods (detached()),
 * working on the same attributes the stdlib's wait() reads. */
static int state_of(FutureObject *f) { return f->h ? gfFutureState(f->h) & 0xff : f->dstate; }

int gf_future_done(FutureObject *f) { return state_of(f) >= ST_CANCELLED; }

int gf_future_check(PyObject *o) { return PyObject_TypeCheck(o, gf_FutureBase); }

/* Marks f observed (see the file comment) and returns its state. */
static int observe(FutureObject *f) { return f->h ? gfFutureObserve(f->h) & 0xff : f->dstate; }

/* Calls concurrent.futures.Future.<name>(f, *args): what a detached
 * future does for the methods that move or wait in Go otherwise. */
static PyObject *detached(FutureObject *f, const char *name, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames) {
    PyObject *fn = PyObject_GetAttrString(gf_stdlib.future_type, name);
    if (fn == NULL) return NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *small[8];
    if (nargs + nkw + 1 > 8) {
        Py_DECREF(fn);
        return PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument", name);
    }
    small[0] = (PyObject *)f;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) small[i + 1] = args[i];
    PyObject *r = PyObject_Vectorcall(fn, small, nargs + 1, kwnames);
    Py_DECREF(fn);
    return r;
}

/* ---- lazily unpickled process outcomes --------------------------------- */

/* Go's references to parked futures, to release with the GIL: a Treiber
 * stack that Go only pushes onto and gf_release_drain only empties whole,
 * so it has no ABA problem. */
static _Atomic(FutureObject *) release_head;
static atomic_long parked_since_drain;

long gf_future_park(PyObject *o, char *raw, Py_ssize_t len, int is_error) {
    FutureObject *f = (FutureObject *)o;
    f->raw = raw;
    f->raw_len = len;
    f->raw_is_error = is_error;
    /* The push comes before Go finishes the future, so that a reader woken
     * by the finish finds the reference already released or releasable by
     * its own drain (a future must not outlive its last user's reference
     * for long: the stdlib's tests check that results are freed). A drain
     * that releases the last reference first is harmless: Go touches only
     * its own future after this. */
    FutureObject *head = atomic_load_explicit(&release_head, memory_order_relaxed);
    do {
        f->release_next = (PyObject *)head;
    } while (!atomic_compare_exchange_weak_explicit(&release_head, &head, f, memory_order_release,
                                                    memory_order_relaxed));
    return atomic_fetch_add_explicit(&parked_since_drain, 1, memory_order_relaxed) + 1;
}

void gf_release_drain(void) {
    if (atomic_load_explicit(&release_head, memory_order_relaxed) == NULL) return;
    atomic_store_explicit(&parked_since_drain, 0, memory_order_relaxed);
    FutureObject *f = atomic_exchange_explicit(&release_head, NULL, memory_order_acquire);
    while (f != NULL) {
        FutureObject *next = (FutureObject *)f->release_next;
        f->release_next = NULL;
        Py_DECREF(f); /* may run arbitrary code (a result's __del__), as any decref */
        f = next;
    }
}

static PyObject *unpicklable_error; /* gofutures.process._unpicklable_error, on first use */

/* The outcome when a parked result cannot be unpickled: what the pool's
 * hooks build for an eager delivery (one place builds the message). */
static PyObject *broken_outcome(PyObject *exc) {
    if (unpicklable_error == NULL) {
        PyObject *m = PyImport_ImportModule("gofutures.process");
        if (m == NULL) return NULL;
        unpicklable_error = PyObject_GetAttrString(m, "_unpicklable_error");
        Py_DECREF(m);
        if (unpicklable_error == NULL) return NULL;
    }
    return PyObject_CallOneArg(unpicklable_error, exc);
}

/* Unpickles f's parked outcome into f->result or f->exception, once; the
 * caller has seen f done (so Go's writes of raw are visible). 0, or -1 with
 * an exception set (raw then stays parked for the next reader).
 *
 * pickle.loads runs Python code, which may release the GIL: a second reader
 * meanwhile waits for the first instead of unpickling again (a
 * __setstate__'s side effects must happen once, and both readers must get
 * the same object). A KeyboardInterrupt (Ctrl-C while this thread
 * unpickles, which an eager delivery on the results worker never saw)
 * leaves the outcome parked; any other failure, SystemExit included, makes
 * it the BrokenProcessPool that an eager delivery would have set. */
static int materialize(FutureObject *f) {
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
    int is_error = f->raw_is_error;
    PyObject *data = PyBytes_FromStringAndSize(f->raw, f->raw_len);
    PyObject *value = data ? PyObject_CallOneArg(gf_pickle_loads, data) : NULL;
    Py_XDECREF(data);
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
            f->loading = 0;
            return -1;
        }
        PyObject *exc = gf_fetch_exception();
        value = exc ? broken_outcome(exc) : NULL;
        Py_XDECREF(exc);
        if (value == NULL) {
            f->loading = 0;
            return -1;
        }
        is_error = 1;
        /* Go finished it as a success: FIRST_EXCEPTION waits asking later
         * should see the failure. */
        if (state_of(f) == ST_FINISHED) gfFutureForce(f->h, ST_FINISHED, 1);
    }
    f->loading = 0;
    if (f->raw == NULL) { /* completed anew meanwhile (after a forced _state): that wins */
        Py_DECREF(value);
        return 0;
    }
    free(f->raw);
    f->raw = NULL;
    if (is_error) Py_XSETREF(f->exception, value);
    else Py_XSETREF(f->result, value);
    return 0;
}

/* materialize() if f is done with an outcome parked; any reader of
 * f->result or f->exception that has not just seen f done calls this. */
static int settle(FutureObject *f) {
    if (state_of(f) < ST_CANCELLED || f->raw == NULL) return 0;
    return materialize(f);
}

/* Drops a parked outcome that a new completion replaces. */
static void discard_raw(FutureObject *f) {
    free(f->raw);
    f->raw = NULL;
}

/* Acquires f->condition if it exists; *held receives a strong reference to
 * release with unlock(). */
static int lock(FutureObject *f, PyObject **held) {
    *held = NULL;
    if (f->condition == NULL) return 0;
    PyObject *r = PyObject_CallMethod(f->condition, "acquire", NULL);
    if (r == NULL) return -1;
    Py_DECREF(r);
    *held = Py_NewRef(f->condition);
    return 0;
}

/* Releases a condition taken by lock(), notifying its waiters first when
 * notify is set. Keeps any exception already set. */
static void unlock(PyObject *held, int notify) {
    if (held == NULL) return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r;
    if (notify) {
        r = PyObject_CallMethod(held, "notify_all", NULL);
        if (r == NULL) gf_log_exception("notify_all failed on %r", held); else Py_DECREF(r);
    }
    r = PyObject_CallMethod(held, "release", NULL);
    if (r == NULL) gf_log_exception("release failed on %r", held); else Py_DECREF(r);
    Py_DECREF(held);
    PyErr_Restore(type, value, tb);
}

/* Tells the stdlib waiters (objects from concurrent.futures.wait) about a
 * transition, as the stdlib does under the condition. */
static void notify_waiters(FutureObject *f, const char *method) {
    if (f->waiters == NULL || PyList_GET_SIZE(f->waiters) == 0) return;
    PyObject *snapshot = PyList_GetSlice(f->waiters, 0, PY_SSIZE_T_MAX);
    if (snapshot == NULL) { gf_log_exception("cannot read _waiters of %r", (PyObject *)f); return; }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snapshot); i++) {
        PyObject *r = PyObject_CallMethod(PyList_GET_ITEM(snapshot, i), method, "O", (PyObject *)f);
        if (r == NULL) gf_log_exception("exception notifying a waiter of %r", (PyObject *)f); else Py_DECREF(r);
    }
    Py_DECREF(snapshot);
}

/* Runs f's done-callbacks once, as the stdlib's _invoke_callbacks: an
 * Exception from one is logged and the next one runs; any other exception
 * (KeyboardInterrupt, SystemExit) stops the loop and propagates: 0, or
 * GF_CALLBACK_RAISED with it set and the later callbacks never run. */
static int invoke_callbacks(FutureObject *f) {
    PyObject *cbs = f->callbacks;
    if (cbs == NULL) return 0;
    f->callbacks = NULL;
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(cbs); i++) {
        /* Owned across the call: code holding the list (read through
         * _done_callbacks earlier) may remove the callback meanwhile. */
        PyObject *cb = Py_NewRef(PyList_GET_ITEM(cbs, i));
        PyObject *r = PyObject_CallOneArg(cb, (PyObject *)f);
        Py_DECREF(cb);
        if (r != NULL) {
            Py_DECREF(r);
        } else if (PyErr_ExceptionMatches(PyExc_Exception)) {
            gf_log_exception("exception calling callback for %r", (PyObject *)f);
        } else {
            rc = GF_CALLBACK_RAISED;
            break;
        }
    }
    if (rc == 0) {
        Py_DECREF(cbs);
        return 0;
    }
    PyObject *exc = gf_fetch_exception(); /* the list's release may run a finalizer */
    Py_DECREF(cbs);
    gf_raise(exc);
    Py_DECREF(exc);
    return rc;
}

static PyObject *invalid_state(FutureObject *f) {
    PyObject *name = gf_stdlib.state_names[state_of(f)];
    PyErr_Format(gf_stdlib.InvalidStateError, "%U: %R", name, (PyObject *)f);
    return NULL;
}

int gf_future_complete(FutureObject *f, PyObject *result, PyObject *exc) {
    PyObject *held;
    if (lock(f, &held) < 0) return -1;
    if (gfFutureFinish(f->h, exc != NULL) != 0) {
        invalid_state(f);
        unlock(held, 0);
        return -1;
    }
    /* Publish before the GIL can be released: anyone woken by the Go state
     * change needs the GIL to read these. */
    Py_XSETREF(f->result, Py_XNewRef(result));
    Py_XSETREF(f->exception, Py_XNewRef(exc));
    discard_raw(f);
    notify_waiters(f, exc != NULL ? "add_exception" : "add_result");
    unlock(held, 1);
    return invoke_callbacks(f);
}

int gf_future_start(FutureObject *f) {
    PyObject *held;
    if (lock(f, &held) < 0) return -1;
    int rc = gfFutureSetRunning(f->h);
    if (rc == 0) notify_waiters(f, "add_cancelled");
    unlock(held, 0);
    if (rc < 0) {
        PyObject *r = PyObject_CallMethod(gf_stdlib.logger, "critical", "sKO",
            "Future %s in unexpected state: %s", (unsigned long long)(uintptr_t)f,
            gf_stdlib.state_names[state_of(f)]);
        Py_XDECREF(r);
        PyErr_SetString(PyExc_RuntimeError, "Future in unexpected state");
    }
    return rc;
}

int gf_future_cancel(FutureObject *f) {
    if (f->h == 0) { /* detached (state_of) */
        PyObject *r = detached(f, "cancel", NULL, 0, NULL);
        int rc = r ? PyObject_IsTrue(r) : -1;
        Py_XDECREF(r);
        return rc;
    }
    PyObject *held;
    if (lock(f, &held) < 0) return -1;
    int rc = gfFutureCancel(f->h);
    unlock(held, rc & 2);
    if ((rc & 2) && invoke_callbacks(f) < 0) return GF_CALLBACK_RAISED;
    return rc & 1;
}

/* ---- Python methods ---------------------------------------------------- */

/* A future inherited from the parent through a fork cannot be used: its
 * state lives in the parent's Go runtime (fork.c). */
#define GUARD(failed) \
    if (f->h != 0 && gf_forked && gf_refuse_in_child("this future") < 0) return failed
/* As GUARD, and a detached future runs the stdlib's method instead. */
#define GUARD_OR_DETACHED(name, args, nargs, kwnames) \
    GUARD(NULL);                                     \
    if (f->h == 0) return detached(f, name, args, nargs, kwnames)

PyObject *gf_future_new(PyTypeObject *type) {
    if (gf_refuse_in_child("the Go core") < 0) return NULL;
    FutureObject *f = (FutureObject *)type->tp_alloc(type, 0);
    if (f != NULL) f->h = gfFutureNew((uintptr_t)f);
    return (PyObject *)f;
}

/* In a forked child, Future() makes a detached future (see state_of). */
static PyObject *fut_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    if (!gf_forked) return gf_future_new(type);
    return type->tp_alloc(type, 0); /* h == 0, dstate == PENDING */
}

static int fut_init(PyObject *self, PyObject *args, PyObject *kw) {
    if (PyTuple_GET_SIZE(args) != 0 || (kw != NULL && PyDict_GET_SIZE(kw) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Future() takes no arguments");
        return -1;
    }
    return 0;
}

static int fut_traverse(FutureObject *f, visitproc visit, void *arg) {
    Py_VISIT(f->result);
    Py_VISIT(f->exception);
    Py_VISIT(f->callbacks);
    Py_VISIT(f->condition);
    Py_VISIT(f->waiters);
    return 0;
}

static int fut_clear(FutureObject *f) {
    Py_CLEAR(f->result);
    Py_CLEAR(f->exception);
    Py_CLEAR(f->callbacks);
    Py_CLEAR(f->condition);
    Py_CLEAR(f->waiters);
    return 0;
}

static void fut_dealloc(FutureObject *f) {
    PyObject_GC_UnTrack(f);
    fut_clear(f);
    free(f->raw);
    if (f->h != 0 && !gf_forked) gfFutureFree(f->h); /* in a forked child, the parent's */
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static PyObject *fut_cancel(FutureObject *f, PyObject *unused) {
    GUARD_OR_DETACHED("cancel", NULL, 0, NULL);
    int rc = gf_future_cancel(f);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *fut_cancelled(FutureObject *f, PyObject *unused) {
    GUARD(NULL);
    int s = state_of(f);
    return PyBool_FromLong(s == ST_CANCELLED || s == ST_CANCELLED_AND_NOTIFIED);
}

static PyObject *fut_running(FutureObject *f, PyObject *unused) {
    GUARD(NULL);
    return PyBool_FromLong(state_of(f) == ST_RUNNING);
}

static PyObject *fut_done(FutureObject *f, PyObject *unused) {
    GUARD(NULL);
    return PyBool_FromLong(state_of(f) >= ST_CANCELLED);
}

static int wait_done(void *h, long long ns) { return gfFutureWait((uintptr_t)h, ns); }

/* The stdlib's wait in result()/exception(), on f's own condition (see
 * set_condition): every transition notifies it. Its (done) state, or -1
 * with TimeoutError or another exception set. */
static int wait_on_condition(FutureObject *f, PyObject *timeout) {
    PyObject *cond = Py_NewRef(f->condition);
    PyObject *r = PyObject_CallMethod(cond, "acquire", NULL);
    if (r == NULL) goto fail;
    Py_DECREF(r);
    r = state_of(f) >= ST_CANCELLED ? Py_NewRef(Py_True) : PyObject_CallMethod(cond, "wait", "O", timeout);
    PyObject *released = PyObject_CallMethod(cond, "release", NULL);
    if (r == NULL || released == NULL) {
        Py_XDECREF(r);
        Py_XDECREF(released);
        goto fail;
    }
    Py_DECREF(r);
    Py_DECREF(released);
    Py_DECREF(cond);
    int s = state_of(f);
    if (s < ST_CANCELLED) {
        PyErr_SetNone(gf_stdlib.TimeoutError);
        return -1;
    }
    return s;
fail:
    Py_DECREF(cond);
    return -1;
}

/* Waits until f is done; its (done) state, or -1 with TimeoutError or
 * another exception set. */
static int wait_for(FutureObject *f, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"timeout", NULL};
    PyObject *timeout_obj = Py_None;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw > 1) {
        PyErr_SetString(PyExc_TypeError, "takes at most 1 argument (timeout)");
        return -1;
    }
    if (nargs == 1) timeout_obj = args[0];
    else if (nkw == 1) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0)) ||
            PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), names[0]) != 0) {
            PyErr_Format(PyExc_TypeError, "got an unexpected keyword argument %R", PyTuple_GET_ITEM(kwnames, 0));
            return -1;
        }
        timeout_obj = args[0];
    }
    int s = state_of(f);
    if (s >= ST_CANCELLED) return s;
    if (f->custom_condition && f->condition != NULL) return wait_on_condition(f, timeout_obj);
    double timeout;
    if (gf_parse_timeout(timeout_obj, &timeout) < 0) return -1;
    uintptr_t slot = gf_worker_slot;
    if (slot != 0 && gf_wait_register(slot, &f->h, 1, 1, timeout >= 0) < 0) return -1;
    int rc = gf_block(wait_done, (void *)f->h, timeout);
    if (slot != 0) gfWaitUnblock(slot);
    if (rc < 0) return -1;
    if (rc == 0) {
        PyErr_SetNone(gf_stdlib.TimeoutError);
        return -1;
    }
    return state_of(f);
}

/* A future whose _condition someone asked for (the stdlib's wait(), or code
 * that moves it by hand under that condition, as CPython's tests do: _state,
 * then _exception) is read as the stdlib's result() reads it, under the
 * condition: a transition made there in steps is seen whole, not between
 * them. Its state then, or -1 with an exception set. */
static int read_under_condition(FutureObject *f, int s) {
    if (s < 0 || f->condition == NULL) return s;
    PyObject *held;
    if (lock(f, &held) < 0) return -1;
    s = state_of(f);
    unlock(held, 0);
    return s;
}

static PyObject *fut_result(FutureObject *f, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    GUARD_OR_DETACHED("result", args, nargs, kwnames);
    int s = read_under_condition(f, wait_for(f, args, nargs, kwnames));
    if (s < 0) return NULL;
    if (s == ST_CANCELLED || s == ST_CANCELLED_AND_NOTIFIED) {
        PyErr_SetNone(gf_stdlib.CancelledError);
        return NULL;
    }
    if (f->raw != NULL && materialize(f) < 0) return NULL;
    PyObject *exc = Py_XNewRef(f->exception);
    PyObject *value = exc ? NULL : Py_NewRef(f->result ? f->result : Py_None);
    /* After taking the outcome: a drain may run arbitrary code. Here, not
     * before the wait, because Go parked this future's own reference before
     * finishing it: the caller's reference may then be the last. */
    gf_release_drain();
    if (exc != NULL) {
        gf_raise(exc);
        Py_DECREF(exc);
    }
    return value;
}

static PyObject *fut_exception(FutureObject *f, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    GUARD_OR_DETACHED("exception", args, nargs, kwnames);
    int s = read_under_condition(f, wait_for(f, args, nargs, kwnames));
    if (s < 0) return NULL;
    if (s == ST_CANCELLED || s == ST_CANCELLED_AND_NOTIFIED) {
        PyErr_SetNone(gf_stdlib.CancelledError);
        return NULL;
    }
    if (f->raw != NULL && materialize(f) < 0) return NULL;
    PyObject *exc = Py_NewRef(f->exception ? f->exception : Py_None);
    gf_release_drain(); /* after taking the outcome, as in fut_result */
    return exc;
}

/* ---- module function: map's per-item step ----------------------------- */

/* result_or_cancel(future, timeout=None): the result, or, when waiting for
 * it fails (a timeout, Ctrl-C, the call's exception), the future is
 * cancelled and the error raised: what Executor.map does for each item, as
 * one C call. Any other kind of future gets the same done in Python terms. */
PyObject *gf_result_or_cancel(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) return PyErr_Format(PyExc_TypeError, "result_or_cancel(future, timeout=None)");
    PyObject *fut = args[0];
    PyObject *r;
    if (gf_future_check(fut)) {
        r = fut_result((FutureObject *)fut, args + 1, nargs - 1, NULL);
    } else {
        PyObject *meth = PyUnicode_FromString("result");
        r = meth ? PyObject_VectorcallMethod(meth, (PyObject *[]){fut, nargs > 1 ? args[1] : Py_None}, 2, NULL) : NULL;
        Py_XDECREF(meth);
    }
    if (r != NULL) return r;
    PyObject *exc = gf_fetch_exception();
    PyObject *c;
    if (gf_future_check(fut)) {
        int rc = gf_future_cancel((FutureObject *)fut);
        c = rc < 0 ? NULL : PyBool_FromLong(rc);
    } else {
        c = PyObject_CallMethod(fut, "cancel", NULL);
    }
    if (c == NULL) { /* the cancel's own error wins, with the first as its context, as in Python */
        PyObject *second = gf_fetch_exception();
        if (second != NULL && exc != NULL) PyException_SetContext(second, exc); /* steals exc */
        else Py_XDECREF(exc);
        if (second != NULL) {
            gf_raise(second);
            Py_DECREF(second);
        }
        return NULL;
    }
    Py_DECREF(c);
    if (exc != NULL) {
        gf_raise(exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* Observes f first: if it is not done yet, Go will complete it through the
 * results worker, which runs the callback; if it is, the callback runs now
 * (and reads a parked outcome through result() or the getters, which
 * unpickle it). */
static PyObject *fut_add_done_callback(FutureObject *f, PyObject *fn) {
    GUARD(NULL);
    if (observe(f) < ST_CANCELLED) {
        if (f->callbacks == NULL && (f->callbacks = PyList_New(0)) == NULL) return NULL;
        if (PyList_Append(f->callbacks, fn) < 0) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *r = PyObject_CallOneArg(fn, (PyObject *)f);
    if (r == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return NULL;
        gf_log_exception("exception calling callback for %r", (PyObject *)f);
    } else {
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

static PyObject *fut_set_running_or_notify_cancel(FutureObject *f, PyObject *unused) {
    GUARD_OR_DETACHED("set_running_or_notify_cancel", NULL, 0, NULL);
    int rc = gf_future_start(f);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *fut_set_result(FutureObject *f, PyObject *result) {
    GUARD_OR_DETACHED("set_result", &result, 1, NULL);
    return gf_future_complete(f, result, NULL) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *fut_set_exception(FutureObject *f, PyObject *exc) {
    GUARD_OR_DETACHED("set_exception", &exc, 1, NULL);
    if (exc == Py_None) exc = NULL; /* stdlib: set_exception(None) records "no exception" */
    if (exc == NULL) return gf_future_complete(f, Py_None, NULL) < 0 ? NULL : Py_NewRef(Py_None);
    return gf_future_complete(f, NULL, exc) < 0 ? NULL : Py_NewRef(Py_None);
}

/* ---- the stdlib's private attributes, for its wait()/as_completed() and
 * for code (CPython's tests among it) that assigns them directly --------- */

static PyObject *get_state(FutureObject *f, void *c) {
    GUARD(NULL);
    return Py_NewRef(gf_stdlib.state_names[state_of(f)]);
}

static int set_state(FutureObject *f, PyObject *v, void *c) {
    GUARD(-1);
    for (int i = 0; v != NULL && i < 5; i++) {
        int eq = PyObject_RichCompareBool(v, gf_stdlib.state_names[i], Py_EQ);
        if (eq < 0) return -1;
        if (eq) {
            if (settle(f) < 0) return -1; /* before the state may stop saying done */
            if (f->h == 0) f->dstate = i;
            else gfFutureForce(f->h, i, f->exception != NULL);
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "_state must be one of PENDING, RUNNING, CANCELLED, "
                 "CANCELLED_AND_NOTIFIED, FINISHED; got %R", v);
    return -1;
}

static PyObject *get_result(FutureObject *f, void *c) {
    GUARD(NULL);
    if (settle(f) < 0) return NULL;
    return Py_NewRef(f->result ? f->result : Py_None);
}

static int set_result_attr(FutureObject *f, PyObject *v, void *c) {
    GUARD(-1);
    if (settle(f) < 0) return -1; /* a parked exception must survive */
    Py_XSETREF(f->result, Py_XNewRef(v));
    return 0;
}

static PyObject *get_exception(FutureObject *f, void *c) {
    GUARD(NULL);
    if (settle(f) < 0) return NULL;
    return Py_NewRef(f->exception ? f->exception : Py_None);
}

static int set_exception_attr(FutureObject *f, PyObject *v, void *c) {
    GUARD(-1);
    if (settle(f) < 0) return -1; /* a parked result must survive */
    if (v == Py_None) v = NULL;
    Py_XSETREF(f->exception, Py_XNewRef(v));
    int st = state_of(f);
    if (st == ST_FINISHED && f->h != 0) gfFutureForce(f->h, st, v != NULL);
    return 0;
}

/* Lazily made attributes: the stdlib creates them in __init__, we only when
 * someone asks (most futures never need them). */
static PyObject *lazy(PyObject **slot, PyObject *(*make)(void)) {
    if (*slot == NULL && (*slot = make()) == NULL) return NULL;
    return Py_NewRef(*slot);
}
static PyObject *new_list(void) { return PyList_New(0); }
static PyObject *new_condition(void) { return PyObject_CallNoArgs(gf_stdlib.condition_type); }

/* The stdlib's wait()/as_completed() take _condition and add to _waiters
 * expecting to be told of the completion; code that appends to
 * _done_callbacks expects them run: all observe the future. */
static PyObject *get_condition(FutureObject *f, void *c) {
    GUARD(NULL);
    observe(f);
    return lazy(&f->condition, new_condition);
}
static PyObject *get_waiters(FutureObject *f, void *c) {
    GUARD(NULL);
    observe(f);
    return lazy(&f->waiters, new_list);
}
static PyObject *get_callbacks(FutureObject *f, void *c) {
    GUARD(NULL);
    observe(f);
    return lazy(&f->callbacks, new_list);
}

static int set_slot(PyObject **slot, PyObject *v) {
    Py_XSETREF(*slot, Py_XNewRef(v));
    return 0;
}
/* A condition assigned from outside (futurist's GreenFuture puts an
 * eventlet-aware one here) is the one blocking calls then wait on
 * (wait_on_condition): a green thread that would complete the future runs
 * only while its waiter yields to it through that condition. */
static int set_condition(FutureObject *f, PyObject *v, void *c) {
    GUARD(-1);
    observe(f);
    f->custom_condition = v != NULL;
    return set_slot(&f->condition, v);
}
static int set_waiters(FutureObject *f, PyObject *v, void *c) {
    GUARD(-1);
    if (v != NULL && !PyList_Check(v)) { PyErr_SetString(PyExc_TypeError, "_waiters must be a list"); return -1; }
    observe(f);
    return set_slot(&f->waiters, v);
}
static int set_callbacks(FutureObject *f, PyObject *v, void *c) {
    GUARD(-1);
    if (v != NULL && !PyList_Check(v)) { PyErr_SetString(PyExc_TypeError, "_done_callbacks must be a list"); return -1; }
    observe(f);
    return set_slot(&f->callbacks, v);
}

static PyGetSetDef fut_getset[] = {
    {"_state", (getter)get_state, (setter)set_state, NULL, NULL},
    {"_result", (getter)get_result, (setter)set_result_attr, NULL, NULL},
    {"_exception", (getter)get_exception, (setter)set_exception_attr, NULL, NULL},
    {"_condition", (getter)get_condition, (setter)set_condition, NULL, NULL},
    {"_waiters", (getter)get_waiters, (setter)set_waiters, NULL, NULL},
    {"_done_callbacks", (getter)get_callbacks, (setter)set_callbacks, NULL, NULL},
    {NULL}
};

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
static PyMethodDef fut_methods[] = {
    {"cancel", (PyCFunction)fut_cancel, METH_NOARGS, "Cancel the future if it has not started; return whether it is cancelled."},
    {"cancelled", (PyCFunction)fut_cancelled, METH_NOARGS, "Return True if the future was cancelled."},
    {"running", (PyCFunction)fut_running, METH_NOARGS, "Return True if the future is running."},
    {"done", (PyCFunction)fut_done, METH_NOARGS, "Return True if the future was cancelled or finished."},
    {"result", (PyCFunction)(void (*)(void))fut_result, FASTKW, "result(timeout=None): wait for and return the result."},
    {"exception", (PyCFunction)(void (*)(void))fut_exception, FASTKW, "exception(timeout=None): wait for and return the exception."},
    {"add_done_callback", (PyCFunction)fut_add_done_callback, METH_O, "Call fn(future) when the future is done."},
    {"set_running_or_notify_cancel", (PyCFunction)fut_set_running_or_notify_cancel, METH_NOARGS,
     "Mark the future running (True) or acknowledge its cancellation (False)."},
    {"set_result", (PyCFunction)fut_set_result, METH_O, "Finish the future with a result."},
    {"set_exception", (PyCFunction)fut_set_exception, METH_O, "Finish the future with an exception."},
    {NULL}
};

static PyTypeObject FutureBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gofutures._core.FutureBase",
    .tp_doc = "Native state of a gofutures Future (use gofutures.Future).",
    .tp_basicsize = sizeof(FutureObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = fut_new,
    .tp_init = fut_init,
    .tp_dealloc = (destructor)fut_dealloc,
    .tp_traverse = (traverseproc)fut_traverse,
    .tp_clear = (inquiry)fut_clear,
    .tp_methods = fut_methods,
    .tp_getset = fut_getset,
};

int gf_future_init_type(PyObject *module) {
    if (PyType_Ready(&FutureBaseType) < 0) return -1;
    gf_FutureBase = &FutureBaseType;
    return PyModule_AddObjectRef(module, "FutureBase", (PyObject *)&FutureBaseType);
}
