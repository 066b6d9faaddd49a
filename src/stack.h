/* SPDX-License-Identifier: MIT */
/*
 * Layer 2, goroutine stacks (stack.c): mmap'd slabs with guard pages or
 * canaries, size buckets, the per-worker cache and the shared pool.
 */
#ifndef WEFT_STACK_H
#define WEFT_STACK_H

#include "sys.h"

/* A stack's descriptor lives in the top bytes of the stack memory itself. */
typedef struct weft__stack {
    char *lo;         /* lowest usable byte (above the guard page) */
    size_t size;      /* usable bytes, descriptor excluded */
    uint64_t *canary; /* checked word at the bottom; NULL under a guard page */
    struct weft__stack *next;
} weft__stack;

/* Stacks a worker keeps for reuse without taking any lock. */
typedef struct weft__stack_cache {
    weft__stack *head;
    int n;
} weft__stack_cache;

/* A stack of at least size usable bytes, from cache c when it has one (c may
 * be NULL); NULL when memory is exhausted. */
weft__stack *weft__stack_get(weft__stack_cache *c, size_t size);
void weft__stack_put(weft__stack_cache *c, weft__stack *s);
/* Hand every stack of c back to the shared pool. */
void weft__stack_flush(weft__stack_cache *c);

#define WEFT__STACK_CANARY 0x5745465453544b21ull /* "WEFTSTK!" */

/* True while the canary at the bottom of s is intact.  Checked at every
 * switch, hence inline. */
static inline bool weft__stack_ok(const weft__stack *s) {
    return !s->canary || *s->canary == WEFT__STACK_CANARY;
}
/* True if addr lies in the guard region just below s. */
bool weft__stack_guard_hit(const weft__stack *s, const void *addr);
void weft__stack_release_all(void);
/* The stack pool's lock, held across the fork (prepare) or released. */
void weft__stack_atfork(bool prepare);

#endif
