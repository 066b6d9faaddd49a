/* SPDX-License-Identifier: MIT */
/*
 * Layer 3, the scheduler core (docs/design.md, "Layers"): goroutines
 * (weft__g and its states), the workers that run them, the run queues,
 * and the two ways in and out of a goroutine's life that the layers above
 * use: weft__ready (make runnable) and weft__leave (switch out).
 *
 *   sched.c  workers, finding work, switching, ready/leave, start/stop;
 *            runq.h holds its inline run-queue and runnext operations
 *   g.c      goroutine allocation: chunks, free arrays, ids, live counts
 *   gq.c     the global run queue
 *   proc.c   Ps, what a worker owns (proc.h: private to the core)
 *   thread.c Ms, the threads that run goroutines (thread.h)
 *
 * Upper layers watch the scheduler only through the hooks declared here
 * (thread.h's weft__worker_init, weft__idle_hook), which runtime.c installs;
 * nothing in this layer calls them by name.
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include "arch/arch.h"
#include "stack.h"
#include "sys.h"
#include "thread.h"
#include "trace.h"

#include <stddef.h>

/*
 * Goroutine states (g->status), and who may change which:
 *
 *   0         the struct is free (in a g cache or a chunk).  Set by
 *             weft__g_put, on the worker that retires the goroutine.
 *   WAITING   not runnable: new (from weft__go until it is readied), or
 *             parked.  weft__go sets it for a new g; for a parked one the
 *             waiter's after-hook sets it (release store), on the context
 *             that runs once the goroutine has switched out.  A WAITING g
 *             with a non-NULL g->park is parked, without one it is new
 *             (debug.c's state_of relies on that).
 *   RUNNABLE  in a run queue, a runnext slot or the global queue.  Set by
 *             ready (the spawner, or the waker that won the claim of the
 *             goroutine's park), or by the yield after-hook.
 *   RUNNING   on a worker.  Set by the worker that dequeued it
 *             (set_running).
 *   DEAD      its function returned; the stack is about to be reused or
 *             freed.  Set by the goroutine itself (g_exit).
 *
 * Only the claimer of a goroutine's park (or its spawner) moves it from
 * WAITING to RUNNABLE, and it first waits out RUNNING: a waker can win the
 * claim before the after-hook has published WAITING.  The states a
 * goroutine enters by switching out (WAITING, RUNNABLE on a yield, free)
 * are published only by hooks that run after the switch, never by the
 * goroutine on its own stack.
 */
enum {
    WEFT__G_RUNNABLE = 1,
    WEFT__G_RUNNING,
    WEFT__G_WAITING,
    WEFT__G_DEAD,
};

typedef struct weft__park weft__park;
/* The thread an after-hook runs on (an M, thread.h); the waiter's hooks
 * still call it a worker. */
typedef weft__m weft__worker;

/* Two cache lines.  The first holds what a spawn writes and a run, a park
 * or an exit touches; it moves between the spawning and the running core
 * once each way.  The second is for the global queue's single list, the
 * loose free list, names and TSan: a free g keeps its name empty, so a
 * spawn need not touch it (see weft__g_get).
 *
 * The spawn site is in the first line too: with two workers the g structs
 * a spawner reuses were last written on the other core, and a store to the
 * second line made every spawn pay one more cache-line transfer (see
 * docs/BENCHMARKS.notes.md).  To make room, stack_size is 32
 * bits (at most WEFT_STACK_MAX: weft_init and weft_go_with check it before
 * it gets here), status a byte and the site's line 16 bits (a line past
 * WEFT__SPAWN_LINE_MAX is stored as 0: weft_dump names the file alone).
 * File and line packed into one word (48-bit address, 16-bit line) fit
 * too, but the shift and or cost a spawn one or two instructions more
 * than these two stores (callgrind, bench/spawn), and an interned site
 * index would cost a lookup per spawn. */
typedef struct weft__g {
    _Alignas(WEFT__CACHELINE) weft__regs ctx;
    weft__stack *stack; /* NULL until the goroutine first runs */
    weft_fn fn;
    void *arg;
    uint64_t id;
    _Atomic(weft__park *) park; /* blocked on, for weft_dump; NULL if free */
    const char *spawn_file; /* the weft_go* call's site (weft_dump), or NULL */
    uint32_t stack_size;    /* <= WEFT_STACK_MAX */
    uint16_t spawn_line;    /* 0: unknown, or past WEFT__SPAWN_LINE_MAX */
    atomic_uchar status;    /* WEFT__G_*, 0 while the struct is free */
    atomic_uchar flags;     /* WEFT__G_NAMED, WEFT__G_HOGWARNED */
    _Alignas(WEFT__CACHELINE) struct weft__g *link; /* see the comment above */
    void *tsan_fiber;
    char name[32];
} weft__g;

#define WEFT__SPAWN_LINE_MAX 0xffff
_Static_assert(WEFT_STACK_MAX <= UINT32_MAX, "g->stack_size is 32 bits");
/* What a spawn writes (the name only with a name) is in the first line:
 * link starts the second, and the fields a spawn stores come before it. */
_Static_assert(offsetof(weft__g, link) == WEFT__CACHELINE &&
                   offsetof(weft__g, spawn_file) < WEFT__CACHELINE &&
                   offsetof(weft__g, spawn_line) < WEFT__CACHELINE &&
                   offsetof(weft__g, stack_size) < WEFT__CACHELINE &&
                   offsetof(weft__g, id) < WEFT__CACHELINE &&
                   offsetof(weft__g, flags) < WEFT__CACHELINE,
               "a spawn writes only the g's first cache line");

/* g->flags: the name is set (it must be cleared when the g is freed); the
 * monitor has named it under WEFT_HOGWARN (once in its life). */
enum { WEFT__G_NAMED = 1, WEFT__G_HOGWARNED = 2 };

/* The scheduler's part of start-up and shutdown, in runtime.c's order.
 * weft__sched_config reads cfg and the environment and returns the number
 * of workers; weft__sched_start starts them (0, -ENOMEM, -EAGAIN);
 * weft__sched_stop stops and joins them and frees the scheduler's memory.
 * For fork: weft__sched_atfork takes (0) or releases (1, 2) the
 * scheduler's locks, and in the child weft__sched_forget drops what
 * belonged to the parent's workers. */
int weft__sched_config(const weft_config *cfg);
int weft__sched_start(void);
void weft__sched_stop(void);
void weft__sched_atfork(int phase);
void weft__sched_forget(void);
/* Number of workers, without starting the runtime. */
int weft__nprocs(void);
/* What the poller does when it would sleep without a deadline: sleep at
 * most period, then call check() if that sleep passed undisturbed (the
 * deadlock detector; NULL: sleep until woken).  check may exit. */
typedef struct weft__idle_ops {
    int64_t period;
    void (*check)(void);
} weft__idle_ops;
extern _Atomic(const weft__idle_ops *) weft__idle_hook;
/* weft_go_with after its checks and weft__ensure: make and ready the g,
 * started at file:line (NULL: unknown). */
int weft__go(weft_fn fn, void *arg, const weft_goopts *opts, const char *file,
             int line);

/* Make g runnable (from anywhere).  A goroutine woken by a goroutine goes to
 * the waker's "run next" slot. */
void weft__ready(weft__g *g);

/* Switch the running goroutine g out (the waiter's way to block).  after(m,
 * arg) runs once g's stack is no longer in use, on the context that runs
 * next on that thread; it must publish g's new state. */
void weft__leave(weft__g *g, void (*after)(weft__m *, void *), void *arg);

/* A random 32-bit number from the calling worker's (or thread's) PRNG;
 * seeded from WEFT_SEED when that is set. */
uint32_t weft__rand(void);

/* For deadlock.c: true when every worker but the caller sleeps on the idle
 * list; *epoch changes whenever any worker schedules. */
bool weft__sched_quiet(uint64_t *epoch);

/* For weft_dump: how long the running goroutine g has held its thread, as
 * the monitor last saw it (0 before its first look), and whether the
 * worker slot (P) it ran on was handed to another thread meanwhile; -1 if
 * g is not running.  A racy estimate, for diagnostics. */
int64_t weft__g_held_ns(const weft__g *g, bool *handed_off);

/* Call fn for every live goroutine (a racy snapshot, for diagnostics). */
void weft__foreach_g(void (*fn)(weft__g *g, void *arg), void *arg);

/* ---- goroutine allocation (g.c) ---------------------------------------- */

/* Start fetching the hot line of a g struct used soon: it was last written
 * by another core (the spawner, or the worker that freed it), and loading
 * it when it is needed stalls for a whole cache-line transfer. */
static inline void weft__g_prefetch(weft__g *g) {
    __builtin_prefetch(g, 1, 3);
}

#define WEFT__GFREE_MAX 64 /* free g structs a worker keeps */
#define WEFT__GPREFETCH 4  /* g structs prefetched ahead in the array */

/* What a worker keeps of the goroutine allocator, single writer: free g
 * structs, reserved ids and its live count (see g.c). */
typedef struct weft__g_cache {
    weft__g *gfree[WEFT__GFREE_MAX];
    int ngfree;
    uint64_t id_next, id_end; /* goroutine ids reserved by this worker */
    atomic_long nlive;        /* spawned here minus exited here */
} weft__g_cache;

/* The slow paths of the inlines below.  weft__g_refill: c is empty, fill
 * half of it (false: out of memory); weft__g_spill: c is full, share a
 * batch of it; weft__g_alloc1: one g for a plain thread (c NULL), or NULL;
 * weft__g_ids: an id with c's reservation used up (or for c NULL). */
bool weft__g_refill(weft__g_cache *c);
void weft__g_spill(weft__g_cache *c);
weft__g *weft__g_alloc1(void);
uint64_t weft__g_ids(weft__g_cache *c);
/* Count a goroutine spawned (+1) or exited (-1) by a plain thread. */
void weft__g_live_thread(long d);
/* Goroutines spawned by plain threads minus those that exited there. */
long weft__g_live_threads(void);
/* At shutdown (every g free) or in a forked child: unmap every g. */
void weft__g_release_all(void);
void weft__g_atfork(int phase);

/* A free g (stack NULL) from c, or from the shared lists when c is NULL
 * (a plain thread); NULL if out of memory.  Spawn's fast path. */
static inline weft__g *weft__g_get(weft__g_cache *c) {
    weft__g *g;
    if (!c) {
        if (!(g = weft__g_alloc1()))
            return NULL;
    } else {
        if (WEFT__UNLIKELY(c->ngfree == 0) && !weft__g_refill(c))
            return NULL;
        g = c->gfree[--c->ngfree];
        if (c->ngfree >= WEFT__GPREFETCH)
            weft__g_prefetch(c->gfree[c->ngfree - WEFT__GPREFETCH]);
    }
    g->stack = NULL;
    return g;
}

/* Free g into c: an exit's fast path. */
static inline void weft__g_put(weft__g_cache *c, weft__g *g) {
    atomic_store_explicit(&g->status, 0, memory_order_relaxed);
    unsigned flags = atomic_load_explicit(&g->flags, memory_order_relaxed);
    if (flags) {
        if (flags & WEFT__G_NAMED)
            g->name[0] = 0;
        atomic_store_explicit(&g->flags, 0, memory_order_relaxed);
    }
    if (WEFT__UNLIKELY(c->ngfree == WEFT__GFREE_MAX))
        weft__g_spill(c);
    c->gfree[c->ngfree++] = g;
}

/* A new goroutine id; ids are never reused. */
static inline uint64_t weft__g_new_id(weft__g_cache *c) {
    if (WEFT__UNLIKELY(!c || c->id_next == c->id_end))
        return weft__g_ids(c);
    return c->id_next++;
}

/* Count a goroutine in (+1) or out (-1) on the caller's counter. */
static inline void weft__g_live(weft__g_cache *c, long d) {
    if (!c) {
        weft__g_live_thread(d);
        return;
    }
    long v = atomic_load_explicit(&c->nlive, memory_order_relaxed);
    atomic_store_explicit(&c->nlive, v + d, memory_order_release);
}

/* ---- the global run queue (gq.c) --------------------------------------- */

#define WEFT__RUNQ 256 /* a worker's ring (runq.h) */

/* A ring's spilled half in the global queue: the worker that takes them
 * reads an array instead of chasing links through g structs another core
 * wrote last. */
typedef struct weft__gq_batch {
    struct weft__gq_batch *next;
    unsigned head, n; /* g[head..n) are queued */
    weft__g *g[WEFT__RUNQ / 2 + 1];
} weft__gq_batch;

/* Goroutines queued, for lock-free peeks (see weft__gq_len). */
extern atomic_size_t weft__gq_n;
/* Goroutines taken from it so far (written under its lock): the monitor
 * tells a queue that drains from one that waits. */
extern atomic_size_t weft__gq_taken;
static inline size_t weft__gq_len(void) {
    return atomic_load_explicit(&weft__gq_n, memory_order_acquire);
}

/* An empty batch to fill (*spare, the caller's spare, usually), NULL if
 * out of memory. */
weft__gq_batch *weft__gq_batch_new(weft__gq_batch **spare);
/* Queue b's n goroutines, and refill *spare in the same locked step. */
void weft__gq_put_batch(weft__gq_batch **spare, weft__gq_batch *b);
/* Queue n goroutines linked through g->link. */
void weft__gq_put_list(weft__g *head, weft__g *tail, size_t n);
/* Take up to max goroutines, at most a share (len / shares + 1) of the
 * queue, into out; how many.  Emptied batches refill *spare first. */
size_t weft__gq_take(weft__g **out, size_t max, int shares,
                     weft__gq_batch **spare);
/* At shutdown (only spares left) or in a forked child: free it all. */
void weft__gq_release(void);
void weft__gq_atfork(int phase);

#endif
