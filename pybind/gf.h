/* gf.h: declarations shared by the hand-written CPython C-API half of the
 * binding layer (the hot path). The Go half of the binding (package pybind)
 * includes this from its cgo preambles; the C files include it first.
 *
 * Ownership rule for everything declared here: a PyObject* handed to Go is a
 * strong reference that Go owns until it hands it back to C, which releases
 * it with the GIL held. Go never dereferences a PyObject*.
 */
#ifndef GOFUTURES_GF_H
#define GOFUTURES_GF_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "gf_constants.h" /* generated from the Go core: kinds, states, modes, codes */

/* What a job asks of the worker that runs it. */
enum gf_job_what {
    GF_JOB_CALL = 0, /* a thread-pool task: run fn(*args, **kwargs) for future */
    GF_JOB_DELIVER,  /* a process-pool outcome (kind, data) for future: see outcome.c */
    GF_JOB_DRAIN,    /* release what parked futures left (gf_release_drain); no future */
};

/* One job for a thread-pool worker. Allocated zeroed (a call by submit with
 * the GIL held; a delivery or drain by Go, without it, so data is plain C
 * memory), owned by the Go pool while queued, freed by whoever runs or drops
 * it (GIL held). */
typedef struct gf_job {
    enum gf_job_what what;
    PyObject *future;  /* FutureObject*, strong; NULL for a drain */
    PyObject *fn;      /* call: strong */
    PyObject *args;    /* call: tuple, strong */
    PyObject *kwargs;  /* call: dict or NULL, strong */
    int kind;          /* delivery: a GF_DELIVER_* or GF_FRAME_* kind */
    char *data;        /* delivery: payload (malloc'd), or NULL */
    Py_ssize_t len;
    int shared;        /* delivery: data is a big answer laid out by gofutures._bigpayload */
} gf_job;

/* How a process call's outcome comes back (outcome.c builds it; pybind's
 * processPool.deliver sends it): GF_FRAME_RESULT and GF_FRAME_ERROR, the
 * worker's answer (a pickled return value or exception), or one of the
 * GF_DELIVER_* kinds the supervisor makes (gofutures/constants.go). */

/* future.c, called by Go WITHOUT the GIL, with the Go future's lock held,
 * just before Go finishes the future (core.Future.FinishUnobserved): parks
 * the outcome (kind, raw) (raw malloc'd; shared: a big answer read from shared
 * memory; ownership passes to the future, which frees it) in the future for the first reader to build, and takes
 * over Go's strong reference to the future (gf_release_later). Touches no
 * Python state. Returns gf_release_later's count. */
long gf_future_park(PyObject *future, char *raw, Py_ssize_t len, int kind, int shared);
/* answer.c, called by Go without the GIL: memory for a big answer of n
 * bytes (given back with gf_answer_free(p, n) by whoever ends up owning
 * it), or NULL when there is none: unlike cgo's C.malloc, which kills the
 * process then. gf_answer_pool(+1) when a process pool is made, (-1) once
 * when it is done: freed blocks are kept for reuse only while some pool is
 * at work. Any thread, GIL or not. */
void *gf_answer_alloc(size_t n);
void gf_answer_free(void *p, size_t n);
void gf_answer_pool(int delta);
/* release.c: hands over a strong reference that Go (without the GIL) must
 * drop; the next gf_release_drain drops it. Returns how many were handed
 * over since the last drain (0 if it could not be queued: it then leaks). */
long gf_release_later(PyObject *o);
/* release.c: drops (GIL held) the references handed over so far. */
void gf_release_drain(void);

/* A worker goroutine's persistent Python thread state (see worker.c). */
typedef struct gf_worker gf_worker;

/* worker.c: called by Go on a worker goroutine locked to its OS thread. */
/* slot_handle: the worker's core.Slot (cgo.Handle), which blocking waits on
 * this thread register (gf_worker_slot). */
gf_worker *gf_worker_attach(PyObject *hooks, long index, uintptr_t more_handle, uintptr_t slot_handle, char **err);
/* Runs hooks.init(index) (the initializer); *err as for attach. */
void gf_worker_init(gf_worker *w, char **err);
void gf_worker_run(gf_worker *w, gf_job *job, int yields);
void gf_worker_broken(gf_worker *w, gf_job **jobs, long n, const char *message);
/* also_release: a reference to drop with the GIL held, or NULL. */
void gf_worker_detach(gf_worker *w, PyObject *also_release, int retired);

/* fork.c, called by Go without the GIL (it takes it): forks this process
 * into process-pool worker number; the child closes close_fds (except its
 * task_fd and result_fd), runs hooks.forked_worker(number, task_fd,
 * result_fd) and exits with what it returns. The child's pid, or -1 with
 * *err set (malloc'd). */
long gf_fork_worker(PyObject *hooks, long number, int task_fd, int result_fd, const int *close_fds, long nclose,
                    char **err);

/* Reference counting from Go, for objects Go owns; the GIL must be held. */
void gf_decref(PyObject *o);

/* GF_WAIT_SLICE_NS (gf_constants.h): how soon a blocking wait notices
 * Ctrl-C. Python 3.12 moved the time budget of a wait slice out of the
 * public API; one constant keeps every wait in step. */

#endif
