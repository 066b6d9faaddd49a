/* SPDX-License-Identifier: MIT */
/*
 * Goroutine stacks.
 *
 * Stacks are carved from slabs: one mmap(MAP_NORESERVE) holds up to 64
 * stack slots, and the kernel commits a page only when a goroutine touches
 * it.  One slot, from low to high addresses:
 *
 *     [ guard, GUARD bytes ][ usable stack ... ][ weft__stack descriptor ]
 *
 * The guard is 16 pages, not one: a frame up to GUARD bytes that skips
 * its lower pages still lands in it, not in the next slot's stack.  It
 * costs address space only (MAP_NORESERVE; PROT_NONE or guard markers),
 * and an mprotect guard is one mapping whatever its size.  Larger frames
 * are caught only in code built with -fstack-clash-protection, which
 * touches every page it allocates (weft.pc and the CMake package add it).
 *
 * The budget problem: 1,000,000 live goroutines must work under the default
 * vm.max_map_count (65,530), and an mprotect'd guard page splits a mapping
 * in two.  So each new slot gets, in order of preference:
 *   1. MADV_GUARD_INSTALL (Linux 6.13+): a guard that costs no mapping;
 *   2. mprotect(PROT_NONE), while the budget (a quarter of max_map_count)
 *      lasts;
 *   3. otherwise a canary word at the bottom of the usable stack, checked
 *      each time the goroutine switches out (weft__stack_ok).
 * The SIGSEGV handler in debug.c turns a guard hit into a clear message;
 * a smashed canary is reported the same way.
 *
 * Reuse: a worker keeps up to CACHE_MAX freed stacks in its own cache (no
 * lock).  Beyond that, half the cache moves to the shared pool.  Stacks in
 * the pool keep their pages (a warm stack is what makes spawning cheap)
 * until the pool holds more than TRIM_ABOVE of a size: further ones give
 * their pages back (MADV_DONTNEED) except the top one, so a burst of
 * goroutines does not pin its memory forever.  madvise costs a TLB
 * shootdown on every core, which is why it is not done for every stack.
 *
 * valgrind: when its header is present, every slot's usable range is
 * registered as a stack (VALGRIND_STACK_REGISTER, a no-op outside
 * valgrind) when its slab is made and deregistered when the slab is
 * unmapped, so memcheck follows switches between goroutine stacks.
 */
#include "stack.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_VALGRIND 1
#endif
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define CACHE_MAX 64
#define SLAB_BYTES ((size_t)32 << 20)
#define SLAB_MAX_SLOTS 64
#define TRIM_ABOVE 4096
#define GUARD ((size_t)64 * 1024) /* a multiple of any page size in use */

typedef struct slab {
    void *base;
    size_t len;
    struct slab *next;
#ifdef WEFT_VALGRIND
    unsigned vg_ids[SLAB_MAX_SLOTS];
    size_t nslots;
#endif
} slab;

static void vg_register(slab *sl, size_t i, const weft__stack *s) {
#ifdef WEFT_VALGRIND
    sl->vg_ids[i] = VALGRIND_STACK_REGISTER(s->lo, s->lo + s->size);
    sl->nslots = i + 1 > sl->nslots ? i + 1 : sl->nslots;
#endif
    (void)sl, (void)i, (void)s;
}

static void vg_deregister(slab *sl) {
#ifdef WEFT_VALGRIND
    for (size_t i = 0; i < sl->nslots; i++)
        VALGRIND_STACK_DEREGISTER(sl->vg_ids[i]);
#endif
    (void)sl;
}

/* Free stacks of one size.  Sizes other than the default are rare, so a
 * short list of buckets is enough. */
typedef struct bucket {
    size_t size;
    weft__stack *head;
    struct bucket *next;
} bucket;

static struct {
    weft__lock lock;
    bucket *buckets;
    slab *slabs;
    atomic_size_t page;
    atomic_long guard_budget; /* mprotect guards still allowed */
    atomic_bool budget_ready;
    atomic_int guard_madvise; /* 1 works, 0 unknown, -1 unsupported */
    atomic_size_t pooled;     /* freed stacks in all buckets */
} pool;

static size_t page_size(void) {
    size_t pg = atomic_load_explicit(&pool.page, memory_order_relaxed);
    if (!pg) {
        pg = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&pool.page, pg, memory_order_relaxed);
    }
    return pg;
}

static size_t stack_round(size_t size) {
    size_t pg = page_size();
    if (size < 16 * 1024)
        size = 16 * 1024;
    return (size + sizeof(weft__stack) + pg - 1) & ~(pg - 1);
}

static long guard_budget_init(void) {
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 65530;
        fclose(f);
    }
    return max / 4;
}

/* Protect the GUARD bytes at guard; false if only the canary can. */
static bool guard_install(char *guard) {
    if (atomic_load(&pool.guard_madvise) >= 0) {
        if (madvise(guard, GUARD, MADV_GUARD_INSTALL) == 0) {
            atomic_store(&pool.guard_madvise, 1);
            return true;
        }
        atomic_store(&pool.guard_madvise, -1);
    }
    if (atomic_fetch_sub(&pool.guard_budget, 1) > 0 &&
        mprotect(guard, GUARD, PROT_NONE) == 0)
        return true;
    return false;
}

/* Turn the slot [slot, slot + GUARD + span) into a stack descriptor. */
static weft__stack *slot_init(char *slot, size_t span) {
    weft__stack *s = (weft__stack *)(slot + GUARD + span - sizeof(weft__stack));
    s->lo = slot + GUARD;
    s->size = span - sizeof(weft__stack);
    s->next = NULL;
    s->canary = NULL;
    if (!guard_install(slot)) {
        s->canary = (uint64_t *)s->lo;
        *s->canary = WEFT__STACK_CANARY;
    }
    return s;
}

static bucket *bucket_for(size_t span) {
    for (bucket *b = pool.buckets; b; b = b->next)
        if (b->size == span)
            return b;
    bucket *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->size = span;
    b->next = pool.buckets;
    pool.buckets = b;
    return b;
}

/* Map and initialise a new slab of span-sized stacks without holding the
 * pool lock (it page-faults every slot's top page); then one stack is
 * returned and the rest join the bucket of span (bucket_for). */
static weft__stack *slab_new(size_t span) {
    size_t slot = span + GUARD;
    size_t n = SLAB_BYTES / slot;
    if (n < 1)
        n = 1;
    if (n > SLAB_MAX_SLOTS)
        n = SLAB_MAX_SLOTS;
    slab *sl = malloc(sizeof *sl);
    if (!sl)
        return NULL;
    char *base =
        mmap(NULL, n * slot, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) {
        free(sl);
        return NULL;
    }
    if (!atomic_exchange(&pool.budget_ready, true))
        atomic_store(&pool.guard_budget, guard_budget_init());
    sl->base = base;
    sl->len = n * slot;
    weft__stack *rest = NULL, *last = NULL;
#ifdef WEFT_VALGRIND
    sl->nslots = 0;
#endif
    for (size_t i = 1; i < n; i++) {
        weft__stack *s = slot_init(base + i * slot, span);
        vg_register(sl, i, s);
        s->next = rest;
        rest = s;
        if (!last)
            last = s;
    }
    weft__stack *first = slot_init(base, span);
    vg_register(sl, 0, first);
    weft__lock_acquire(&pool.lock);
    sl->next = pool.slabs;
    pool.slabs = sl;
    bucket *b = bucket_for(span);
    if (b && rest) {
        last->next = b->head;
        b->head = rest;
        atomic_fetch_add_explicit(&pool.pooled, n - 1, memory_order_relaxed);
    }
    weft__lock_release(&pool.lock);
    return first;
}

static void stack_prepare(weft__stack *s) {
#ifdef WEFT_ASAN
    /* frames of the previous goroutine may have left poison behind */
    __asan_unpoison_memory_region(s->lo, s->size);
#endif
    (void)s;
}

weft__stack *weft__stack_get(weft__stack_cache *c, size_t size) {
    size_t span = stack_round(size);
    weft__stack *s = NULL;
    if (c && c->head && c->head->size + sizeof(weft__stack) == span) {
        s = c->head;
        c->head = s->next;
        c->n--;
        stack_prepare(s);
        return s;
    }
    weft__lock_acquire(&pool.lock);
    bucket *b = bucket_for(span);
    if (b && b->head) {
        s = b->head;
        b->head = s->next;
        atomic_fetch_sub_explicit(&pool.pooled, 1, memory_order_relaxed);
    }
    weft__lock_release(&pool.lock);
    if (!s && b)
        s = slab_new(span);
    if (s)
        stack_prepare(s);
    return s;
}

/* Give back the pages of s below its top page; keep the canary valid.
 * Most goroutines never leave the top page: mincore (no TLB shootdown)
 * tells whether the page below it was touched, and only then is madvise
 * worth its cost. */
static void stack_trim(weft__stack *s) {
    size_t pg = page_size();
    char *lo = s->lo + (s->canary ? pg : 0);
    char *hi = (char *)((uintptr_t)s & ~(pg - 1));
    unsigned char resident = 1;
    if (hi <= lo || (mincore(hi - pg, pg, &resident) == 0 && !(resident & 1)))
        return;
    madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
}

static void pool_put(weft__stack *s) {
    size_t span = s->size + sizeof(weft__stack);
    if (span != stack_round(WEFT_DEFAULT_STACK) ||
        atomic_load_explicit(&pool.pooled, memory_order_relaxed) >= TRIM_ABOVE)
        stack_trim(s);
    weft__lock_acquire(&pool.lock);
    bucket *b = bucket_for(span);
    if (b) {
        s->next = b->head;
        b->head = s;
        atomic_fetch_add_explicit(&pool.pooled, 1, memory_order_relaxed);
    }
    weft__lock_release(&pool.lock);
}

void weft__stack_put(weft__stack_cache *c, weft__stack *s) {
    if (!c ||
        s->size + sizeof(weft__stack) != stack_round(WEFT_DEFAULT_STACK)) {
        pool_put(s);
        return;
    }
    s->next = c->head;
    c->head = s;
    if (++c->n < CACHE_MAX)
        return;
    while (c->n > CACHE_MAX / 2) {
        weft__stack *t = c->head;
        c->head = t->next;
        c->n--;
        pool_put(t);
    }
}

void weft__stack_flush(weft__stack_cache *c) {
    while (c->head) {
        weft__stack *t = c->head;
        c->head = t->next;
        pool_put(t);
    }
    c->n = 0;
}

bool weft__stack_guard_hit(const weft__stack *s, const void *addr) {
    const char *a = addr;
    return a < s->lo && a >= s->lo - GUARD;
}

void weft__stack_release_all(void) {
    weft__lock_acquire(&pool.lock);
    while (pool.slabs) {
        slab *sl = pool.slabs;
        pool.slabs = sl->next;
        vg_deregister(sl);
        munmap(sl->base, sl->len);
        free(sl);
    }
    while (pool.buckets) {
        bucket *b = pool.buckets;
        pool.buckets = b->next;
        free(b);
    }
    atomic_store(&pool.budget_ready, false);
    atomic_store(&pool.pooled, 0);
    weft__lock_release(&pool.lock);
}

/* fork(): the pool's lock is held across the fork (prepare true, then
 * false in parent and child), so the child inherits a consistent pool. */
void weft__stack_atfork(bool prepare) {
    if (prepare)
        weft__lock_acquire(&pool.lock);
    else
        weft__lock_release(&pool.lock);
}
