/* subinterp.c: a subinterpreter owned by one worker thread, for
 * gofutures.interpreter's InterpreterPoolExecutor (Python 3.12+ C-API:
 * Py_NewInterpreterFromConfig with its own GIL, PEP 684).
 *
 * Ownership and lifetime: a worker thread of the Go thread pool creates its
 * interpreter (sub_create) when it starts, runs every task of its life in it
 * (sub_call) and ends it (sub_close) when it stops, always on that same OS
 * thread (the thread states are bound to it; each call checks). The
 * interpreter keeps ONE thread state for the worker's whole life: entering
 * it is a GIL hand-over, not a thread-state creation.
 *
 * Locking: every function is called with the MAIN interpreter's GIL held.
 * While the sub runs, that GIL is released (PyEval_SaveThread) and the sub's
 * own GIL is held, so the main interpreter and the other workers run in
 * parallel. No object crosses: bytes go in and come out as copies of their
 * memory, made while the owning interpreter's GIL is held (the caller's
 * reference keeps the main-side bytes alive and immutable meanwhile). */
#include "hot.h"

#if PY_VERSION_HEX >= 0x030C0000

#define SUB_CAPSULE "gofutures.subinterpreter"

typedef struct {
    PyThreadState *ts;   /* the sub's thread state; NULL once closed */
    PyObject *run;       /* the sub's run(bytes) -> bytes (an object OF THE SUB) */
    unsigned long owner; /* the worker thread that made it */
} gf_sub;

/* A malloc'd copy of some bytes, to carry across interpreters. */
typedef struct {
    char *p;
    Py_ssize_t n;
} gf_buf;

static int buf_copy(gf_buf *b, const char *p, Py_ssize_t n) {
    b->n = n;
    b->p = malloc(n > 0 ? (size_t)n : 1);
    if (b->p == NULL) return -1;
    memcpy(b->p, p, (size_t)n);
    return 0;
}

/* The current exception of the attached interpreter as "Type: message"
 * (malloc'd); clears it. */
static char *error_text(void) {
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *s = exc ? PyObject_Str(exc) : NULL;
    const char *u = s ? PyUnicode_AsUTF8(s) : NULL;
    const char *t = exc ? Py_TYPE(exc)->tp_name : "error";
    size_t len = strlen(t) + (u ? strlen(u) : 0) + 3;
    char *out = malloc(len);
    if (out) snprintf(out, len, "%s: %s", t, u ? u : "");
    PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(exc);
    return out;
}

/* Switches this thread from the main interpreter to sub and back. */
static PyThreadState *enter_sub(gf_sub *sub) {
    PyThreadState *main_ts = PyEval_SaveThread();
    PyEval_RestoreThread(sub->ts);
    return main_ts;
}

static void leave_sub(gf_sub *sub, PyThreadState *main_ts) {
    sub->ts = PyEval_SaveThread();
    PyEval_RestoreThread(main_ts);
}

static gf_sub *sub_get(PyObject *capsule) {
    gf_sub *sub = PyCapsule_GetPointer(capsule, SUB_CAPSULE);
    if (sub == NULL) return NULL;
    if (sub->ts == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the worker's interpreter is closed");
        return NULL;
    }
    if (sub->owner != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "a worker's interpreter is used only by the thread that made it");
        return NULL;
    }
    return sub;
}

/* Ends sub's interpreter; the caller is its owner, main attached. */
static void sub_end(gf_sub *sub) {
    PyThreadState *main_ts = PyEval_SaveThread();
    PyEval_RestoreThread(sub->ts);
    Py_CLEAR(sub->run);
    Py_EndInterpreter(sub->ts); /* leaves no thread state attached */
    sub->ts = NULL;
    PyEval_RestoreThread(main_ts);
}

static void sub_destroy(PyObject *capsule) {
    gf_sub *sub = PyCapsule_GetPointer(capsule, SUB_CAPSULE);
    if (sub == NULL) {
        PyErr_Clear();
        return;
    }
    /* Dropped unclosed: only its owner may end it; elsewhere it is left to
     * the runtime's finalization (which ends remaining interpreters). */
    if (sub->ts != NULL && sub->owner == PyThread_get_thread_ident()) sub_end(sub);
    if (sub->ts == NULL) free(sub);
}

/* In the (attached) new interpreter: runs source as module `name`, listed in
 * its sys.modules, calls module.setup(setup) and keeps module.run. */
static PyObject *bootstrap(const char *source, const char *name, gf_buf *setup) {
    PyObject *module = PyModule_New(name), *run = NULL;
    PyObject *code = NULL, *r = NULL, *arg = NULL;
    if (module == NULL) return NULL;
    PyObject *ns = PyModule_GetDict(module);
    if (PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(PyImport_GetModuleDict(), name, module) < 0)
        goto done;
    if ((code = Py_CompileString(source, name, Py_file_input)) == NULL) goto done;
    if ((r = PyEval_EvalCode(code, ns, ns)) == NULL) goto done;
    Py_CLEAR(r);
    if ((arg = PyBytes_FromStringAndSize(setup->p, setup->n)) == NULL) goto done;
    if ((r = PyObject_CallMethod(module, "setup", "O", arg)) == NULL) goto done;
    run = PyObject_GetAttrString(module, "run");
done:
    Py_XDECREF(r);
    Py_XDECREF(arg);
    Py_XDECREF(code);
    Py_DECREF(module);
    return run;
}

/* sub_create(source, name, setup) -> capsule: a new interpreter with its own
 * GIL, owned by the calling thread, bootstrapped with the Python source. */
static PyObject *sub_create(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1]) || !PyBytes_Check(args[2]))
        return PyErr_Format(PyExc_TypeError, "sub_create(source: str, name: str, setup: bytes)");
    const char *source = PyUnicode_AsUTF8(args[0]), *name = PyUnicode_AsUTF8(args[1]);
    if (source == NULL || name == NULL) return NULL;
    char *source_copy = strdup(source), *name_copy = strdup(name);
    gf_buf setup = {0};
    gf_sub *sub = calloc(1, sizeof *sub);
    PyObject *capsule = NULL;
    if (sub == NULL || source_copy == NULL || name_copy == NULL ||
        buf_copy(&setup, PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2])) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    PyThreadState *main_ts = PyThreadState_Get();
    PyInterpreterConfig config = _PyInterpreterConfig_INIT;
    PyThreadState *ts = NULL;
    PyStatus status = Py_NewInterpreterFromConfig(&ts, &config);
    if (PyStatus_Exception(status)) { /* the main thread state is attached again */
        PyErr_Format(PyExc_RuntimeError, "could not create the worker's interpreter: %s",
                     status.err_msg ? status.err_msg : "unknown error");
        goto done;
    }
    /* Now in the new interpreter, holding its GIL; the main GIL is released. */
    PyObject *run = bootstrap(source_copy, name_copy, &setup);
    if (run == NULL) {
        char *err = error_text();
        Py_EndInterpreter(ts);
        PyEval_RestoreThread(main_ts);
        PyErr_Format(PyExc_RuntimeError, "could not start the worker's interpreter: %s", err ? err : "?");
        free(err);
        goto done;
    }
    sub->run = run;
    sub->owner = PyThread_get_thread_ident();
    sub->ts = PyEval_SaveThread();
    PyEval_RestoreThread(main_ts);
    capsule = PyCapsule_New(sub, SUB_CAPSULE, sub_destroy);
    if (capsule == NULL) sub_end(sub);
    else sub = NULL;
done:
    free(sub);
    free(source_copy);
    free(name_copy);
    free(setup.p);
    return capsule;
}

/* sub_call(capsule, payload: bytes) -> bytes: the sub's run(payload). */
static PyObject *sub_call(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "sub_call(interpreter, payload: bytes)");
    gf_sub *sub = sub_get(args[0]);
    if (sub == NULL) return NULL;
    const char *p = PyBytes_AS_STRING(args[1]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[1]);
    gf_buf out = {0};
    char *err = NULL;

    PyThreadState *main_ts = enter_sub(sub);
    PyObject *arg = PyBytes_FromStringAndSize(p, n);
    PyObject *r = arg ? PyObject_CallOneArg(sub->run, arg) : NULL;
    if (r != NULL && !PyBytes_Check(r)) {
        Py_CLEAR(r);
        PyErr_SetString(PyExc_TypeError, "run() returned no bytes");
    }
    if (r == NULL || buf_copy(&out, PyBytes_AS_STRING(r), PyBytes_GET_SIZE(r)) < 0)
        err = r == NULL ? error_text() : strdup("out of memory");
    Py_XDECREF(r);
    Py_XDECREF(arg);
    leave_sub(sub, main_ts);

    if (err != NULL || out.p == NULL) {
        PyErr_Format(PyExc_RuntimeError, "the worker's interpreter failed: %s", err ? err : "out of memory");
        free(err);
        free(out.p);
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(out.p, out.n);
    free(out.p);
    return result;
}

/* sub_close(capsule): ends the interpreter (its owner only; idempotent). */
static PyObject *sub_close(PyObject *Py_UNUSED(module), PyObject *capsule) {
    gf_sub *sub = PyCapsule_GetPointer(capsule, SUB_CAPSULE);
    if (sub == NULL) return NULL;
    if (sub->ts == NULL) Py_RETURN_NONE;
    if (sub_get(capsule) == NULL) return NULL;
    sub_end(sub);
    Py_RETURN_NONE;
}

static PyMethodDef sub_functions[] = {
    {"sub_create", (PyCFunction)(void (*)(void))sub_create, METH_FASTCALL,
     "sub_create(source, name, setup): a subinterpreter with its own GIL owned by this thread"},
    {"sub_call", (PyCFunction)(void (*)(void))sub_call, METH_FASTCALL,
     "sub_call(interpreter, payload): bytes returned by run(payload) in that interpreter"},
    {"sub_close", (PyCFunction)sub_close, METH_O, "sub_close(interpreter): end it (on its owner thread)"},
    {NULL}
};

int gf_subinterp_init(PyObject *module) { return PyModule_AddFunctions(module, sub_functions); }

#else /* before 3.12: no per-interpreter GIL, nothing to offer */

int gf_subinterp_init(PyObject *Py_UNUSED(module)) { return 0; }

#endif
