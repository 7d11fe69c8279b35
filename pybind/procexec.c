/* procexec.c: ProcessPoolBase, the native half of
 * gofutures.ProcessPoolExecutor. Python pickles the call; this half makes
 * the Future and hands the pickle to the Go supervisor without releasing the
 * GIL. Outcomes come back one way (procpool.go's deliver): parked in the
 * future for its reader, or completed by the pool's results worker
 * (worker.c); outcome.c builds them.
 *
 * Lifetime: the object names its Go pool by id; dealloc shuts the pool down
 * without cancelling (queued tasks still run and complete their futures). */
#include "hot.h"
#include "_cgo_export.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>

typedef struct {
    PyObject_HEAD
    long long pool;            /* Go pool id, 0 until _bind */
    PyTypeObject *future_type; /* strong */
} ProcObject;

/* _bind(pool_id, future_type, hooks): ties this object to the Go pool that
 * gopy's NewProcessPool started (thread pools are bound alike, executor.c).
 * hooks: the pool's Python hooks (its results worker's start and stop, and
 * what a forked worker runs: fork.c); the Go pool owns a reference from
 * here on. */
static PyObject *proc_bind(ProcObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "_bind(pool_id, future_type, hooks)");
    long long id = PyLong_AsLongLong(args[0]);
    if (id == -1 && PyErr_Occurred()) return NULL;
    if (!PyType_Check(args[1]) || !PyType_IsSubtype((PyTypeObject *)args[1], gf_FutureBase))
        return PyErr_Format(PyExc_TypeError, "future_type must be a subclass of FutureBase");
    if (self->pool != 0) return PyErr_Format(PyExc_RuntimeError, "executor already bound");
    if (gf_refuse_in_child("the Go core") < 0) return NULL;
    PyObject *hooks = Py_NewRef(args[2]);
    if (gfProcBind(id, hooks) != 0) {
        Py_DECREF(hooks);
        return PyErr_Format(PyExc_RuntimeError, "no unbound process pool with id %lld", id);
    }
    self->pool = id;
    Py_XSETREF(self->future_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

/* A payload this big is handed to Go with the GIL released (its copy takes
 * a while); a small one is not: releasing and taking the GIL back would
 * cost more than the copy. */
#define GF_BIG_SUBMIT (1 << 20)

/* Every method below refuses in a forked child (fork.c): the pool is the
 * parent's. */
#define REFUSE_IN_CHILD() \
    if (gf_refuse_in_child("this ProcessPoolExecutor") < 0) return NULL

static PyObject *proc_broken_message(ProcObject *self, PyObject *Py_UNUSED(unused)) {
    REFUSE_IN_CHILD();
    char *msg = gfProcBrokenMessage(self->pool);
    if (msg == NULL) Py_RETURN_NONE;
    PyObject *s = PyUnicode_DecodeUTF8(msg, strlen(msg), "replace");
    free(msg);
    return s;
}

/* submit_limited: _submit_payload's work, with the task's own time limit
 * (0: the pool's) and the descriptor of the shared memory a big call's
 * payload refers to (-1: none), which is the Go pool's from here on (closed
 * here if the call goes no further). */
static PyObject *submit_limited(ProcObject *self, PyObject *payload, long long timeout_ns, int fd) {
    PyObject *fut = NULL;
    if (gf_refuse_in_child("this ProcessPoolExecutor") < 0) goto refused;
    if (self->pool == 0) {
        PyErr_Format(PyExc_RuntimeError, "ProcessPoolExecutor.__init__ was not called");
        goto refused;
    }
    if (!PyBytes_Check(payload)) {
        PyErr_Format(PyExc_TypeError, "payload must be bytes");
        goto refused;
    }
    gf_release_drain(); /* a submitter that never reads results must not pile references up */
    fut = gf_future_new(self->future_type);
    if (fut == NULL) goto refused;
    Py_INCREF(fut); /* the Go pool's reference, returned by a delivery */
    int rc;
    Py_ssize_t n = PyBytes_GET_SIZE(payload);
    if (n < GF_BIG_SUBMIT) {
        rc = gfProcSubmit(self->pool, ((FutureObject *)fut)->h, fut, PyBytes_AS_STRING(payload), n, timeout_ns, fd);
    } else {
        /* Go copies the payload: other threads run meanwhile. Safe without
         * the GIL: payload is immutable and referenced by our caller, and
         * nobody else knows fut yet. */
        Py_BEGIN_ALLOW_THREADS
        rc = gfProcSubmit(self->pool, ((FutureObject *)fut)->h, fut, PyBytes_AS_STRING(payload), n, timeout_ns, fd);
        Py_END_ALLOW_THREADS
    }
    if (rc == GF_SUBMIT_OK) return fut;
    Py_DECREF(fut);
    Py_DECREF(fut);
    if (rc == GF_SUBMIT_SHUTDOWN) return PyErr_Format(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
    return PyLong_FromLong(rc); /* broken: Python raises with the message */
refused:
    if (fd >= 0) close(fd);
    return NULL;
}

/* _submit_payload(payload) -> Future, or raises BrokenProcessPool (the
 * message comes from Python's hooks) / RuntimeError after shutdown. */
static PyObject *proc_submit(ProcObject *self, PyObject *payload) { return submit_limited(self, payload, 0, -1); }

/* _submit_payload_limited(payload, timeout_ns[, fd]): as _submit_payload,
 * with a time limit of this task's own (submit_with_timeout; 0: the
 * pool's), and for a big call the descriptor of the shared memory its
 * payload refers to (gofutures._bigpayload), which this call takes over. */
static PyObject *proc_submit_limited(ProcObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 && nargs != 3) return PyErr_Format(PyExc_TypeError, "_submit_payload_limited(payload, timeout_ns[, fd])");
    int fd = -1;
    if (nargs == 3) {
        long v = PyLong_AsLong(args[2]);
        if (v == -1 && PyErr_Occurred()) return NULL;
        if (v < -1 || v > INT_MAX) return PyErr_Format(PyExc_ValueError, "not a file descriptor: %ld", v);
        fd = (int)v;
    }
    long long timeout_ns = PyLong_AsLongLong(args[1]);
    if (timeout_ns == -1 && PyErr_Occurred()) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    return submit_limited(self, args[0], timeout_ns, fd);
}

/* _kill_task(future) -> bool: if future's task is running in a worker,
 * kill that worker (the Go pool replaces it) and end the future cancelled,
 * here, under the GIL, so that the caller sees it cancelled on return. A
 * Running future cannot be cancelled by the stdlib's rules, so it is first
 * put back to PENDING: nothing else can move it meanwhile (the Go pool has
 * dropped the task, and its late delivery is ignored), and cancel() then
 * runs the done-callbacks and set_running_or_notify_cancel() tells wait()
 * and as_completed(), as for any cancelled future. */
static PyObject *proc_kill_task(ProcObject *self, PyObject *fut) {
    REFUSE_IN_CHILD();
    if (!gf_future_check(fut)) return PyErr_Format(PyExc_TypeError, "kill_task() takes a future of this executor");
    FutureObject *f = (FutureObject *)fut;
    if (self->pool == 0 || !gfProcKillTask(self->pool, f->h)) Py_RETURN_FALSE;
    gf_future_force(f, GF_STATE_PENDING, 0);
    int rc = gf_future_cancel(f);
    if (rc < 0 && rc != GF_CALLBACK_RAISED) return NULL;
    if (rc == GF_CALLBACK_RAISED) { /* acknowledged all the same; then it propagates, as out of cancel() */
        PyObject *exc = gf_fetch_exception();
        int started = gf_future_start(f);
        if (started < 0) gf_log_exception("cancelling %r failed", fut);
        gf_raise(exc);
        Py_DECREF(exc);
        return NULL;
    }
    if (gf_future_start(f) < 0) return NULL;
    Py_RETURN_TRUE;
}

/* _close(cancel_futures, signal): stop the pool (and signal its workers
 * when signal > 0); futures of removed tasks are cancelled here. A
 * KeyboardInterrupt or SystemExit from a done-callback is logged, not
 * raised: the stdlib's pool cancels them on its manager thread, so its
 * shutdown() does not raise it either. */
static PyObject *proc_close(ProcObject *self, PyObject *const *args, Py_ssize_t nargs) {
    REFUSE_IN_CHILD();
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "_close(cancel_futures, signal)");
    int cancel = PyObject_IsTrue(args[0]);
    int sig = (int)PyLong_AsLong(args[1]);
    if (cancel < 0 || PyErr_Occurred()) return NULL;
    if (self->pool == 0) Py_RETURN_NONE;
    gfProcShutdown(self->pool, cancel, sig);
    PyObject *f;
    while ((f = gfProcNextDropped(self->pool)) != NULL) {
        int rc = gf_future_cancel((FutureObject *)f);
        if (rc == GF_CALLBACK_RAISED) gf_log_propagated();
        if ((rc < 0 && rc != GF_CALLBACK_RAISED) || gf_future_start((FutureObject *)f) < 0)
            gf_log_exception("cancelling %r at shutdown failed", f);
        Py_DECREF(f);
    }
    gf_release_drain();
    Py_RETURN_NONE;
}

static int forks_done(void *pool, long long ns) { return gfProcAwaitForks((long long)(intptr_t)pool, ns); }

/* _await_forks(): returns once the workers being forked are (the GIL is
 * released meanwhile: the forks need it). */
static PyObject *proc_await_forks(ProcObject *self, PyObject *Py_UNUSED(unused)) {
    REFUSE_IN_CHILD();
    if (self->pool == 0) Py_RETURN_NONE;
    if (gf_block(forks_done, (void *)(intptr_t)self->pool, -1) < 0) return NULL;
    Py_RETURN_NONE;
}

/* _start_workers(): an eager pool's workers start now if they have not. */
static PyObject *proc_start_workers(ProcObject *self, PyObject *Py_UNUSED(unused)) {
    REFUSE_IN_CHILD();
    if (self->pool != 0) gfProcStartWorkers(self->pool);
    Py_RETURN_NONE;
}

/* _spare_memfd() -> a descriptor of shared memory that a big call may
 * write its payload into (the caller's, until passed to
 * _submit_payload_limited), or -1: see gofutures._bigpayload. */
static PyObject *proc_spare_memfd(ProcObject *self, PyObject *Py_UNUSED(unused)) {
    REFUSE_IN_CHILD();
    return PyLong_FromLong(self->pool == 0 ? -1 : gfProcSpareFd(self->pool));
}

static PyObject *proc_id(ProcObject *self, void *Py_UNUSED(c)) { return PyLong_FromLongLong(self->pool); }

static int proc_traverse(ProcObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->future_type);
    return 0;
}

static int proc_clear(ProcObject *self) {
    Py_CLEAR(self->future_type);
    return 0;
}

static void proc_dealloc(ProcObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->pool != 0 && !gf_forked) gfProcRelease(self->pool); /* the parent's pool is not ours to stop */
    proc_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef proc_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))proc_bind, METH_FASTCALL, "_bind(pool_id, future_type, hooks)"},
    {"_submit_payload", (PyCFunction)proc_submit, METH_O, "_submit_payload(pickled call) -> Future"},
    {"_submit_payload_limited", (PyCFunction)(void (*)(void))proc_submit_limited, METH_FASTCALL,
     "_submit_payload_limited(pickled call, timeout_ns[, shared memory fd]) -> Future"},
    {"_close", (PyCFunction)(void (*)(void))proc_close, METH_FASTCALL, "_close(cancel_futures, signal)"},
    {"_kill_task", (PyCFunction)proc_kill_task, METH_O, "_kill_task(future) -> whether its running task was killed"},
    {"_spare_memfd", (PyCFunction)proc_spare_memfd, METH_NOARGS, "a shared-memory descriptor to reuse, or -1"},
    {"_broken_message", (PyCFunction)proc_broken_message, METH_NOARGS, "why the pool broke, or None"},
    {"_await_forks", (PyCFunction)proc_await_forks, METH_NOARGS, "wait for the workers being forked"},
    {"_start_workers", (PyCFunction)proc_start_workers, METH_NOARGS, "start an eager pool's workers now"},
    {NULL}
};

static PyGetSetDef proc_getset[] = {
    {"_pool_id", (getter)proc_id, NULL, "id of the Go pool", NULL},
    {NULL}
};

static PyTypeObject ProcessPoolBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gofutures._core.ProcessPoolBase",
    .tp_doc = "Native half of gofutures.ProcessPoolExecutor.",
    .tp_basicsize = sizeof(ProcObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)proc_dealloc,
    .tp_traverse = (traverseproc)proc_traverse,
    .tp_clear = (inquiry)proc_clear,
    .tp_methods = proc_methods,
    .tp_getset = proc_getset,
};

int gf_procexec_init_type(PyObject *module) {
    if (PyType_Ready(&ProcessPoolBaseType) < 0) return -1;
    return PyModule_AddObjectRef(module, "ProcessPoolBase", (PyObject *)&ProcessPoolBaseType);
}
