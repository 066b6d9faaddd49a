/* SPDX-License-Identifier: MIT */
/*
 * Layer 3, what a worker owns (Go's P): its run queue and runnext
 * (runq.h), its schedule tick and offer count, its stack and goroutine
 * caches, and the id of the M (thread.h) that runs it.  Today each P has
 * one M for good; only that M touches the P's single-writer fields.
 * Private to the scheduler core (sched.c, proc.c).
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
    _Alignas(WEFT__CACHELINE) int id;
    unsigned nexts;       /* consecutive runnext picks, see runq_get */
    unsigned offers_seen; /* offers_now() when find_runnable last looked */
    atomic_uint look_tail, look_tick, look_offers; /* at the last look */
    bool spinning;
    weft__stack_cache stacks;
    weft__g_cache gc;
    weft__gq_batch *gq_spare; /* an empty batch, see runq_put_slow */
    weft__p *idle_next;
    weft__m *m; /* the M that runs it */
};

/* A new P numbered id; NULL if out of memory. */
weft__p *weft__p_new(int id);
/* Free p; flush: hand its cached stacks back to the pool first (not in a
 * forked child: a cache may have been mid-update when its thread
 * vanished). */
void weft__p_free(weft__p *p, bool flush);

#endif
