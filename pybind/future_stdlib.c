/* future_stdlib.c: what the stdlib's own code reads and writes on a future.
 *
 * concurrent.futures.wait()/as_completed() take f._condition, read f._state
 * and append waiter objects to f._waiters, expecting add_result /
 * add_exception / add_cancelled when the future moves; code that appends to
 * _done_callbacks expects them run; CPython's tests assign _state, _result
 * and _exception directly. These attributes are made only when someone asks
 * (most futures never need them), and asking observes the future (see
 * future_parked.c).
 */
#include "future.h"
#include "_cgo_export.h"

/* Acquires f->condition if it exists; *held receives a strong reference to
 * release with fut_unlock(). */
int fut_lock(FutureObject *f, PyObject **held) {
    *held = NULL;
    if (f->condition == NULL) return 0;
    PyObject *r = PyObject_CallMethod(f->condition, "acquire", NULL);
    if (r == NULL) return -1;
    Py_DECREF(r);
    *held = Py_NewRef(f->condition);
    return 0;
}

/* Releases a condition taken by fut_lock(), notifying its waiters first when
 * notify is set. Keeps any exception already set. */
void fut_unlock(PyObject *held, int notify) {
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
void fut_notify_waiters(FutureObject *f, const char *method) {
    if (f->waiters == NULL || PyList_GET_SIZE(f->waiters) == 0) return;
    PyObject *snapshot = PyList_GetSlice(f->waiters, 0, PY_SSIZE_T_MAX);
    if (snapshot == NULL) { gf_log_exception("cannot read _waiters of %r", (PyObject *)f); return; }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snapshot); i++) {
        PyObject *r = PyObject_CallMethod(PyList_GET_ITEM(snapshot, i), method, "O", (PyObject *)f);
        if (r == NULL) gf_log_exception("exception notifying a waiter of %r", (PyObject *)f); else Py_DECREF(r);
    }
    Py_DECREF(snapshot);
}

/* The stdlib's wait in result()/exception(), on f's own condition (see
 * set_condition): every transition notifies it. Its (done) state, or -1
 * with TimeoutError or another exception set. */
int fut_wait_on_condition(FutureObject *f, PyObject *timeout) {
    PyObject *cond = Py_NewRef(f->condition);
    PyObject *r = PyObject_CallMethod(cond, "acquire", NULL);
    if (r == NULL) goto fail;
    Py_DECREF(r);
    r = fut_state(f) >= ST_CANCELLED ? Py_NewRef(Py_True) : PyObject_CallMethod(cond, "wait", "O", timeout);
    PyObject *released = PyObject_CallMethod(cond, "release", NULL);
    if (r == NULL || released == NULL) {
        Py_XDECREF(r);
        Py_XDECREF(released);
        goto fail;
    }
    Py_DECREF(r);
    Py_DECREF(released);
    Py_DECREF(cond);
    int s = fut_state(f);
    if (s < ST_CANCELLED) {
        PyErr_SetNone(gf_stdlib.TimeoutError);
        return -1;
    }
    return s;
fail:
    Py_DECREF(cond);
    return -1;
}

/* ---- the stdlib's private attributes, for its wait()/as_completed() and
 * for code (CPython's tests among it) that assigns them directly --------- */

static PyObject *get_state(FutureObject *f, void *Py_UNUSED(c)) {
    GUARD(NULL);
    return Py_NewRef(gf_stdlib.state_names[fut_state(f)]);
}

static int set_state(FutureObject *f, PyObject *v, void *Py_UNUSED(c)) {
    GUARD(-1);
    for (int i = 0; v != NULL && i < 5; i++) {
        int eq = PyObject_RichCompareBool(v, gf_stdlib.state_names[i], Py_EQ);
        if (eq < 0) return -1;
        if (eq) {
            if (fut_settle(f) < 0) return -1; /* before the state may stop saying done */
            if (f->h == 0) f->dstate = i;
            else gf_future_force(f, i, f->exception != NULL);
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "_state must be one of PENDING, RUNNING, CANCELLED, "
                 "CANCELLED_AND_NOTIFIED, FINISHED; got %R", v);
    return -1;
}

static PyObject *get_result(FutureObject *f, void *Py_UNUSED(c)) {
    GUARD(NULL);
    if (fut_settle(f) < 0) return NULL;
    return Py_NewRef(f->result ? f->result : Py_None);
}

static int set_result_attr(FutureObject *f, PyObject *v, void *Py_UNUSED(c)) {
    GUARD(-1);
    if (fut_settle(f) < 0) return -1; /* a parked exception must survive */
    Py_XSETREF(f->result, Py_XNewRef(v));
    return 0;
}

static PyObject *get_exception(FutureObject *f, void *Py_UNUSED(c)) {
    GUARD(NULL);
    if (fut_settle(f) < 0) return NULL;
    return Py_NewRef(f->exception ? f->exception : Py_None);
}

static int set_exception_attr(FutureObject *f, PyObject *v, void *Py_UNUSED(c)) {
    GUARD(-1);
    if (fut_settle(f) < 0) return -1; /* a parked result must survive */
    if (v == Py_None) v = NULL;
    Py_XSETREF(f->exception, Py_XNewRef(v));
    int st = fut_state(f);
    if (st == ST_FINISHED && f->h != 0) gf_future_force(f, st, v != NULL);
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
static PyObject *get_condition(FutureObject *f, void *Py_UNUSED(c)) {
    GUARD(NULL);
    fut_observe(f);
    return lazy(&f->condition, new_condition);
}
static PyObject *get_waiters(FutureObject *f, void *Py_UNUSED(c)) {
    GUARD(NULL);
    fut_observe(f);
    return lazy(&f->waiters, new_list);
}
static PyObject *get_callbacks(FutureObject *f, void *Py_UNUSED(c)) {
    GUARD(NULL);
    fut_observe(f);
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
static int set_condition(FutureObject *f, PyObject *v, void *Py_UNUSED(c)) {
    GUARD(-1);
    fut_observe(f);
    f->custom_condition = v != NULL;
    return set_slot(&f->condition, v);
}
static int set_waiters(FutureObject *f, PyObject *v, void *Py_UNUSED(c)) {
    GUARD(-1);
    if (v != NULL && !PyList_Check(v)) { PyErr_SetString(PyExc_TypeError, "_waiters must be a list"); return -1; }
    fut_observe(f);
    return set_slot(&f->waiters, v);
}
static int set_callbacks(FutureObject *f, PyObject *v, void *Py_UNUSED(c)) {
    GUARD(-1);
    if (v != NULL && !PyList_Check(v)) { PyErr_SetString(PyExc_TypeError, "_done_callbacks must be a list"); return -1; }
    fut_observe(f);
    return set_slot(&f->callbacks, v);
}

PyGetSetDef fut_getset[] = {
    {"_state", (getter)get_state, (setter)set_state, NULL, NULL},
    {"_result", (getter)get_result, (setter)set_result_attr, NULL, NULL},
    {"_exception", (getter)get_exception, (setter)set_exception_attr, NULL, NULL},
    {"_condition", (getter)get_condition, (setter)set_condition, NULL, NULL},
    {"_waiters", (getter)get_waiters, (setter)set_waiters, NULL, NULL},
    {"_done_callbacks", (getter)get_callbacks, (setter)set_callbacks, NULL, NULL},
    {NULL}
};
