/* SPDX-License-Identifier: MIT */
/*
 * Select, after Go's selectgo.
 *
 * Working arrays, on the stack up to SMALL cases, else one malloc:
 *   cand   indices of the cases that look ready, among which one is drawn
 *          at random (fire_one), so a case that is always ready cannot
 *          starve another;
 *   copy   the cases that have a channel, ordered by channel address (lock
 *          order), when the caller's array is not in that order already
 *          (lock_order; e is its scratch): every select takes its locks in
 *          that global order, so two selects never deadlock, and a channel
 *          named by several cases (even as send and receive at once) is
 *          locked once;
 *   nodes  one weft__wnode per case in lock order, all pointing at one
 *          shared park.
 *
 * Pass 0, one lock at a time: validate every case and list those whose
 *   channel looks ready (weft__chan_ready_hint, no lock); draw one and try
 *   it under its own lock.  When one is ready - the common case under
 *   load - that costs one lock instead of all of them.
 * Pass 1, taking every lock in lock order: look at each case again as its
 *   lock is taken (now the hint is exact but for stale nodes) and, if it
 *   cannot proceed, enqueue its node on the channel's sendq/recvq at once.
 *   If some case looked ready after all, take the nodes off again and do
 *   as pass 0 with every lock held (the same code as weft_send/weft_recv,
 *   weft__chan_*_locked); only that may answer Go's default.
 * Pass 2: block; the unlock callback releases every lock once the caller
 *   cannot miss a wake-up.  The first waker to claim the park completes
 *   its case from the other side and records park->fired (the node's idx)
 *   and err.
 * Pass 3, after waking: lock, one after the other, every channel except
 *   the one whose case fired and unlink the nodes there (those popped by
 *   losing wakers are already unlinked, which weft__wq_remove tolerates),
 *   then report.
 *
 * Why pass 3 must skip the fired channel: the lifetime rule holds for a
 * select as for weft_send, so once the partner's operation has completed
 * it may free that channel.  The partner unlinks every other node of this
 * select on that channel itself, under its lock, before it unparks us
 * (weft__select_claimed; only a select naming one channel in several cases
 * has any).  A timed-out select (or one whose timer could not be armed)
 * had no partner and relocks everything.
 */
#include "chan.h"
#include "runtime.h"
#include "sched.h"
#include "sys.h"
#include "trace.h"
#include "waiter.h"

#include <limits.h>
#include <stdint.h>

#define SMALL 8

/* A case with a channel and its index, for sorting. */
typedef struct lockent {
    weft_chan *c;
    int i;
} lockent;

/* A select past pass 0.  The park comes first: a waker holding a node
 * finds the select from node->park (weft__select_claimed). */
typedef struct sel {
    weft__park p;
    weft_case *sc;      /* the cases with a channel, in lock order */
    weft__wnode *nodes; /* nodes[j] for sc[j]; .idx: the caller's index */
    size_t k;           /* how many */
    bool shared;        /* some channel is named by more than one case */
} sel;

static weft__wq *queue_of(const weft_case *cs) {
    return cs->op == WEFT_SEND ? &cs->chan->sendq : &cs->chan->recvq;
}

/* Pass 0's look: validate every case (before any is performed: a bad case
 * fails the whole select) and list in cand[] those that look ready. */
static inline int candidates(const weft_case *cases, size_t n, int *cand) {
    int r = 0;
    for (const weft_case *cs = cases; cs < cases + n; cs++) {
        weft_chan *c = cs->chan;
        bool send = false;
        if (WEFT__UNLIKELY(cs->op != WEFT_RECV)) { /* receives first */
            if (cs->op != WEFT_SEND)
                return -EINVAL;
            send = true;
            if (c && !cs->elem && c->elem_size)
                return -EINVAL; /* no value to send */
        }
        if (c && weft__chan_ready_hint(c, send))
            cand[r++] = (int)(cs - cases);
    }
    return r;
}

static int ent_cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const lockent *)a)->c;
    uintptr_t y = (uintptr_t)((const lockent *)b)->c;
    return (x > y) - (x < y);
}

/*
 * Point s->sc at the cases with a channel in lock order (address order,
 * a channel named twice in adjacent entries).  Cases often come that way
 * already - every case has a channel, made one after the other - and then
 * sc is the caller's array itself and nodes[j].idx is j.  Otherwise sc is
 * a sorted copy in copy (e for the sort), and map's entries name the
 * caller's indices.  Returns the map (e), or NULL for the caller's array.
 */
static const lockent *lock_order(sel *s, weft_case *cases, size_t n,
                                 weft_case *copy, lockent *e) {
    size_t i = 0;
    while (i < n && cases[i].chan &&
           (i == 0 || (uintptr_t)cases[i - 1].chan <= (uintptr_t)cases[i].chan))
        i++;
    s->k = n;
    s->sc = cases;
    if (i == n)
        return NULL;
    size_t k = 0;
    for (i = 0; i < n; i++)
        if (cases[i].chan)
            e[k++] = (lockent){cases[i].chan, (int)i};
    if (k > SMALL) {
        qsort(e, k, sizeof *e, ent_cmp);
    } else {
        for (i = 1; i < k; i++) {
            lockent x = e[i];
            size_t j = i;
            for (; j > 0 && (uintptr_t)e[j - 1].c > (uintptr_t)x.c; j--)
                e[j] = e[j - 1];
            e[j] = x;
        }
    }
    for (i = 0; i < k; i++)
        copy[i] = cases[e[i].i];
    s->k = k;
    s->sc = copy;
    return e;
}

/* The loops below keep sc, k and the previous channel in locals: each lock
 * operation is a compiler barrier, after which fields of the (escaped) sel
 * would be loaded again. */
static void release_all(const weft_case *sc, size_t k) {
    const weft_chan *prev = NULL;
    for (size_t j = 0; j < k; j++) {
        weft_chan *c = sc[j].chan;
        if (c != prev)
            weft__lock_release(&c->lock);
        prev = c;
    }
}

/*
 * The unlock callback of pass 2.  For a goroutine it runs on the worker's
 * g0 after the goroutine switched out, and it reads the sel and sc, which
 * live on the goroutine's stack (or in its malloc block, or the caller's
 * cases array).  By then the goroutine may already be resuming elsewhere
 * (a deadline or a waker on another channel of this select), so they must
 * stay alive for as long as this reads them.  Invariant that guarantees
 * it: the locks go in reverse lock order, so the lowest channel's is
 * released last, after every read here; and the woken goroutine cannot
 * return before it has held that lock: pass 3 takes it first, unless the
 * case that fired is on that channel, whose partner needed the lock to
 * claim the park.  (A deadline claims without a lock, and pass 3 then
 * takes every lock.)
 */
static void unlock_all(void *arg) {
    const sel *s = arg;
    const weft_case *sc = s->sc;
    for (size_t j = s->k; j-- > 0;) {
        weft_chan *c = sc[j].chan;
        if (j == 0 || sc[j - 1].chan != c)
            weft__lock_release(&c->lock);
    }
}

/* Take the nodes off their queues.  relock: pass 3, each channel but skip
 * locked for its nodes alone; else every lock is held already. */
static inline void unlink_nodes(const weft_case *sc, weft__wnode *nodes,
                                size_t k, const weft_chan *skip, bool relock) {
    const weft_chan *prev = NULL;
    for (size_t j = 0; j < k; j++) {
        weft_chan *c = sc[j].chan;
        bool first = c != prev;
        prev = c;
        if (c == skip)
            continue;
        if (relock && first)
            weft__lock_acquire(&c->lock);
        weft__wq_remove(queue_of(&sc[j]), &nodes[j]);
        if (relock && (j + 1 == k || sc[j + 1].chan != c))
            weft__lock_release(&c->lock);
    }
}

void weft__select_claimed(weft_chan *c, weft__wnode *won) {
    sel *s = (sel *)won->park;
    if (!s->shared)
        return;
    for (size_t j = 0; j < s->k; j++)
        if (s->sc[j].chan == c)
            weft__wq_remove(queue_of(&s->sc[j]), &s->nodes[j]);
}

static int try_case(weft_case *cs, weft__park **wake) {
    return cs->op == WEFT_SEND
               ? weft__chan_send_locked(cs->chan, cs->elem, wake)
               : weft__chan_recv_locked(cs->chan, cs->elem, wake);
}

/*
 * Complete one of the r cases listed in cand, drawn uniformly at random; a
 * case that cannot complete after all (a stale hint, or only stale nodes
 * under the lock) is dropped and the draw repeated among the others.  s
 * NULL: pass 0, each try under its own channel's lock alone; else pass 1,
 * every lock of s held, all released before the partner is woken when a
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
fire_one(weft_case *cases, int *cand, int r, const sel *s) {
    while (r > 0) {
        int j = 0;
        if (r > 1)
            j = (int)(((uint64_t)weft__rand() * (uint32_t)r) >> 32);
        weft_case *cs = &cases[cand[j]];
        weft_chan *c = cs->chan;
        weft__park *wake;
        if (!s)
            weft__lock_acquire(&c->lock);
        int e = try_case(cs, &wake);
        if (e == -EAGAIN) {
            if (!s)
                weft__lock_release(&c->lock);
            cand[j] = cand[--r];
            continue;
        }
        if (s)
            release_all(s->sc, s->k);
        else
            weft__lock_release(&c->lock);
        if (wake)
            weft__unpark(wake);
        cs->err = e;
        return (int)(cs - cases);
    }
    return -1;
}

/* Passes 1 to 3, after pass 0 found nothing.  That proves nothing with
 * several cases: each was seen at another instant (a value moving from a
 * channel not yet looked at to one already passed is missed), so only
 * pass 1, all locks held, may answer Go's default.  One look at a single
 * channel is exact.  copy and e: scratch for lock_order; file, line: the
 * call site (or NULL, 0). */
static WEFT__NOINLINE int select_wait(weft_case *cases, size_t n,
                                      int64_t timeout_ns, int *cand,
                                      weft__wnode *nodes, weft_case *copy,
                                      lockent *e, const char *file, int line) {
    sel s; /* not zeroed: weft__park_init_at and weft__block set the park */
    s.nodes = nodes;
    const lockent *map = lock_order(&s, cases, n, copy, e);
    if (timeout_ns == 0 && s.k <= 1)
        return -ETIMEDOUT;
    weft__park_init_at(&s.p, "select", NULL, file, line);
    s.p.multi = true;
    weft_case *sc = s.sc;
    size_t k = s.k;
    const weft_chan *prev = NULL;
    bool shared = false;
    int r = 0;
    for (size_t j = 0; j < k; j++) {
        weft_case *cs = &sc[j];
        weft_chan *c = cs->chan;
        if (c != prev)
            weft__lock_acquire(&c->lock);
        else
            shared = true;
        prev = c;
        nodes[j] = (weft__wnode){
            .park = &s.p, .elem = cs->elem, .idx = map ? map[j].i : (int)j};
        /* a node of this select on c can make the hint true: then the try
         * below, with the nodes unlinked, tells */
        if (weft__chan_ready_hint(c, cs->op == WEFT_SEND))
            cand[r++] = (int)j;
        else if (timeout_ns != 0)
            weft__wq_push(queue_of(cs), &nodes[j]);
    }
    s.shared = shared; /* read by wakers, after the unlock callback */
    if (r > 0) {
        if (timeout_ns != 0)
            unlink_nodes(sc, nodes, k, NULL, false);
        int f = fire_one(sc, cand, r, &s);
        if (f >= 0) {
            int i = nodes[f].idx;
            cases[i].err = sc[f].err;
            return i;
        }
    }
    if (timeout_ns == 0) {
        release_all(sc, k);
        return -ETIMEDOUT;
    }
    if (r > 0) /* nothing can proceed after all: wait on every case */
        for (size_t j = 0; j < k; j++)
            weft__wq_push(queue_of(&sc[j]), &nodes[j]);
    int res = weft__block(&s.p, weft__deadline(timeout_ns), unlock_all, &s);
    /* res < 0: no partner, every channel is still ours to touch */
    unlink_nodes(sc, nodes, k, res < 0 ? NULL : cases[s.p.fired].chan, true);
    if (res < 0)
        return res;
    cases[s.p.fired].err = s.p.err;
    return s.p.fired;
}

/* Pass 0, inline in both callers, so that the common select is one call.
 * The arrays: cand and nodes for n cases, copy and e for lock_order. */
static inline __attribute__((always_inline)) int
select_cases(weft_case *cases, size_t n, int64_t timeout_ns, int *cand,
             weft__wnode *nodes, weft_case *copy, lockent *e, const char *file,
             int line) {
    int r = candidates(cases, n, cand);
    if (r < 0)
        return r;
    weft__ensure();
    int fired = fire_one(cases, cand, r, NULL);
    if (fired >= 0)
        return fired;
    return select_wait(cases, n, timeout_ns, cand, nodes, copy, e, file, line);
}

/* More than SMALL cases: the working arrays in one malloc. */
static WEFT__NOINLINE int select_big(weft_case *cases, size_t n,
                                     int64_t timeout_ns, const char *file,
                                     int line) {
    if (n > INT_MAX)
        return -EINVAL;
    size_t per =
        sizeof(weft__wnode) + sizeof(weft_case) + sizeof(lockent) + sizeof(int);
    weft__wnode *nodes = malloc(n * per);
    if (!nodes)
        return -ENOMEM;
    weft_case *copy = (weft_case *)(nodes + n);
    lockent *e = (lockent *)(copy + n);
    int r = select_cases(cases, n, timeout_ns, (int *)(e + n), nodes, copy, e,
                         file, line);
    free(nodes);
    return r;
}

/* What weft.h's weft_select macro calls; file, line: the call site. */
int weft__select_at(weft_case *cases, size_t n, int64_t timeout_ns,
                    const char *file, int line) {
    if (!cases && n > 0)
        return -EINVAL;
    if (timeout_ns < 0 && timeout_ns != WEFT_FOREVER)
        timeout_ns = 0;
    if (n > SMALL)
        return select_big(cases, n, timeout_ns, file, line);
    int cand[SMALL];
    weft__wnode nodes[SMALL];
    weft_case copy[SMALL];
    lockent e[SMALL];
    return select_cases(cases, n, timeout_ns, cand, nodes, copy, e, file, line);
}

int weft_select(weft_case *cases, size_t n, int64_t timeout_ns) {
    return weft__select_at(cases, n, timeout_ns, NULL, 0);
}
