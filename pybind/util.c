/* util.c: small helpers shared by the hot-path C files: sliced blocking
 * waits that stay interruptible, timeouts, exceptions and logging. */
#include "hot.h"
#include <math.h>
#include <time.h>

gf_stdlib_t gf_stdlib;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Why slices: a thread blocked inside Go cannot run Python's signal
 * handlers, so Ctrl-C would wait for the whole timeout. Waking every
 * GF_WAIT_SLICE_NS to run PyErr_CheckSignals costs nothing measurable and
 * keeps every blocking call interruptible. */
int gf_block(gf_wait_fn fn, void *arg, double timeout) {
    double deadline = timeout < 0 ? 0 : now() + timeout;
    for (;;) {
        long long slice = GF_WAIT_SLICE_NS;
        if (timeout >= 0) {
            double left = deadline - now();
            if (left < 0) left = 0;
            if (left * 1e9 < (double)slice) slice = (long long)(left * 1e9);
        }
        int done;
        Py_BEGIN_ALLOW_THREADS
        done = fn(arg, slice);
        Py_END_ALLOW_THREADS
        if (done) return 1;
        if (PyErr_CheckSignals() < 0) return -1;
        if (timeout >= 0 && now() >= deadline) return 0;
    }
}

/* As the stdlib's waits (threading.Condition.wait): a timeout is first
 * compared with 0, which gives its TypeError for what is no number; one not
 * above 0 (NaN included) polls; one too large for a lock's timeout raises
 * the lock's OverflowError. */
int gf_parse_timeout(PyObject *o, double *out) {
    if (o == Py_None) { *out = -1; return 0; }
    /* The stdlib's Condition.wait compares the timeout with 0 first: `> 0`
     * up to 3.13, `<= 0` from 3.14 (whose lock then refuses a NaN). The
     * same comparison gives a bogus timeout the stdlib's TypeError. */
#if PY_VERSION_HEX >= 0x030E0000
    const int first_test = Py_LE;
#else
    const int first_test = Py_GT;
#endif
    if (!PyFloat_Check(o) && !PyLong_Check(o)) {
        PyObject *zero = PyLong_FromLong(0);
        int compared = zero ? PyObject_RichCompareBool(o, zero, first_test) : -1;
        Py_XDECREF(zero);
        if (compared < 0) return -1;
    }
    double t = PyFloat_AsDouble(o);
    if (t == -1.0 && PyErr_Occurred()) return -1;
#if PY_VERSION_HEX >= 0x030E0000
    if (isnan(t)) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return -1;
    }
#endif
    if (t > (double)PY_TIMEOUT_MAX / 1e6) {
        PyErr_SetString(PyExc_OverflowError, "timestamp out of range for platform time_t");
        return -1;
    }
    *out = t > 0 ? t : 0;
    return 0;
}

PyObject *gf_fetch_exception(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

void gf_raise(PyObject *exc) {
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), Py_NewRef(exc), tb);
}

void gf_log_exception(const char *msg, PyObject *obj) { gf_log_at("error", msg, obj); }

void gf_log_at(const char *level, const char *msg, PyObject *obj) {
    PyObject *exc = gf_fetch_exception();
    PyObject *kw = Py_BuildValue("{s:O}", "exc_info", exc ? exc : Py_True);
    PyObject *meth = PyObject_GetAttrString(gf_stdlib.logger, level);
    PyObject *args = obj ? Py_BuildValue("(sO)", msg, obj) : Py_BuildValue("(s)", msg);
    PyObject *r = (meth && args && kw) ? PyObject_Call(meth, args, kw) : NULL;
    if (r == NULL) PyErr_WriteUnraisable(obj ? obj : Py_None); /* logging itself failed */
    Py_XDECREF(r);
    Py_XDECREF(args);
    Py_XDECREF(meth);
    Py_XDECREF(kw);
    Py_XDECREF(exc);
}

void gf_log_propagated(void) { gf_log_at("critical", "Exception in worker", NULL); }

void gf_decref(PyObject *o) { Py_XDECREF(o); }
