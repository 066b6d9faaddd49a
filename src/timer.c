/* SPDX-License-Identifier: MIT */
/*
 * Timers: one binary min-heap of weft__timer, ordered by deadline.
 *
 * Any worker runs due timers (find_runnable checks now and then; the idle
 * poller sleeps in epoll exactly until the earliest deadline).  A callback
 * runs outside the heap lock with t->running set, so weft__timer_del can
 * wait for it and the caller may free t afterwards.  running holds the
 * epoch it was set in, not 1: a fork's child starts a new epoch, so a
 * callback that was running on a thread the child does not have never
 * makes the child wait.
 *
 * Invariants (under th.lock): heap[i]->idx == i; a timer not in the heap
 * has idx -1; th.next mirrors heap[0]->when (or -1) so readers need no
 * lock; n + resv <= cap, where resv counts periodic timers taken out to
 * run: each keeps its slot, so re-arming one never allocates and a
 * periodic timer cannot silently stop when memory runs out.
 *
 * The scheduler learns of a new earliest deadline through
 * weft__timer_earliest, which it installs when it starts: the heap sits
 * below the scheduler and does not call it by name.
 */
#include "timer.h"

#include <string.h>

static struct {
    weft__lock lock;
    weft__timer **heap;
    size_t n, cap, resv;
    atomic_llong next;
    atomic_size_t count;
    int epoch; /* changes only in a fork's child, before any other thread */
} th = {.next = -1, .epoch = 1};

_Atomic(weft__timer_hook) weft__timer_earliest;

static bool before(const weft__timer *a, const weft__timer *b) {
    return a->when < b->when;
}

static void place(size_t i, weft__timer *t) {
    th.heap[i] = t;
    t->idx = (int32_t)i;
}

static void sift_up(size_t i) {
    weft__timer *t = th.heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, th.heap[parent]))
            break;
        place(i, th.heap[parent]);
        i = parent;
    }
    place(i, t);
}

static void sift_down(size_t i) {
    weft__timer *t = th.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= th.n)
            break;
        if (c + 1 < th.n && before(th.heap[c + 1], th.heap[c]))
            c++;
        if (!before(th.heap[c], t))
            break;
        place(i, th.heap[c]);
        i = c;
    }
    place(i, t);
}

static void publish_next(void) {
    atomic_store_explicit(&th.next, th.n ? th.heap[0]->when : -1,
                          memory_order_release);
    atomic_store_explicit(&th.count, th.n, memory_order_release);
}

static void heap_remove(weft__timer *t) {
    size_t i = (size_t)t->idx;
    weft__timer *last = th.heap[--th.n];
    t->idx = -1;
    if (i == th.n)
        return;
    place(i, last);
    sift_down(i);
    sift_up((size_t)last->idx);
}

/* A re-arm (rearm true) uses the slot its timer kept while it ran. */
static int heap_push(weft__timer *t, bool rearm) {
    if (rearm)
        th.resv--;
    else if (th.n + th.resv == th.cap) {
        size_t cap = th.cap ? th.cap * 2 : 64;
        weft__timer **h = realloc(th.heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        th.heap = h;
        th.cap = cap;
    }
    place(th.n++, t);
    sift_up(th.n - 1);
    return 0;
}

int weft__timer_add(weft__timer *t, int64_t when) {
    t->when = when;
    weft__lock_acquire(&th.lock);
    int r = heap_push(t, false);
    bool earliest = r == 0 && th.heap[0] == t;
    publish_next();
    weft__lock_release(&th.lock);
    if (earliest) {
        weft__timer_hook hook =
            atomic_load_explicit(&weft__timer_earliest, memory_order_relaxed);
        if (hook)
            hook(when);
    }
    return r;
}

bool weft__timer_del(weft__timer *t) {
    weft__lock_acquire(&th.lock);
    bool queued = t->idx >= 0;
    if (queued) {
        heap_remove(t);
        publish_next();
    }
    t->period = 0; /* a running periodic timer must not re-arm itself */
    weft__lock_release(&th.lock);
    while (atomic_load_explicit(&t->running, memory_order_acquire) == th.epoch)
        weft__cpu_relax();
    return queued;
}

int64_t weft__timers_run(int64_t now) {
    for (;;) {
        weft__lock_acquire(&th.lock);
        if (th.n == 0 || th.heap[0]->when > now) {
            int64_t next = th.n ? th.heap[0]->when : -1;
            weft__lock_release(&th.lock);
            return next;
        }
        weft__timer *t = th.heap[0];
        heap_remove(t);
        publish_next();
        bool periodic = t->period > 0;
        if (periodic)
            th.resv++;
        atomic_store_explicit(&t->running, th.epoch, memory_order_relaxed);
        weft__lock_release(&th.lock);

        t->fn(t, now);

        weft__lock_acquire(&th.lock);
        if (t->period > 0) {
            int64_t when = weft__deadline_at(t->when, t->period);
            t->when = when > now ? when : weft__deadline_at(now, t->period);
            heap_push(t, true); /* cannot fail: see resv */
            publish_next();
        } else if (periodic) {
            th.resv--; /* stopped while it ran: its slot is free again */
        }
        atomic_store_explicit(&t->running, 0, memory_order_release);
        weft__lock_release(&th.lock);
    }
}

int64_t weft__timers_next(void) {
    return atomic_load_explicit(&th.next, memory_order_acquire);
}

size_t weft__timers_pending(void) {
    return atomic_load_explicit(&th.count, memory_order_acquire);
}

void weft__timers_release(void) {
    weft__lock_acquire(&th.lock);
    free(th.heap);
    th.heap = NULL;
    th.n = th.cap = th.resv = 0;
    publish_next();
    weft__lock_release(&th.lock);
}

/* fork(): phase 0 (prepare) locks the heap; 1 (parent) unlocks it; 2
 * (child) empties it, marking every queued timer unqueued, so that a timer
 * of the parent's stopped in the child never touches the new heap, and
 * forgets the callbacks running on the parent's threads: their reserved
 * slots, and their running flags (a new epoch). */
void weft__timers_atfork(int phase) {
    if (phase == 0) {
        weft__lock_acquire(&th.lock);
        return;
    }
    if (phase == 2) {
        for (size_t i = 0; i < th.n; i++)
            th.heap[i]->idx = -1;
        free(th.heap);
        th.heap = NULL;
        th.n = th.cap = th.resv = 0;
        th.epoch++;
        publish_next();
    }
    weft__lock_release(&th.lock);
}
