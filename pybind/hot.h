/* hot.h: what the C files of the hot path share with each other (not with
 * Go; Go sees gf.h). Every function here must be called with the GIL held. */
#ifndef GOFUTURES_HOT_H
#define GOFUTURES_HOT_H
#include "gf.h"

/* The native state of a Future. The state machine itself lives in Go
 * (gofutures.Future, reached through the handle h); this struct keeps
 * what only Python can hold. Fields are protected by the GIL. */
typedef struct {
    PyObject_HEAD
    uintptr_t h;          /* handle of the Go future (core.Handles); freed in dealloc; 0: detached (future.c) */
    int dstate;           /* a detached future's state (ST_PENDING ...) */
    /* A final state (FINISHED, CANCELLED_AND_NOTIFIED) once seen or made
     * here, else 0: later reads need no call into Go (one per result() was
     * a tenth of a small task's cost). Only gf_future_force moves it out of
     * a final state, and it clears this. */
    int final;
    int forced;           /* its state was assigned by hand (gf_future_force) at least once */
    PyObject *result;     /* set before the Go state becomes FINISHED */
    PyObject *exception;  /* likewise; NULL means "finished with a result" */
    PyObject *callbacks;  /* list of done-callbacks, or NULL if none yet */
    PyObject *condition;  /* threading.Condition, made only if someone reads _condition */
    int custom_condition; /* condition was assigned from outside: waits use it (future.c) */
    PyObject *waiters;    /* the stdlib's _waiters list, made only if read */
    /* A process call's outcome that Go parked here instead of completing the
     * future with the GIL (gf_future_park): written by Go before the Go
     * state becomes FINISHED, so it may be read once that state is seen
     * (after a gfFuture* call), and from then on protected by the GIL.
     * materialize() builds it (outcome.c) into result/exception and frees
     * it; dealloc frees it if nobody ever asked. */
    char *raw;
    Py_ssize_t raw_len;
    int raw_kind;               /* GF_DELIVER_* or GF_FRAME_* */
    int raw_shared;             /* raw is a big answer laid out by gofutures._bigpayload */
    PyObject *raw_region;       /* strong: the SharedRegion a first build made of a shared raw, which owns it */
    int loading;                /* a thread is unpickling raw (the GIL may be released meanwhile) */
    unsigned long loading_tid;  /* that thread */
} FutureObject;

/* Objects imported from the stdlib at module init (strong, immortal for the
 * module's lifetime). */
typedef struct {
    PyObject *CancelledError, *TimeoutError, *InvalidStateError, *BrokenThreadPool;
    PyObject *logger;           /* logging.getLogger("concurrent.futures") */
    PyObject *state_names[5];   /* _base.PENDING ... _base.FINISHED */
    PyObject *condition_type;   /* threading.Condition */
    PyObject *DeadlockError;    /* gofutures._deadlock.DeadlockError */
    PyObject *future_type;      /* concurrent.futures.Future */
} gf_stdlib_t;
extern gf_stdlib_t gf_stdlib;

extern PyTypeObject *gf_FutureBase;      /* future.c */
extern PyTypeObject *gf_ThreadPoolBase;  /* executor.c */
extern PyTypeObject *gf_Completions;     /* completions.c */
extern PyTypeObject *gf_Bridge;          /* completions.c */

int gf_future_init_type(PyObject *module);
int gf_executor_init_type(PyObject *module);
int gf_completions_init_type(PyObject *module);
int gf_procexec_init_type(PyObject *module);
/* subinterp.c: the worker-owned subinterpreter functions (3.12+; none before). */
int gf_subinterp_init(PyObject *module);

/* future.c: the transitions an executor drives, shared with worker.c. */
int gf_future_check(PyObject *o);                 /* is a FutureBase instance */
int gf_future_start(FutureObject *f);             /* 1 running, 0 cancelled, -1 error */
int gf_future_complete(FutureObject *f, PyObject *result, PyObject *exc); /* 0, -1 or GF_CALLBACK_RAISED */
int gf_future_cancel(FutureObject *f);            /* 1 cancelled, 0 not, -1 error, or GF_CALLBACK_RAISED */
/* What complete and cancel return when the transition happened but a
 * done-callback raised an exception that is no Exception (KeyboardInterrupt,
 * SystemExit): as the stdlib's _invoke_callbacks, it propagates (it is set)
 * and the callbacks after it did not run. Any other negative return means
 * the transition did not happen. */
#define GF_CALLBACK_RAISED (-2)
int gf_future_done(FutureObject *f);              /* cancelled or finished */
/* The first half of gf_future_complete, for a worker that finishes f in Go
 * itself before anything else can run Python (gfWorkerMore): stores the
 * outcome and returns 1 when nothing in Python is to be told (no
 * _condition, _waiters or done-callbacks) and f, which the worker started,
 * was neither finished nor assigned a state by hand meanwhile (so Go will
 * accept the finish); else 0, and the caller completes f with
 * gf_future_complete. */
int gf_future_publish(FutureObject *f, PyObject *result, PyObject *exc);
/* Puts f (not detached) in state whatever its state was (code assigning
 * _state, kill_task's way back): the only way out of a final state. */
void gf_future_force(FutureObject *f, int state, int failed);
/* future.c: the module function result_or_cancel (METH_FASTCALL). */
PyObject *gf_result_or_cancel(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* future.c: a new Future of the given FutureBase subtype (new reference). */
PyObject *gf_future_new(PyTypeObject *type);
/* outcome.c: the Python object a process call's outcome (kind, data) stands
 * for (new reference); *is_error says whether it is the exception. NULL with
 * an exception set if it could not be built: only KeyboardInterrupt while
 * unpickling, or the builder's own failure (a value that cannot be
 * unpickled is an outcome: BrokenProcessPool). A shared outcome (an answer
 * in shared memory) is first made into a SharedRegion kept in *region
 * (NULL at first), which owns the memory from then on, whatever happens:
 * free the raw outcome with gf_raw_free(data, len, shared, *region). */
PyObject *gf_outcome_build(int kind, char *data, Py_ssize_t len, int shared, PyObject **region, int *is_error);
/* outcome.c: the module function set_outcome_builder(build, load_shared). */
PyObject *gf_set_outcome_builder(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
/* outcome.c: frees a delivery's raw outcome (with the GIL if region is set):
 * the region made from it, else its answer memory (shared) or its malloc'd
 * bytes. */
void gf_raw_free(char *data, Py_ssize_t len, int shared, PyObject *region);
/* region.c: readies the SharedRegion type (module init), and makes one
 * that takes over the answer memory (data, len); if that fails, NULL with
 * an exception set and the memory still the caller's. */
int gf_region_init_type(void);
PyObject *gf_region_new(char *data, Py_ssize_t len);
/* answer.c: registers its fork handlers (module init). */
int gf_answer_init(void);
/* worker.c: pickle.loads (strong, for the module's lifetime). */
extern PyObject *gf_pickle_loads;
/* worker.c: releases a job's references and frees it. */
void gf_job_free(gf_job *job);
/* worker.c: makes the no-op Python function workers call to honour GIL
 * drop requests (module init; 0 or -1 with an exception set). */
int gf_worker_init_checkpoint(void);

/* worker.c: the running thread's worker slot (a cgo.Handle of its
 * core.Slot), or 0 on a thread that is no gofutures worker. */
extern _Thread_local uintptr_t gf_worker_slot;

/* deadlock.c: registers the worker at slot as waiting for the n futures
 * handles hs (all of them, or any when all is 0); 0 when the wait may go
 * ahead (the caller then calls gfWaitUnblock(slot) after it), or -1 with
 * gofutures.DeadlockError set when it could never end. */
int gf_wait_register(uintptr_t slot, uintptr_t *hs, long n, int all, int timed);

/* executor.c: set once the interpreter began to exit (atexit): no new work. */
extern int gf_interpreter_exiting;

/* fork.c: set in every forked child of this process; no call into Go may
 * be made there (see fork.c). */
extern volatile int gf_forked;
int gf_fork_init(PyObject *module);
/* -1 with RuntimeError set (what: the object, "this future", ...) in a
 * forked child, 0 otherwise: for objects inherited from the parent. */
int gf_refuse_in_child(const char *what);

/* util.c */
typedef int (*gf_wait_fn)(void *arg, long long ns);
/* Blocks on fn in slices with the GIL released, checking for signals between
 * slices: 1 when fn says done, 0 on timeout, -1 with an exception set. A
 * negative timeout means none. */
int gf_block(gf_wait_fn fn, void *arg, double timeout);
/* Parses a timeout argument (None or a real number) into seconds, -1 for
 * None. Returns -1 on error with an exception set, 0 otherwise. */
int gf_parse_timeout(PyObject *o, double *out);
/* Fetches the current exception as one normalized object (new reference). */
PyObject *gf_fetch_exception(void);
/* Raises exc (with its own traceback kept). */
void gf_raise(PyObject *exc);
/* Logs the current exception with LOGGER.exception(msg, obj) and clears it. */
void gf_log_exception(const char *msg, PyObject *obj);
/* As gf_log_exception, at the logger's method level ("critical", ...);
 * obj NULL logs msg alone. */
void gf_log_at(const char *level, const char *msg, PyObject *obj);
/* Logs the exception a done-callback propagated (GF_CALLBACK_RAISED) on a
 * thread where nobody called set_result() to receive it: a pool's worker
 * or results worker, or a process pool's shutdown (which the stdlib does on
 * its manager thread). The stdlib's thread-pool worker logs it so, then
 * ends; gofutures' goes on (the future keeps its outcome, the pool its
 * size: the stdlib never replaces a worker that ended so). */
void gf_log_propagated(void);
#endif
