/* SPDX-License-Identifier: MIT */
/*
 * Ps (what a worker owns): allocation and release.  The run-queue
 * operations are runq.h's inlines, used by sched.c.
 */
#include "proc.h"

#include <string.h>

weft__p *weft__p_new(int id) {
    weft__p *p =
        aligned_alloc(WEFT__CACHELINE, (sizeof *p + WEFT__CACHELINE - 1) &
                                           ~(size_t)(WEFT__CACHELINE - 1));
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->id = id;
    return p;
}

void weft__p_free(weft__p *p, bool flush) {
    if (flush)
        weft__stack_flush(&p->stacks);
    free(p->gq_spare);
    free(p);
}
