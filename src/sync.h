/* SPDX-License-Identifier: MIT */
/*
 * Layer 7, what the sync layer (sync.c, ctx.c, group.c, blocking.c) shares
 * with the files that build on it: the hooks by which a context tells a
 * waiter that it ended (ctx.c; fdio.c's and weft_sleep_ctx's context
 * variants use them).  The count of weft_blocking calls in progress is
 * the waiter's (waiter.h), for the link graph's sake.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include "sys.h"
#include "waiter.h"

/* ---- context hooks (ctx.c) ---------------------------------------------- */

/* A callback run once, on the canceller and outside every lock, when the
 * cancel node it is linked on ends.  Linked by weft__ctx_hook_add. */
typedef struct weft__ctx_hook weft__ctx_hook;
struct weft__ctx_hook {
    void (*fn)(weft__ctx_hook *h, int err);
    weft__ctx_hook *next, *prev; /* under owner's lock while linked */
    weft_ctx *owner;             /* c's nearest cancel node, or NULL */
    bool linked;
};

/* Link h to c: 0, or c's error when c has ended already (h is then not
 * linked).  A context that can never end links nothing and returns 0. */
int weft__ctx_hook_add(weft_ctx *c, weft__ctx_hook *h);
/* Unlink h: true if it was still linked (fn will never run); false when
 * the canceller has taken it (fn runs now or has run). */
bool weft__ctx_hook_del(weft__ctx_hook *h);

/* A wait that ends with its context: when the context ends, park is
 * claimed and unparked (for a park not yet claimed), or, with park NULL,
 * the eventfd efd is written (a plain thread's poll(2)).  Begin only
 * when the caller will block on park for sure (a claim wakes the park's
 * goroutine): 0, or the context's error, having linked nothing.  End
 * after the wait: 0, or the context's error if it ended meanwhile; it
 * waits out a hook still running, so w may then go. */
typedef struct weft__ctx_wait {
    weft__ctx_hook hook;
    weft__park *park;
    int efd;
    int err;
    atomic_uint done; /* the hook's last store */
} weft__ctx_wait;

int weft__ctx_wait_begin(weft__ctx_wait *w, weft_ctx *c, weft__park *p,
                         int efd);
int weft__ctx_wait_end(weft__ctx_wait *w);

#endif
