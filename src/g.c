/* SPDX-License-Identifier: MIT */
/*
 * Goroutine allocation: chunks, free arrays, ids, live counts.
 *
 * g structs come in chunks that live until shutdown, so weft_dump can walk
 * every goroutine without any registry to maintain on spawn and exit (a
 * free g has status 0).  Each worker keeps its free g structs in an array
 * (weft__g_cache), so that weft__g_get can prefetch the ones it hands out
 * next: they were freed by another core as often as not, and a linked list
 * would make every spawn wait for the previous one's cache-line transfer.
 * Full arrays spill GBATCH of them as one gbatch (an array node) to the
 * shared list, and empty ones take a gbatch back, so a worker that only
 * spawns and one that only runs goroutines to completion balance out.
 * Fresh chunks, and spills when no node can be allocated, go to a linked
 * "loose" list.  Ids are reserved ID_BATCH at a time and the live count is
 * kept per worker (single writer), so spawning touches no shared cache
 * line.  The fast paths are the inlines of sched.h; this file holds the
 * rest.
 */
#include "sched.h"

#include <string.h>
#include <sys/mman.h>

#define GBATCH 32 /* g structs moved between a worker and the shared list */
#define GCHUNK_BYTES 65536 /* g structs are mapped this much at a time */
#define ID_BATCH 256

struct gchunk {
    struct gchunk *next;
    weft__g g[];
};

#define GCHUNK (int)((GCHUNK_BYTES - sizeof(struct gchunk)) / sizeof(weft__g))

struct gbatch {
    struct gbatch *next;
    int n;
    weft__g *g[GBATCH];
};

static struct {
    weft__lock lock; /* the lists and the chunk list */
    struct gbatch *gfull, *gempty;
    weft__g *gloose;
    _Atomic(struct gchunk *) chunks; /* read without the lock: foreach_g */
    atomic_long nlive_threads;       /* goroutines spawned by plain threads */
} ga;

static atomic_ullong next_gid = 1; /* never reset: ids are never reused */

/* A new chunk, all of it on the loose list.  The pages are mapped
 * populated: a spawner that runs ahead of the workers running its
 * goroutines needs fresh g structs all the time, and faulting them in one
 * page at a time is a large part of a spawn's cost.  False if out of
 * memory. */
static bool chunk_new(void) {
    struct gchunk *c = mmap(NULL, GCHUNK_BYTES, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (c == MAP_FAILED)
        return false;
    for (int i = 0; i + 1 < GCHUNK; i++)
        c->g[i].link = &c->g[i + 1];
    weft__lock_acquire(&ga.lock);
    c->next = atomic_load_explicit(&ga.chunks, memory_order_relaxed);
    atomic_store_explicit(&ga.chunks, c, memory_order_release);
    c->g[GCHUNK - 1].link = ga.gloose;
    ga.gloose = &c->g[0];
    weft__lock_release(&ga.lock);
    return true;
}

/* Under the lock: move up to max free g structs to out; returns how many
 * (0 when the shared lists are empty). */
static int gfree_take(weft__g **out, int max) {
    struct gbatch *b = ga.gfull;
    int n = 0;
    if (b) {
        while (n < max && b->n > 0)
            out[n++] = b->g[--b->n];
        if (b->n == 0) {
            ga.gfull = b->next;
            b->next = ga.gempty;
            ga.gempty = b;
        }
        return n;
    }
    while (n < max && ga.gloose) {
        out[n++] = ga.gloose;
        ga.gloose = ga.gloose->link;
    }
    return n;
}

/* Take up to max free g structs into out, mapping a chunk if need be;
 * returns how many, 0 if out of memory. */
static int gfree_get(weft__g **out, int max) {
    for (;;) {
        weft__lock_acquire(&ga.lock);
        int n = gfree_take(out, max);
        weft__lock_release(&ga.lock);
        if (n > 0 || !chunk_new())
            return n;
    }
}

weft__g *weft__g_alloc1(void) {
    weft__g *g;
    return gfree_get(&g, 1) ? g : NULL;
}

bool weft__g_refill(weft__g_cache *c) {
    c->ngfree = gfree_get(c->gfree, WEFT__GFREE_MAX / 2);
    for (int i = 1; i <= WEFT__GPREFETCH && i < c->ngfree; i++)
        weft__g_prefetch(c->gfree[c->ngfree - 1 - i]);
    return c->ngfree > 0;
}

/* Under the lock: fill b with the GBATCH g structs at top and share it. */
static void gbatch_share(struct gbatch *b, weft__g **top) {
    memcpy(b->g, top, sizeof b->g);
    b->n = GBATCH;
    b->next = ga.gfull;
    ga.gfull = b;
}

/* Give GBATCH of c's array to the shared list, in an empty gbatch if there
 * is one (one locked step), else in a new one, else, out of memory, on the
 * loose list. */
void weft__g_spill(weft__g_cache *c) {
    c->ngfree -= GBATCH;
    weft__g **top = &c->gfree[c->ngfree];
    weft__lock_acquire(&ga.lock);
    struct gbatch *b = ga.gempty;
    if (b) {
        ga.gempty = b->next;
        gbatch_share(b, top);
    }
    weft__lock_release(&ga.lock);
    if (b)
        return;
    b = malloc(sizeof *b);
    if (!b)
        for (int i = 0; i + 1 < GBATCH; i++)
            top[i]->link = top[i + 1];
    weft__lock_acquire(&ga.lock);
    if (b) {
        gbatch_share(b, top);
    } else {
        top[GBATCH - 1]->link = ga.gloose;
        ga.gloose = top[0];
    }
    weft__lock_release(&ga.lock);
}

uint64_t weft__g_ids(weft__g_cache *c) {
    if (!c)
        return atomic_fetch_add_explicit(&next_gid, 1, memory_order_relaxed);
    c->id_next =
        atomic_fetch_add_explicit(&next_gid, ID_BATCH, memory_order_relaxed);
    c->id_end = c->id_next + ID_BATCH;
    return c->id_next++;
}

void weft__g_live_thread(long d) {
    atomic_fetch_add_explicit(&ga.nlive_threads, d, memory_order_release);
}

long weft__g_live_threads(void) {
    return atomic_load_explicit(&ga.nlive_threads, memory_order_acquire);
}

void weft__foreach_g(void (*fn)(weft__g *g, void *arg), void *arg) {
    /* No lock: SIGQUIT's dump runs here, maybe on a thread interrupted
     * while it holds the lock.  Chunks are only ever prepended, each
     * complete before it is published, and live until weft__g_release_all
     * unlinks them all (NULL before the first spawn and after it). */
    for (struct gchunk *c =
             atomic_load_explicit(&ga.chunks, memory_order_acquire);
         c; c = c->next)
        for (int i = 0; i < GCHUNK; i++)
            if (atomic_load_explicit(&c->g[i].status, memory_order_acquire))
                fn(&c->g[i], arg);
}

void weft__g_release_all(void) {
    struct gchunk *c = atomic_exchange(&ga.chunks, NULL);
    while (c) {
        struct gchunk *next = c->next;
        munmap(c, GCHUNK_BYTES);
        c = next;
    }
    for (int full = 0; full < 2; full++) {
        struct gbatch **list = full ? &ga.gfull : &ga.gempty;
        while (*list) {
            struct gbatch *b = *list;
            *list = b->next;
            free(b);
        }
    }
    ga.gloose = NULL;
    atomic_store(&ga.nlive_threads, 0);
}

void weft__g_atfork(int phase) {
    if (phase == 0)
        weft__lock_acquire(&ga.lock);
    else
        weft__lock_release(&ga.lock);
}
