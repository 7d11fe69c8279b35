/* future.c: FutureBase, the native half of gofutures.Future: its type, its
 * transitions (what executors drive) and its public methods.
 *
 * The Python class gofutures.Future is `class Future(FutureBase,
 * concurrent.futures.Future)`: isinstance checks against the stdlib pass, and
 * every public method resolves here first. The state machine is the Go
 * core's (reached through f->h); the object keeps the Python values
 * (result, exception, callbacks). Its other jobs have their own files:
 * future_parked.c (a process outcome parked in the future, built on
 * demand), future_stdlib.c (the private attributes and the waiter protocol
 * the stdlib's own wait()/as_completed() use); future.h is what they share.
 *
 * Locking: the GIL protects every field. When someone has asked for
 * _condition, each transition also holds that condition, because the
 * stdlib's wait() reads _state and appends to _waiters under it. Done
 * callbacks run after the transition, outside the condition, as in the
 * stdlib.
 */
#include "future.h"
#include "_cgo_export.h"
#include <stdlib.h>

PyTypeObject *gf_FutureBase;

/* A detached future (h == 0) has no Go future: it is one made in a forked
 * child (fork.c), where Go cannot run. Its state is f->dstate, and its
 * transitions and waits are the stdlib's own Python methods (fut_detached()),
 * working on the same attributes the stdlib's wait() reads. */
int fut_state(FutureObject *f) {
    if (f->final) return f->final;
    if (f->h == 0) return f->dstate;
    int s = gfFutureState(f->h) & 0xff;
    if (s == ST_FINISHED || s == ST_CANCELLED_AND_NOTIFIED) f->final = s;
    return s;
}

void gf_future_force(FutureObject *f, int state, int failed) {
    f->final = 0;
    f->forced = 1;
    gfFutureForce(f->h, state, failed);
}

int gf_future_done(FutureObject *f) { return fut_state(f) >= ST_CANCELLED; }

int gf_future_check(PyObject *o) { return PyObject_TypeCheck(o, gf_FutureBase); }

/* Marks f observed (see the file comment) and returns its state. */
int fut_observe(FutureObject *f) {
    if (f->final) return f->final; /* done: nothing will finish it again */
    return f->h ? gfFutureObserve(f->h) & 0xff : f->dstate;
}

/* Calls concurrent.futures.Future.<name>(f, *args): what a detached
 * future does for the methods that move or wait in Go otherwise. */
PyObject *fut_detached(FutureObject *f, const char *name, PyObject *const *args, Py_ssize_t nargs,
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
    PyObject *name = gf_stdlib.state_names[fut_state(f)];
    PyErr_Format(gf_stdlib.InvalidStateError, "%U: %R", name, (PyObject *)f);
    return NULL;
}

/* f's outcome, and its final state as this side keeps it (f->final). */
static void store_outcome(FutureObject *f, PyObject *result, PyObject *exc) {
    f->final = ST_FINISHED;
    Py_XSETREF(f->result, Py_XNewRef(result));
    Py_XSETREF(f->exception, Py_XNewRef(exc));
}

int gf_future_complete(FutureObject *f, PyObject *result, PyObject *exc) {
    PyObject *held;
    if (fut_lock(f, &held) < 0) return -1;
    if (gfFutureFinish(f->h, exc != NULL) != 0) {
        invalid_state(f);
        fut_unlock(held, 0);
        return -1;
    }
    /* Publish before the GIL can be released: anyone woken by the Go state
     * change needs the GIL to read these. */
    store_outcome(f, result, exc);
    fut_discard_raw(f);
    fut_notify_waiters(f, exc != NULL ? "add_exception" : "add_result");
    fut_unlock(held, 1);
    return invoke_callbacks(f);
}

int gf_future_publish(FutureObject *f, PyObject *result, PyObject *exc) {
    if (f->final || f->forced || f->condition != NULL || f->waiters != NULL || f->callbacks != NULL ||
        f->raw != NULL)
        return 0;
    store_outcome(f, result, exc);
    return 1;
}

int gf_future_start(FutureObject *f) {
    PyObject *held;
    if (fut_lock(f, &held) < 0) return -1;
    int rc = gfFutureSetRunning(f->h);
    if (rc == 0) fut_notify_waiters(f, "add_cancelled");
    fut_unlock(held, 0);
    if (rc < 0) {
        PyObject *r = PyObject_CallMethod(gf_stdlib.logger, "critical", "sKO",
            "Future %s in unexpected state: %s", (unsigned long long)(uintptr_t)f,
            gf_stdlib.state_names[fut_state(f)]);
        Py_XDECREF(r);
        PyErr_SetString(PyExc_RuntimeError, "Future in unexpected state");
    }
    return rc;
}

int gf_future_cancel(FutureObject *f) {
    if (f->h == 0) { /* detached (state_of) */
        PyObject *r = fut_detached(f, "cancel", NULL, 0, NULL);
        int rc = r ? PyObject_IsTrue(r) : -1;
        Py_XDECREF(r);
        return rc;
    }
    PyObject *held;
    if (fut_lock(f, &held) < 0) return -1;
    int rc = gfFutureCancel(f->h);
    fut_unlock(held, rc & 2);
    if ((rc & 2) && invoke_callbacks(f) < 0) return GF_CALLBACK_RAISED;
    return rc & 1;
}

/* ---- Python methods ---------------------------------------------------- */

PyObject *gf_future_new(PyTypeObject *type) {
    if (gf_refuse_in_child("the Go core") < 0) return NULL;
    FutureObject *f = (FutureObject *)type->tp_alloc(type, 0);
    if (f != NULL) f->h = gfFutureNew((uintptr_t)f);
    return (PyObject *)f;
}

/* In a forked child, Future() makes a detached future (see state_of). */
static PyObject *fut_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw)) {
    if (!gf_forked) return gf_future_new(type);
    return type->tp_alloc(type, 0); /* h == 0, dstate == PENDING */
}

static int fut_init(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kw) {
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

/* Handles of dead futures, given back to Go GF_DEAD_BATCH at a time: a call
 * into Go per future was a tenth of a small task's cost. Such a Go future
 * is referenced by the handle table alone (its Python object is gone, so no
 * pool, wait or watch holds it), so giving it back later changes nothing
 * but when its memory goes. Protected by the GIL; a forked child never
 * gives back what its parent's Go runtime holds. */
#define GF_DEAD_BATCH 64
static uintptr_t dead[GF_DEAD_BATCH];
static int ndead;

static void free_later(uintptr_t h) {
    dead[ndead++] = h;
    if (ndead == GF_DEAD_BATCH) {
        gfFutureFreeMany(dead, ndead);
        ndead = 0;
    }
}

static void fut_dealloc(FutureObject *f) {
    PyObject_GC_UnTrack(f);
    fut_clear(f);
    fut_discard_raw(f);
    if (f->h != 0 && !gf_forked) free_later(f->h); /* in a forked child, the parent's */
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static PyObject *fut_cancel(FutureObject *f, PyObject *Py_UNUSED(unused)) {
    GUARD_OR_DETACHED("cancel", NULL, 0, NULL);
    int rc = gf_future_cancel(f);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *fut_cancelled(FutureObject *f, PyObject *Py_UNUSED(unused)) {
    GUARD(NULL);
    int s = fut_state(f);
    return PyBool_FromLong(s == ST_CANCELLED || s == ST_CANCELLED_AND_NOTIFIED);
}

static PyObject *fut_running(FutureObject *f, PyObject *Py_UNUSED(unused)) {
    GUARD(NULL);
    return PyBool_FromLong(fut_state(f) == ST_RUNNING);
}

static PyObject *fut_done(FutureObject *f, PyObject *Py_UNUSED(unused)) {
    GUARD(NULL);
    int done = fut_state(f) >= ST_CANCELLED;
    /* A parked future's own reference waits for a drain (release.c), which
     * a program that only polls done() and then drops the future never ran:
     * the future and its result lived on until the results worker got the
     * GIL. Go parks that reference before it finishes the future, so once
     * done is seen it is there to drop (the caller's reference keeps f). */
    if (done) gf_release_drain();
    return PyBool_FromLong(done);
}

static int wait_done(void *h, long long ns) { return gfFutureWait((uintptr_t)h, ns); }

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
    int s = fut_state(f);
    if (s >= ST_CANCELLED) return s;
    if (f->custom_condition && f->condition != NULL) return fut_wait_on_condition(f, timeout_obj);
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
    return fut_state(f);
}

/* A future whose _condition someone asked for (the stdlib's wait(), or code
 * that moves it by hand under that condition, as CPython's tests do: _state,
 * then _exception) is read as the stdlib's result() reads it, under the
 * condition: a transition made there in steps is seen whole, not between
 * them. Its state then, or -1 with an exception set. */
static int read_under_condition(FutureObject *f, int s) {
    if (s < 0 || f->condition == NULL) return s;
    PyObject *held;
    if (fut_lock(f, &held) < 0) return -1;
    s = fut_state(f);
    fut_unlock(held, 0);
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
    if (f->raw != NULL && fut_materialize(f) < 0) return NULL;
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
    if (f->raw != NULL && fut_materialize(f) < 0) return NULL;
    PyObject *exc = Py_NewRef(f->exception ? f->exception : Py_None);
    gf_release_drain(); /* after taking the outcome, as in fut_result */
    return exc;
}

/* ---- module function: map's per-item step ----------------------------- */

/* result_or_cancel(future, timeout=None): the result, or, when waiting for
 * it fails (a timeout, Ctrl-C, the call's exception), the future is
 * cancelled and the error raised: what Executor.map does for each item, as
 * one C call. Any other kind of future gets the same done in Python terms. */
PyObject *gf_result_or_cancel(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
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
    if (fut_observe(f) < ST_CANCELLED) {
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

static PyObject *fut_set_running_or_notify_cancel(FutureObject *f, PyObject *Py_UNUSED(unused)) {
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
