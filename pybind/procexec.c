/* procexec.c: ProcessPoolBase, the native half of
 * gofutures.ProcessPoolExecutor. Python pickles the call; this half makes
 * the Future and hands the pickle to the Go supervisor without releasing the
 * GIL. Outcomes come back as deliveries run by the pool's results worker
 * (see worker.c), which calls hooks.complete(future, kind, data), or, for
 * a result or exception nobody observes, parked in the future for the
 * reader to unpickle (future.c).
 *
 * Lifetime: the object names its Go pool by id; dealloc shuts the pool down
 * without cancelling (queued tasks still run and complete their futures). */
#include "hot.h"
#include "_cgo_export.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    long long pool;            /* Go pool id, 0 until _start */
    PyTypeObject *future_type; /* strong */
} ProcObject;

/* _start(workers, argv, init, max_tasks, future_type, hooks, fds, lazy,
 *        survive, task_timeout_ns, max_memory_bytes, fork).
 * fds: descriptors every worker gets as its fds 5, 6, ...; the Go pool owns
 * them from this call on, also when it fails. The last three are the
 * opt-in extras, 0 when off (validated by Python). fork: workers are forked
 * from this process (fork.c), which calls hooks.forked_worker in each. */
static PyObject *proc_start(ProcObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 12) return PyErr_Format(PyExc_TypeError, "_start takes 12 arguments");
    if (gf_refuse_in_child("the Go core") < 0) return NULL;
    int workers = (int)PyLong_AsLong(args[0]);
    int max_tasks = (int)PyLong_AsLong(args[3]);
    int lazy = PyObject_IsTrue(args[7]);
    int survive = PyObject_IsTrue(args[8]);
    long long timeout_ns = PyLong_AsLongLong(args[9]);
    long long max_memory = PyLong_AsLongLong(args[10]);
    int fork = PyObject_IsTrue(args[11]);
    if (PyErr_Occurred()) return NULL;
    if (!PyList_Check(args[1]) || !PyBytes_Check(args[2]) || !PyList_Check(args[6]))
        return PyErr_Format(PyExc_TypeError, "_start: argv and fds must be lists, init bytes");
    if (!PyType_Check(args[4]) || !PyType_IsSubtype((PyTypeObject *)args[4], gf_FutureBase))
        return PyErr_Format(PyExc_TypeError, "future_type must be a subclass of FutureBase");
    if (self->pool != 0) return PyErr_Format(PyExc_RuntimeError, "executor already started");
    Py_ssize_t argc = PyList_GET_SIZE(args[1]), nfds = PyList_GET_SIZE(args[6]);
    char **argv = calloc(argc + 1, sizeof(char *));
    int *fds = calloc(nfds + 1, sizeof(int));
    for (Py_ssize_t i = 0; i < argc; i++) {
        const char *a = PyUnicode_AsUTF8(PyList_GET_ITEM(args[1], i));
        argv[i] = (char *)a; /* borrowed from the list, alive during the call */
    }
    for (Py_ssize_t i = 0; i < nfds; i++) fds[i] = (int)PyLong_AsLong(PyList_GET_ITEM(args[6], i));
    if (PyErr_Occurred()) {
        free(argv);
        free(fds);
        return NULL;
    }
    char *err = NULL;
    long long id = gfProcStart(workers, argv, (int)argc, PyBytes_AS_STRING(args[2]),
                               (int)PyBytes_GET_SIZE(args[2]), max_tasks, fds, (int)nfds, lazy, survive,
                               timeout_ns, max_memory, fork, args[5], &err);
    free(argv);
    free(fds);
    if (id == 0) {
        PyErr_Format(PyExc_OSError, "cannot start the process pool: %s", err ? err : "unknown error");
        free(err);
        return NULL;
    }
    Py_INCREF(args[5]); /* now owned by the pool's results worker */
    self->pool = id;
    Py_XSETREF(self->future_type, (PyTypeObject *)Py_NewRef(args[4]));
    Py_RETURN_NONE;
}

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
 * (0: the pool's). */
static PyObject *submit_limited(ProcObject *self, PyObject *payload, long long timeout_ns) {
    REFUSE_IN_CHILD();
    if (self->pool == 0) return PyErr_Format(PyExc_RuntimeError, "ProcessPoolExecutor.__init__ was not called");
    if (!PyBytes_Check(payload)) return PyErr_Format(PyExc_TypeError, "payload must be bytes");
    gf_release_drain(); /* a submitter that never reads results must not pile references up */
    PyObject *fut = gf_future_new(self->future_type);
    if (fut == NULL) return NULL;
    Py_INCREF(fut); /* the Go pool's reference, returned by a delivery */
    int rc = gfProcSubmit(self->pool, ((FutureObject *)fut)->h, fut,
                          PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), timeout_ns);
    if (rc == GF_SUBMIT_OK) return fut;
    Py_DECREF(fut);
    Py_DECREF(fut);
    if (rc == GF_SUBMIT_SHUTDOWN) return PyErr_Format(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
    return PyLong_FromLong(rc); /* broken: Python raises with the message */
}

/* _submit_payload(payload) -> Future, or raises BrokenProcessPool (the
 * message comes from Python's hooks) / RuntimeError after shutdown. */
static PyObject *proc_submit(ProcObject *self, PyObject *payload) { return submit_limited(self, payload, 0); }

/* _submit_payload_limited(payload, timeout_ns): as _submit_payload, with a
 * time limit of this task's own (submit_with_timeout). */
static PyObject *proc_submit_limited(ProcObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "_submit_payload_limited(payload, timeout_ns)");
    long long timeout_ns = PyLong_AsLongLong(args[1]);
    if (timeout_ns == -1 && PyErr_Occurred()) return NULL;
    return submit_limited(self, args[0], timeout_ns);
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
    gfFutureForce(f->h, 0 /* PENDING */, 0);
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
    {"_start", (PyCFunction)(void (*)(void))proc_start, METH_FASTCALL,
     "_start(workers, argv, init, max_tasks, future_type, hooks, fds, lazy, survive, task_timeout_ns, max_memory)"},
    {"_submit_payload", (PyCFunction)proc_submit, METH_O, "_submit_payload(pickled call) -> Future"},
    {"_submit_payload_limited", (PyCFunction)(void (*)(void))proc_submit_limited, METH_FASTCALL,
     "_submit_payload_limited(pickled call, timeout_ns) -> Future"},
    {"_close", (PyCFunction)(void (*)(void))proc_close, METH_FASTCALL, "_close(cancel_futures, signal)"},
    {"_kill_task", (PyCFunction)proc_kill_task, METH_O, "_kill_task(future) -> whether its running task was killed"},
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
