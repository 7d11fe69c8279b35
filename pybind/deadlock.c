/* deadlock.c: a worker's blocking wait, registered with the Go core's
 * deadlock detection (gofutures/deadlock.go); a wait that could never end
 * raises gofutures.DeadlockError naming the futures involved. */
#include "hot.h"
#include "_cgo_export.h"

#define GF_DEADLOCK_MAX_FUTURES 64

int gf_wait_register(uintptr_t slot, uintptr_t *hs, long n, int all, int timed) {
    uintptr_t tags[GF_DEADLOCK_MAX_FUTURES];
    long ntags = GF_DEADLOCK_MAX_FUTURES;
    char *msg = gfWaitBlock(slot, hs, n, all, timed, tags, &ntags);
    if (msg == NULL) return 0;
    /* Each tag is the address of a live Python future: the futures of a
     * deadlock are pending, so a queued or running job holds each of them,
     * and freeing one would need the GIL, which this thread holds. */
    PyObject *futures = PyTuple_New(ntags);
    for (long i = 0; futures != NULL && i < ntags; i++)
        PyTuple_SET_ITEM(futures, i, Py_NewRef((PyObject *)tags[i]));
    PyObject *exc = futures ? PyObject_CallFunction(gf_stdlib.DeadlockError, "sO", msg, futures) : NULL;
    free(msg);
    Py_XDECREF(futures);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return -1;
}
