/* module.c: the hand-written extension module _hot, defined in the same
 * shared library as gopy's generated module (one library, one Go runtime).
 * gofutures._core loads it from that file by name. */
#include "hot.h"

static int import_attr(const char *module, const char *name, PyObject **out) {
    PyObject *m = PyImport_ImportModule(module);
    if (m == NULL) return -1;
    *out = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return *out == NULL ? -1 : 0;
}

static int load_stdlib(void) {
    static const char *states[5] = {"PENDING", "RUNNING", "CANCELLED", "CANCELLED_AND_NOTIFIED", "FINISHED"};
    const char *base = "concurrent.futures._base";
    if (import_attr(base, "CancelledError", &gf_stdlib.CancelledError) < 0 ||
        import_attr(base, "TimeoutError", &gf_stdlib.TimeoutError) < 0 ||
        import_attr(base, "InvalidStateError", &gf_stdlib.InvalidStateError) < 0 ||
        import_attr(base, "LOGGER", &gf_stdlib.logger) < 0 ||
        import_attr(base, "Future", &gf_stdlib.future_type) < 0 ||
        import_attr("concurrent.futures.thread", "BrokenThreadPool", &gf_stdlib.BrokenThreadPool) < 0 ||
        import_attr("threading", "Condition", &gf_stdlib.condition_type) < 0 ||
        import_attr("gofutures._deadlock", "DeadlockError", &gf_stdlib.DeadlockError) < 0)
        return -1;
    for (int i = 0; i < 5; i++)
        if (import_attr(base, states[i], &gf_stdlib.state_names[i]) < 0) return -1;
    return 0;
}

static PyMethodDef hot_functions[] = {
    {"result_or_cancel", (PyCFunction)(void (*)(void))gf_result_or_cancel, METH_FASTCALL,
     "result_or_cancel(future, timeout=None): its result; if that fails, cancel it and re-raise."},
    {"set_outcome_builder", (PyCFunction)(void (*)(void))gf_set_outcome_builder, METH_FASTCALL,
     "set_outcome_builder(build, load_shared): build(kind, data, cause) words a process call's outcome that is "
     "no plain value; load_shared(region) unpickles one that came in shared memory."},
    {NULL}
};

static struct PyModuleDef hot_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_hot",
    .m_doc = "gofutures' hot path: Future, ThreadPoolBase and Completions in C over the Go core.",
    .m_size = -1,
    .m_methods = hot_functions,
};

PyMODINIT_FUNC PyInit__hot(void) {
    if (gf_stdlib.logger == NULL && (load_stdlib() < 0 || gf_worker_init_checkpoint() < 0)) return NULL;
    PyObject *m = PyModule_Create(&hot_def);
    if (m == NULL) return NULL;
    if (gf_future_init_type(m) < 0 || gf_executor_init_type(m) < 0 || gf_completions_init_type(m) < 0 ||
        gf_procexec_init_type(m) < 0 || gf_region_init_type() < 0 || gf_answer_init() < 0 || gf_fork_init(m) < 0 || gf_subinterp_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
