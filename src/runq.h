/* SPDX-License-Identifier: MIT */
/*
 * A P's local run queue and runnext slot: the scheduler's hottest data,
 * private to the scheduler core (proc.h embeds them in the P; sched.c is
 * the one file that operates on them), all inline.
 *
 *   - runq: a bounded ring (WEFT__RUNQ) of runnable goroutines.  The owner
 *     pushes at tail and pops at head; other workers steal half of it at
 *     head with a CAS on head.  Slots are atomics so a stealer that loses
 *     the CAS race never reads a torn pointer.  A full ring spills half of
 *     itself to the global queue (runq_put_slow).
 *   - runnext: one slot for the goroutine most recently woken by the
 *     running one, so a ping-pong or a pipeline stays on one core and in
 *     cache.  The owner swaps it without atomic read-modify-writes
 *     (next_swap); another worker takes it only when the owner seems stuck
 *     (next_steal).
 */
#ifndef WEFT_RUNQ_H
#define WEFT_RUNQ_H

#include "sched.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

/* head, tail and the ring change only when the ring is used: separate
 * lines keep a stealer's reads of one from stalling the owner's writes of
 * another. */
typedef struct weft__runq {
    _Alignas(WEFT__CACHELINE) atomic_uint head; /* stealers CAS this */
    _Alignas(WEFT__CACHELINE) atomic_uint tail; /* owner stores this */
    _Atomic(weft__g *) ring[WEFT__RUNQ];
} weft__runq;

typedef struct weft__runnext {
    _Atomic(weft__g *) g;
    atomic_uint busy; /* the owner is using the slot (see next_swap) */
    atomic_uint req;  /* a stealer wants it */
} weft__runnext;

/* Ring slots ahead: a cache-line transfer takes several runs. */
#define PREFETCH_AHEAD 6

/* Move half the ring plus g to the global queue, as one batch (in a spare
 * from *spare); without memory for a batch they go as a linked list. */
static void runq_put_slow(weft__runq *q, weft__gq_batch **spare, weft__g *g,
                          unsigned h, unsigned t) {
    unsigned n = (t - h) / 2;
    weft__gq_batch *b = weft__gq_batch_new(spare);
    weft__g *list[WEFT__RUNQ / 2 + 1];
    weft__g **batch = b ? b->g : list;
    for (unsigned i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&q->ring[(h + i) % WEFT__RUNQ],
                                        memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(
            &q->head, &h, h + n, memory_order_release, memory_order_relaxed)) {
        /* stealers made room meanwhile */
        unsigned t2 = atomic_load_explicit(&q->tail, memory_order_relaxed);
        atomic_store_explicit(&q->ring[t2 % WEFT__RUNQ], g,
                              memory_order_relaxed);
        atomic_store_explicit(&q->tail, t2 + 1, memory_order_release);
        *spare = b; /* unused: weft__gq_batch_new left the slot empty */
        return;
    }
    batch[n] = g;
    if (b) {
        b->n = n + 1;
        weft__gq_put_batch(spare, b);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        batch[i]->link = batch[i + 1];
    g->link = NULL;
    weft__gq_put_list(batch[0], g, n + 1);
}

static inline void runq_put(weft__runq *q, weft__gq_batch **spare, weft__g *g) {
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
    if (t - h < WEFT__RUNQ) {
        atomic_store_explicit(&q->ring[t % WEFT__RUNQ], g,
                              memory_order_relaxed);
        atomic_store_explicit(&q->tail, t + 1, memory_order_release);
        return;
    }
    runq_put_slow(q, spare, g, h, t);
}

/* Queue gs[0..n) in order: one publication of tail when they fit (a batch
 * from the global queue into an empty ring), else one by one. */
static inline void runq_put_many(weft__runq *q, weft__gq_batch **spare,
                                 weft__g *const *gs, size_t n) {
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
    if (t - h + n > WEFT__RUNQ) {
        for (size_t i = 0; i < n; i++)
            runq_put(q, spare, gs[i]);
        return;
    }
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&q->ring[(t + i) % WEFT__RUNQ], gs[i],
                              memory_order_relaxed);
    atomic_store_explicit(&q->tail, t + (unsigned)n, memory_order_release);
}

static inline weft__g *ring_get(weft__runq *q) {
    for (;;) {
        unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        weft__g *g = atomic_load_explicit(&q->ring[h % WEFT__RUNQ],
                                          memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1,
                                                  memory_order_release,
                                                  memory_order_relaxed)) {
            if (t - h > PREFETCH_AHEAD)
                weft__g_prefetch(atomic_load_explicit(
                    &q->ring[(h + PREFETCH_AHEAD) % WEFT__RUNQ],
                    memory_order_relaxed));
            return g;
        }
    }
}

static inline bool ring_empty(weft__runq *q) {
    unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
    unsigned t = atomic_load_explicit(&q->tail, memory_order_acquire);
    return h == t;
}

/* Steal half of v's ring into q; returns one goroutine to run.  v's
 * runnext is not touched: only a rescue takes it (next_steal), once v has
 * not scheduled for a whole look.  (Go's stealers take it after 3 us;
 * here that costs a membarrier, and a goroutine readied by a running one
 * is usually about to run on that core.) */
static inline weft__g *runq_steal(weft__runq *q, weft__runq *v) {
    for (;;) {
        unsigned h = atomic_load_explicit(&v->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&v->tail, memory_order_acquire);
        unsigned n = t - h;
        n -= n / 2;
        if (n == 0)
            return NULL;
        if (n > WEFT__RUNQ / 2)
            continue; /* inconsistent snapshot */
        unsigned wt = atomic_load_explicit(&q->tail, memory_order_relaxed);
        for (unsigned i = 0; i < n; i++) {
            weft__g *g = atomic_load_explicit(&v->ring[(h + i) % WEFT__RUNQ],
                                              memory_order_relaxed);
            atomic_store_explicit(&q->ring[(wt + i) % WEFT__RUNQ], g,
                                  memory_order_relaxed);
        }
        if (!atomic_compare_exchange_weak_explicit(&v->head, &h, h + n,
                                                   memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        n--;
        weft__g *g = atomic_load_explicit(&q->ring[(wt + n) % WEFT__RUNQ],
                                          memory_order_relaxed);
        if (n)
            atomic_store_explicit(&q->tail, wt + n, memory_order_release);
        return g;
    }
}

/*
 * runnext without read-modify-writes on the owner's side.  The owner swaps
 * runnext at every hand-off; another worker takes it only when the owner
 * seems stuck.  So the owner uses plain loads and stores, and the rare
 * stealer pays for both with an asymmetric fence: it raises req, then
 * sys_membarrier runs a full fence on every CPU running this process.
 * Afterwards either the stealer sees the owner's busy (and waits for the
 * owner to leave its few instructions), or the owner's next entry sees req
 * (and waits for the stealer to finish).  Without membarrier (fenced
 * false: old kernels, qemu-user, valgrind) both sides use atomic
 * exchanges.
 */
static inline void next_enter(weft__runnext *s) {
    atomic_store_explicit(&s->busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* membarrier does the rest */
    while (
        WEFT__UNLIKELY(atomic_load_explicit(&s->req, memory_order_acquire))) {
        atomic_store_explicit(&s->busy, 0, memory_order_release);
        while (atomic_load_explicit(&s->req, memory_order_acquire))
            weft__cpu_relax();
        atomic_store_explicit(&s->busy, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
    }
}

/* Owner only: put g (or NULL) in the slot; returns what was there. */
static inline weft__g *next_swap(weft__runnext *s, weft__g *g, bool fenced) {
    if (!fenced)
        return atomic_exchange_explicit(&s->g, g, memory_order_acq_rel);
    next_enter(s);
    weft__g *old = atomic_load_explicit(&s->g, memory_order_relaxed);
    atomic_store_explicit(&s->g, g, memory_order_relaxed);
    atomic_store_explicit(&s->busy, 0, memory_order_release);
    return old;
}

/* Owner only: take what the slot holds.  Only the owner ever fills it, so
 * a NULL seen here is current. */
static inline weft__g *next_take(weft__runnext *s, bool fenced) {
    if (!atomic_load_explicit(&s->g, memory_order_relaxed))
        return NULL;
    return next_swap(s, NULL, fenced);
}

/* Another worker: take v's slot. */
static inline weft__g *next_steal(weft__runnext *v, bool fenced) {
    if (!fenced)
        return atomic_exchange_explicit(&v->g, NULL, memory_order_acquire);
    unsigned zero = 0;
    if (!atomic_compare_exchange_strong(&v->req, &zero, 1))
        return NULL; /* another stealer is at it */
    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    while (atomic_load_explicit(&v->busy, memory_order_acquire))
        weft__cpu_relax();
    weft__g *g = atomic_load_explicit(&v->g, memory_order_relaxed);
    atomic_store_explicit(&v->g, NULL, memory_order_relaxed);
    atomic_store_explicit(&v->req, 0, memory_order_release);
    return g;
}

static inline bool next_empty(weft__runnext *s) {
    return !atomic_load_explicit(&s->g, memory_order_acquire);
}

#endif
