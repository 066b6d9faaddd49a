/* SPDX-License-Identifier: MIT */
/*
 * Layer 5, the waiter (waiter.c): how anything in weft blocks and is woken,
 * goroutines and plain threads alike.  Owns the park, the wait queues, the
 * helpers every blocking object is built from, the registry of plain
 * threads blocked in weft and the call sites weft_dump shows.
 *
 * The protocol:
 *
 *   A blocked call owns a weft__park on its stack.  Wait queues of channels
 *   and sync objects hold weft__wnode entries pointing at it (select puts
 *   one node per case on several queues, all sharing one park).  A waker
 *   must win weft__claim(p) before it touches the waiter's data: exactly
 *   one party (a waker, or the deadline timer) claims a park.  The winner
 *   writes its results (p->err, p->fired, copied elements), releases the
 *   object's lock, then calls weft__unpark(p) as its very last access to
 *   the object - so the woken party may free the object at once.
 *
 *   weft__block() publishes nothing itself.  The caller enqueues its nodes
 *   while holding the object's lock and passes an unlock callback; for a
 *   goroutine that callback runs on the worker's g0 *after* the goroutine
 *   has switched out, so no waker (who needs the lock) can unpark a
 *   goroutine that is still running.  (weft__ready also waits for a
 *   goroutine whose status still says RUNNING, which covers wakers that need
 *   no lock, such as the deadline timer.)  A plain thread runs the callback and
 *   then sleeps on a futex.  After a timeout the caller must take the lock
 *   again and remove its nodes (a waker that lost the claim race leaves
 *   them alone).
 *
 * Most objects need only the two idioms of the helpers below: a waiter
 * (park and node on the stack) queued on one queue with weft__wq_wait, and
 * a waker that takes the first claimable node with weft__wq_take and
 * releases the lock with weft__unlock_unpark (or claims many with
 * weft__wq_claim and weft__unlock_unpark_list).  Select and the descriptor
 * waits, with nodes on several queues, use the primitives directly.
 */
#ifndef WEFT_WAITER_H
#define WEFT_WAITER_H

#include "sched.h"
#include "sys.h"
#include "timer.h"
#include "trace.h"

struct weft__park {
    weft__g *g;          /* NULL: a plain thread sleeping on futex */
    atomic_uint claimed; /* 0 until one party claims it */
    atomic_uint futex;   /* plain threads: becomes 1 on unpark */
    int err;             /* result for the woken party */
    int fired;           /* select: index of the case that completed */
    bool timedout;
    bool multi;      /* more than one waker may claim it (select's nodes,
                        a context's hook): set before blocking */
    bool solo;       /* one node and no deadline: set by weft__block */
    const char *why; /* for weft_dump: "chan receive", "mutex", ... */
    const void *obj;
    weft__timer timer;      /* deadline, goroutines only */
    void (*unlock)(void *); /* weft__block's callback, run on g0 */
    void *unlock_arg;
    weft__park *tnext, *tprev; /* blocked plain threads, for weft_dump */
    int tid;
    int site_line; /* the user's call site (weft__site), or 0 */
    const char *site_file;
    int64_t tdeadline; /* weft__block's deadline, -1 = none (diagnostics) */
};

typedef struct weft__wnode weft__wnode;
struct weft__wnode {
    weft__wnode *next, *prev;
    weft__park *park;
    void *elem;    /* channel element source/destination */
    int idx;       /* select case index */
    int64_t since; /* mutex: when the waiter first queued (starvation) */
};

typedef struct weft__wq {
    weft__wnode *head, *tail;
} weft__wq;

/* Intrusive FIFO of waiters; the owning object's lock protects it.  On
 * every channel operation's path, hence inline.  head is also read without
 * the lock (weft__wq_maybe_waiting), so it is written with atomic stores:
 * plain moves on every target, but a race detector sees no data race. */
static inline void weft__wq_set_head(weft__wq *q, weft__wnode *n) {
    __atomic_store_n(&q->head, n, __ATOMIC_RELAXED);
}

/* Without the lock: a hint that may be stale by the time it returns. */
static inline bool weft__wq_maybe_waiting(weft__wq *q) {
    return __atomic_load_n(&q->head, __ATOMIC_RELAXED) != NULL;
}

static inline void weft__wq_push(weft__wq *q, weft__wnode *n) {
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        weft__wq_set_head(q, n);
    q->tail = n;
}

static inline void weft__wq_push_front(weft__wq *q, weft__wnode *n) {
    n->prev = NULL;
    n->next = q->head;
    if (q->head)
        q->head->prev = n;
    else
        q->tail = n;
    weft__wq_set_head(q, n);
}

static inline void weft__wq_remove(weft__wq *q, weft__wnode *n) {
    if (!n->prev && q->head != n)
        return; /* not queued: a waker popped it already */
    if (n->prev)
        n->prev->next = n->next;
    else
        weft__wq_set_head(q, n->next);
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->next = n->prev = NULL;
}

static inline weft__wnode *weft__wq_pop(weft__wq *q) {
    weft__wnode *n = q->head;
    if (n)
        weft__wq_remove(q, n);
    return n;
}

/* Atomically take the right to wake p; true for exactly one caller. */
static inline bool weft__claim(weft__park *p) {
    if (p->solo) {
        /* one node, no deadline: whoever popped the node (under the
         * object's lock) is the only possible claimer, no race to settle */
        atomic_store_explicit(&p->claimed, 1, memory_order_relaxed);
        return true;
    }
    unsigned zero = 0;
    return atomic_compare_exchange_strong_explicit(
        &p->claimed, &zero, 1, memory_order_acq_rel, memory_order_relaxed);
}

/* ---- call sites and the registry of blocked threads (waiter.c) ---------- */

/* From weft__park_init: give p the call site weft__site left, if that was
 * left by the call now blocking on p. */
void weft__park_diag_init(weft__park *p);
/* A plain thread starts (on) or stops (off) blocking on p. */
void weft__thread_blocked(weft__park *p, bool on);
/* A weft_blocking pool thread starts (on) or stops (off) waiting for work:
 * while it waits it is one of weft's own threads, not a user thread. */
void weft__pool_idle(bool on);
/* For the deadlock check: the thread registry's generation (see waiter.c),
 * and how many threads sleep in weft for good (blocked plain threads whose
 * park is unclaimed and has no deadline, plus idle pool threads); -1 if a
 * listed thread has a deadline or is being woken. */
/* fork(): 0 before (take the registry's lock), 1 in the parent, 2 in the
 * child (forget the parent's threads); both release it. */
void weft__threads_atfork(int phase);
uint64_t weft__threads_gen(void);
int weft__threads_asleep(void);
/* Call fn for every blocked plain thread's park, under the registry's
 * lock; with bounded (a signal handler, which may have interrupted the
 * holder), false instead of waiting long for it. */
bool weft__threads_walk(void (*fn)(const weft__park *p, void *arg), void *arg,
                        bool bounded);
/* weft_blocking calls in progress, queued or running (keeps the deadlock
 * detector quiet).  blocking.c counts them; the counter is defined with the
 * registry (waiter.c), which the detector reads. */
extern atomic_size_t weft__blocking_calls;
static inline size_t weft__blocking_pending(void) {
    return atomic_load_explicit(&weft__blocking_calls, memory_order_acquire);
}
/* A descriptor wait ("fd read", "fd write": fdio.c) carries its fd, not an
 * address, as the park's obj: how the dump and the trace show it. */
static inline bool weft__why_is_fd(const char *why) {
    return why[0] == 'f' && why[1] == 'd' && why[2] == ' ';
}

/* ---- park, block, unpark ------------------------------------------------- */

/* Bind p to the caller (goroutine or thread) before enqueueing it, with
 * the call site weft_dump shows (file NULL: none).  Inline, as is
 * weft__unpark: both are on every channel operation's path. */
static inline void weft__park_init_at(weft__park *p, const char *why,
                                      const void *obj, const char *file,
                                      int line) {
    p->g = weft__curg();
    atomic_store_explicit(&p->claimed, 0, memory_order_relaxed);
    atomic_store_explicit(&p->futex, 0, memory_order_relaxed);
    p->err = 0;
    p->fired = -1;
    p->timedout = false;
    p->multi = false;
    p->solo = false;
    p->why = why;
    p->obj = obj;
    p->site_file = file;
    p->site_line = line;
}

/* The same with the call site weft__site left, if it belongs to this call
 * (weft__park_diag_init). */
static inline void weft__park_init(weft__park *p, const char *why,
                                   const void *obj) {
    weft__park_init_at(p, why, obj, NULL, 0);
    weft__park_diag_init(p);
}

/* The after-hook of a goroutine's park (weft__leave): publishes WAITING,
 * then runs p's unlock callback. */
void weft__parked_after(weft__worker *w, void *arg);

/* Switch the goroutine that owns p out until p is unparked, keeping p in
 * g->park meanwhile for weft_dump. */
static inline void weft__park_leave(weft__park *p) {
    atomic_store_explicit(&p->g->park, p, memory_order_release);
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_block(p);
    weft__leave(p->g, weft__parked_after, p);
    /* p->g loaded again: one register fewer held across the switch */
    atomic_store_explicit(&p->g->park, NULL, memory_order_relaxed);
}

/* weft__block for a plain thread or with a deadline (waiter.c); the
 * caller has stored unlock, its argument and the deadline in p. */
int weft__block_slow(weft__park *p, int64_t deadline, void (*unlock)(void *),
                     void *arg);

/* Block until p is claimed and unparked, or until deadline (absolute, -1 =
 * never) passes and this call claims p itself.  unlock(arg) runs once the
 * caller cannot miss an unpark.  Returns 0, or, having claimed p itself
 * (p->timedout), -ETIMEDOUT or -ENOMEM (no memory for the deadline's timer:
 * the call did not wait).  After either the caller must unlink its nodes.
 * Inline for a goroutine's wait without a deadline, every channel
 * operation's blocking path. */
static inline int weft__block(weft__park *p, int64_t deadline,
                              void (*unlock)(void *), void *arg) {
    p->unlock = unlock;
    p->unlock_arg = arg;
    p->tdeadline = deadline;
    /* published to wakers by the unlock, like the nodes.  A multi park may
     * already be in a waker's hands (a context's hook, added before this
     * call), so it keeps the false weft__park_init wrote. */
    if (!p->multi)
        p->solo = deadline < 0;
    if (WEFT__UNLIKELY(deadline >= 0 || !p->g))
        return weft__block_slow(p, deadline, unlock, arg);
    weft__park_leave(p);
    return 0;
}

/* Wake the owner of a claimed p.  The last access the waker makes to p. */
static inline void weft__unpark(weft__park *p) {
    weft__g *g = p->g;
    if (g) {
        if (WEFT__UNLIKELY(weft__tracing()))
            weft__trace_wake(g);
        weft__ready(g);
        return;
    }
    atomic_store_explicit(&p->futex, 1, memory_order_release);
    weft__futex_wake(&p->futex, 1);
}

/* ---- waiting on one queue ------------------------------------------------ */

/* A blocked call's park and its one queue node, on the caller's stack. */
typedef struct weft__waiter {
    weft__park park;
    weft__wnode node;
} weft__waiter;

/* Bind w to the caller (weft__park_init_at: file and line are the call
 * site, or NULL, 0); elem is the node's element (a channel's source or
 * destination; NULL elsewhere). */
static inline void weft__waiter_init_at(weft__waiter *w, const char *why,
                                        const void *obj, void *elem,
                                        const char *file, int line) {
    weft__park_init_at(&w->park, why, obj, file, line);
    w->node = (weft__wnode){.park = &w->park, .elem = elem};
}

/* The same with weft__park_init's call site. */
static inline void weft__waiter_init(weft__waiter *w, const char *why,
                                     const void *obj, void *elem) {
    weft__waiter_init_at(w, why, obj, elem, NULL, 0);
    weft__park_diag_init(&w->park);
}

/* With l held and w's node queued on q: block until a waker claims w or
 * deadline (-1: none) passes; l is released once the caller cannot miss
 * the wake-up.  Returns weft__block's result; after a negative one the node
 * has been unlinked, under l, again.  What the waker handed over is in
 * w->park.err. */
static inline int weft__waiter_block(weft__waiter *w, weft__wq *q,
                                     weft__lock *l, int64_t deadline) {
    int r = weft__block(&w->park, deadline, weft__unlock_cb, l);
    if (WEFT__UNLIKELY(r < 0)) {
        weft__lock_acquire(l);
        weft__wq_remove(q, &w->node);
        weft__lock_release(l);
    }
    return r;
}

/* The common case: queue w at q's tail, then weft__waiter_block. */
static inline int weft__wq_wait(weft__wq *q, weft__lock *l, weft__waiter *w,
                                int64_t deadline) {
    weft__wq_push(q, &w->node);
    return weft__waiter_block(w, q, l, deadline);
}

/* ---- waking ----------------------------------------------------------------
 */

/* With the owning object's lock held: pop waiters of q until one's park can
 * be claimed, and return it; NULL when q runs empty.  A node whose claim
 * fails (a select that fired elsewhere, a waiter whose deadline fired) is
 * popped too, so that its owner's weft__wq_remove finds it gone. */
static inline weft__wnode *weft__wq_take(weft__wq *q) {
    weft__wnode *n;
    while ((n = weft__wq_pop(q)))
        if (weft__claim(n->park))
            return n;
    return NULL;
}

/* With the owning object's lock held: weft__wq_take until max are claimed
 * or q is empty; the claimed ones are pushed onto *list (linked through
 * next).  Returns how many. */
size_t weft__wq_claim(weft__wq *q, size_t max, weft__wnode **list);

/* Release l, then wake p's owner (p claimed, or NULL: nobody): the waker's
 * last touch of the object, as the protocol above requires. */
static inline void weft__unlock_unpark(weft__lock *l, weft__park *p) {
    weft__lock_release(l);
    if (p)
        weft__unpark(p);
}

/* The same for the claimed waiters on list (from weft__wq_claim). */
void weft__unlock_unpark_list(weft__lock *l, weft__wnode *list);

/* Claim every waiter of q, then weft__unlock_unpark_list. */
void weft__wq_wake_all(weft__wq *q, weft__lock *l);

#endif
