/* executor.c: ThreadPoolBase, the native half of gofutures.ThreadPoolExecutor.
 *
 * The Python class is `class ThreadPoolExecutor(ThreadPoolBase,
 * concurrent.futures.ThreadPoolExecutor)`. This half carries the hot path:
 * submit builds the Future and the job and hands both to the Go pool (by pool
 * id) without releasing the GIL; shutdown's cancellations are applied here
 * because cancelling runs Python callbacks. Creating and joining the pool go
 * through the gopy-generated cold API from Python.
 *
 * Lifetime: the object refers to its Go pool by id. Dealloc shuts the pool
 * down without cancelling (its workers finish the queue and exit, as the
 * stdlib's do when the executor is garbage collected) and releases the
 * hooks object the pool held.
 */
#include "hot.h"
#include "_cgo_export.h"
#include <stdlib.h>

PyTypeObject *gf_ThreadPoolBase;

/* Set once the interpreter starts shutting down (atexit): submits then
 * fail as the stdlib's do. */
int gf_interpreter_exiting;

typedef struct {
    PyObject_HEAD
    long long pool;            /* Go pool id, 0 until _bind */
    PyTypeObject *future_type; /* strong: the Future class to create */
} PoolObject;

/* How long submit waits for a worker it started to come up. The stdlib's
 * Thread.start() waits for its thread, so that a worker exists (and is
 * listed) when submit returns; without the wait, a burst of submits holding
 * the GIL would run ahead of every worker. */
#define GF_SPAWN_WAIT_S 1.0

static int await_started(void *pool, long long ns) { return gfPoolAwaitStarted((long long)(intptr_t)pool, ns); }

static PyObject *pool_bind(PoolObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "_bind(pool_id, future_type, hooks)");
    long long id = PyLong_AsLongLong(args[0]);
    if (id == -1 && PyErr_Occurred()) return NULL;
    if (!PyType_Check(args[1]) || !PyType_IsSubtype((PyTypeObject *)args[1], gf_FutureBase))
        return PyErr_Format(PyExc_TypeError, "future_type must be a subclass of FutureBase");
    if (self->pool != 0) return PyErr_Format(PyExc_RuntimeError, "executor already bound");
    if (gf_refuse_in_child("the Go core") < 0) return NULL;
    PyObject *hooks = Py_NewRef(args[2]); /* owned by the Go pool from here */
    if (gfPoolBind(id, hooks) != 0) {
        Py_DECREF(hooks);
        return PyErr_Format(PyExc_RuntimeError, "no thread pool with id %lld", id);
    }
    self->pool = id;
    Py_XSETREF(self->future_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

static PyObject *broken_error(long long pool) {
    char *msg = gfPoolBrokenMessage(pool);
    PyErr_SetString(gf_stdlib.BrokenThreadPool, msg ? msg : "the thread pool is broken");
    free(msg);
    return NULL;
}

static PyObject *pool_submit(PoolObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    if (nargs < 1) return PyErr_Format(PyExc_TypeError, "ThreadPoolExecutor.submit() missing 1 required positional argument: 'fn'");
    if (self->pool == 0) return PyErr_Format(PyExc_RuntimeError, "ThreadPoolExecutor.__init__ was not called");
    if (gf_refuse_in_child("this ThreadPoolExecutor") < 0) return NULL;
    if (gf_interpreter_exiting)
        return PyErr_Format(PyExc_RuntimeError, "cannot schedule new futures after interpreter shutdown");
    gf_job *job = calloc(1, sizeof *job);
    if (job == NULL) return PyErr_NoMemory();
    job->fn = Py_NewRef(args[0]);
    job->args = PyTuple_New(nargs - 1);
    if (job->args == NULL) goto fail;
    for (Py_ssize_t i = 1; i < nargs; i++) PyTuple_SET_ITEM(job->args, i - 1, Py_NewRef(args[i]));
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        if ((job->kwargs = PyDict_New()) == NULL) goto fail;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++)
            if (PyDict_SetItem(job->kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) goto fail;
    }
    /* The Go future is made by gfPoolSubmit (one call into Go, not two). */
    if ((job->future = self->future_type->tp_alloc(self->future_type, 0)) == NULL) goto fail;
    PyObject *fut = Py_NewRef(job->future);
    FutureObject *f = (FutureObject *)fut;
    switch (gfPoolSubmit(self->pool, (uintptr_t)f, job, &f->h)) {
    case GF_SUBMIT_SPAWNED:
        if (gf_block(await_started, (void *)(intptr_t)self->pool, GF_SPAWN_WAIT_S) < 0) {
            Py_DECREF(fut); /* interrupted: the task is queued, the future stays valid */
            return NULL;
        }
        return fut;
    case GF_SUBMIT_OK:
        return fut; /* the Go pool owns the job now */
    case GF_SUBMIT_BROKEN:
        broken_error(self->pool);
        break;
    case GF_SUBMIT_SHUTDOWN:
        PyErr_SetString(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
        break;
    default:
        PyErr_SetString(PyExc_RuntimeError, "the executor's thread pool is gone");
    }
    Py_DECREF(fut);
    gf_job_free(job);
    return NULL;
fail:
    Py_XDECREF(job->kwargs);
    Py_XDECREF(job->args);
    Py_DECREF(job->fn);
    free(job);
    return NULL;
}

/* _close(cancel_futures): stop accepting work; with cancel_futures the
 * queued tasks are cancelled here (their callbacks run) and acknowledged, so
 * that wait() and as_completed() see them settle. Does not wait.
 *
 * A KeyboardInterrupt or SystemExit from a done-callback propagates out of
 * shutdown(), as out of the stdlib's, which cancels on the caller's thread
 * too; but only once every dropped task is cancelled (the stdlib's would
 * leave the rest queued, for workers that no longer take them here). */
static PyObject *pool_shutdown(PoolObject *self, PyObject *cancel_obj) {
    int cancel = PyObject_IsTrue(cancel_obj);
    if (cancel < 0) return NULL;
    if (self->pool == 0) Py_RETURN_NONE;
    if (gf_refuse_in_child("this ThreadPoolExecutor") < 0) return NULL;
    gfPoolShutdown(self->pool, cancel);
    PyObject *propagated = NULL;
    gf_job *job;
    while ((job = gfPoolNextDropped(self->pool)) != NULL) {
        FutureObject *f = (FutureObject *)job->future;
        int rc = gf_future_cancel(f);
        if (rc == GF_CALLBACK_RAISED) {
            PyObject *exc = gf_fetch_exception();
            if (propagated == NULL) propagated = exc; else Py_DECREF(exc);
        }
        if ((rc < 0 && rc != GF_CALLBACK_RAISED) || gf_future_start(f) < 0)
            gf_log_exception("cancelling %r at shutdown failed", (PyObject *)f);
        gf_job_free(job);
    }
    if (propagated == NULL) Py_RETURN_NONE;
    gf_raise(propagated);
    Py_DECREF(propagated);
    return NULL;
}

static PyObject *pool_id(PoolObject *self, void *Py_UNUSED(c)) { return PyLong_FromLongLong(self->pool); }

static int pool_traverse(PoolObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->future_type);
    return 0;
}

static int pool_clear(PoolObject *self) {
    Py_CLEAR(self->future_type);
    return 0;
}

static void pool_dealloc(PoolObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->pool != 0 && !gf_forked) { /* in a forked child the pool is the parent's */
        Py_XDECREF(gfPoolRelease(self->pool)); /* the hooks the pool held */
        self->pool = 0;
    }
    pool_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef pool_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))pool_bind, METH_FASTCALL, "_bind(pool_id, future_type, hooks)"},
    {"submit", (PyCFunction)(void (*)(void))pool_submit, METH_FASTCALL | METH_KEYWORDS,
     "submit(fn, /, *args, **kwargs) -> Future: schedule fn(*args, **kwargs)."},
    {"_close", (PyCFunction)pool_shutdown, METH_O, "_close(cancel_futures): stop the pool; does not wait"},
    {NULL}
};

static PyGetSetDef pool_getset[] = {
    {"_pool_id", (getter)pool_id, NULL, "id of the Go pool", NULL},
    {NULL}
};

static PyTypeObject ThreadPoolBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gofutures._core.ThreadPoolBase",
    .tp_doc = "Native half of gofutures.ThreadPoolExecutor.",
    .tp_basicsize = sizeof(PoolObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)pool_dealloc,
    .tp_traverse = (traverseproc)pool_traverse,
    .tp_clear = (inquiry)pool_clear,
    .tp_methods = pool_methods,
    .tp_getset = pool_getset,
};

static PyObject *set_exiting(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(unused)) {
    gf_interpreter_exiting = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_funcs[] = {
    {"_set_interpreter_exiting", set_exiting, METH_NOARGS, "make every later submit fail (atexit)"},
    {NULL}
};

int gf_executor_init_type(PyObject *module) {
    if (PyType_Ready(&ThreadPoolBaseType) < 0) return -1;
    gf_ThreadPoolBase = &ThreadPoolBaseType;
    if (PyModule_AddFunctions(module, module_funcs) < 0) return -1;
    return PyModule_AddObjectRef(module, "ThreadPoolBase", (PyObject *)&ThreadPoolBaseType);
}
