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

/* Why a worker keeps the GIL for as long as tasks are queued, and never
 * gives it back just to take it again: CPython hands the GIL over by a drop
 * request, which a waiting thread makes only after waiting one whole switch
 * interval (5 ms) without the GIL being released. A worker that released
 * and retook it between batches restarted that wait every time, and starved
 * every other thread (seconds, measured) whenever its queue stayed full, for
 * instance a task that submits the next one. So the worker releases the GIL
 * only when its queue is empty, and otherwise lets the drop request do the
 * handover, as any Python thread does: a task running Python code honours
 * it on its own; tasks that are C callables (a builtin, a bound C method)
 * never reach the eval loop, so every GF_CHECKPOINT_EVERY tasks the worker
 * calls a no-op Python function, whose entry honours a pending request. */
#define GF_CHECKPOINT_EVERY 16

/* How long an interpreter-pool worker runs tasks in C before it yields to
 * Go's scheduler (gfWorkerYield; why: pybind/scheduler.go): under the 10 ms
 * after which sysmon takes its P, with a clock tick to spare. It reads the
 * coarse clock (some ns, where a precise one costs 30: a call every task)
 * if that ticks at least this often, so a yield comes 4-8 ms apart. After a
 * task of 12 ms or more it does not yield: sysmon has taken the P already,
 * and yielding then made such tasks 5-18% slower (measured, 21 ms tasks). */
#define GF_YIELD_AFTER_NS 4000000LL
static clockid_t yield_clock = CLOCK_MONOTONIC;

static long long yield_clock_ns(void) {
    struct timespec t;
    clock_gettime(yield_clock, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static PyObject *checkpoint; /* strong, for the module's lifetime: lambda: None */
PyObject *gf_pickle_loads; /* strong, for the module's lifetime */

int gf_worker_init_checkpoint(void) {
    struct timespec res;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0 && res.tv_nsec <= GF_YIELD_AFTER_NS)
        yield_clock = CLOCK_MONOTONIC_COARSE;
    PyObject *pickle = PyImport_ImportModule("pickle");
    if (pickle == NULL) return -1;
    gf_pickle_loads = PyObject_GetAttrString(pickle, "loads");
    Py_DECREF(pickle);
    if (gf_pickle_loads == NULL) return -1;
    PyObject *globals = PyDict_New();
    if (globals == NULL) return -1;
    if (PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0) {
        Py_DECREF(globals);
        return -1;
    }
    checkpoint = PyRun_String("lambda: None", Py_eval_input, globals, globals);
    Py_DECREF(globals);
    return checkpoint == NULL ? -1 : 0;
}

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

_Thread_local uintptr_t gf_worker_slot;

gf_worker *gf_worker_attach(PyObject *hooks, long index, uintptr_t more, uintptr_t slot, char **err) {
    gf_worker *w = calloc(1, sizeof *w);
    gf_worker_slot = slot;
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
    Py_XDECREF(job->future);
    Py_XDECREF(job->fn);
    Py_XDECREF(job->args);
    Py_XDECREF(job->kwargs);
    gf_raw_free(job->data, job->len, job->shared, NULL);
    free(job);
}

/* Completes a delivery's future with the outcome it carries (outcome.c
 * builds it), telling its waiters and running its callbacks; or, for a
 * cancel while queued, acknowledges it (which tells the stdlib's waiters).
 * A future done meanwhile (cancelled, killed by kill_task, set by hand)
 * keeps what it has. */
static void deliver(gf_job *job) {
    FutureObject *f = (FutureObject *)job->future;
    int rc = 0;
    if (job->kind == GF_DELIVER_CANCELLED) {
        rc = gf_future_start(f);
    } else if (!gf_future_done(f)) {
        int is_error;
        PyObject *region = NULL;
        PyObject *value = gf_outcome_build(job->kind, job->data, job->len, job->shared, &region, &is_error);
        if (region != NULL) job->data = NULL; /* the region's now */
        Py_XDECREF(region);
        if (value == NULL) {
            /* Nothing interrupts this thread, so only a failure of the
             * build itself (a MemoryError making the region): it is this
             * call's outcome, or its future would never end. */
            value = gf_fetch_exception();
            is_error = 1;
        }
        rc = value == NULL ? -1 : gf_future_complete(f, is_error ? NULL : value, is_error ? value : NULL);
        Py_XDECREF(value);
    }
    if (rc == GF_CALLBACK_RAISED) gf_log_propagated();
    else if (rc < 0) gf_log_exception("could not deliver the outcome of %r", job->future);
    free_job(job);
}

/* Runs job. started: the worker's Go side has moved the future to RUNNING
 * already (threadpool.go's start); else this starts it, or acknowledges
 * its cancellation. Returns 1 when the call's outcome is published but its
 * future is still to be finished in Go (*finish: its handle, *failed): the
 * caller passes both to gfWorkerMore before anything else can run Python,
 * then frees the job; else 0, the job done and freed. */
static int run_job(gf_job *job, int started, uintptr_t *finish, int *failed) {
    if (job->what == GF_JOB_DRAIN) { /* see processPool.drain */
        gf_release_drain();
        free_job(job);
        return 0;
    }
    if (job->what == GF_JOB_DELIVER) {
        deliver(job);
        return 0;
    }
    FutureObject *f = (FutureObject *)job->future;
    int rc = started ? 1 : gf_future_start(f);
    if (rc == 1) {
        PyObject *r = PyObject_Call(job->fn, job->args, job->kwargs);
        PyObject *exc = r == NULL ? gf_fetch_exception() : NULL;
        if (gf_future_publish(f, r, exc)) {
            *finish = f->h;
            *failed = exc != NULL;
            rc = 0;
        } else {
            rc = gf_future_complete(f, r, exc);
        }
        Py_XDECREF(r);
        Py_XDECREF(exc);
        if (*finish != 0) return 1;
    }
    if (rc == GF_CALLBACK_RAISED) gf_log_propagated();
    else if (rc < 0) gf_log_exception("a worker could not complete %r", job->future);
    free_job(job);
    return 0;
}

/* yields: a worker of an interpreter pool, which lets Go's scheduler run it
 * again every few ms (gfWorkerYield; pybind/scheduler.go). */
void gf_worker_run(gf_worker *w, gf_job *job, int yields) {
    PyEval_RestoreThread(w->ts);
    int started = 0; /* the first job's future is started here, with the GIL */
    long long yielded = yields ? yield_clock_ns() : 0;
    for (unsigned long n = 1; job != NULL; n++) {
        uintptr_t finish = 0;
        int failed = 0, finished = 1;
        int pending = run_job(job, started, &finish, &failed);
        int checkpoint_now = n % GF_CHECKPOINT_EVERY == 0; /* gives the GIL up: start after it */
        /* Finishing the future in Go and taking the next job: one call. */
        gf_job *next = gfWorkerMore(w->more, finish, failed, !checkpoint_now, &finished, &started);
        if (pending) {
            if (!finished) { /* cannot happen: gf_future_publish refuses what Go would */
                ((FutureObject *)job->future)->final = 0;
                PyErr_SetString(gf_stdlib.InvalidStateError, "the future was moved out of RUNNING by other code");
                gf_log_exception("a worker could not complete %r", job->future);
            }
            free_job(job);
        }
        if (checkpoint_now) {
            PyObject *r = PyObject_CallNoArgs(checkpoint);
            if (r == NULL) PyErr_Clear(); /* cannot fail; nothing to report */
            Py_XDECREF(r);
        }
        if (yields && next != NULL) {
            long long now = yield_clock_ns();
            if (now - yielded >= 3 * GF_YIELD_AFTER_NS) {
                yielded = now; /* too late: see GF_YIELD_AFTER_NS */
            } else if (now - yielded >= GF_YIELD_AFTER_NS) {
                /* The GIL stays held: a next job started in Go must run
                 * before anything else can (gfWorkerMore), and the
                 * hand-over takes some µs once every few ms. */
                gfWorkerYield();
                yielded = now;
            }
        }
        job = next;
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
    /* The hooks may name the pool's own class (the stdlib's BROKEN: an
     * InterpreterPoolExecutor breaks with BrokenInterpreterPool). */
    PyObject *broken = PyObject_GetAttrString(w->hooks, "broken_type");
    if (broken == NULL) {
        PyErr_Clear();
        broken = Py_NewRef(gf_stdlib.BrokenThreadPool);
    }
    for (long i = 0; i < n; i++) {
        FutureObject *f = (FutureObject *)jobs[i]->future;
        if (jobs[i]->what == GF_JOB_DRAIN) {
            gf_release_drain();
            free_job(jobs[i]);
            continue;
        }
        PyObject *exc = PyObject_CallFunction(broken, "s", message);
        int rc = exc == NULL ? -1 : gf_future_complete(f, NULL, exc);
        if (rc == GF_CALLBACK_RAISED) gf_log_propagated();
        else if (rc < 0) PyErr_Clear(); /* cancelled meanwhile */
        Py_XDECREF(exc);
        free_job(jobs[i]);
    }
    Py_DECREF(broken);
    w->ts = PyEval_SaveThread();
}

void gf_worker_detach(gf_worker *w, PyObject *also_release, int retired) {
    PyEval_RestoreThread(w->ts);
    Py_XDECREF(also_release);
    PyObject *r = PyObject_CallMethod(w->hooks, "stop", "lO", w->index, retired ? Py_True : Py_False);
    if (r == NULL) gf_log_exception("worker %r failed to stop cleanly", w->hooks);
    Py_XDECREF(r);
    Py_DECREF(w->hooks);
    PyGILState_Release(w->gstate); /* destroys ts and releases the GIL */
    gf_worker_slot = 0;
    free(w);
}

void gf_job_free(gf_job *job) { free_job(job); }
