/* region.c: SharedRegion, a big answer that Go read from a worker's shared
 * memory into a block of answer memory (gofutures/procshared.go; pybind's
 * answerMemory; answer.c), as a Python object. It exports that memory as
 * one writable buffer and gives it back (gf_answer_free) when its last
 * reference goes; memoryviews
 * of it hold a reference, so the objects unpickled as views of it (numpy
 * arrays sent out-of-band) keep it as long as they live, and nothing can
 * free it under them.
 *
 * Ownership: gf_region_new takes the memory over when it succeeds; when it
 * fails, the memory stays the caller's (the delivery or the parked outcome
 * that holds it frees it, or a later reader tries again: freeing it here
 * too freed it twice). The type is not exported by the module: only the
 * outcome builder makes regions (outcome.c). */
#include "hot.h"

typedef struct {
    PyObject_HEAD
    char *data;     /* answer memory (answer.c), owned */
    Py_ssize_t len;
} RegionObject;

static int region_getbuffer(RegionObject *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data, self->len, 0, flags);
}

static void region_dealloc(RegionObject *self) {
    gf_answer_free(self->data, (size_t)self->len);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyBufferProcs region_as_buffer = {
    .bf_getbuffer = (getbufferproc)region_getbuffer,
};

static PyTypeObject RegionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gofutures._core.SharedRegion",
    .tp_doc = "A big process call's answer, read from shared memory; freed when the last view of it goes.",
    .tp_basicsize = sizeof(RegionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)region_dealloc,
    .tp_as_buffer = &region_as_buffer,
};

int gf_region_init_type(void) { return PyType_Ready(&RegionType); }

PyObject *gf_region_new(char *data, Py_ssize_t len) {
    RegionObject *r = PyObject_New(RegionObject, &RegionType);
    if (r == NULL) return NULL;
    r->data = data;
    r->len = len;
    return (PyObject *)r;
}
