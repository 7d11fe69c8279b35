/* outcome.c: the one place that turns what came back for a process call (a
 * delivery: a GF_DELIVER_* or GF_FRAME_* kind and its bytes, see gf.h) into the Python
 * object its future ends with, whichever path brings it: the results worker
 * completing an observed future (worker.c), or the first reader of a parked
 * one (future.c).
 *
 * A pickled value or exception is unpickled here. Everything else (a
 * broken pool, a call that failed alone, a value that cannot be unpickled)
 * is worded by the package's outcome builder, gofutures._outcome.build,
 * which the package registers at import (set_outcome_builder): the words
 * and the exception classes belong to the Python layer, and the binding
 * never imports a private module of the package. */
#include "hot.h"

static PyObject *builder;       /* strong, set once by set_outcome_builder */
static PyObject *shared_loader; /* strong, likewise */

/* set_outcome_builder(build, load_shared): build(kind, data, cause) words
 * an outcome that is no plain value; load_shared(region) unpickles an
 * answer that came in shared memory (gofutures._bigpayload.loads). */
PyObject *gf_set_outcome_builder(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "set_outcome_builder(build, load_shared) takes two callables");
    Py_XSETREF(builder, Py_NewRef(args[0]));
    Py_XSETREF(shared_loader, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

void gf_raw_free(char *data, Py_ssize_t len, int shared, PyObject *region) {
    if (region != NULL) Py_DECREF(region); /* the memory is the region's */
    else if (shared) gf_answer_free(data, (size_t)len);
    else free(data);
}

/* builder(kind, data, cause): data the delivery's bytes, cause the
 * exception unpickling them raised, or None. */
static PyObject *build_in_python(int kind, const char *data, Py_ssize_t len, PyObject *cause) {
    if (builder == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "gofutures: no outcome builder registered (gofutures.process not imported)");
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(data, len);
    if (bytes == NULL) return NULL;
    PyObject *r = PyObject_CallFunction(builder, "iOO", kind, bytes, cause ? cause : Py_None);
    Py_DECREF(bytes);
    return r;
}

/* Outcomes at least this big are unpickled in place (loads_in_place); a
 * small one is copied into a bytes object, which costs less than making and
 * releasing a memoryview. */
#define GF_UNPICKLE_IN_PLACE (64 << 10)

/* pickle.loads over a memoryview of data: a result of many megabytes is
 * not copied into a bytes object first. The view is released before the
 * caller frees data; pickle.loads keeps no reference to its input. */
static PyObject *loads_in_place(const char *data, Py_ssize_t len) {
    PyObject *view = PyMemoryView_FromMemory((char *)data, len, PyBUF_READ);
    if (view == NULL) return NULL;
    PyObject *value = PyObject_CallOneArg(gf_pickle_loads, view);
    PyObject *failure = value ? NULL : gf_fetch_exception();
    PyObject *released = PyObject_CallMethod(view, "release", NULL);
    if (released == NULL) PyErr_Clear(); /* cannot fail for a view nobody else exported */
    Py_XDECREF(released);
    Py_DECREF(view);
    if (failure != NULL) {
        gf_raise(failure);
        Py_DECREF(failure);
    }
    return value;
}

PyObject *gf_outcome_build(int kind, char *data, Py_ssize_t len, int shared, PyObject **region, int *is_error) {
    *is_error = kind != GF_FRAME_RESULT;
    if (kind != GF_FRAME_RESULT && kind != GF_FRAME_ERROR) return build_in_python(kind, data, len, NULL);
    PyObject *value;
    if (shared) {
        if (*region == NULL && (*region = gf_region_new(data, len)) == NULL) return NULL;
        value = shared_loader ? PyObject_CallOneArg(shared_loader, *region)
                              : PyErr_Format(PyExc_RuntimeError, "gofutures: no outcome builder registered");
        data = NULL, len = 0; /* what build_in_python gets below: the cause says it all */
    } else if (len < GF_UNPICKLE_IN_PLACE) {
        PyObject *bytes = PyBytes_FromStringAndSize(data, len);
        value = bytes ? PyObject_CallOneArg(gf_pickle_loads, bytes) : NULL;
        Py_XDECREF(bytes);
    } else {
        value = loads_in_place(data, len);
    }
    if (value != NULL || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) return value;
    /* Any other failure, SystemExit from a __setstate__ included, is this
     * call's outcome: the pool and its other calls go on. */
    PyObject *cause = gf_fetch_exception();
    if (cause == NULL) return NULL;
    *is_error = 1;
    value = build_in_python(kind, data, len, cause);
    Py_DECREF(cause);
    return value;
}
