/* worker.c: what a thread-pool worker goroutine does in C.
 *
 * Each worker goroutine is locked to its OS thread (the Go core guarantees
 * it) and keeps ONE Python thread state from attach to detach. Running Python
 * is one C call that takes the GIL with that state and gives it back, so the
 * goroutine never changes OS thread while it owns the GIL. gopy's own
 * callbacks (PyGILState_Ensure from an unlocked goroutine) crash under load;
 * this is the replacement.
 */
#include "hot.h"
#include "_cgo_export.h"
#include <stdlib.h>
#include <string.h>

/* How many queued tasks a worker may run per GIL acquisition. Python still
 * takes the GIL away on its switch interval while the tasks run bytecode;
 * the cap bounds only the time between checks of the queue's other users. */
#define GF_BATCH 256

struct gf_worker {
    PyGILState_STATE gstate; /* from the Ensure that created ts */
    PyThreadState *ts;       /* this OS thread's state; GIL released while in Go */
    PyObject *hooks;         /* strong: the pool's Python hooks object */
    long index;
    uintptr_t more;          /* handle passed back to gfWorkerMore */
};

static char *exception_text(void) {
    PyObject *exc = gf_fetch_exception();
    PyObject *s = exc ? PyObject_Repr(exc) : NULL;
    const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
    char *out = strdup(u ? u : "unknown error");
    PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(exc);
    return out;
}

gf_worker *gf_worker_attach(PyObject *hooks, long index, uintptr_t more, char **err) {
    gf_worker *w = calloc(1, sizeof *w);
    w->gstate = PyGILState_Ensure();
    w->hooks = Py_NewRef(hooks);
    w->index = index;
    w->more = more;
    *err = NULL;
    PyObject *r = PyObject_CallMethod(hooks, "start", "l", index);
    if (r == NULL) *err = exception_text();
    Py_XDECREF(r);
    w->ts = PyEval_SaveThread();
    return w;
}

static void free_job(gf_job *job) {
    Py_DECREF(job->future);
    Py_XDECREF(job->fn);
    Py_XDECREF(job->args);
    Py_XDECREF(job->kwargs);
    free(job->data);
    free(job);
}

static void deliver(gf_worker *w, gf_job *job) {
    PyObject *data = PyBytes_FromStringAndSize(job->data, job->len);
    PyObject *r = data ? PyObject_CallMethod(w->hooks, "complete", "OiO", job->future, job->kind, data) : NULL;
    if (r == NULL) gf_log_exception("could not deliver the outcome of %r", job->future);
    Py_XDECREF(r);
    Py_XDECREF(data);
    free_job(job);
}

static void run_job(gf_worker *w, gf_job *job) {
    if (job->fn == NULL) {
        deliver(w, job);
        return;
    }
    FutureObject *f = (FutureObject *)job->future;
    int rc = gf_future_start(f);
    if (rc == 1) {
        PyObject *r = PyObject_Call(job->fn, job->args, job->kwargs);
        if (r != NULL) {
            rc = gf_future_complete(f, r, NULL);
            Py_DECREF(r);
        } else {
            PyObject *exc = gf_fetch_exception();
            rc = gf_future_complete(f, NULL, exc);
            Py_XDECREF(exc);
        }
    }
    if (rc < 0) gf_log_exception("a worker could not complete %r", job->future);
    free_job(job);
}

void gf_worker_run(gf_worker *w, gf_job *job) {
    PyEval_RestoreThread(w->ts);
    run_job(w, job);
    for (int n = 1; n < GF_BATCH; n++) {
        gf_job *next = gfWorkerMore(w->more);
        if (next == NULL) break;
        run_job(w, next);
    }
    w->ts = PyEval_SaveThread();
}

void gf_worker_init(gf_worker *w, char **err) {
    PyEval_RestoreThread(w->ts);
    *err = NULL;
    PyObject *r = PyObject_CallMethod(w->hooks, "init", "l", w->index);
    if (r == NULL) *err = exception_text();
    Py_XDECREF(r);
    w->ts = PyEval_SaveThread();
}

void gf_worker_broken(gf_worker *w, gf_job **jobs, long n, const char *message) {
    PyEval_RestoreThread(w->ts);
    for (long i = 0; i < n; i++) {
        FutureObject *f = (FutureObject *)jobs[i]->future;
        PyObject *exc = PyObject_CallFunction(gf_stdlib.BrokenThreadPool, "s", message);
        if (exc == NULL || gf_future_complete(f, NULL, exc) < 0) PyErr_Clear(); /* cancelled meanwhile */
        Py_XDECREF(exc);
        free_job(jobs[i]);
    }
    w->ts = PyEval_SaveThread();
}

void gf_worker_detach(gf_worker *w, PyObject *also_release) {
    PyEval_RestoreThread(w->ts);
    Py_XDECREF(also_release);
    PyObject *r = PyObject_CallMethod(w->hooks, "stop", "l", w->index);
    if (r == NULL) gf_log_exception("worker %r failed to stop cleanly", w->hooks);
    Py_XDECREF(r);
    Py_DECREF(w->hooks);
    PyGILState_Release(w->gstate); /* destroys ts and releases the GIL */
    free(w);
}

void gf_job_free(gf_job *job) { free_job(job); }
