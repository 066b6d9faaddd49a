/* SPDX-License-Identifier: MIT */
/*
 * Select, after Go's selectgo.
 *
 * Working arrays, on the stack up to SMALL cases, else one malloc:
 *   cand   indices of the cases that look ready, among which one is drawn
 *          at random (fire_one), so a case that is always ready cannot
 *          starve another;
 *   locks  the distinct channels in address order (lock order): every
 *          select takes its locks in that global order, so two selects
 *          never deadlock, and a channel named by several cases (even as
 *          send and receive at once) is locked once;
 *   nodes  one weft__wnode per case, all pointing at one shared park.
 *
 * Pass 0, one lock at a time: validate every case and list those whose
 *   channel looks ready (weft__chan_ready_hint, no lock); draw one and try
 *   it under its own lock.  When one is ready - the common case under
 *   load - that costs one lock instead of all of them.
 * Pass 1, all locks held: the same again, now atomically over all cases:
 *   under the locks the hint is exact but for stale nodes, so only a case
 *   that looks ready is tried (the same code as weft_send/weft_recv,
 *   weft__chan_*_locked).
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
    size_t k; /* cases with a channel (n < k: some channel is named twice) */
} lockset;

/* The cases that look ready (weft__chan_ready_hint): cand[] gets their
 * indices.  With check, also validate every case (before any is performed:
 * a bad case fails the whole select). */
static inline int candidates(const weft_case *cases, size_t n, int *cand,
                             bool check) {
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        const weft_case *cs = &cases[i];
        weft_chan *c = cs->chan;
        bool send = cs->op == WEFT_SEND;
        if (check) {
            if (!send && cs->op != WEFT_RECV)
                return -EINVAL;
            if (!c)
                continue;
            if (send && !cs->elem && c->elem_size)
                return -EINVAL; /* no value to send */
        } else if (!c) {
            continue;
        }
        if (weft__chan_ready_hint(c, send))
            cand[r++] = (int)i;
    }
    return r;
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

/* The distinct channels of the cases, in lock order, into v.  Cases often
 * name their channels in ascending address order already (channels made
 * one after the other), and then neither the sort nor the pass that drops
 * duplicates runs. */
static lockset lock_order(const weft_case *cases, size_t n, weft_chan **v) {
    size_t k = 0;
    bool sorted = true;
    for (size_t i = 0; i < n; i++) {
        weft_chan *c = cases[i].chan;
        if (!c)
            continue;
        if (k > 0 && (uintptr_t)c <= (uintptr_t)v[k - 1])
            sorted = false;
        v[k++] = c;
    }
    if (sorted)
        return (lockset){v, k, k};
    sort_chans(v, k);
    size_t d = 0;
    for (size_t i = 0; i < k; i++)
        if (d == 0 || v[d - 1] != v[i])
            v[d++] = v[i];
    return (lockset){v, d, k};
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

/*
 * Complete one of the r cases listed in cand, drawn uniformly at random; a
 * case that cannot complete after all (a stale hint, or only stale nodes
 * under the lock) is dropped and the draw repeated among the others.  ls
 * NULL: pass 0, each try under its own channel's lock alone; else pass 1,
 * every lock of ls held, all released before the partner is woken when a
 * case completes.  Returns the case's index, or -1 (nothing released).
 *
 * Go's guarantee, that among the ready cases each is as likely as any
 * other, holds: every candidate is equally likely to be drawn, and by
 * symmetry so is every one that can complete.  A case that stays ready is
 * always a candidate (a hint is never wrongly false), so it is picked with
 * probability at least 1/n each time: none starves.  That costs one draw,
 * and none when a single case looks ready.
 */
static inline __attribute__((always_inline)) int
fire_one(weft_case *cases, int *cand, int r, const lockset *ls) {
    while (r > 0) {
        int j = 0;
        if (r > 1)
            j = (int)(((uint64_t)weft__rand() * (uint32_t)r) >> 32);
        weft_case *cs = &cases[cand[j]];
        weft_chan *c = cs->chan;
        weft__park *wake;
        if (!ls)
            weft__lock_acquire(&c->lock);
        int e = try_case(cs, &wake);
        if (e == -EAGAIN) {
            if (!ls)
                weft__lock_release(&c->lock);
            cand[j] = cand[--r];
            continue;
        }
        if (ls)
            release_all(ls->v, ls->n, NULL);
        else
            weft__lock_release(&c->lock);
        if (wake)
            weft__unpark(wake);
        cs->err = e;
        return (int)(cs - cases);
    }
    return -1;
}

/* Passes 2 and 3; called with every lock held, returns with none. */
static int wait_cases(weft_case *cases, size_t n, weft__wnode *nodes,
                      lockset *ls, int64_t timeout_ns) {
    sel s; /* not zeroed: weft__park_init and weft__block set the park */
    s.cases = cases;
    s.nodes = nodes;
    s.n = n;
    s.shared = ls->n < ls->k;
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

/* Pass 0 finding nothing proves nothing with several cases: each was seen
 * at another instant (a value moving from a channel not yet looked at to
 * one already passed is missed), so only pass 1, all locks held, may
 * answer Go's default.  One look at a single channel is exact.  Inline in
 * both callers, so that the common select is one call. */
static inline __attribute__((always_inline)) int
select_cases(weft_case *cases, size_t n, int64_t timeout_ns, int *cand,
             weft_chan **chans, weft__wnode *nodes) {
    int r = candidates(cases, n, cand, true);
    if (r < 0)
        return r;
    weft__ensure();
    int fired = fire_one(cases, cand, r, NULL);
    if (fired >= 0)
        return fired;
    lockset ls = lock_order(cases, n, chans);
    if (timeout_ns == 0 && ls.k <= 1)
        return -ETIMEDOUT;
    lock_all(ls.v, ls.n, NULL);
    r = candidates(cases, n, cand, false);
    fired = fire_one(cases, cand, r, &ls);
    if (fired >= 0)
        return fired;
    if (timeout_ns == 0) {
        release_all(ls.v, ls.n, NULL);
        return -ETIMEDOUT;
    }
    return wait_cases(cases, n, nodes, &ls, timeout_ns);
}

/* More than SMALL cases: the working arrays in one malloc. */
static WEFT__NOINLINE int select_big(weft_case *cases, size_t n,
                                     int64_t timeout_ns) {
    if (n > INT_MAX)
        return -EINVAL;
    size_t per = sizeof(weft__wnode) + sizeof(weft_chan *) + sizeof(int);
    weft__wnode *nodes = malloc(n * per);
    if (!nodes)
        return -ENOMEM;
    weft_chan **chans = (weft_chan **)(nodes + n);
    int r =
        select_cases(cases, n, timeout_ns, (int *)(chans + n), chans, nodes);
    free(nodes);
    return r;
}

int weft_select(weft_case *cases, size_t n, int64_t timeout_ns) {
    if (!cases && n > 0)
        return -EINVAL;
    if (timeout_ns < 0 && timeout_ns != WEFT_FOREVER)
        timeout_ns = 0;
    if (n > SMALL)
        return select_big(cases, n, timeout_ns);
    int cand[SMALL];
    weft_chan *chans[SMALL];
    weft__wnode nodes[SMALL];
    return select_cases(cases, n, timeout_ns, cand, chans, nodes);
}
