/* SPDX-License-Identifier: MIT */
/*
 * Select, after Go's selectgo.
 *
 * Working arrays, on the stack up to SMALL cases, else one malloc:
 *   order  indices of the cases with a channel, randomly permuted (poll
 *          order), so a case that is always ready cannot starve another;
 *   locks  the distinct channels in address order (lock order): every
 *          select takes its locks in that global order, so two selects
 *          never deadlock, and a channel named by several cases (even as
 *          send and receive at once) is locked once;
 *   nodes  one weft__wnode per case, all pointing at one shared park.
 *
 * Pass 0, one lock at a time: the first case in poll order that can
 *   complete now does (see try_each).
 * Pass 1, all locks held: the same again, now atomically over all cases
 *   (the same code as weft_send/weft_recv, weft__chan_*_locked).
 * Pass 2: enqueue one node per case on its channel's sendq/recvq and block;
 *   the unlock callback releases every lock once the caller cannot miss a
 *   wake-up.  The first waker to claim the park completes its case from
 *   the other side and records park->fired (the node's idx) and err.
 * Pass 3, after waking: relock every channel except the one whose case
 *   fired and unlink the nodes there (those popped by losing wakers are
 *   already unlinked, which weft__wq_remove tolerates), then report.
 *
 * Why pass 3 must skip the fired channel: the lifetime rule holds for a
 * select as for weft_send, so once the partner's operation has completed
 * it may free that channel.  The partner unlinks every other node of this
 * select on that channel itself, under its lock, before it unparks us
 * (weft__select_claimed; only a select naming one channel in several cases
 * has any).  A timed-out select (or one whose timer could not be armed)
 * had no partner and relocks everything.
 */
#include "runtime.h"
#include "weft_internal.h"

#include <limits.h>
#include <stdint.h>

#define SMALL 8

typedef struct lockset {
    weft_chan **v; /* distinct channels, address order */
    size_t n;
} lockset;

static int validate(const weft_case *cases, size_t n) {
    if ((!cases && n > 0) || n > INT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const weft_case *k = &cases[i];
        if (k->op != WEFT_RECV && k->op != WEFT_SEND)
            return -EINVAL;
        if (k->op == WEFT_SEND && k->chan && !k->elem && k->chan->elem_size)
            return -EINVAL; /* no value to send */
    }
    return 0;
}

/* Inside-out Fisher-Yates over the cases that have a channel.  One draw
 * from the worker's PRNG seeds a local LCG for the rest (one call instead
 * of one per case; under WEFT_SEED the order still follows the seed), and
 * each index in [0, k] comes from a multiply and shift, not a division. */
static size_t poll_order(const weft_case *cases, size_t n, int *order) {
    uint64_t x = weft__rand();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].chan)
            continue;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)(((x >> 32) * (k + 1)) >> 32);
        order[k] = order[j];
        order[j] = (int)i;
        k++;
    }
    return k;
}

static int chan_cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (weft_chan *const *)a;
    uintptr_t y = (uintptr_t) * (weft_chan *const *)b;
    return (x > y) - (x < y);
}

static void sort_chans(weft_chan **v, size_t n) {
    if (n > SMALL) {
        qsort(v, n, sizeof *v, chan_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        weft_chan *c = v[i];
        size_t j = i;
        for (; j > 0 && (uintptr_t)v[j - 1] > (uintptr_t)c; j--)
            v[j] = v[j - 1];
        v[j] = c;
    }
}

static lockset lock_order(const weft_case *cases, const int *order, size_t k,
                          weft_chan **v) {
    for (size_t i = 0; i < k; i++)
        v[i] = cases[order[i]].chan;
    sort_chans(v, k);
    size_t d = 0;
    for (size_t i = 0; i < k; i++)
        if (d == 0 || v[d - 1] != v[i])
            v[d++] = v[i];
    return (lockset){v, d};
}

/* A select blocked in pass 2.  The park comes first: a waker holding a
 * node finds the select from node->park (weft__select_claimed). */
typedef struct sel {
    weft__park p;
    const weft_case *cases;
    weft__wnode *nodes;
    size_t n;
    bool shared; /* some channel is named by more than one case */
} sel;

static weft__wq *queue_of(const weft_case *cs) {
    return cs->op == WEFT_SEND ? &cs->chan->sendq : &cs->chan->recvq;
}

/* Lock (unlock) every channel of v but skip (NULL: all of them). */
static void lock_all(weft_chan *const *v, size_t n, const weft_chan *skip) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != skip)
            weft__lock_acquire(&v[i]->lock);
}

static void release_all(weft_chan *const *v, size_t n, const weft_chan *skip) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != skip)
            weft__lock_release(&v[i]->lock);
}

/*
 * The unlock callback of pass 2.  For a goroutine it runs on the worker's
 * g0 after the goroutine switched out, and it reads ls, which lives on the
 * goroutine's stack (and ls->v, on that stack or in its malloc block).  By
 * then the goroutine may already be resuming elsewhere (a deadline or a
 * waker on another channel of this select), so the stack frame must stay
 * alive for as long as this reads it.  Invariant that guarantees it: each
 * entry is read before its lock is released, and the woken goroutine
 * acquires, in the same order, every lock but the fired channel's (pass 3)
 * before it can return and free anything.  A partner on entry f can only
 * claim the park after lock f is released, when entries 0..f have been
 * read; each later entry j is read while lock j is still held here, and
 * the woken goroutine needs lock j too, so it cannot get past j before
 * entry j has been read.  Releasing the last lock is the last access.
 */
static void unlock_all(void *arg) {
    const lockset *ls = arg;
    release_all(ls->v, ls->n, NULL);
}

void weft__select_claimed(weft_chan *c, weft__wnode *won) {
    sel *s = (sel *)won->park;
    if (!s->shared)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->cases[i].chan == c)
            weft__wq_remove(queue_of(&s->cases[i]), &s->nodes[i]);
}

static int try_case(weft_case *cs, weft__park **wake) {
    return cs->op == WEFT_SEND
               ? weft__chan_send_locked(cs->chan, cs->elem, wake)
               : weft__chan_recv_locked(cs->chan, cs->elem, wake);
}

/* Pass 1: the first case in poll order that completes now, or -1. */
static int try_cases(weft_case *cases, const int *order, size_t k,
                     weft__park **wake, int *err) {
    for (size_t i = 0; i < k; i++) {
        int r = try_case(&cases[order[i]], wake);
        if (r != -EAGAIN) {
            *err = r;
            return order[i];
        }
    }
    return -1;
}

/* Passes 2 and 3; called with every lock held, returns with none. */
static int wait_cases(weft_case *cases, size_t n, size_t k, weft__wnode *nodes,
                      lockset *ls, int64_t timeout_ns) {
    sel s = {.cases = cases, .nodes = nodes, .n = n, .shared = ls->n < k};
    weft__park_init(&s.p, "select", NULL);
    s.p.multi = true;
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].chan)
            continue;
        nodes[i] =
            (weft__wnode){.park = &s.p, .elem = cases[i].elem, .idx = (int)i};
        weft__wq_push(queue_of(&cases[i]), &nodes[i]);
    }
    int r = weft__block(&s.p, weft__deadline(timeout_ns), unlock_all, ls);
    /* r < 0: no partner, every channel is still ours to touch */
    weft_chan *done = r < 0 ? NULL : cases[s.p.fired].chan;
    lock_all(ls->v, ls->n, done);
    for (size_t i = 0; i < n; i++)
        if (cases[i].chan && cases[i].chan != done)
            weft__wq_remove(queue_of(&cases[i]), &nodes[i]);
    release_all(ls->v, ls->n, done);
    if (r < 0)
        return r;
    cases[s.p.fired].err = s.p.err;
    return s.p.fired;
}

/* Pass 0: try each case in poll order under its own lock alone, skipping
 * those that do not even look ready (weft__chan_ready_hint).  Taking
 * the first that can proceed is still a uniform pick among the ready cases
 * (the order is random), and when one is ready - the common case under
 * load - it costs one lock instead of all of them.  Finding none proves
 * nothing with several cases: each was seen at another instant (a value
 * moving from a channel not yet looked at to one already passed is
 * missed), so only pass 1, all locks held, may answer Go's default. */
static int try_each(weft_case *cases, const int *order, size_t k) {
    for (size_t i = 0; i < k; i++) {
        weft_case *cs = &cases[order[i]];
        weft_chan *c = cs->chan;
        if (!weft__chan_ready_hint(c, cs->op == WEFT_SEND))
            continue;
        weft__park *wake = NULL;
        weft__lock_acquire(&c->lock);
        int r = try_case(cs, &wake);
        weft__lock_release(&c->lock);
        if (r == -EAGAIN)
            continue;
        if (wake)
            weft__unpark(wake);
        cs->err = r;
        return order[i];
    }
    return -1;
}

static int select_locked(weft_case *cases, size_t n, int64_t timeout_ns,
                         int *order, weft_chan **chans, weft__wnode *nodes) {
    size_t k = poll_order(cases, n, order);
    int fired = try_each(cases, order, k);
    if (fired >= 0 || (timeout_ns == 0 && k == 1))
        return fired >= 0 ? fired : -ETIMEDOUT;
    lockset ls = lock_order(cases, order, k, chans);
    lock_all(ls.v, ls.n, NULL);
    weft__park *wake = NULL;
    int err = 0;
    fired = try_cases(cases, order, k, &wake, &err);
    if (fired >= 0) {
        release_all(ls.v, ls.n, NULL);
        if (wake)
            weft__unpark(wake);
        cases[fired].err = err;
        return fired;
    }
    if (timeout_ns == 0) {
        release_all(ls.v, ls.n, NULL);
        return -ETIMEDOUT;
    }
    return wait_cases(cases, n, k, nodes, &ls, timeout_ns);
}

int weft_select(weft_case *cases, size_t n, int64_t timeout_ns) {
    int r = validate(cases, n);
    if (r)
        return r;
    weft__ensure();
    if (timeout_ns < 0 && timeout_ns != WEFT_FOREVER)
        timeout_ns = 0;
    if (n <= SMALL) {
        int order[SMALL];
        weft_chan *chans[SMALL];
        weft__wnode nodes[SMALL];
        return select_locked(cases, n, timeout_ns, order, chans, nodes);
    }
    size_t per = sizeof(weft__wnode) + sizeof(weft_chan *) + sizeof(int);
    weft__wnode *nodes = malloc(n * per);
    if (!nodes)
        return -ENOMEM;
    weft_chan **chans = (weft_chan **)(nodes + n);
    r = select_locked(cases, n, timeout_ns, (int *)(chans + n), chans, nodes);
    free(nodes);
    return r;
}
