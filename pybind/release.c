/* release.c: references Go must drop but cannot, since it never holds the
 * GIL: a parked future's (future.c), a released process pool's hooks
 * object (procpool.go). Go pushes them here (gf_release_later, lock-free,
 * no Python state touched) and any thread that holds the GIL drops them
 * (gf_release_drain): readers of results, submitters, the results worker.
 *
 * The list is a Treiber stack of malloc'd nodes that Go only pushes onto
 * and gf_release_drain only empties whole, so it has no ABA problem. */
#include "gf.h"
#include <stdatomic.h>
#include <stdlib.h>

typedef struct node {
    PyObject *obj;
    struct node *next;
} node;

static _Atomic(node *) head;
static atomic_long pushed_since_drain;

long gf_release_later(PyObject *o) {
    node *n = malloc(sizeof *n);
    if (n == NULL) return 0; /* out of memory: the reference leaks rather than crash */
    n->obj = o;
    node *h = atomic_load_explicit(&head, memory_order_relaxed);
    do {
        n->next = h;
    } while (!atomic_compare_exchange_weak_explicit(&head, &h, n, memory_order_release, memory_order_relaxed));
    return atomic_fetch_add_explicit(&pushed_since_drain, 1, memory_order_relaxed) + 1;
}

void gf_release_drain(void) {
    if (atomic_load_explicit(&head, memory_order_relaxed) == NULL) return;
    atomic_store_explicit(&pushed_since_drain, 0, memory_order_relaxed);
    node *n = atomic_exchange_explicit(&head, NULL, memory_order_acquire);
    while (n != NULL) {
        node *next = n->next;
        Py_DECREF(n->obj); /* may run arbitrary code (a result's __del__), as any decref */
        free(n);
        n = next;
    }
}
