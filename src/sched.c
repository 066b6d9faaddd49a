/* SPDX-License-Identifier: MIT */
/*
 * The scheduler: goroutines multiplexed M:N onto worker threads.
 *
 * Each worker is one OS thread with:
 *   - g0: the scheduler's own context on the thread's native stack.  A
 *     goroutine that stops running (parks, yields, exits) switches straight
 *     to the next goroutine of its worker's runnext or ring when there is
 *     one (leave), else to g0, which searches for work (find_runnable).
 *     Either way it leaves an "after" hook (unlock a wait queue, requeue
 *     for a yield, free a dead goroutine) that the context it switched to
 *     runs first (run_hook).  A goroutine that returns hands its stack to
 *     the next one instead, with no switch, when that one has never run
 *     (g_exit).  g0 never migrates, so only g0 may keep thread state.
 *   - runnext: one slot for the goroutine most recently woken by the running
 *     one, so a ping-pong or a pipeline stays on one core and in cache.
 *     The owner swaps it without atomic read-modify-writes (next_swap);
 *     it yields to the ring after NEXT_STREAK picks in a row (runq_get).
 *   - runq: a bounded ring (RUNQ) of runnable goroutines.  The owner pushes
 *     at tail and pops at head; other workers steal half of it at head with
 *     a CAS on head.  Slots are atomics so a stealer that loses the CAS race
 *     never reads a torn pointer.
 * Shared:
 *   - the global queue (locked; see gq_batch): overflow of full runqs,
 *     goroutines readied by plain threads; checked every 61st schedule for
 *     fairness.
 *   - the idle list: workers asleep on their own futex word.
 *   - the poller role: at most one idle worker sleeps in epoll_wait until
 *     the next timer deadline instead of on its futex.
 *
 * Waking (the lost-wakeup argument): whoever offers work publishes it,
 * issues a seq_cst fence, then reads nidle/nspinning (wakep).  A worker
 * going idle adds itself to the idle list, issues a fence, then rechecks
 * the global queue and the offer counts (work_offered) before sleeping.
 * One of the two always sees the other.  Goroutines readied by a hand-off
 * are not offered: they run where they were readied (see ready), or the
 * poller rescues them when that worker is stuck (rescue_stuck).
 *
 * Spinning: a woken worker "spins" (searches queues and steals) for a short
 * bounded time before it sleeps again.  While any worker spins, wakep wakes
 * nobody; the spinner that finds work wakes a replacement, as in Go.
 */
#include "weft_internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#ifdef WEFT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define RUNQ 256
#define GFREE_MAX 64 /* free g structs a worker keeps */
#define GBATCH 32    /* g structs moved between a worker and the shared list */
#define GCHUNK_BYTES 65536 /* g structs are mapped this much at a time */
#define ID_BATCH 256
#define STEAL_ROUNDS 4
#define NEXT_STREAK 2
#define FAIR_TICK 61 /* see find_runnable */

struct weft__worker {
    /* head, tail and the ring change only when the ring is used; runnext
     * and tick change at every wake and schedule.  Separate lines keep a
     * stealer's reads of one from stalling the owner's writes of another. */
    _Alignas(WEFT__CACHELINE) atomic_uint head; /* stealers CAS this */
    _Alignas(WEFT__CACHELINE) atomic_uint tail; /* owner stores this */
    _Atomic(weft__g *) runq[RUNQ];
    _Alignas(WEFT__CACHELINE) _Atomic(weft__g *) runnext;
    atomic_uint next_busy; /* the owner is using runnext (see next_swap) */
    atomic_uint next_req;  /* a stealer wants runnext */
    atomic_uint tick;      /* schedules so far; stealers read it */
    atomic_uint offers;    /* goroutines offered to idle workers (see offer) */
    _Alignas(WEFT__CACHELINE) int id;
    weft__regs g0;
    weft__g *cur;
    void (*after)(weft__worker *w, void *arg); /* see run_hook */
    void *after_arg;
    uint64_t rng;
    unsigned nexts;       /* consecutive runnext picks, see runq_get */
    unsigned offers_seen; /* offers_now() when find_runnable last looked */
    atomic_uint look_tail, look_tick, look_offers; /* at the last look */
    bool spinning;
    weft__stack_cache stacks;
    weft__g *gfree[GFREE_MAX]; /* see g_alloc */
    int ngfree;
    struct gq_batch *gq_spare; /* an empty batch, see runq_put_slow */
    uint64_t id_next, id_end;  /* goroutine ids reserved by this worker */
    atomic_long nlive;         /* spawned here minus exited here */
    atomic_uint park_word;     /* 1 = woken */
    weft__worker *idle_next;
    pthread_t thread;
    void *tsan_fiber;
    void *stack_lo;
    size_t stack_size;
};

/* Fields are grouped by who writes them, one cache line per group, so
 * that spinning workers and the global queue do not slow each other down. */
static struct {
    /* read-mostly */
    atomic_bool started; /* workers exist: weft__sched_start to _stop */
    int nprocs;
    size_t stack_size;
    weft__worker **workers;
    atomic_bool stopping;
    bool seeded;
    bool next_fenced; /* sys_membarrier works: see next_swap */
    uint64_t seed;
    uint64_t seed_rng; /* WEFT_SEED: schedule draws, the one worker only */

    _Alignas(WEFT__CACHELINE) weft__lock gq_lock; /* see gq_batch */
    weft__g *gq_head, *gq_tail;
    struct gq_batch *gq_bhead, *gq_btail;
    struct gq_batch *gq_spares;
    int ngq_spares;
    atomic_size_t gq_len;

    _Alignas(WEFT__CACHELINE) weft__lock idle_lock;
    weft__worker *idle;
    atomic_int nidle;

    _Alignas(WEFT__CACHELINE) atomic_int nspinning;

    _Alignas(WEFT__CACHELINE) atomic_int poller; /* a worker holds the role */
    atomic_int poll_woken;      /* the poller was already told to wake */
    atomic_llong poll_deadline; /* what the poller sleeps towards */

    _Alignas(WEFT__CACHELINE) weft__lock gfree_lock; /* and the chunk list */
    struct gbatch *gfull, *gempty;
    weft__g *gloose;
    _Atomic(struct gchunk *) gchunks; /* read without the lock: foreach_g */
    atomic_long nlive_threads;        /* goroutines spawned by plain threads */
} rt;

static atomic_ullong next_gid = 1; /* never reset: ids are never reused */

static __thread weft__worker *tls_worker;

void (*weft__worker_init)(int wid);
_Atomic(const weft__idle_ops *) weft__idle_hook;
static __thread uint64_t tls_rng;

/* ---- thread-local access ------------------------------------------------ */

/* The empty asm makes the function opaque to the optimiser: it is never
 * treated as pure, so every call really reads the current thread's slot. */
WEFT__NOINLINE weft__worker *weft__self(void) {
    __asm__ volatile("" ::: "memory");
    return tls_worker;
}

WEFT__NOINLINE weft__g *weft__curg(void) {
    __asm__ volatile("" ::: "memory");
    weft__worker *w = tls_worker;
    return w ? w->cur : NULL;
}

/* ---- random numbers ----------------------------------------------------- */

static uint32_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return (uint32_t)(x >> 32);
}

uint32_t weft__rand(void) {
    weft__worker *w = weft__self();
    if (WEFT__UNLIKELY(rt.seeded) && w)
        return xorshift(&rt.seed_rng); /* see seed_pick */
    if (w)
        return xorshift(&w->rng);
    if (!tls_rng)
        tls_rng = (uint64_t)(uintptr_t)&tls_rng * 0x9E3779B97F4A7C15ull | 1;
    return xorshift(&tls_rng);
}

/* ---- sanitizer hooks around every switch -------------------------------- */

static inline void san_before(weft__worker *w, weft__g *to, void **fake,
                              bool dying) {
#ifdef WEFT_TSAN
    __tsan_switch_to_fiber(to ? to->tsan_fiber : w->tsan_fiber, 0);
#endif
#ifdef WEFT_ASAN
    if (to)
        __sanitizer_start_switch_fiber(dying ? NULL : fake, to->stack->lo,
                                       to->stack->size);
    else
        __sanitizer_start_switch_fiber(dying ? NULL : fake, w->stack_lo,
                                       w->stack_size);
#endif
    (void)w, (void)to, (void)fake, (void)dying;
}

static inline void san_after(void *fake) {
#ifdef WEFT_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    (void)fake;
}

/* ---- local run queue ---------------------------------------------------- */

/* A ring's spilled half in the global queue (see the global queue). */
struct gq_batch {
    struct gq_batch *next;
    unsigned head, n; /* g[head..n) are queued */
    weft__g *g[RUNQ / 2 + 1];
};

static weft__g *gq_take_batch(weft__worker *w, int max);
static void gq_put_list(weft__g *head, weft__g *tail, size_t n);
static struct gq_batch *gq_batch_new(weft__worker *w);
static void gq_put_batch(weft__worker *w, struct gq_batch *b);

/* Move half the ring plus g to the global queue, as one gq_batch: the
 * worker that takes them reads an array instead of chasing links through
 * g structs this core wrote last.  Without memory for a batch they go as a
 * linked list. */
static void runq_put_slow(weft__worker *w, weft__g *g, unsigned h, unsigned t) {
    unsigned n = (t - h) / 2;
    struct gq_batch *b = gq_batch_new(w);
    weft__g *list[RUNQ / 2 + 1];
    weft__g **batch = b ? b->g : list;
    for (unsigned i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&w->runq[(h + i) % RUNQ],
                                        memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(
            &w->head, &h, h + n, memory_order_release, memory_order_relaxed)) {
        /* stealers made room meanwhile */
        unsigned t2 = atomic_load_explicit(&w->tail, memory_order_relaxed);
        atomic_store_explicit(&w->runq[t2 % RUNQ], g, memory_order_relaxed);
        atomic_store_explicit(&w->tail, t2 + 1, memory_order_release);
        w->gq_spare = b; /* unused: gq_batch_new left the slot empty */
        return;
    }
    batch[n] = g;
    if (b) {
        b->n = n + 1;
        gq_put_batch(w, b);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        batch[i]->link = batch[i + 1];
    g->link = NULL;
    gq_put_list(batch[0], g, n + 1);
}

static void runq_put(weft__worker *w, weft__g *g) {
    unsigned t = atomic_load_explicit(&w->tail, memory_order_relaxed);
    unsigned h = atomic_load_explicit(&w->head, memory_order_acquire);
    if (t - h < RUNQ) {
        atomic_store_explicit(&w->runq[t % RUNQ], g, memory_order_relaxed);
        atomic_store_explicit(&w->tail, t + 1, memory_order_release);
        return;
    }
    runq_put_slow(w, g, h, t);
}

/*
 * runnext without read-modify-writes on the owner's side.  The owner swaps
 * runnext at every hand-off (ready, runq_get); another worker takes it only
 * when the owner seems stuck (steal_next).  So the owner uses plain loads
 * and stores, and the rare stealer pays for both with an asymmetric
 * fence: it raises next_req, then sys_membarrier runs a full fence on
 * every CPU running this process.  Afterwards either the stealer sees the
 * owner's next_busy (and waits for the owner to leave its few
 * instructions), or the owner's next entry sees next_req (and waits for the
 * stealer to finish).  Without membarrier (old kernels, qemu-user,
 * valgrind) both sides use atomic exchanges.
 */
static void next_enter(weft__worker *w) {
    atomic_store_explicit(&w->next_busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* membarrier does the rest */
    while (WEFT__UNLIKELY(
        atomic_load_explicit(&w->next_req, memory_order_acquire))) {
        atomic_store_explicit(&w->next_busy, 0, memory_order_release);
        while (atomic_load_explicit(&w->next_req, memory_order_acquire))
            weft__cpu_relax();
        atomic_store_explicit(&w->next_busy, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
    }
}

/* Owner only: put g (or NULL) in runnext; returns what was there. */
static weft__g *next_swap(weft__worker *w, weft__g *g) {
    if (!rt.next_fenced)
        return atomic_exchange_explicit(&w->runnext, g, memory_order_acq_rel);
    next_enter(w);
    weft__g *old = atomic_load_explicit(&w->runnext, memory_order_relaxed);
    atomic_store_explicit(&w->runnext, g, memory_order_relaxed);
    atomic_store_explicit(&w->next_busy, 0, memory_order_release);
    return old;
}

/* Another worker: take v's runnext. */
static weft__g *steal_next(weft__worker *v) {
    if (!rt.next_fenced)
        return atomic_exchange_explicit(&v->runnext, NULL,
                                        memory_order_acquire);
    unsigned zero = 0;
    if (!atomic_compare_exchange_strong(&v->next_req, &zero, 1))
        return NULL; /* another stealer is at it */
    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    while (atomic_load_explicit(&v->next_busy, memory_order_acquire))
        weft__cpu_relax();
    weft__g *g = atomic_load_explicit(&v->runnext, memory_order_relaxed);
    atomic_store_explicit(&v->runnext, NULL, memory_order_relaxed);
    atomic_store_explicit(&v->next_req, 0, memory_order_release);
    return g;
}

/* Only this worker ever fills its runnext, so a NULL seen here is current. */
static weft__g *take_next(weft__worker *w) {
    if (!atomic_load_explicit(&w->runnext, memory_order_relaxed))
        return NULL;
    return next_swap(w, NULL);
}

/* Start fetching the hot line of a g struct used soon: it was last written
 * by another core (the spawner, or the worker that freed it), and loading
 * it when it is needed stalls for a whole cache-line transfer. */
static inline void g_prefetch(weft__g *g) {
    __builtin_prefetch(g, 1, 3);
}

/* Ring slots ahead: a cache-line transfer takes several runs. */
#define PREFETCH_AHEAD 6

static weft__g *ring_get(weft__worker *w) {
    for (;;) {
        unsigned h = atomic_load_explicit(&w->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&w->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        weft__g *g =
            atomic_load_explicit(&w->runq[h % RUNQ], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&w->head, &h, h + 1,
                                                  memory_order_release,
                                                  memory_order_relaxed)) {
            if (t - h > PREFETCH_AHEAD)
                g_prefetch(
                    atomic_load_explicit(&w->runq[(h + PREFETCH_AHEAD) % RUNQ],
                                         memory_order_relaxed));
            return g;
        }
    }
}

/* runnext goes first, while its data is warm in this core's cache.  But
 * two goroutines that keep waking each other would keep it filled forever
 * and starve the ring: after NEXT_STREAK runnext picks in a row the ring's
 * head gets a turn.  (Go bounds the same with a time slice the pair
 * shares, enforced by preemption, which weft does not have.) */
static weft__g *runq_get(weft__worker *w) {
    if (w->nexts < NEXT_STREAK) {
        weft__g *g = take_next(w);
        if (g) {
            w->nexts++;
            return g;
        }
    }
    w->nexts = 0;
    weft__g *g = ring_get(w);
    return g ? g : take_next(w);
}

static bool runq_empty(weft__worker *w) {
    unsigned h = atomic_load_explicit(&w->head, memory_order_acquire);
    unsigned t = atomic_load_explicit(&w->tail, memory_order_acquire);
    return h == t && !atomic_load_explicit(&w->runnext, memory_order_acquire);
}

/* Steal half of v's ring into w's ring; returns one goroutine to run.
 * v's runnext is not touched: only rescue_stuck takes it (steal_next), once
 * v has not scheduled for a whole look.  (Go's stealers take it after 3 us;
 * here that costs a membarrier, and a goroutine readied by a running one
 * is usually about to run on that core.) */
static weft__g *runq_steal(weft__worker *w, weft__worker *v) {
    for (;;) {
        unsigned h = atomic_load_explicit(&v->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&v->tail, memory_order_acquire);
        unsigned n = t - h;
        n -= n / 2;
        if (n == 0)
            return NULL;
        if (n > RUNQ / 2)
            continue; /* inconsistent snapshot */
        unsigned wt = atomic_load_explicit(&w->tail, memory_order_relaxed);
        for (unsigned i = 0; i < n; i++) {
            weft__g *g = atomic_load_explicit(&v->runq[(h + i) % RUNQ],
                                              memory_order_relaxed);
            atomic_store_explicit(&w->runq[(wt + i) % RUNQ], g,
                                  memory_order_relaxed);
        }
        if (!atomic_compare_exchange_weak_explicit(&v->head, &h, h + n,
                                                   memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        n--;
        weft__g *g = atomic_load_explicit(&w->runq[(wt + n) % RUNQ],
                                          memory_order_relaxed);
        if (n)
            atomic_store_explicit(&w->tail, wt + n, memory_order_release);
        return g;
    }
}

/* ---- global queue -------------------------------------------------------
 *
 * Two FIFOs under gq_lock: batches (a ring's spilled half, see
 * runq_put_slow) and single goroutines linked through g->link (readied by
 * plain threads, or spilled when no batch could be allocated).  gq_len
 * counts the goroutines in both.  A taker empties the singles first: they
 * are few, and a stream of spills must not starve them.  Emptied batches
 * are kept for reuse: one spare per worker, up to GQ_SPARES shared.
 */

#define GQ_SPARES 16

/* Under gq_lock: a shared spare batch, or NULL. */
static struct gq_batch *gq_spare_pop(void) {
    struct gq_batch *b = rt.gq_spares;
    if (b) {
        rt.gq_spares = b->next;
        rt.ngq_spares--;
    }
    return b;
}

/* An empty batch for w to fill; NULL if out of memory.  w's spare is
 * usually there: gq_put_batch refills it. */
static struct gq_batch *gq_batch_new(weft__worker *w) {
    struct gq_batch *b = w->gq_spare;
    if (b) {
        w->gq_spare = NULL;
        return b;
    }
    weft__lock_acquire(&rt.gq_lock);
    b = gq_spare_pop();
    weft__lock_release(&rt.gq_lock);
    return b ? b : malloc(sizeof *b);
}

/* Queue b's n goroutines, and take w's next spare in the same locked step
 * (its last one is b). */
static void gq_put_batch(weft__worker *w, struct gq_batch *b) {
    b->head = 0;
    b->next = NULL;
    weft__lock_acquire(&rt.gq_lock);
    if (rt.gq_btail)
        rt.gq_btail->next = b;
    else
        rt.gq_bhead = b;
    rt.gq_btail = b;
    atomic_fetch_add_explicit(&rt.gq_len, b->n, memory_order_release);
    w->gq_spare = gq_spare_pop();
    weft__lock_release(&rt.gq_lock);
}

static void gq_put_list(weft__g *head, weft__g *tail, size_t n) {
    weft__lock_acquire(&rt.gq_lock);
    if (rt.gq_tail)
        rt.gq_tail->link = head;
    else
        rt.gq_head = head;
    rt.gq_tail = tail;
    atomic_fetch_add_explicit(&rt.gq_len, n, memory_order_release);
    weft__lock_release(&rt.gq_lock);
}

/* Under gq_lock: the next queued goroutine (gq_len > 0).  An emptied batch
 * is unlinked and returned in *done for the caller to recycle. */
static weft__g *gq_pop(struct gq_batch **done) {
    weft__g *g = rt.gq_head;
    if (g) {
        rt.gq_head = g->link;
        if (!rt.gq_head)
            rt.gq_tail = NULL;
        return g;
    }
    struct gq_batch *b = rt.gq_bhead;
    g = b->g[b->head++];
    if (b->head == b->n) {
        rt.gq_bhead = b->next;
        if (!rt.gq_bhead)
            rt.gq_btail = NULL;
        b->next = *done;
        *done = b;
    }
    return g;
}

/* Keep emptied batches for reuse, up to a spare for w and GQ_SPARES shared;
 * free the rest (a burst of spills must not pin its memory). */
static void gq_recycle(weft__worker *w, struct gq_batch *done) {
    if (done && !w->gq_spare) {
        w->gq_spare = done;
        done = done->next;
    }
    if (!done)
        return;
    weft__lock_acquire(&rt.gq_lock);
    while (done && rt.ngq_spares < GQ_SPARES) {
        struct gq_batch *b = done;
        done = b->next;
        b->next = rt.gq_spares;
        rt.gq_spares = b;
        rt.ngq_spares++;
    }
    weft__lock_release(&rt.gq_lock);
    while (done) {
        struct gq_batch *b = done;
        done = b->next;
        free(b);
    }
}

/* Take up to max goroutines: one is returned, the rest go to w's ring,
 * which the caller has found empty (or asks for one only). */
static weft__g *gq_take_batch(weft__worker *w, int max) {
    if (atomic_load_explicit(&rt.gq_len, memory_order_acquire) == 0)
        return NULL;
    weft__lock_acquire(&rt.gq_lock);
    size_t len = atomic_load_explicit(&rt.gq_len, memory_order_relaxed);
    if (len == 0) {
        weft__lock_release(&rt.gq_lock);
        return NULL;
    }
    size_t n = len / (size_t)rt.nprocs + 1;
    if (n > len)
        n = len;
    if (n > (size_t)max)
        n = (size_t)max;
    struct gq_batch *done = NULL;
    weft__g *g = gq_pop(&done);
    for (size_t i = 1; i < n; i++) {
        weft__g *x = gq_pop(&done);
        if (i <= PREFETCH_AHEAD)
            g_prefetch(x); /* ring_get prefetches the later ones */
        runq_put(w, x);
    }
    atomic_fetch_sub_explicit(&rt.gq_len, n, memory_order_relaxed);
    weft__lock_release(&rt.gq_lock);
    gq_recycle(w, done);
    return g;
}

/* At shutdown the queue is empty, only spares are left; in a forked child
 * it holds the parent's goroutines, dropped too. */
static void gq_release(void) {
    while (rt.gq_bhead) {
        struct gq_batch *b = rt.gq_bhead;
        rt.gq_bhead = b->next;
        free(b);
    }
    rt.gq_btail = NULL;
    rt.gq_head = rt.gq_tail = NULL;
    atomic_store(&rt.gq_len, 0);
    while (rt.gq_spares) {
        struct gq_batch *b = rt.gq_spares;
        rt.gq_spares = b->next;
        free(b);
    }
    rt.ngq_spares = 0;
}

/* ---- idle workers ------------------------------------------------------- */

static void worker_wake(weft__worker *w) {
    atomic_store_explicit(&w->park_word, 1, memory_order_release);
    weft__futex_wake(&w->park_word, 1);
}

static weft__worker *idle_pop(void) {
    weft__lock_acquire(&rt.idle_lock);
    weft__worker *w = rt.idle;
    if (w) {
        rt.idle = w->idle_next;
        atomic_fetch_sub(&rt.nidle, 1);
    }
    weft__lock_release(&rt.idle_lock);
    return w;
}

/* Interrupt the poller's epoll_wait, once per wait: a write to the eventfd
 * is a system call, too dear to repeat for every goroutine readied. */
static void poller_wake(void) {
    if (atomic_load_explicit(&rt.poll_woken, memory_order_relaxed) ||
        atomic_exchange(&rt.poll_woken, 1))
        return;
    weft__netpoll_break();
}

/* Wake an idle worker to look for work, unless one is already looking.
 * The caller has published its work and issued a full fence since. */
static void wakep_fenced(void) {
    if (atomic_load_explicit(&rt.nspinning, memory_order_relaxed) != 0)
        return;
    if (atomic_load_explicit(&rt.nidle, memory_order_relaxed) == 0) {
        if (atomic_load_explicit(&rt.poller, memory_order_relaxed))
            poller_wake();
        return;
    }
    int zero = 0;
    if (!atomic_compare_exchange_strong(&rt.nspinning, &zero, 1))
        return;
    weft__worker *w = idle_pop();
    if (!w) {
        atomic_fetch_sub(&rt.nspinning, 1);
        return;
    }
    w->spinning = true; /* nspinning was raised on its behalf */
    worker_wake(w);
}

static void wakep(void) {
    weft__fence();
    wakep_fenced();
}

/* After a goroutine's n-th spawn on this worker.  A burst of spawns
 * issues the wake-up fence only once per SPAWN_FENCE: it cost a spawn
 * about a fifth of its time, waiting for the stores to the new g and the
 * ring to drain.  Between fences the check still wakes any worker seen
 * idle; it can miss only one that is going idle at that very moment, and
 * then the next fenced spawn wakes it, or, if the spawner stops spawning
 * without blocking, the poller's look (rescue_stuck) takes the goroutines
 * within a look or two. */
#define SPAWN_FENCE 8
static void wakep_spawn(unsigned n) {
    if (n % SPAWN_FENCE == 0) {
        wakep();
        return;
    }
    atomic_signal_fence(memory_order_seq_cst);
    wakep_fenced();
}

/* weft__timer_earliest: a timer was added at the head of the heap. */
static void timer_wakeup(int64_t when) {
    weft__fence();
    if (atomic_load_explicit(&rt.poller, memory_order_relaxed)) {
        long long until =
            atomic_load_explicit(&rt.poll_deadline, memory_order_relaxed);
        if (until < 0 || when < until)
            poller_wake();
        return;
    }
    /* no poller: an idle worker will take the role and sleep until when */
    if (atomic_load_explicit(&rt.nidle, memory_order_relaxed) > 0) {
        weft__worker *w = idle_pop();
        if (w)
            worker_wake(w);
    }
}

/*
 * Which queued goroutines an idle worker must not sleep through.
 *
 * A goroutine in a running worker's runnext or ring will run there; it
 * needs another worker only for parallelism.  Goroutines made runnable to
 * be shared are "offered": each worker counts its offers (spawns, and
 * goroutines readied by its scheduler), and a worker about to sleep
 * compares the sum with what it saw when it last searched for work.  That
 * closes the race with an offer whose wake-up found nobody idle yet; a
 * goroutine readied by a hand-off (see ready) is not offered, so a worker
 * with nothing to do sleeps instead of spinning on a busy worker's queue.
 * Goroutines stuck behind a long-running one are the poller's to rescue
 * (see rescue_stuck).
 */
static unsigned offer(weft__worker *w) {
    unsigned n = atomic_load_explicit(&w->offers, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->offers, n, memory_order_relaxed);
    return n;
}

static unsigned offers_now(void) {
    unsigned sum = 0;
    for (int i = 0; i < rt.nprocs; i++)
        sum +=
            atomic_load_explicit(&rt.workers[i]->offers, memory_order_relaxed);
    return sum;
}

/* After the caller's full fence: may it sleep? */
static bool work_offered(weft__worker *w) {
    return atomic_load_explicit(&rt.gq_len, memory_order_acquire) ||
           offers_now() != w->offers_seen;
}

static bool timers_due(void) {
    int64_t next = weft__timers_next();
    return next >= 0 && next <= weft_now();
}

/* ---- WEFT_SEED: a schedule drawn from the seed ------------------------------
 *
 * With one worker, the order goroutines run in is all that varies between
 * runs.  Whenever the worker schedules, seed_pick draws which runnable
 * goroutine goes next (runnext and the ring alike), so a seed names one
 * interleaving.  Draws come from rt.seed_rng, used only on the worker and
 * never by its idle loop (steal_work draws from w->rng): how long the
 * worker idles, which depends on plain threads and time, does not shift the
 * sequence.  Every pick goes through seed_pick, never through the other
 * paths of find_runnable (a goroutine that a plain thread readies just
 * after seed_pick looked waits for the next round) nor through next_local,
 * and the global queue is moved into the ring only when the ring is empty,
 * so the tick % FAIR_TICK check never decides anything. */
static weft__g *seed_pick(weft__worker *w) {
    weft__g *next = next_swap(w, NULL);
    if (next)
        runq_put(w, next);
    if (runq_empty(w)) {
        weft__g *g = gq_take_batch(w, RUNQ / 2);
        if (!g)
            return NULL;
        runq_put(w, g);
    }
    unsigned h = atomic_load_explicit(&w->head, memory_order_relaxed);
    unsigned t = atomic_load_explicit(&w->tail, memory_order_relaxed);
    unsigned i = (h + xorshift(&rt.seed_rng) % (t - h)) % RUNQ;
    weft__g *g = atomic_load_explicit(&w->runq[i], memory_order_relaxed);
    atomic_store_explicit(
        &w->runq[i],
        atomic_load_explicit(&w->runq[h % RUNQ], memory_order_relaxed),
        memory_order_relaxed);
    atomic_store_explicit(&w->runq[h % RUNQ], g, memory_order_relaxed);
    return runq_get(w);
}

/* ---- finding work ------------------------------------------------------- */

/* Spinning: steal from the rings of random victims, and look at the global
 * queue between rounds. */
static weft__g *steal_work(weft__worker *w) {
    int n = rt.nprocs;
    for (int round = 0; round < STEAL_ROUNDS; round++) {
        unsigned start = xorshift(&w->rng) % (unsigned)n;
        for (int i = 0; i < n; i++) {
            weft__worker *v = rt.workers[(start + (unsigned)i) % (unsigned)n];
            if (v == w)
                continue;
            weft__g *g = runq_steal(w, v);
            if (g) {
                if (WEFT__UNLIKELY(weft__tracing()))
                    weft__trace_steal(v->id);
                return g;
            }
        }
        weft__g *g = gq_take_batch(w, RUNQ / 2);
        if (g)
            return g;
    }
    return NULL;
}

static void stop_spinning(weft__worker *w) {
    if (w->spinning) {
        w->spinning = false;
        atomic_fetch_sub(&rt.nspinning, 1);
    }
}

/* How long the poller may sleep: until the next timer, but while another
 * worker is busy, at most LOOK_NS (*look is then set): goroutines waiting
 * on a busy worker that does not get to them must not wait for long (see
 * rescue_stuck).  When every other worker is idle, only timers and
 * descriptors wake us: an idle process uses no CPU. */
#define LOOK_NS 500000
static int64_t poll_deadline(bool *look) {
    int64_t next = weft__timers_next();
    *look = false;
    if (atomic_load(&rt.nidle) + 1 >= rt.nprocs)
        return next;
    int64_t at = weft_now() + LOOK_NS;
    if (next >= 0 && next < at)
        return next;
    *look = true;
    return at;
}

/* After a look: take work only from a worker that has not got to it since
 * the previous look (its ring's head has not passed the tail seen then, or
 * it has not scheduled at all while its runnext waits), or that has
 * offered goroutines since (yields: CPU-bound goroutines taking turns).  A
 * worker that keeps up with its queue is left alone: its goroutines are
 * usually exchanging values with each other, and splitting them across
 * cores would make every exchange cross too.  So a goroutine waits at most
 * about two looks behind a goroutine that runs without blocking. */
static weft__g *rescue_stuck(weft__worker *w) {
    weft__g *got = NULL;
    for (int i = 0; i < rt.nprocs; i++) {
        weft__worker *v = rt.workers[i];
        if (v == w)
            continue;
        unsigned h = atomic_load_explicit(&v->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&v->tail, memory_order_acquire);
        unsigned tick = atomic_load_explicit(&v->tick, memory_order_relaxed);
        unsigned seen_tail =
            atomic_exchange_explicit(&v->look_tail, t, memory_order_relaxed);
        unsigned seen_tick =
            atomic_exchange_explicit(&v->look_tick, tick, memory_order_relaxed);
        unsigned offers =
            atomic_load_explicit(&v->offers, memory_order_relaxed);
        unsigned seen_offers = atomic_exchange_explicit(&v->look_offers, offers,
                                                        memory_order_relaxed);
        bool ring_stuck =
            h != t && ((int)(seen_tail - h) > 0 || offers != seen_offers);
        bool next_stuck =
            tick == seen_tick &&
            atomic_load_explicit(&v->runnext, memory_order_relaxed);
        if (got || !(ring_stuck || next_stuck))
            continue; /* the look_ fields are updated for every victim */
        got = runq_steal(w, v);
        if (!got && next_stuck)
            got = steal_next(v);
        if (got && WEFT__UNLIKELY(weft__tracing()))
            weft__trace_steal(v->id);
    }
    return got;
}

/* What idle_sleep did. */
enum { SLEPT_POLLER = 1, SLEPT_LOOKED = 2 };

/* Sleep until woken: as the poller (epoll until the next timer) if nobody
 * holds that role, else on the worker's futex.  Returns SLEPT_POLLER, with
 * SLEPT_LOOKED if that sleep ended at a look deadline with nothing else to
 * do, or 0.  The poller gives the role up when it wakes but does not hand
 * it on: if it finds nothing to run it takes the role again, and handing
 * it to another idle worker here made the two wake each other (the one
 * woken saw the other not yet idle, so it slept only until a look) for as
 * long as a timer was pending.  find_runnable hands it on with work. */
static int idle_sleep(weft__worker *w) {
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_park();
    int zero = 0;
    if (atomic_compare_exchange_strong(&rt.poller, &zero, 1)) {
        bool look;
        int64_t deadline = poll_deadline(&look);
        atomic_store(&rt.poll_deadline, deadline);
        int slept = SLEPT_POLLER;
        if (!work_offered(w) && !atomic_load(&rt.stopping)) {
            deadline = poll_deadline(&look); /* a timer added meanwhile */
            atomic_store(&rt.poll_deadline, deadline);
            const weft__idle_ops *idle = NULL;
            if (WEFT__UNLIKELY(deadline < 0) &&
                (idle = atomic_load_explicit(&weft__idle_hook,
                                             memory_order_relaxed))) {
                /* a bounded sleep, then the hook's check if it passed
                 * undisturbed */
                int64_t until = weft_now() + idle->period;
                weft__netpoll(until);
                if (weft_now() >= until)
                    idle->check();
            } else if (weft__netpoll(deadline) == 0 && look &&
                       !atomic_load(&rt.poll_woken))
                slept |= SLEPT_LOOKED;
        }
        atomic_store(&rt.poll_woken, 0);
        atomic_store(&rt.poll_deadline, -1);
        atomic_store(&rt.poller, 0);
        weft__timers_run(weft_now());
        return slept;
    }
    atomic_store_explicit(&w->park_word, 0, memory_order_relaxed);
    weft__lock_acquire(&rt.idle_lock);
    w->idle_next = rt.idle;
    rt.idle = w;
    atomic_fetch_add(&rt.nidle, 1);
    weft__lock_release(&rt.idle_lock);
    weft__fence();
    bool recheck = work_offered(w) || atomic_load(&rt.stopping) ||
                   (!atomic_load(&rt.poller) &&
                    (weft__timers_pending() || weft__netpoll_waiting()));
    if (recheck) {
        /* take ourselves off the idle list unless a waker already did */
        weft__lock_acquire(&rt.idle_lock);
        for (weft__worker **p = &rt.idle; *p; p = &(*p)->idle_next)
            if (*p == w) {
                *p = w->idle_next;
                atomic_fetch_sub(&rt.nidle, 1);
                atomic_store(&w->park_word, 1);
                break;
            }
        weft__lock_release(&rt.idle_lock);
    }
    while (!atomic_load_explicit(&w->park_word, memory_order_acquire))
        weft__futex_wait(&w->park_word, 0, -1);
    return 0;
}

static weft__g *find_runnable(weft__worker *w) {
    int slept = 0;
    for (;;) {
        if (atomic_load_explicit(&rt.stopping, memory_order_relaxed))
            return NULL;
        unsigned tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
        atomic_store_explicit(&w->tick, tick + 1, memory_order_relaxed);
        weft__g *g = NULL;
        if (tick % FAIR_TICK == 0 && !rt.seeded) {
            /* fairness: the global queue and ready descriptors get a turn
             * even while local work never runs out */
            g = gq_take_batch(w, 1);
            if (weft__netpoll_waiting() && !atomic_load(&rt.poller))
                weft__netpoll(0);
        }
        if (!g && (tick % 16 == 0 || runq_empty(w)) && timers_due())
            weft__timers_run(weft_now());
        if (WEFT__UNLIKELY(rt.seeded)) {
            w->offers_seen = offers_now(); /* before looking: see idle_sleep */
            if (!(g = seed_pick(w))) {
                stop_spinning(w); /* every pick goes through seed_pick */
                idle_sleep(w);
                continue;
            }
        }
        if (!g)
            g = runq_get(w);
        if (!g)
            g = gq_take_batch(w, RUNQ / 2);
        if (!g && weft__netpoll_waiting() && !atomic_load(&rt.poller))
            weft__netpoll(0);
        if (!g)
            g = runq_get(w);
        if (!g) /* before searching elsewhere: see work_offered */
            w->offers_seen = offers_now();
        if (!g && (slept & SLEPT_LOOKED))
            g = rescue_stuck(w);
        else if (!g && !w->spinning &&
                 2 * atomic_load(&rt.nspinning) <
                     rt.nprocs - atomic_load(&rt.nidle)) {
            w->spinning = true;
            atomic_fetch_add(&rt.nspinning, 1);
        }
        if (!g && w->spinning)
            g = steal_work(w);
        if (g) {
            if (w->spinning) {
                stop_spinning(w);
                wakep(); /* we found work: maybe there is more */
            }
            /* leaving the poller role for work: hand it on if something
             * still needs watching */
            if ((slept & SLEPT_POLLER) &&
                (weft__timers_pending() || weft__netpoll_waiting()))
                timer_wakeup(INT64_MAX);
            return g;
        }
        stop_spinning(w);
        slept = idle_sleep(w);
    }
}

/* ---- running goroutines ------------------------------------------------- */

static void g_main(void *arg);

/* g->stack is set: make g's first switch enter g_main on it. */
static void g_stack_ready(weft__g *g) {
    weft__regs_init(&g->ctx, g->stack->lo + g->stack->size, g_main, g);
#ifdef WEFT_TSAN
    g->tsan_fiber = __tsan_create_fiber(0);
#endif
}

static void g_attach_stack(weft__worker *w, weft__g *g) {
    g->stack = weft__stack_get(&w->stacks, g->stack_size);
    if (!g->stack)
        weft__fatal("out of memory for a goroutine stack");
    g_stack_ready(g);
}

/* Run the hook the previous context left when it switched to us.  Every
 * resumption point calls this: g0 after a switch back, a goroutine after
 * its switch returns, and a new goroutine's first code.  The hook publishes
 * the previous goroutine's new state (parked, requeued, dead); until then
 * nobody may resume it. */
static inline void run_hook(weft__worker *w) {
    void (*after)(weft__worker *, void *) = w->after;
    if (after) {
        w->after = NULL;
        after(w, w->after_arg);
    }
}

static inline void set_running(weft__worker *w, weft__g *g) {
    if (!g->stack)
        g_attach_stack(w, g);
    w->cur = g;
    atomic_store_explicit(&g->status, WEFT__G_RUNNING, memory_order_relaxed);
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_run(g);
}

/* g0 side: run g until it switches back to g0. */
static void run(weft__worker *w, weft__g *g) {
    set_running(w, g);
    void *fake = NULL;
    san_before(w, g, &fake, false);
    weft__switch(&w->g0, &g->ctx);
    san_after(fake);
    run_hook(w);
}

/* A goroutine to switch to directly, without the detour through g0: the
 * local runnext or ring.  Every 61st schedule (the global queue's turn),
 * when timers may be due, or under WEFT_SEED, g0 decides instead. */
static inline __attribute__((always_inline)) weft__g *
next_local(weft__worker *w) {
    unsigned tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
    if (tick % FAIR_TICK == 0 || rt.seeded || (tick % 16 == 0 && timers_due()))
        return NULL;
    weft__g *g = runq_get(w);
    if (g)
        atomic_store_explicit(&w->tick, tick + 1, memory_order_relaxed);
    return g;
}

/* Checks and trace events for a goroutine that stops running. */
static inline __attribute__((always_inline)) void g_stop_checks(weft__g *g) {
    if (WEFT__UNLIKELY(!weft__stack_ok(g->stack)))
        weft__fatal("goroutine %llu stack overflow", (unsigned long long)g->id);
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_stop(g);
}

/* Switch from g to next, or to g0 when next is NULL; w->after is set.
 * Returns when g is resumed, maybe on another worker. */
static inline __attribute__((always_inline)) void
switch_away(weft__worker *w, weft__g *g, weft__g *next, bool dying) {
    void *fake = NULL;
    if (next) {
        set_running(w, next);
        san_before(w, next, &fake, dying);
        weft__switch(&g->ctx, &next->ctx);
    } else {
        w->cur = NULL;
        san_before(w, NULL, &fake, dying);
        weft__switch(&g->ctx, &w->g0);
    }
    san_after(fake);
    run_hook(weft__self());
}

/* Leave the running goroutine g: after(arg) will run once g's stack is no
 * longer in use.  Switches straight to the next local goroutine if there
 * is one, else to g0.  Returns when g is resumed, maybe on another worker. */
static void leave(weft__worker *w, weft__g *g,
                  void (*after)(weft__worker *, void *), void *arg,
                  bool dying) {
    g_stop_checks(g);
    w->after = after;
    w->after_arg = arg;
    switch_away(w, g, next_local(w), dying);
}

/* Make g runnable.  A goroutine readying another (a channel hand-off, an
 * unlock) puts it in runnext and wakes no other worker, even when that
 * pushes the previous runnext into the ring: the waker usually blocks
 * soon, and both then run on this core with their data still in cache.
 * Waking a second core for them costs more than it gains whenever they
 * exchange values (every hand-off then moves cache lines between cores,
 * and the woken core spins stealing from this one).  If the waker instead
 * keeps running, the poller's periodic look (LOOK_NS, see idle_sleep)
 * steals the waiting goroutines, and a worker that finds work wakes the
 * next.  A spawn always offers the new goroutine to an idle worker, as Go
 * does: that is how a program asks for parallelism. */
static void ready(weft__g *g, bool spawn) {
    /* g may still be switching out on another worker */
    while (atomic_load_explicit(&g->status, memory_order_acquire) ==
           WEFT__G_RUNNING)
        weft__cpu_relax();
    atomic_store_explicit(&g->status, WEFT__G_RUNNABLE, memory_order_relaxed);
    weft__worker *w = weft__self();
    if (!w) {
        g->link = NULL;
        gq_put_list(g, g, 1);
        wakep();
        return;
    }
    if (w->cur) {
        weft__g *old = next_swap(w, g);
        if (old)
            runq_put(w, old);
        if (spawn)
            wakep_spawn(offer(w));
        return;
    }
    runq_put(w, g);
    offer(w);
    wakep();
}

void weft__ready(weft__g *g) {
    ready(g, false);
}

/* ---- goroutine life cycle ---------------------------------------------------
 *
 * g structs come in chunks that live until shutdown, so weft_dump can walk
 * every goroutine without any registry to maintain on spawn and exit (a
 * free g has status 0).  Each worker keeps its free g structs in an array
 * (gfree), so that g_alloc can prefetch the ones it hands out next: they
 * were freed by another core as often as not, and a linked list would make
 * every spawn wait for the previous one's cache-line transfer.  Full
 * arrays spill GBATCH of them as one gbatch (an array node) to the shared
 * list, and empty ones take a gbatch back, so a worker that only spawns
 * and one that only runs goroutines to completion balance out.  Fresh
 * chunks, and spills when no node can be allocated, go to a linked "loose"
 * list.  Ids are reserved ID_BATCH at a time and the live count is kept
 * per worker (single writer), so spawning touches no shared cache line.
 */

struct gchunk {
    struct gchunk *next;
    weft__g g[];
};

#define GCHUNK (int)((GCHUNK_BYTES - sizeof(struct gchunk)) / sizeof(weft__g))

struct gbatch {
    struct gbatch *next;
    int n;
    weft__g *g[GBATCH];
};

/* A new chunk, all of it on the loose list.  The pages are mapped
 * populated: a spawner that runs ahead of the workers running its
 * goroutines needs fresh g structs all the time, and a page fault per 32
 * of them was a third of its time.  False if out of memory. */
static bool chunk_new(void) {
    struct gchunk *c = mmap(NULL, GCHUNK_BYTES, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (c == MAP_FAILED)
        return false;
    for (int i = 0; i + 1 < GCHUNK; i++)
        c->g[i].link = &c->g[i + 1];
    weft__lock_acquire(&rt.gfree_lock);
    c->next = atomic_load_explicit(&rt.gchunks, memory_order_relaxed);
    atomic_store_explicit(&rt.gchunks, c, memory_order_release);
    c->g[GCHUNK - 1].link = rt.gloose;
    rt.gloose = &c->g[0];
    weft__lock_release(&rt.gfree_lock);
    return true;
}

/* Under gfree_lock: move up to max free g structs to out; returns how
 * many (0 when the shared lists are empty). */
static int gfree_take(weft__g **out, int max) {
    struct gbatch *b = rt.gfull;
    int n = 0;
    if (b) {
        while (n < max && b->n > 0)
            out[n++] = b->g[--b->n];
        if (b->n == 0) {
            rt.gfull = b->next;
            b->next = rt.gempty;
            rt.gempty = b;
        }
        return n;
    }
    while (n < max && rt.gloose) {
        out[n++] = rt.gloose;
        rt.gloose = rt.gloose->link;
    }
    return n;
}

/* Take up to max free g structs into out, mapping a chunk if need be;
 * returns how many, 0 if out of memory. */
static int gfree_get(weft__g **out, int max) {
    for (;;) {
        weft__lock_acquire(&rt.gfree_lock);
        int n = gfree_take(out, max);
        weft__lock_release(&rt.gfree_lock);
        if (n > 0 || !chunk_new())
            return n;
    }
}

/* Under gfree_lock: fill b with the GBATCH g structs at top and share it. */
static void gbatch_share(struct gbatch *b, weft__g **top) {
    memcpy(b->g, top, sizeof b->g);
    b->n = GBATCH;
    b->next = rt.gfull;
    rt.gfull = b;
}

/* w's array is full: give GBATCH of it to the shared list, in an empty
 * gbatch if there is one (one locked step), else in a new one, else, out
 * of memory, on the loose list. */
static void gfree_spill(weft__worker *w) {
    w->ngfree -= GBATCH;
    weft__g **top = &w->gfree[w->ngfree];
    weft__lock_acquire(&rt.gfree_lock);
    struct gbatch *b = rt.gempty;
    if (b) {
        rt.gempty = b->next;
        gbatch_share(b, top);
    }
    weft__lock_release(&rt.gfree_lock);
    if (b)
        return;
    b = malloc(sizeof *b);
    if (!b)
        for (int i = 0; i + 1 < GBATCH; i++)
            top[i]->link = top[i + 1];
    weft__lock_acquire(&rt.gfree_lock);
    if (b) {
        gbatch_share(b, top);
    } else {
        top[GBATCH - 1]->link = rt.gloose;
        rt.gloose = top[0];
    }
    weft__lock_release(&rt.gfree_lock);
}

#define GPREFETCH 4 /* g structs prefetched ahead in a worker's array */

static weft__g *g_alloc(weft__worker *w) {
    weft__g *g;
    if (!w) {
        if (!gfree_get(&g, 1))
            return NULL;
    } else {
        if (w->ngfree == 0) {
            w->ngfree = gfree_get(w->gfree, GFREE_MAX / 2);
            if (w->ngfree == 0)
                return NULL;
            for (int i = 1; i <= GPREFETCH && i < w->ngfree; i++)
                g_prefetch(w->gfree[w->ngfree - 1 - i]);
        }
        g = w->gfree[--w->ngfree];
        if (w->ngfree >= GPREFETCH)
            g_prefetch(w->gfree[w->ngfree - GPREFETCH]);
    }
    g->stack = NULL;
    return g;
}

static void g_release(weft__worker *w, weft__g *g) {
    atomic_store_explicit(&g->status, 0, memory_order_relaxed);
    if (g->named) {
        g->name[0] = 0;
        g->named = false;
    }
    if (w->ngfree == GFREE_MAX)
        gfree_spill(w);
    w->gfree[w->ngfree++] = g;
}

/* At shutdown: every g is free, every gbatch on one of the two lists. */
static void gfree_release(void) {
    for (int full = 0; full < 2; full++) {
        struct gbatch **list = full ? &rt.gfull : &rt.gempty;
        while (*list) {
            struct gbatch *b = *list;
            *list = b->next;
            free(b);
        }
    }
    rt.gloose = NULL;
}

static uint64_t g_new_id(weft__worker *w) {
    if (!w)
        return atomic_fetch_add_explicit(&next_gid, 1, memory_order_relaxed);
    if (w->id_next == w->id_end) {
        w->id_next = atomic_fetch_add_explicit(&next_gid, ID_BATCH,
                                               memory_order_relaxed);
        w->id_end = w->id_next + ID_BATCH;
    }
    return w->id_next++;
}

/* Count a goroutine in (+1) or out (-1) on the caller's counter. */
static void live_add(weft__worker *w, long d) {
    if (!w) {
        atomic_fetch_add_explicit(&rt.nlive_threads, d, memory_order_release);
        return;
    }
    long v = atomic_load_explicit(&w->nlive, memory_order_relaxed);
    atomic_store_explicit(&w->nlive, v + d, memory_order_release);
}

/* A finished goroutine whose stack has been handed to the next goroutine
 * (g_exit) or back to the cache (g_free_after, on g0). */
static void g_retire(weft__worker *w, weft__g *g) {
#ifdef WEFT_TSAN
    __tsan_destroy_fiber(g->tsan_fiber);
#endif
    live_add(w, -1);
    g_release(w, g);
}

static void g_free_after(weft__worker *w, void *arg) {
    weft__g *g = arg;
    weft__stack_put(&w->stacks, g->stack);
    g_retire(w, g);
}

/* g's function has returned.  When the next local goroutine has never run
 * and wants a stack of the same size, it inherits g's and is returned, to
 * be called from the same g_main frame: no switch, no stack to fetch, no
 * frame to lay out (a spawner's goroutines mostly run this way).  Else g
 * switches away for good. */
static weft__g *g_exit(weft__g *g) {
    weft__worker *w = weft__self();
    atomic_store_explicit(&g->status, WEFT__G_DEAD, memory_order_relaxed);
    g_stop_checks(g);
    weft__g *next = next_local(w);
    if (next && !next->stack && next->stack_size == g->stack_size) {
        next->stack = g->stack;
#ifdef WEFT_TSAN
        next->tsan_fiber = __tsan_create_fiber(0);
        __tsan_switch_to_fiber(next->tsan_fiber, 0);
#endif
        set_running(w, next);
        g_retire(w, g);
        return next;
    }
    w->after = g_free_after;
    w->after_arg = g;
    switch_away(w, g, next, true);
    __builtin_unreachable();
}

static void g_main(void *arg) {
    weft__g *g = arg;
    san_after(NULL);
    run_hook(weft__self());
    for (;;) {
        g->fn(g->arg);
        g = g_exit(g);
    }
}

int weft__go(weft_fn fn, void *arg, const weft_goopts *opts) {
    size_t size = opts ? opts->stack_size : 0;
    weft__worker *w = weft__self();
    /* A stack of another size than the runtime's is rare and may be huge:
     * reserve it now, so that failing is -ENOMEM here and not fatal at the
     * first run. */
    weft__stack *st = NULL;
    if (size && size != rt.stack_size) {
        st = weft__stack_get(w ? &w->stacks : NULL, size);
        if (!st)
            return -ENOMEM;
    }
    weft__g *g = g_alloc(w);
    if (!g) {
        if (st)
            weft__stack_put(w ? &w->stacks : NULL, st);
        return -ENOMEM;
    }
    g->fn = fn;
    g->arg = arg;
    g->stack_size = size ? size : rt.stack_size;
    if (st) {
        g->stack = st;
        g_stack_ready(g);
    }
    if (opts && opts->name) {
        snprintf(g->name, sizeof g->name, "%s", opts->name);
        g->named = true;
    }
    g->id = g_new_id(w);
    atomic_store_explicit(&g->status, WEFT__G_WAITING, memory_order_relaxed);
    live_add(w, 1);
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_spawn(g);
    ready(g, true);
    return 0;
}

/* ---- yielding and sleeping ---------------------------------------------- */

static void yield_after(weft__worker *w, void *arg) {
    weft__g *g = arg;
    atomic_store_explicit(&g->status, WEFT__G_RUNNABLE, memory_order_relaxed);
    runq_put(w, g);
    offer(w); /* it still has work: another worker may take it */
}

/* True when nothing but the caller could run on w now: its queues and the
 * global queue are empty and no timer is due.  Yielding then is a no-op,
 * except that it counts as a schedule: every FAIR_TICK-th one goes through
 * find_runnable anyway (next_local declines that tick), whose fairness
 * check polls descriptors.  With every worker busy nobody holds the poller
 * role, so goroutines that only yield would otherwise keep a goroutine
 * whose descriptor is ready parked for ever. */
static bool yield_is_noop(weft__worker *w) {
    if (rt.seeded || !runq_empty(w) ||
        atomic_load_explicit(&rt.gq_len, memory_order_relaxed) || timers_due())
        return false;
    unsigned tick = atomic_load_explicit(&w->tick, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->tick, tick, memory_order_relaxed);
    return tick % FAIR_TICK != 0;
}

void weft_yield(void) {
    weft__worker *w = weft__self();
    weft__g *g = w ? w->cur : NULL;
    if (!g) {
        sched_yield();
        return;
    }
    if (WEFT__UNLIKELY(rt.seeded) && (weft__rand() & 1))
        return; /* WEFT_SEED: whether a yield switches is a draw */
    if (yield_is_noop(w))
        return;
    leave(w, g, yield_after, g, false);
}

uint64_t weft_id(void) {
    weft__g *g = weft__curg();
    return g ? g->id : 0;
}

size_t weft_goroutines(void) {
    if (!atomic_load_explicit(&rt.started, memory_order_acquire))
        return 0;
    long n = atomic_load_explicit(&rt.nlive_threads, memory_order_acquire);
    for (int i = 0; i < rt.nprocs; i++)
        n += atomic_load_explicit(&rt.workers[i]->nlive, memory_order_acquire);
    return n > 0 ? (size_t)n : 0;
}

int weft__nprocs(void) {
    return rt.nprocs;
}

/* ---- parking, for the waiter (waiter.c) --------------------------------- */

void weft__leave(weft__g *g, void (*after)(weft__worker *, void *), void *arg) {
    leave(weft__self(), g, after, arg, false);
}

/* ---- workers and the runtime's life ------------------------------------- */

static void *worker_main(void *arg) {
    weft__worker *w = arg;
    tls_worker = w;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &w->stack_lo, &w->stack_size);
        pthread_attr_destroy(&attr);
    }
#ifdef WEFT_TSAN
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
    if (weft__worker_init)
        weft__worker_init(w->id);
    /* the poller's epoll timeout is the timer heap's deadline: do not let
     * the kernel's default 50 us of slack blur it */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    for (;;) {
        weft__g *g = find_runnable(w);
        if (!g)
            break;
        run(w, g);
    }
    return NULL;
}

static int procs_default(void) {
    const char *env = getenv("WEFT_PROCS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == 0 && v > 0 && v <= 1024)
            return (int)v;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void seed_init(void) {
    const char *env = getenv("WEFT_SEED");
    rt.seeded = env && *env;
    rt.seed = rt.seeded ? strtoull(env, NULL, 10) : (uint64_t)weft_now();
    rt.seed_rng = (rt.seed + 1) * 0xD1B54A32D192ED03ull | 1;
}

/* flush: hand the workers' cached stacks back to the pool (not in a forked
 * child: a cache may have been mid-update when its thread vanished). */
static void workers_free(int n, bool flush) {
    for (int i = 0; i < n; i++) {
        weft__worker *w = rt.workers[i];
        if (flush)
            weft__stack_flush(&w->stacks);
        free(w->gq_spare);
        free(w);
    }
    free(rt.workers);
    rt.workers = NULL;
}

int weft__sched_config(const weft_config *cfg) {
    seed_init();
    weft__fatal_id = weft_id;
    atomic_store_explicit(&weft__timer_earliest, timer_wakeup,
                          memory_order_relaxed);
    rt.next_fenced =
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                0) == 0;
    rt.nprocs = cfg && cfg->procs > 0 ? cfg->procs : procs_default();
    if (rt.seeded)
        rt.nprocs = 1;
    rt.stack_size =
        cfg && cfg->stack_size ? cfg->stack_size : WEFT_DEFAULT_STACK;
    atomic_store(&rt.stopping, false);
    atomic_store(&rt.poll_deadline, -1);
    return rt.nprocs;
}

int weft__sched_start(void) {
    rt.workers = calloc((size_t)rt.nprocs, sizeof *rt.workers);
    if (!rt.workers)
        return -ENOMEM;
    for (int i = 0; i < rt.nprocs; i++) {
        weft__worker *w =
            aligned_alloc(WEFT__CACHELINE, (sizeof *w + WEFT__CACHELINE - 1) &
                                               ~(size_t)(WEFT__CACHELINE - 1));
        if (!w) {
            workers_free(i, true);
            return -ENOMEM;
        }
        memset(w, 0, sizeof *w);
        w->id = i;
        w->rng = (rt.seed + (uint64_t)i + 1) * 0x9E3779B97F4A7C15ull | 1;
        rt.workers[i] = w;
    }
    for (int i = 0; i < rt.nprocs; i++) {
        if (weft__thread_start(&rt.workers[i]->thread, NULL, worker_main,
                               rt.workers[i]) != 0) {
            atomic_store(&rt.stopping, true);
            for (int j = 0; j < i; j++) {
                worker_wake(rt.workers[j]);
                weft__netpoll_break();
                pthread_join(rt.workers[j]->thread, NULL);
            }
            workers_free(rt.nprocs, true);
            return -EAGAIN;
        }
    }
    atomic_store_explicit(&rt.started, true, memory_order_release);
    return 0;
}

/* The scheduler's memory and counts, back to a stopped runtime's, once no
 * worker runs (joined, or gone in a forked child: see workers_free). */
static void sched_free(bool flush) {
    workers_free(rt.nprocs, flush);
    gq_release();
    rt.idle = NULL;
    atomic_store(&rt.nidle, 0);
    atomic_store(&rt.nspinning, 0);
    atomic_store(&rt.poller, 0);
    atomic_store(&rt.poll_woken, 0);
    for (struct gchunk *c = atomic_load(&rt.gchunks), *next; c; c = next) {
        next = c->next;
        munmap(c, GCHUNK_BYTES);
    }
    atomic_store(&rt.gchunks, NULL);
    gfree_release();
    atomic_store(&rt.nlive_threads, 0);
}

void weft__sched_stop(void) {
    atomic_store(&rt.started, false);
    atomic_store(&rt.stopping, true);
    for (int i = 0; i < rt.nprocs; i++)
        worker_wake(rt.workers[i]);
    for (int i = 0; i < rt.nprocs; i++) {
        weft__netpoll_break();
        pthread_join(rt.workers[i]->thread, NULL);
    }
    sched_free(true);
}

void weft__sched_atfork(int phase) {
    if (phase == 0) {
        weft__lock_acquire(&rt.gfree_lock);
        weft__lock_acquire(&rt.gq_lock);
        weft__lock_acquire(&rt.idle_lock);
        return;
    }
    weft__lock_release(&rt.idle_lock);
    weft__lock_release(&rt.gq_lock);
    weft__lock_release(&rt.gfree_lock);
    if (phase == 2)
        tls_worker =
            NULL; /* a goroutine that forked goes on as a plain thread */
}

void weft__sched_forget(void) {
    if (!atomic_load(&rt.started))
        return;
    atomic_store(&rt.started, false);
    sched_free(false);
    atomic_store(&rt.stopping, false);
}

/* ---- introspection for debug.c ------------------------------------------ */

void weft__foreach_g(void (*fn)(weft__g *g, void *arg), void *arg) {
    if (!atomic_load(&rt.started))
        return;
    /* No lock: SIGQUIT's dump runs here, maybe on a thread interrupted
     * while it holds gfree_lock.  Chunks are only ever prepended, each
     * complete before it is published, and live until shutdown. */
    for (struct gchunk *c =
             atomic_load_explicit(&rt.gchunks, memory_order_acquire);
         c; c = c->next)
        for (int i = 0; i < GCHUNK; i++)
            if (atomic_load_explicit(&c->g[i].status, memory_order_acquire))
                fn(&c->g[i], arg);
}

bool weft__sched_quiet(uint64_t *epoch) {
    /* ticks first: a worker seen idle afterwards must bump its tick before
     * it can run anything (see deadlock.c).  While stopping, exiting
     * workers still count as idle. */
    uint64_t e = 0;
    for (int i = 0; i < rt.nprocs; i++)
        e += atomic_load(&rt.workers[i]->tick);
    *epoch = e;
    return atomic_load(&rt.nidle) == rt.nprocs - 1 &&
           !atomic_load(&rt.stopping);
}
