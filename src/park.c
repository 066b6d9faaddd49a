/* SPDX-License-Identifier: MIT */
/*
 * The waiter: how anything in weft blocks and is woken, for goroutines and
 * plain threads alike.  The protocol (park, claim, unpark, block, and the
 * lifetime rule that lets a woken party free the object at once) is
 * described at the top of weft_internal.h; this file implements it, plus
 * the intrusive wait queues the objects keep their waiters on.  The parts
 * on every channel operation's path (park_init, unpark, deadline) are
 * inline in weft_internal.h.
 *
 * A goroutine parks by leaving the CPU through the scheduler
 * (weft__leave); its unlock callback runs only once its stack is no longer
 * in use.  A plain thread sleeps on the futex word in its park.  A deadline
 * is a timer for a goroutine, a futex timeout for a thread; either way the
 * side that times out must win the claim, so a value is never both
 * delivered and timed out.  When the timer heap cannot grow, the goroutine
 * claims its own park at once and weft__block returns -ENOMEM: the caller
 * cleans up as after a timeout, and nothing was delivered.
 */
#include "weft_internal.h"

static void deadline_fire(weft__timer *t, int64_t now) {
    weft__park *p = t->arg;
    (void)now;
    if (weft__claim(p)) {
        p->timedout = true;
        weft__unpark(p);
    }
}

/* Runs once the parking goroutine has switched out (on g0 or on the
 * goroutine that runs next: see weft__leave).  Everything is
 * read from p first: as soon as the status says WAITING, a timer may resume
 * the goroutine elsewhere, and it can return and pop p off its stack. */
static void park_after(weft__worker *w, void *arg) {
    weft__park *p = arg;
    (void)w;
    void (*unlock)(void *) = p->unlock;
    void *ua = p->unlock_arg;
    atomic_store_explicit(&p->g->status, WEFT__G_WAITING, memory_order_release);
    if (unlock)
        unlock(ua);
}

static int block_thread(weft__park *p, int64_t deadline) {
    weft__thread_blocked(p, true);
    for (;;) {
        if (atomic_load_explicit(&p->futex, memory_order_acquire))
            break;
        int64_t wait = -1;
        if (deadline >= 0) {
            wait = deadline - weft_now();
            if (wait <= 0) {
                if (weft__claim(p)) {
                    p->timedout = true;
                    break;
                }
                deadline = -1; /* a waker won: its unpark is on the way */
                continue;
            }
        }
        weft__futex_wait(&p->futex, 0, wait);
    }
    weft__thread_blocked(p, false);
    return p->timedout ? -ETIMEDOUT : 0;
}

int weft__block(weft__park *p, int64_t deadline, void (*unlock)(void *),
                void *arg) {
    p->unlock = unlock;
    p->unlock_arg = arg;
    p->tdeadline = deadline;
    /* published to wakers by the unlock below, like the nodes.  A multi
     * park may already be in a waker's hands (a context's hook, added
     * before this call), so it keeps the false weft__park_init wrote. */
    if (!p->multi)
        p->solo = deadline < 0;
    if (!p->g) {
        if (unlock)
            unlock(arg);
        return block_thread(p, deadline);
    }
    if (deadline >= 0) {
        p->timer.fn = deadline_fire;
        p->timer.arg = p;
        p->timer.period = 0;
        if (WEFT__UNLIKELY(weft__timer_add(&p->timer, deadline) < 0)) {
            /* no timer: waiting would be untimed, so give up now, as a
             * timeout does; the caller's lock is still held, so no waker
             * can have claimed p */
            if (weft__claim(p)) {
                p->timedout = true;
                if (unlock)
                    unlock(arg);
                return -ENOMEM;
            }
            deadline = -1;
        }
    }
    weft__g *g = p->g;
    atomic_store_explicit(&g->park, p, memory_order_release);
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_block(p);
    weft__leave(g, park_after, p);
    atomic_store_explicit(&g->park, NULL, memory_order_relaxed);
    if (deadline >= 0)
        weft__timer_del(&p->timer);
    return p->timedout ? -ETIMEDOUT : 0;
}

/* ---- wait queues -------------------------------------------------------- */

size_t weft__wq_claim(weft__wq *q, size_t max, weft__wnode **list) {
    size_t k = 0;
    weft__wnode *n;
    while (k < max && (n = weft__wq_pop(q)))
        if (weft__claim(n->park)) {
            n->next = *list;
            *list = n;
            k++;
        }
    return k;
}

void weft__wq_unpark(weft__wnode *list) {
    while (list) {
        weft__wnode *n = list;
        list = n->next; /* read first: n lives on the woken party's stack */
        weft__unpark(n->park);
    }
}

void weft__wq_wake_all(weft__wq *q, weft__lock *l) {
    weft__wnode *list = NULL;
    weft__wq_claim(q, SIZE_MAX, &list);
    weft__lock_release(l);
    weft__wq_unpark(list);
}
