/* completions.c: Completions and Bridge, what wait() and as_completed()
 * block on.
 *
 * A Completions wraps a Go gofutures.Completions (by cgo.Handle). gofutures
 * futures report to it directly from Go (watch); any other
 * concurrent.futures.Future reports through a Bridge, an object with the
 * stdlib waiter protocol (add_result / add_exception / add_cancelled) that
 * the Python side appends to that future's _waiters. Waiting happens in Go
 * with the GIL released, in slices so Ctrl-C is noticed.
 *
 * Lifetime: a Completions is used by one wait() or one as_completed() and
 * unwatches every future before it is dropped (the Python side does so in a
 * finally block); dealloc frees the Go handle.
 */
#include "hot.h"
#include "_cgo_export.h"

PyTypeObject *gf_Completions;
PyTypeObject *gf_Bridge;

/* For deadlock detection, a Completions also keeps the handles of the
 * gofutures futures it follows that next() has not returned yet (swap-
 * removal: pending[pos[tag]] is tag's handle, ptag[i] the tag of
 * pending[i]), and whether it follows any other kind of future, which the
 * core cannot see through. */
typedef struct {
    PyObject_HEAD
    uintptr_t h;
    uintptr_t *pending;
    long *ptag, *pos;
    long n, cap, ntags;
    int foreign;
} CompletionsObject;

/* Waits that follow more futures than this are not checked for deadlocks
 * (registering them would cost more than it can save). */
#define GF_DEADLOCK_CHECK_MAX 1024

typedef struct {
    PyObject_HEAD
    PyObject *completions; /* strong */
    long tag;
} BridgeObject;

static PyObject *comp_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw)) {
    if (gf_refuse_in_child("the Go core") < 0) return NULL; /* gofutures._fork serves waits there */
    CompletionsObject *c = (CompletionsObject *)type->tp_alloc(type, 0);
    if (c != NULL) c->h = gfCompNew();
    return (PyObject *)c;
}

static void comp_dealloc(CompletionsObject *c) {
    if (c->h != 0 && !gf_forked) gfCompFree(c->h);
    PyMem_Free(c->pending);
    PyMem_Free(c->ptag);
    PyMem_Free(c->pos);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static int grow(void **a, size_t elem, long cap) {
    void *p = PyMem_Realloc(*a, elem * (size_t)cap);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    *a = p;
    return 0;
}

/* track records h as pending under tag (tags are small and distinct). */
static int track(CompletionsObject *c, uintptr_t h, long tag) {
    if (tag < 0) { PyErr_SetString(PyExc_ValueError, "negative tag"); return -1; }
    if (c->n == c->cap) {
        long cap = c->cap ? 2 * c->cap : 16;
        if (grow((void **)&c->pending, sizeof *c->pending, cap) < 0 ||
            grow((void **)&c->ptag, sizeof *c->ptag, cap) < 0) return -1;
        c->cap = cap;
    }
    if (tag >= c->ntags) {
        long ntags = tag + 1 > 2 * c->ntags ? tag + 1 : 2 * c->ntags;
        if (grow((void **)&c->pos, sizeof *c->pos, ntags) < 0) return -1;
        for (long i = c->ntags; i < ntags; i++) c->pos[i] = -1;
        c->ntags = ntags;
    }
    c->pos[tag] = c->n;
    c->pending[c->n] = h;
    c->ptag[c->n] = tag;
    c->n++;
    return 0;
}

/* untrack forgets tag once next() has returned it. */
static void untrack(CompletionsObject *c, long tag) {
    if (tag < 0 || tag >= c->ntags || c->pos[tag] < 0) return;
    long i = c->pos[tag], last = c->n - 1;
    c->pending[i] = c->pending[last];
    c->ptag[i] = c->ptag[last];
    c->pos[c->ptag[i]] = i;
    c->pos[tag] = -1;
    c->n--;
}

/* register_wait: on a worker thread, registers a wait for all (ALL_COMPLETED)
 * or any of the pending futures, when the core can judge it: an any-wait
 * that also follows foreign futures, or follows too many, is not checked
 * (an all-wait can be checked on a part). Returns 1 registered, 0 not,
 * -1 with DeadlockError set. */
static int register_wait(CompletionsObject *c, int all, double timeout) {
    uintptr_t slot = gf_worker_slot;
    if (slot == 0 || c->n == 0) return 0;
    long n = c->n;
    if (n > GF_DEADLOCK_CHECK_MAX) {
        if (!all) return 0;
        n = GF_DEADLOCK_CHECK_MAX;
    }
    if (!all && c->foreign) return 0;
    return gf_wait_register(slot, c->pending, n, all, timeout >= 0) < 0 ? -1 : 1;
}

/* watch(future, tag) -> bool: follow a gofutures future (True), or return
 * False for any other object so the caller bridges it. */
static PyObject *comp_watch(CompletionsObject *c, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "watch(future, tag)");
    if (!gf_future_check(args[0])) Py_RETURN_FALSE;
    long tag = PyLong_AsLong(args[1]);
    if (tag == -1 && PyErr_Occurred()) return NULL;
    if (track(c, ((FutureObject *)args[0])->h, tag) < 0) return NULL;
    gfCompWatch(c->h, ((FutureObject *)args[0])->h, tag);
    Py_RETURN_TRUE;
}

static PyObject *comp_unwatch(CompletionsObject *c, PyObject *fut) {
    if (gf_future_check(fut)) gfCompUnwatch(c->h, ((FutureObject *)fut)->h);
    Py_RETURN_NONE;
}

static PyObject *comp_push(CompletionsObject *c, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "push(tag, failed)");
    long tag = PyLong_AsLong(args[0]);
    if (tag == -1 && PyErr_Occurred()) return NULL;
    int failed = PyObject_IsTrue(args[1]);
    if (failed < 0) return NULL;
    gfCompPush(c->h, tag, failed);
    Py_RETURN_NONE;
}

typedef struct { uintptr_t h; int mode; long total; } await_arg;
static int await_fn(void *p, long long ns) {
    await_arg *a = p;
    return gfCompAwait(a->h, a->mode, a->total, ns);
}

/* await_(mode, total, timeout) -> bool: block until mode is satisfied for
 * total followed futures (True) or the timeout passes (False). */
static PyObject *comp_await(CompletionsObject *c, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "await_(mode, total, timeout)");
    await_arg a = {c->h, (int)PyLong_AsLong(args[0]), PyLong_AsLong(args[1])};
    double timeout;
    if (PyErr_Occurred() || gf_parse_timeout(args[2], &timeout) < 0) return NULL;
    if (gfCompAwait(a.h, a.mode, a.total, 0)) Py_RETURN_TRUE;
    int registered = register_wait(c, a.mode == GF_MODE_ALL_COMPLETED, timeout);
    if (registered < 0) return NULL;
    int rc = gf_block(await_fn, &a, timeout);
    if (registered) gfWaitUnblock(gf_worker_slot);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

typedef struct { uintptr_t h; long tag; } next_arg;
static int next_fn(void *p, long long ns) {
    next_arg *a = p;
    return gfCompNext(a->h, ns, &a->tag);
}

/* next(timeout) -> tag, or None when the timeout passed first. */
static PyObject *comp_next(CompletionsObject *c, PyObject *timeout_obj) {
    next_arg a = {c->h, -1};
    double timeout;
    if (gf_parse_timeout(timeout_obj, &timeout) < 0) return NULL;
    int rc = gfCompNext(a.h, 0, &a.tag);
    if (!rc) {
        int registered = register_wait(c, 0, timeout);
        if (registered < 0) return NULL;
        rc = gf_block(next_fn, &a, timeout);
        if (registered) gfWaitUnblock(gf_worker_slot);
    }
    if (rc < 0) return NULL;
    if (rc == 0) Py_RETURN_NONE;
    untrack(c, a.tag);
    return PyLong_FromLong(a.tag);
}

static PyObject *comp_bridge(CompletionsObject *c, PyObject *tag_obj) {
    long tag = PyLong_AsLong(tag_obj);
    if (tag == -1 && PyErr_Occurred()) return NULL;
    BridgeObject *b = PyObject_New(BridgeObject, gf_Bridge);
    if (b == NULL) return NULL;
    c->foreign = 1;
    b->completions = Py_NewRef((PyObject *)c);
    b->tag = tag;
    return (PyObject *)b;
}

static PyMethodDef comp_methods[] = {
    {"watch", (PyCFunction)(void (*)(void))comp_watch, METH_FASTCALL, "watch(future, tag) -> bool"},
    {"unwatch", (PyCFunction)comp_unwatch, METH_O, "unwatch(future)"},
    {"push", (PyCFunction)(void (*)(void))comp_push, METH_FASTCALL, "push(tag, failed)"},
    {"await_", (PyCFunction)(void (*)(void))comp_await, METH_FASTCALL, "await_(mode, total, timeout) -> bool"},
    {"next", (PyCFunction)comp_next, METH_O, "next(timeout) -> tag or None"},
    {"bridge", (PyCFunction)comp_bridge, METH_O, "bridge(tag) -> a stdlib-style waiter reporting tag"},
    {NULL}
};

static PyTypeObject CompletionsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gofutures._core.Completions",
    .tp_doc = "Settle events of many futures, for wait() and as_completed().",
    .tp_basicsize = sizeof(CompletionsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = comp_new,
    .tp_dealloc = (destructor)comp_dealloc,
    .tp_methods = comp_methods,
};

/* ---- Bridge: the stdlib waiter protocol -------------------------------- */

static PyObject *bridge_report(BridgeObject *b, int failed) {
    gfCompPush(((CompletionsObject *)b->completions)->h, b->tag, failed);
    Py_RETURN_NONE;
}
static PyObject *bridge_add_result(BridgeObject *b, PyObject *Py_UNUSED(f)) { return bridge_report(b, 0); }
static PyObject *bridge_add_exception(BridgeObject *b, PyObject *Py_UNUSED(f)) { return bridge_report(b, 1); }
static PyObject *bridge_add_cancelled(BridgeObject *b, PyObject *Py_UNUSED(f)) { return bridge_report(b, 0); }

static void bridge_dealloc(BridgeObject *b) {
    Py_XDECREF(b->completions);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyMethodDef bridge_methods[] = {
    {"add_result", (PyCFunction)bridge_add_result, METH_O, NULL},
    {"add_exception", (PyCFunction)bridge_add_exception, METH_O, NULL},
    {"add_cancelled", (PyCFunction)bridge_add_cancelled, METH_O, NULL},
    {NULL}
};

static PyTypeObject BridgeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gofutures._core.Bridge",
    .tp_doc = "A concurrent.futures waiter that reports to a Completions.",
    .tp_basicsize = sizeof(BridgeObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)bridge_dealloc,
    .tp_methods = bridge_methods,
};

int gf_completions_init_type(PyObject *module) {
    if (PyType_Ready(&CompletionsType) < 0 || PyType_Ready(&BridgeType) < 0) return -1;
    gf_Completions = &CompletionsType;
    gf_Bridge = &BridgeType;
    return PyModule_AddObjectRef(module, "Completions", (PyObject *)&CompletionsType);
}
