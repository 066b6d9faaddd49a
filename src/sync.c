/* SPDX-License-Identifier: MIT */
/*
 * Sync primitives: mutex, rwmutex, WaitGroup, Once, Cond, and the
 * semaphore under the WaitGroup, all on the waiter's helpers (waiter.h):
 * a blocked caller waits with weft__wq_wait, a waker takes its waiter with
 * weft__wq_take and wakes it with weft__unlock_unpark.
 *
 * Each public type is an opaque byte array in weft.h; the structs below are
 * what lives in it, all-zero meaning "ready to use".
 *
 * Lifetime rule relied on throughout: once a waker has handed over what
 * the waiter waits for, it releases the object's internal lock and then
 * touches only the waiter's park (weft__unpark).  So a woken waiter may
 * free the object at once (freeing a WaitGroup right after wait returns, a
 * mutex right after its last unlock).
 */
#include "runtime.h"
#include "sys.h"
#include "waiter.h"

#include <assert.h>
#include <sched.h>

/* ---- semaphore ---------------------------------------------------------- */

/* A counting semaphore: zero-initialised is count 0. */
typedef struct sema {
    weft__lock lock;
    uint32_t count;
    weft__wq q;
} sema;

static void sema_acquire(sema *s, const char *why, const void *obj) {
    weft__lock_acquire(&s->lock);
    if (s->count > 0) {
        s->count--;
        weft__lock_release(&s->lock);
        return;
    }
    weft__ensure(); /* someone must be there to notice a deadlock */
    weft__waiter w;
    weft__waiter_init(&w, why, obj, NULL);
    weft__wq_wait(&s->q, &s->lock, &w, -1);
}

/* Not inlined: weft_wg_add's fast path (every weft_wg_done) would pay for
 * this slow path's stack frame. */
static WEFT__NOINLINE void sema_release(sema *s, uint32_t n) {
    weft__lock_acquire(&s->lock);
    weft__wnode *woken = NULL;
    s->count += n - (uint32_t)weft__wq_claim(&s->q, n, &woken);
    weft__unlock_unpark_list(&s->lock, woken);
}

/* ---- mutex -----------------------------------------------------------------
 *
 * state: LOCKED | STARVING | WAITERS bits, changed only by CAS.
 * Normal mode: unlock clears LOCKED and wakes the first waiter, which then
 * competes with newcomers (barging keeps throughput up).  A waiter that
 * has waited over STARVE_NS sets STARVING: from then on unlock hands the
 * mutex directly to the first waiter (LOCKED stays set) and newcomers queue
 * behind, so nobody starves.  Starving mode ends when the queue empties.
 */

enum { M_LOCKED = 1, M_STARVING = 2, M_WAITERS = 4 };
#define STARVE_NS 1000000
#define SPIN_TRIES 64

typedef struct imutex {
    atomic_uint state;
    weft__lock qlock;
    weft__wq q;
} imutex;
static_assert(sizeof(imutex) <= sizeof(weft_mutex), "weft_mutex too small");

static bool mutex_try_fast(imutex *m) {
    unsigned s = atomic_load_explicit(&m->state, memory_order_relaxed);
    while (!(s & (M_LOCKED | M_STARVING)))
        if (atomic_compare_exchange_weak_explicit(&m->state, &s, s | M_LOCKED,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* With qlock held: set WAITERS while m is still locked, so its holder's
 * unlock takes the slow path and wakes us; or take m if it became free.
 * Returns false when it took m.  (Setting the bit blindly would lose the
 * wakeup of an unlock that slipped in between.) */
static bool mutex_mark_waiters(imutex *m) {
    unsigned s = atomic_load_explicit(&m->state, memory_order_relaxed);
    for (;;) {
        unsigned want = s & M_LOCKED ? s | M_WAITERS : s | M_LOCKED;
        if (atomic_compare_exchange_weak_explicit(&m->state, &s, want,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return s & M_LOCKED;
    }
}

static void mutex_lock_slow(imutex *m) {
    for (int i = 0; i < SPIN_TRIES; i++) {
        if (mutex_try_fast(m))
            return;
        weft__cpu_relax();
    }
    int64_t since = weft_now();
    bool front = false;
    for (;;) {
        weft__lock_acquire(&m->qlock);
        if (!mutex_mark_waiters(m)) {
            weft__lock_release(&m->qlock);
            return;
        }
        weft__ensure(); /* someone must be there to notice a deadlock */
        weft__waiter w;
        weft__waiter_init(&w, "mutex", m, NULL);
        w.node.since = since;
        if (front)
            weft__wq_push_front(&m->q, &w.node);
        else
            weft__wq_push(&m->q, &w.node);
        weft__waiter_block(&w, &m->q, &m->qlock, -1);
        if (w.park.err == 1)
            return;   /* handed over: we own it */
        front = true; /* woken to compete: keep our place if we lose */
    }
}

static void mutex_lock(imutex *m) {
    unsigned zero = 0;
    if (WEFT__LIKELY(atomic_compare_exchange_weak_explicit(
            &m->state, &zero, M_LOCKED, memory_order_acquire,
            memory_order_relaxed)))
        return;
    mutex_lock_slow(m);
}

static void mutex_unlock_slow(imutex *m) {
    weft__lock_acquire(&m->qlock);
    weft__wnode *n = weft__wq_take(&m->q);
    unsigned s = atomic_load_explicit(&m->state, memory_order_relaxed);
    unsigned ns = s;
    if (n && weft_now() - n->since > STARVE_NS)
        ns |= M_STARVING;
    bool handoff = n && (ns & M_STARVING);
    if (!m->q.head)
        ns &= ~(unsigned)(M_WAITERS | M_STARVING);
    if (!handoff)
        ns &= ~(unsigned)M_LOCKED;
    atomic_store_explicit(&m->state, ns, memory_order_release);
    if (n)
        n->park->err = handoff;
    weft__unlock_unpark(&m->qlock, n ? n->park : NULL);
}

static void mutex_unlock(imutex *m) {
    unsigned s = M_LOCKED;
    if (WEFT__LIKELY(atomic_compare_exchange_strong_explicit(
            &m->state, &s, 0, memory_order_release, memory_order_relaxed)))
        return;
    if (!(s & M_LOCKED))
        weft__fatal("unlock of unlocked mutex");
    mutex_unlock_slow(m);
}

void weft_mutex_lock(weft_mutex *m) {
    mutex_lock((imutex *)m);
}

int weft_mutex_trylock(weft_mutex *m) {
    return mutex_try_fast((imutex *)m) ? 0 : -EBUSY;
}

void weft_mutex_unlock(weft_mutex *m) {
    mutex_unlock((imutex *)m);
}

/* ---- rwmutex ---------------------------------------------------------------
 *
 * All state under one internal lock.  A waiting writer blocks new readers;
 * when a writer unlocks, the readers that queued meanwhile go first, then
 * the next writer: neither side starves.
 */

typedef struct irw {
    weft__lock lock;
    int readers;  /* active readers */
    bool writer;  /* a writer holds it */
    int wwaiting; /* writers queued */
    weft__wq rq, wq;
} irw;
static_assert(sizeof(irw) <= sizeof(weft_rwmutex), "weft_rwmutex too small");

static void rw_wait(irw *m, weft__wq *q, const char *why) {
    weft__ensure(); /* someone must be there to notice a deadlock */
    weft__waiter w;
    weft__waiter_init(&w, why, m, NULL);
    weft__wq_wait(q, &m->lock, &w, -1);
}

/* With m->lock held and m free: give it to the first waiting writer, if
 * any; releases the lock. */
static void rw_hand_to_writer(irw *m) {
    weft__wnode *n = weft__wq_take(&m->wq);
    if (n) {
        m->wwaiting--;
        m->writer = true;
    }
    weft__unlock_unpark(&m->lock, n ? n->park : NULL);
}

void weft_rwmutex_rlock(weft_rwmutex *mm) {
    irw *m = (irw *)mm;
    weft__lock_acquire(&m->lock);
    if (!m->writer && m->wwaiting == 0) {
        m->readers++;
        weft__lock_release(&m->lock);
        return;
    }
    rw_wait(m, &m->rq, "rwmutex rlock");
}

void weft_rwmutex_runlock(weft_rwmutex *mm) {
    irw *m = (irw *)mm;
    weft__lock_acquire(&m->lock);
    if (m->readers <= 0)
        weft__fatal("runlock of unlocked rwmutex");
    if (--m->readers > 0)
        weft__lock_release(&m->lock);
    else
        rw_hand_to_writer(m);
}

void weft_rwmutex_lock(weft_rwmutex *mm) {
    irw *m = (irw *)mm;
    weft__lock_acquire(&m->lock);
    if (!m->writer && m->readers == 0) {
        m->writer = true;
        weft__lock_release(&m->lock);
        return;
    }
    m->wwaiting++;
    rw_wait(m, &m->wq, "rwmutex lock");
}

void weft_rwmutex_unlock(weft_rwmutex *mm) {
    irw *m = (irw *)mm;
    weft__lock_acquire(&m->lock);
    if (!m->writer)
        weft__fatal("unlock of unlocked rwmutex");
    m->writer = false;
    if (m->rq.head) {
        for (weft__wnode *n = m->rq.head; n; n = n->next)
            m->readers++;
        weft__wq_wake_all(&m->rq, &m->lock);
        return;
    }
    rw_hand_to_writer(m);
}

/* ---- WaitGroup -------------------------------------------------------------
 *
 * state packs the counter (high 32 bits) and the number of waiters (low 32
 * bits) so that the Add that reaches zero knows, from the same atomic
 * value, whether anyone waits.  If nobody does it touches wg no more: a
 * waiter that sees zero may already have freed it.
 */

typedef struct iwg {
    atomic_ullong state;
    sema sema;
} iwg;
static_assert(sizeof(iwg) <= sizeof(weft_wg), "weft_wg too small");

void weft_wg_add(weft_wg *w, int64_t delta) {
    iwg *wg = (iwg *)w;
    unsigned long long d = (unsigned long long)delta << 32;
    unsigned long long s = atomic_fetch_add(&wg->state, d) + d;
    int32_t count = (int32_t)(s >> 32);
    uint32_t waiters = (uint32_t)s;
    if (count < 0)
        weft__fatal("negative WaitGroup counter");
    if (count > 0 || waiters == 0)
        return;
    /* count == 0 with waiters: nobody can change state now but us */
    atomic_store(&wg->state, 0);
    sema_release(&wg->sema, waiters);
}

void weft_wg_done(weft_wg *wg) {
    weft_wg_add(wg, -1);
}

void weft_wg_wait(weft_wg *w) {
    iwg *wg = (iwg *)w;
    weft__ensure();
    unsigned long long s = atomic_load(&wg->state);
    for (;;) {
        if ((s >> 32) == 0)
            return;
        if (atomic_compare_exchange_weak(&wg->state, &s, s + 1))
            break;
    }
    sema_acquire(&wg->sema, "waitgroup", wg);
}

/* ---- Once --------------------------------------------------------------- */

typedef struct ionce {
    atomic_uint done;
    imutex m;
} ionce;
static_assert(sizeof(ionce) <= sizeof(weft_once), "weft_once too small");

void weft_once_do(weft_once *o, weft_fn fn, void *arg) {
    ionce *once = (ionce *)o;
    if (atomic_load_explicit(&once->done, memory_order_acquire))
        return;
    mutex_lock(&once->m);
    if (!atomic_load_explicit(&once->done, memory_order_relaxed)) {
        fn(arg);
        atomic_store_explicit(&once->done, 1, memory_order_release);
    }
    mutex_unlock(&once->m);
}

/* ---- Cond --------------------------------------------------------------- */

typedef struct icond {
    weft__lock lock;
    weft__wq q;
} icond;
static_assert(sizeof(icond) <= sizeof(weft_cond), "weft_cond too small");

void weft_cond_wait(weft_cond *cc, weft_mutex *m) {
    icond *c = (icond *)cc;
    weft__ensure(); /* someone must be there to notice a deadlock */
    weft__waiter w;
    weft__waiter_init(&w, "cond", c, NULL);
    weft__lock_acquire(&c->lock);
    weft__wq_push(&c->q, &w.node);
    /* queued before m is released, so a signal after unlock finds us */
    weft_mutex_unlock(m);
    weft__waiter_block(&w, &c->q, &c->lock, -1);
    weft_mutex_lock(m);
}

void weft_cond_signal(weft_cond *cc) {
    icond *c = (icond *)cc;
    weft__lock_acquire(&c->lock);
    weft__wnode *n = weft__wq_take(&c->q);
    weft__unlock_unpark(&c->lock, n ? n->park : NULL);
}

void weft_cond_broadcast(weft_cond *cc) {
    icond *c = (icond *)cc;
    weft__lock_acquire(&c->lock);
    weft__wq_wake_all(&c->q, &c->lock);
}
