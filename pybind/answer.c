/* answer.c: the memory a big answer is read into. The core's supervisor
 * reads an answer from the worker's shared memory into a block from here
 * (pybind's answerMemory, on a Go thread without the GIL); C hands the
 * block to the SharedRegion the answer is unpickled from (region.c), or to
 * whatever else ends up owning the outcome, and every owner gives it back
 * with gf_answer_free.
 *
 * Why not malloc: on a page touched for the first time the kernel spends
 * more than the copy itself (16 MiB into fresh 4 KiB pages: 10-16 ms; into
 * pages in use: 3 ms, on the 2-core VM this was measured on), and glibc
 * gave each Go thread an arena of its own, which kept freed answers (some
 * 100 MiB after a thousand calls) and added mappings per thread. So each
 * block is mapped for itself, and goes back to the system when freed,
 * whichever thread allocated it; a few freed blocks are kept for the next
 * answers (a result turned into bytes, or dropped, frees its block before
 * the next one comes), so that a pool's answers land in pages in use.
 * A block too big to keep (more than GF_ANSWER_CACHED_BLOCK, which glibc
 * too would map anew each time) is aligned to and advised for transparent
 * huge pages (MADV_HUGEPAGE, as numpy does for its arrays, and as
 * gofutures._bigpayload does for values this big): 64 MiB read in 13-17 ms
 * instead of 40-50. Smaller blocks get none: on that VM a block of huge
 * pages never used before cost 3 to 4 times its 4 KiB pages (memory the
 * host had not backed yet), and results the user holds make every block
 * a new one (32 x 16 MiB numpy results: ratio 0.39-0.66 with huge pages,
 * 0.25-0.30 without).
 *
 * Locking: one mutex around the cache; alloc and free are called from Go
 * threads without the GIL and from Python threads with it, and make no
 * system call while holding it. At fork the child forgets the cache (its
 * copies of the blocks are unmapped) and the pools, and unlocks the mutex
 * its one thread holds (before_fork took it).
 *
 * Bounds: blocks up to GF_ANSWER_CACHED_BLOCK are kept, at most
 * GF_ANSWER_CACHE_BLOCKS of them and GF_ANSWER_CACHE_BYTES in all, oldest
 * out first (cache[0] is the oldest), and only while a process pool is at
 * work (gf_answer_pool counts them): when the last one is done the cache
 * is emptied, and a block freed after that (a result read later) is
 * unmapped at once, so an idle program holds none of it. */
#include "hot.h"
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GF_HUGE_PAGE ((size_t)2 << 20)
#define GF_ANSWER_CACHE_BLOCKS 4
#define GF_ANSWER_CACHED_BLOCK ((size_t)32 << 20)
#define GF_ANSWER_CACHE_BYTES ((size_t)64 << 20)

typedef struct {
    void *p;
    size_t size;
} block;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static block cache[GF_ANSWER_CACHE_BLOCKS];
static int cached;
static size_t cached_bytes;
static long pools; /* process pools not done yet */

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* The size of the block for an answer of n bytes: n rounded up to a
 * quarter of its power of two, so that answers of about the same size
 * reuse each other's blocks (wasting at most a quarter), then to pages
 * (huge ones for a block too big to keep). */
static size_t block_size(size_t n) {
    size_t top = 1;
    while (top <= n / 2) top *= 2;
    size_t size = top >= 4 ? round_up(n, top / 4) : n;
    return round_up(size ? size : 1, size > GF_ANSWER_CACHED_BLOCK ? GF_HUGE_PAGE : (size_t)sysconf(_SC_PAGESIZE));
}

/* A new mapping of size bytes (whole pages); one too big to keep is
 * aligned to a huge page and advised for them (the unaligned head and
 * tail of a larger mapping are given back). */
static void *map_block(size_t size) {
    int huge = size > GF_ANSWER_CACHED_BLOCK;
    size_t span = huge ? size + GF_HUGE_PAGE : size;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (!huge) return p;
    char *start = (char *)round_up((uintptr_t)p, GF_HUGE_PAGE);
    if (start > p) munmap(p, (size_t)(start - p));
    if (start + size < p + span) munmap(start + size, (size_t)(p + span - (start + size)));
    (void)madvise(start, size, MADV_HUGEPAGE); /* advice: without it, 4 KiB pages */
    return start;
}

void *gf_answer_alloc(size_t n) {
    size_t size = block_size(n);
    void *p = NULL;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < cached; i++) {
        if (cache[i].size == size) {
            p = cache[i].p;
            cached_bytes -= size;
            memmove(cache + i, cache + i + 1, (size_t)(--cached - i) * sizeof *cache);
            break;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return p != NULL ? p : map_block(size);
}

/* Keeps the block (p, size) in the cache, making room by evicting the
 * oldest ones (the answers of a while ago are the least like the next);
 * blocks too big to keep are unmapped at once. */
void gf_answer_free(void *p, size_t n) {
    if (p == NULL) return;
    block out[GF_ANSWER_CACHE_BLOCKS + 1];
    int evicted = 0;
    size_t size = block_size(n);
    pthread_mutex_lock(&cache_mu);
    if (size > GF_ANSWER_CACHED_BLOCK || pools == 0) {
        out[evicted++] = (block){p, size};
    } else {
        while (cached == GF_ANSWER_CACHE_BLOCKS || cached_bytes + size > GF_ANSWER_CACHE_BYTES) {
            out[evicted++] = cache[0];
            cached_bytes -= cache[0].size;
            memmove(cache, cache + 1, (size_t)--cached * sizeof *cache);
        }
        cache[cached++] = (block){p, size};
        cached_bytes += size;
    }
    pthread_mutex_unlock(&cache_mu);
    for (int i = 0; i < evicted; i++) munmap(out[i].p, out[i].size);
}

void gf_answer_pool(int delta) {
    block out[GF_ANSWER_CACHE_BLOCKS];
    int n = 0;
    pthread_mutex_lock(&cache_mu);
    pools += delta;
    if (pools <= 0) {
        pools = 0;
        n = cached;
        memcpy(out, cache, sizeof cache);
        cached = 0, cached_bytes = 0;
    }
    pthread_mutex_unlock(&cache_mu);
    for (int i = 0; i < n; i++) munmap(out[i].p, out[i].size);
}

static void before_fork(void) { pthread_mutex_lock(&cache_mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&cache_mu); }
/* The child's one thread holds the mutex (before_fork): it forgets the
 * parent's blocks and pools (it has no Go core to read answers with). */
static void after_fork_child(void) {
    for (int i = 0; i < cached; i++) munmap(cache[i].p, cache[i].size);
    cached = 0, cached_bytes = 0, pools = 0;
    pthread_mutex_unlock(&cache_mu);
}

int gf_answer_init(void) {
    static int registered;
    if (!registered && pthread_atfork(before_fork, after_fork_parent, after_fork_child) != 0) {
        PyErr_SetString(PyExc_OSError, "gofutures: pthread_atfork failed");
        return -1;
    }
    registered = 1;
    return 0;
}
