/* region.c: SharedRegion, a mapping of a worker's shared memory that Go
 * handed over (gofutures/procshared.go: a big answer), as a Python object.
 * It exports the mapping as one writable buffer and unmaps it when its last
 * reference goes; memoryviews of it hold a reference, so the objects
 * unpickled as views of it (numpy arrays sent out-of-band) keep the memory
 * as long as they live, and nothing can unmap it under them.
 *
 * Ownership: gf_region_new takes the mapping over, also when it fails
 * (it unmaps it then). The type is not exported by the module: only the
 * outcome builder makes regions (outcome.c). */
#include "hot.h"
#include <sys/mman.h>

typedef struct {
    PyObject_HEAD
    char *data;     /* the mapping, owned */
    Py_ssize_t len;
} RegionObject;

static int region_getbuffer(RegionObject *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data, self->len, 0, flags);
}

static void region_dealloc(RegionObject *self) {
    munmap(self->data, (size_t)self->len);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyBufferProcs region_as_buffer = {
    .bf_getbuffer = (getbufferproc)region_getbuffer,
};

static PyTypeObject RegionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gofutures._core.SharedRegion",
    .tp_doc = "A process call's answer in shared memory, mapped here; unmapped when the last view of it goes.",
    .tp_basicsize = sizeof(RegionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)region_dealloc,
    .tp_as_buffer = &region_as_buffer,
};

int gf_region_init_type(void) { return PyType_Ready(&RegionType); }

PyObject *gf_region_new(char *data, Py_ssize_t len) {
    RegionObject *r = PyObject_New(RegionObject, &RegionType);
    if (r == NULL) {
        munmap(data, (size_t)len);
        return NULL;
    }
    r->data = data;
    r->len = len;
    return (PyObject *)r;
}
