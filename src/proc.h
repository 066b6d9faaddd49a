/* SPDX-License-Identifier: MIT */
/*
 * Layer 3, what a worker owns (Go's P): its run queue and runnext
 * (runq.h), its schedule tick and offer count, its stack and goroutine
 * caches, and the M (thread.h) that runs it.  Private to the scheduler
 * core (sched.c, proc.c, monitor.c).
 *
 * A P is in one of three states:
 *   active   run by its M, counted in the procs that run goroutines;
 *   retired  the monitor handed its work to another P because its M's
 *            goroutine held the thread (a CPU loop, a blocking call).
 *            Its M still owns it, until the goroutine next switches: that
 *            M then empties its queues into the global queue, puts the P
 *            on the free list and waits as a spare (sched.c, p_release);
 *   free     no M; the monitor gives it to a spare or new M as the
 *            replacement of a retired P.
 * Only the P's M touches its single-writer fields, and a P changes M only
 * while free, under the scheduler's M lock: never two Ms at once.  The
 * monitor sets RETIRED (the only bit of `slow` it writes), steals from the
 * ring and runnext as any stealer may, and reads the tick and the counts.
 */
#ifndef WEFT_PROC_H
#define WEFT_PROC_H

#include "runq.h"
#include "thread.h"

typedef struct weft__p weft__p;

struct weft__p {
    /* The ring changes only when it is used; runnext and tick change at
     * every wake and schedule: separate lines (see runq.h). */
    weft__runq q;
    _Alignas(WEFT__CACHELINE) weft__runnext next;
    atomic_uint tick;   /* schedules so far; stealers read it */
    atomic_uint offers; /* goroutines offered to idle workers (see offer) */
    atomic_uint slow;   /* WEFT__P_*: its switches go through g0 */
    _Alignas(WEFT__CACHELINE) int id;
    int slot; /* its place among the procs: whose epoll set it sleeps in */
    atomic_uint polls;    /* polls of its set; the monitor reads it */
    atomic_bool in_set;   /* asleep in its set (p_sleep), not on the futex */
    unsigned nexts;       /* consecutive runnext picks, see runq_get */
    unsigned offers_seen; /* offers_now() when find_runnable last looked */
    bool spinning;
    atomic_bool idle; /* on the idle list (under its lock) */
    weft__stack_cache stacks;
    weft__g_cache gc;
    weft__gq_batch *gq_spare; /* an empty batch, see runq_put_slow */
    weft__p *idle_next;       /* the idle list, or the free list */
    _Atomic(weft__m *) m;     /* the M that runs it, NULL while free */
};

/* p->slow: WEFT_SEED picks every goroutine on g0 (sched.c, seed_pick); a
 * retired P gives itself up on g0.  Both make next_local decline. */
enum { WEFT__P_SEEDED = 1, WEFT__P_RETIRED = 2 };

/* A new P numbered id; NULL if out of memory. */
weft__p *weft__p_new(int id);
/* Free p; flush: hand its cached stacks back to the pool first (not in a
 * forked child: a cache may have been mid-update when its thread
 * vanished). */
void weft__p_free(weft__p *p, bool flush);

#endif
