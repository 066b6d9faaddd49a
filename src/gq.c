/* SPDX-License-Identifier: MIT */
/*
 * The global run queue: overflow of full rings, goroutines readied by
 * plain threads.
 *
 * Two FIFOs under one lock: batches (a ring's spilled half, see sched.c's
 * runq_put_slow) and single goroutines linked through g->link (readied by
 * plain threads, or spilled when no batch could be allocated).  The count
 * weft__gq_n covers both.  A taker empties the singles first: they are
 * few, and a stream of spills must not starve them.  Emptied batches are
 * kept for reuse: one spare per worker (the caller's *spare), up to
 * GQ_SPARES shared.
 */
#include "sched.h"

#define GQ_SPARES 16
#define PREFETCH_FIRST 6 /* taken goroutines prefetched here; see runq.h */

atomic_size_t weft__gq_n;
atomic_size_t weft__gq_taken;

static struct {
    _Alignas(WEFT__CACHELINE) weft__lock lock;
    weft__g *head, *tail;
    weft__gq_batch *bhead, *btail;
    weft__gq_batch *spares;
    int nspares;
} gq;

/* Under the lock: a shared spare batch, or NULL. */
static weft__gq_batch *spare_pop(void) {
    weft__gq_batch *b = gq.spares;
    if (b) {
        gq.spares = b->next;
        gq.nspares--;
    }
    return b;
}

weft__gq_batch *weft__gq_batch_new(weft__gq_batch **spare) {
    weft__gq_batch *b = *spare;
    if (b) {
        *spare = NULL;
        return b;
    }
    weft__lock_acquire(&gq.lock);
    b = spare_pop();
    weft__lock_release(&gq.lock);
    return b ? b : malloc(sizeof *b);
}

void weft__gq_put_batch(weft__gq_batch **spare, weft__gq_batch *b) {
    b->head = 0;
    b->next = NULL;
    weft__lock_acquire(&gq.lock);
    if (gq.btail)
        gq.btail->next = b;
    else
        gq.bhead = b;
    gq.btail = b;
    atomic_fetch_add_explicit(&weft__gq_n, b->n, memory_order_release);
    *spare = spare_pop();
    weft__lock_release(&gq.lock);
}

void weft__gq_put_list(weft__g *head, weft__g *tail, size_t n) {
    weft__lock_acquire(&gq.lock);
    if (gq.tail)
        gq.tail->link = head;
    else
        gq.head = head;
    gq.tail = tail;
    atomic_fetch_add_explicit(&weft__gq_n, n, memory_order_release);
    weft__lock_release(&gq.lock);
}

/* Under the lock: the next queued goroutine (the count is > 0).  An
 * emptied batch is unlinked and pushed on *done for the caller to
 * recycle. */
static weft__g *pop(weft__gq_batch **done) {
    weft__g *g = gq.head;
    if (g) {
        gq.head = g->link;
        if (!gq.head)
            gq.tail = NULL;
        return g;
    }
    weft__gq_batch *b = gq.bhead;
    g = b->g[b->head++];
    if (b->head == b->n) {
        gq.bhead = b->next;
        if (!gq.bhead)
            gq.btail = NULL;
        b->next = *done;
        *done = b;
    }
    return g;
}

/* Keep emptied batches for reuse, up to *spare and GQ_SPARES shared; free
 * the rest (a burst of spills must not pin its memory). */
static void recycle(weft__gq_batch **spare, weft__gq_batch *done) {
    if (done && !*spare) {
        *spare = done;
        done = done->next;
    }
    if (!done)
        return;
    weft__lock_acquire(&gq.lock);
    while (done && gq.nspares < GQ_SPARES) {
        weft__gq_batch *b = done;
        done = b->next;
        b->next = gq.spares;
        gq.spares = b;
        gq.nspares++;
    }
    weft__lock_release(&gq.lock);
    while (done) {
        weft__gq_batch *b = done;
        done = b->next;
        free(b);
    }
}

size_t weft__gq_take(weft__g **out, size_t max, int shares,
                     weft__gq_batch **spare) {
    if (weft__gq_len() == 0)
        return 0;
    weft__lock_acquire(&gq.lock);
    size_t len = atomic_load_explicit(&weft__gq_n, memory_order_relaxed);
    size_t n = len / (size_t)shares + 1;
    if (n > len)
        n = len;
    if (n > max)
        n = max;
    weft__gq_batch *done = NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = pop(&done);
    atomic_fetch_sub_explicit(&weft__gq_n, n, memory_order_relaxed);
    atomic_store_explicit(
        &weft__gq_taken,
        atomic_load_explicit(&weft__gq_taken, memory_order_relaxed) + n,
        memory_order_relaxed);
    weft__lock_release(&gq.lock);
    for (size_t i = 1; i < n && i <= PREFETCH_FIRST; i++)
        weft__g_prefetch(out[i]); /* the ring prefetches the later ones */
    recycle(spare, done);
    return n;
}

void weft__gq_release(void) {
    while (gq.bhead) {
        weft__gq_batch *b = gq.bhead;
        gq.bhead = b->next;
        free(b);
    }
    gq.btail = NULL;
    gq.head = gq.tail = NULL;
    atomic_store(&weft__gq_n, 0);
    while (gq.spares) {
        weft__gq_batch *b = gq.spares;
        gq.spares = b->next;
        free(b);
    }
    gq.nspares = 0;
}

void weft__gq_atfork(int phase) {
    if (phase == 0)
        weft__lock_acquire(&gq.lock);
    else
        weft__lock_release(&gq.lock);
}
