/* SPDX-License-Identifier: MIT */
/*
 * The scheduler: goroutines multiplexed M:N onto worker threads (layer 3;
 * sched.h lists the layer's files).
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
 *   - runnext and runq, the local run queue (runq.h); runnext yields to
 *     the ring after NEXT_STREAK picks in a row (runq_get).
 * Shared:
 *   - the global queue (gq.c): overflow of full rings, goroutines readied
 *     by plain threads; checked every 61st schedule for fairness.
 *   - the idle list: idle workers, each asleep in its slot's epoll set
 *     (p_sleep), so that its own descriptors wake it.
 *   - the poller role: at most one idle worker sleeps until the next timer
 *     deadline (and runs the timers), the others until woken.
 *
 * Waking (the lost-wakeup argument): whoever offers work publishes it,
 * issues a seq_cst fence, then reads nidle/nspinning (wakep).  A worker
 * going idle adds itself to the idle list, issues a fence, then rechecks
 * the global queue and the offer counts (work_offered) before sleeping.
 * One of the two always sees the other.  Goroutines readied by a hand-off
 * are not offered: they run where they were readied (see ready), or the
 * monitor (monitor.c) rescues them when that worker is stuck.
 *
 * Hand-off: the monitor retires a P whose goroutine holds its thread (see
 * proc.h) and gives a free P to a spare or new M (weft__sched_handoff);
 * the retired P's M gives it up on g0 once its goroutine switches
 * (p_release) and waits as a spare (spare_wait).
 *
 * Spinning: a woken worker "spins" (searches queues and steals) for a short
 * bounded time before it sleeps again.  While any worker spins, wakep wakes
 * nobody; the spinner that finds work wakes a replacement, as in Go.
 */
#include "sched.h"
#include "arch/arch.h"
#include "monitor.h"
#include "netpoll.h"
#include "proc.h"
#include "runq.h"
#include "stack.h"
#include "sys.h"
#include "timer.h"
#include "trace.h"

#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
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

#define STEAL_ROUNDS 4
#define NEXT_STREAK 2
#define FAIR_TICK 61              /* see fair_step */
#define POLL_AWAKE 0              /* rt.poll_deadline: see poller_take */
#define SPARE_LINGER WEFT_SEC(10) /* a spare M waits this long, then ends */
#define MON_AWAKE 0               /* rt.mon_word: see weft__sched_mon_sleep */
#define MON_ASLEEP 1

/* Fields are grouped by who writes them, one cache line per group, so
 * that spinning workers and the global queue do not slow each other down. */
static struct {
    /* read-mostly */
    atomic_bool started; /* workers exist: weft__sched_start to _stop */
    int nprocs; /* active Ps: the threads that run goroutines at once */
    int max_threads;
    size_t stack_size;
    weft__p **ps;   /* every P made, rt.nps of max_threads slots */
    atomic_int nps; /* grows (release) once a P is in its slot */
    weft__m **ms;   /* every M made, rt.nms of max_threads slots */
    atomic_bool stopping;
    bool seeded;
    bool next_fenced; /* sys_membarrier works: see next_swap */
    uint64_t seed;
    uint64_t seed_rng; /* WEFT_SEED: schedule draws, the one worker only */

    _Alignas(WEFT__CACHELINE) weft__lock idle_lock;
    weft__p *idle;
    atomic_int nidle;

    _Alignas(WEFT__CACHELINE) atomic_int nspinning;

    /* Ms and free Ps, under m_lock (see weft__sched_handoff) */
    _Alignas(WEFT__CACHELINE) weft__lock m_lock;
    int nms;
    atomic_int nthreads; /* M threads alive (deadlock.c counts them) */
    weft__p *free_ps;
    weft__m *spares;
    weft__m *ended;       /* Ms whose thread ended: a struct to reuse */
    atomic_int nheld;     /* retired Ps their M has not given up yet */
    atomic_uint mon_word; /* MON_*: the monitor's sleep */

    /* per slot: the active P in it (under m_lock, read by anyone), the P
     * asleep in its set (see p_sleep), and the monitor's own copy of that
     * P's polls at its previous look (weft__sched_poll_unwatched) */
    struct slot {
        _Alignas(WEFT__CACHELINE) _Atomic(weft__p *) p;
        _Atomic(weft__p *) sleeper;
        unsigned polls_seen;
    } * slots;

    _Alignas(WEFT__CACHELINE)
        atomic_int poller;      /* holder's id + 1, or 0: see poller_take */
    atomic_llong poll_deadline; /* what the poller sleeps towards */

} rt;

_Atomic(const weft__idle_ops *) weft__idle_hook;
static __thread uint64_t tls_rng;

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
    weft__m *m = weft__m_self();
    if (WEFT__UNLIKELY(rt.seeded) && m)
        return xorshift(&rt.seed_rng); /* see seed_pick */
    if (m)
        return xorshift(&m->rng);
    if (!tls_rng)
        tls_rng = (uint64_t)(uintptr_t)&tls_rng * 0x9E3779B97F4A7C15ull | 1;
    return xorshift(&tls_rng);
}

/* ---- sanitizer hooks around every switch -------------------------------- */

static inline void san_before(weft__m *w, weft__g *to, void **fake,
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

/* ---- run queues (runq.h) ------------------------------------------------- */

static inline void local_put(weft__p *w, weft__g *g) {
    runq_put(&w->q, &w->gq_spare, g);
}

static inline weft__g *next_swap_w(weft__p *w, weft__g *g) {
    return next_swap(&w->next, g, rt.next_fenced);
}

/* runnext goes first, while its data is warm in this core's cache.  But
 * two goroutines that keep waking each other would keep it filled forever
 * and starve the ring: after NEXT_STREAK runnext picks in a row the ring's
 * head gets a turn.  (Go bounds the same with a time slice the pair
 * shares, enforced by preemption, which weft does not have.) */
static inline __attribute__((always_inline)) weft__g *runq_get(weft__p *w) {
    if (w->nexts < NEXT_STREAK) {
        weft__g *g = next_take(&w->next, rt.next_fenced);
        if (g) {
            w->nexts++;
            return g;
        }
    }
    w->nexts = 0;
    weft__g *g = ring_get(&w->q);
    return g ? g : next_take(&w->next, rt.next_fenced);
}

static bool runq_empty(weft__p *w) {
    return ring_empty(&w->q) && next_empty(&w->next);
}

/* Take up to max goroutines from the global queue: one is returned, the
 * rest go to w's ring, which the caller has found empty (or asks for one
 * only). */
static weft__g *gq_take_batch(weft__p *w, size_t max) {
    if (weft__gq_len() == 0)
        return NULL;
    weft__g *got[WEFT__RUNQ / 2];
    size_t n = weft__gq_take(got, max, rt.nprocs, &w->gq_spare);
    if (n == 0)
        return NULL;
    runq_put_many(&w->q, &w->gq_spare, got + 1, n - 1);
    return got[0];
}

/* ---- idle workers ------------------------------------------------------- */

/* The M running w (an idle P's sleeps for it). */
static inline weft__m *p_m(weft__p *w) {
    return atomic_load_explicit(&w->m, memory_order_relaxed);
}

static weft__p *idle_pop(void) {
    weft__lock_acquire(&rt.idle_lock);
    weft__p *w = rt.idle;
    if (w) {
        rt.idle = w->idle_next;
        atomic_store_explicit(&w->idle, false, memory_order_relaxed);
        atomic_fetch_sub(&rt.nidle, 1);
    }
    weft__lock_release(&rt.idle_lock);
    return w;
}

/* Take w off the idle list unless a waker already did: true if it was
 * there (nobody will wake it then). */
static bool idle_remove(weft__p *w) {
    bool was = false;
    weft__lock_acquire(&rt.idle_lock);
    for (weft__p **p = &rt.idle; *p; p = &(*p)->idle_next)
        if (*p == w) {
            *p = w->idle_next;
            atomic_store_explicit(&w->idle, false, memory_order_relaxed);
            atomic_fetch_sub(&rt.nidle, 1);
            was = true;
            break;
        }
    weft__lock_release(&rt.idle_lock);
    return was;
}

static bool retired(weft__p *w) {
    return atomic_load_explicit(&w->slow, memory_order_acquire) &
           WEFT__P_RETIRED;
}

/*
 * Sleeping.  An idle P sleeps in its slot's epoll set, so that events of
 * the files registered there (netpoll.c, "Sets") wake it and their
 * goroutines run where their data is; a waker sets the M's sleep word and
 * then writes the set's eventfd.  Only one thread may sleep in a set (a
 * wake through the eventfd reaches one sleeper, maybe the wrong one):
 * after a hand-off the retired P may still be there while its successor
 * comes to sleep, so the set's sleeper slot is taken by CAS and the loser
 * sleeps on its futex, and the retired one, on its way out, wakes the
 * successor to move in (p_rouse).  The waker's and the sleeper's stores
 * (sleep word, in_set) and loads are seq_cst: each sees the other's.  The
 * sleep word also makes a wake once per sleep: a waker that finds it set
 * already leaves the system call to the one that set it.
 */
static int own_poll(weft__p *w, int64_t deadline) {
    atomic_store_explicit(
        &w->polls, atomic_load_explicit(&w->polls, memory_order_relaxed) + 1,
        memory_order_relaxed);
    return weft__netpoll(w->slot, deadline);
}

static void p_wake(weft__p *w) {
    weft__m *m = p_m(w);
    if (atomic_exchange(&m->sleep_word, 1))
        return;
    if (atomic_load(&w->in_set))
        weft__netpoll_break(w->slot);
    else
        weft__futex_wake(&m->sleep_word, 1);
}

static void p_rouse(weft__p *v);

/* Sleep until p_wake, deadline (-1: none) or, in the set, events: how
 * many goroutines those readied (0 on the futex). */
static int p_sleep(weft__p *w, int64_t deadline) {
    weft__m *m = p_m(w);
    struct slot *sl = &rt.slots[w->slot];
    weft__p *none = NULL;
    if (!atomic_compare_exchange_strong(&sl->sleeper, &none, w)) {
        if (deadline < 0)
            weft__m_sleep(m);
        else
            weft__m_sleep_for(m, deadline - weft_now());
        return 0;
    }
    atomic_store(&w->in_set, true);
    int readied = atomic_load(&m->sleep_word) ? 0 : own_poll(w, deadline);
    atomic_store(&w->in_set, false);
    atomic_store(&sl->sleeper, NULL);
    weft__p *owner = atomic_load(&sl->p);
    if (owner != w)
        p_rouse(owner);
    return readied;
}

/* Interrupt the poller's sleep (p_wake makes it once per sleep: a system
 * call is too dear to repeat for every goroutine readied). */
static void poller_wake(void) {
    if (atomic_load(&rt.poll_deadline) == POLL_AWAKE)
        return; /* searching: it sees the work before it sleeps */
    int h = atomic_load(&rt.poller);
    if (h)
        p_wake(rt.ps[h - 1]);
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
    weft__p *w = idle_pop();
    if (!w) {
        atomic_fetch_sub(&rt.nspinning, 1);
        return;
    }
    w->spinning = true; /* nspinning was raised on its behalf */
    p_wake(w);
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
 * without blocking, the monitor's look takes the goroutines within a look
 * or two. */
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
        long long until = atomic_load(&rt.poll_deadline);
        if (until != POLL_AWAKE && (until < 0 || when < until))
            poller_wake();
        return;
    }
    /* no poller: an idle worker will take the role and sleep until when */
    if (atomic_load_explicit(&rt.nidle, memory_order_relaxed) > 0) {
        weft__p *w = idle_pop();
        if (w)
            p_wake(w);
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
 * Goroutines stuck behind a long-running one are the monitor's to rescue
 * (weft__sched_rescue).
 */
static unsigned offer(weft__p *w) {
    unsigned n = atomic_load_explicit(&w->offers, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->offers, n, memory_order_relaxed);
    return n;
}

static int nps(void) {
    return atomic_load_explicit(&rt.nps, memory_order_acquire);
}

static unsigned offers_now(void) {
    unsigned sum = 0;
    for (int i = 0, n = nps(); i < n; i++)
        sum += atomic_load_explicit(&rt.ps[i]->offers, memory_order_relaxed);
    return sum;
}

/* After the caller's full fence: may it sleep? */
static bool work_offered(weft__p *w) {
    return weft__gq_len() || offers_now() != w->offers_seen;
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
 * never by its idle loop (steal_work draws from the M's rng): how long the
 * worker idles, which depends on plain threads and time, does not shift the
 * sequence.  Every pick goes through seed_pick, never through the other
 * paths of find_runnable (a goroutine that a plain thread readies just
 * after seed_pick looked waits for the next round) nor through next_local,
 * and the global queue is moved into the ring only when the ring is empty,
 * so the tick % FAIR_TICK check never decides anything. */
static weft__g *seed_pick(weft__p *w) {
    weft__g *next = next_swap_w(w, NULL);
    if (next)
        local_put(w, next);
    if (runq_empty(w)) {
        weft__g *g = gq_take_batch(w, WEFT__RUNQ / 2);
        if (!g)
            return NULL;
        local_put(w, g);
    }
    unsigned h = atomic_load_explicit(&w->q.head, memory_order_relaxed);
    unsigned t = atomic_load_explicit(&w->q.tail, memory_order_relaxed);
    unsigned i = (h + xorshift(&rt.seed_rng) % (t - h)) % WEFT__RUNQ;
    weft__g *g = atomic_load_explicit(&w->q.ring[i], memory_order_relaxed);
    atomic_store_explicit(
        &w->q.ring[i],
        atomic_load_explicit(&w->q.ring[h % WEFT__RUNQ], memory_order_relaxed),
        memory_order_relaxed);
    atomic_store_explicit(&w->q.ring[h % WEFT__RUNQ], g, memory_order_relaxed);
    return runq_get(w);
}

/* ---- finding work ------------------------------------------------------- */

/* Spinning: steal from the rings of random victims, and look at the global
 * queue between rounds. */
static weft__g *steal_work(weft__p *w) {
    int n = nps();
    for (int round = 0; round < STEAL_ROUNDS; round++) {
        unsigned start = xorshift(&p_m(w)->rng) % (unsigned)n;
        for (int i = 0; i < n; i++) {
            weft__p *v = rt.ps[(start + (unsigned)i) % (unsigned)n];
            if (v == w)
                continue;
            weft__g *g = runq_steal(&w->q, &v->q);
            if (g) {
                if (WEFT__UNLIKELY(weft__tracing()))
                    weft__trace_steal(v->id);
                return g;
            }
        }
        weft__g *g = gq_take_batch(w, WEFT__RUNQ / 2);
        if (g)
            return g;
    }
    return NULL;
}

static void stop_spinning(weft__p *w) {
    if (w->spinning) {
        w->spinning = false;
        atomic_fetch_sub(&rt.nspinning, 1);
    }
}

/*
 * The poller role.  rt.poller is 0 (nobody holds it) or the holder's id +
 * 1.  It is taken by an idle worker (poller_take's CAS, the only way to
 * get it) and held from that worker's sleep in epoll_wait until it has
 * found work (found, the holder's own store of 0, the only way to give it
 * up): so one worker at a time holds it, and a holder that wakes and finds
 * nothing sleeps again without a second CAS (handing the role to another
 * idle worker at every wake made the two wake each other for as long as a
 * timer was pending).  rt.poll_deadline says what the holder is doing: -1
 * asleep with no deadline, a time asleep until then, POLL_AWAKE searching
 * (or no holder).  A searching holder needs no wake-up: it publishes its
 * deadline, then rechecks the timers and the offers before it sleeps
 * (poll_sleep), and a waker publishes its work, fences, then reads the
 * deadline (poller_wake, timer_wakeup): one of the two sees the other.
 */
static bool poller_mine(weft__p *w) {
    return atomic_load_explicit(&rt.poller, memory_order_relaxed) == w->id + 1;
}

static bool poller_take(weft__p *w) {
    int zero = 0;
    return atomic_compare_exchange_strong(&rt.poller, &zero, w->id + 1);
}

/* A timer or a descriptor wait needs the poller role's watch. */
static bool watch_pending(void) {
    return weft__timers_pending() || weft__netpoll_waiting();
}

/* The holder leaves with work: if something still needs watching, wake an
 * idle worker to take the role (timer_wakeup finds no poller now).  A
 * holder whose P is retired (leaving) never comes back for the role, so it
 * always passes it on: the idle hook (deadlock detection) runs only in the
 * role, and with nothing pending nobody else would take it. */
static void poller_release(bool leaving) {
    atomic_store(&rt.poller, 0);
    if (leaving || watch_pending())
        timer_wakeup(INT64_MAX);
}

/* The global queue, in a batch for the ring. */
static weft__g *global_step(weft__p *w) {
    return gq_take_batch(w, WEFT__RUNQ / 2);
}

/* Wake the monitor from its deep sleep (weft__sched_mon_sleep): a P
 * leaves idle.  Off every hot path: only after an idle sleep. */
static void mon_kick(void) {
    if (atomic_load(&rt.mon_word) == MON_ASLEEP &&
        atomic_exchange(&rt.mon_word, MON_AWAKE) == MON_ASLEEP)
        weft__futex_wake(&rt.mon_word, 1);
}

/* Sleep as the poller: until the next timer (or the idle hook's period),
 * then run the due timers. */
static void poll_sleep(weft__p *w) {
    const weft__idle_ops *idle = NULL;
    /* armed before the deadline is published: a wake meant for the
     * previous sleep either ends this one for nothing or lands before the
     * arm, and then what its waker published the rechecks below see */
    weft__m_arm(p_m(w));
    int64_t deadline = weft__timers_next();
    atomic_store(&rt.poll_deadline, deadline);
    bool idled = false;
    if (!work_offered(w) && !atomic_load(&rt.stopping) && !retired(w)) {
        deadline = weft__timers_next(); /* a timer added meanwhile */
        if (WEFT__UNLIKELY(deadline < 0) &&
            (idle =
                 atomic_load_explicit(&weft__idle_hook, memory_order_relaxed)))
            deadline = weft_now() + idle->period;
        atomic_store(&rt.poll_deadline, deadline);
        p_sleep(w, deadline);
        /* undisturbed: the hook's period passed */
        idled = idle && weft_now() >= deadline;
    }
    atomic_store(&rt.poll_deadline, POLL_AWAKE);
    mon_kick();
    weft__timers_run(weft_now());
    if (idled)
        idle->check();
}

/* Sleep on the idle list until woken, or until w's own set readied
 * goroutines and w took itself off the list. */
static void idle_sleep(weft__p *w) {
    weft__m *m = p_m(w);
    weft__m_arm(m);
    weft__lock_acquire(&rt.idle_lock);
    w->idle_next = rt.idle;
    rt.idle = w;
    atomic_store_explicit(&w->idle, true, memory_order_relaxed);
    atomic_fetch_add(&rt.nidle, 1);
    weft__lock_release(&rt.idle_lock);
    weft__fence();
    /* no poller while something needs one: take the role instead (the
     * holder may have left between our poller_take and the fence) */
    bool recheck =
        work_offered(w) || atomic_load(&rt.stopping) || retired(w) ||
        (!atomic_load(&rt.poller) &&
         (watch_pending() ||
          atomic_load_explicit(&weft__idle_hook, memory_order_relaxed)));
    if (recheck && idle_remove(w))
        atomic_store(&m->sleep_word, 1);
    while (!atomic_load_explicit(&m->sleep_word, memory_order_acquire))
        if (p_sleep(w, -1) > 0 && idle_remove(w))
            break;
    mon_kick();
}

/* Nothing found: sleep, as the poller if the role is ours or free, else on
 * the futex. */
static void idle_step(weft__p *w) {
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_idle();
    if (poller_mine(w) || poller_take(w))
        poll_sleep(w);
    else
        idle_sleep(w);
}

/* ---- the steps of find_runnable ---------------------------------------------
 *
 * Each returns a goroutine or NULL; find_runnable calls them in order and
 * stops at the first that finds one. */

static unsigned tick_next(weft__p *w) {
    unsigned tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
    atomic_store_explicit(&w->tick, tick + 1, memory_order_relaxed);
    return tick;
}

/* Every FAIR_TICK-th schedule: the global queue and ready descriptors get
 * a turn even while local work never runs out. */
static weft__g *fair_step(weft__p *w, unsigned tick) {
    if (tick % FAIR_TICK)
        return NULL;
    weft__g *g = gq_take_batch(w, 1);
    if (weft__netpoll_waiting())
        own_poll(w, 0);
    return g;
}

static void timers_step(weft__p *w, unsigned tick) {
    if ((tick % 16 == 0 || runq_empty(w)) && timers_due())
        weft__timers_run(weft_now());
}

/* Due timers, then the local run queue. */
static weft__g *local_step(weft__p *w, unsigned tick) {
    timers_step(w, tick);
    return runq_get(w);
}

/* Ready descriptors of w's set: their goroutines land in the local run
 * queue. */
static weft__g *poll_step(weft__p *w) {
    if (!weft__netpoll_waiting() || own_poll(w, 0) == 0)
        return NULL;
    return runq_get(w);
}

/* Maybe become a spinner (at most half the busy workers spin), and steal
 * while spinning. */
static weft__g *spin_step(weft__p *w) {
    w->offers_seen = offers_now(); /* before searching: see work_offered */
    if (!w->spinning &&
        2 * atomic_load(&rt.nspinning) < rt.nprocs - atomic_load(&rt.nidle)) {
        w->spinning = true;
        atomic_fetch_add(&rt.nspinning, 1);
    }
    return w->spinning ? steal_work(w) : NULL;
}

/* WEFT_SEED: the only picker (see seed_pick); with one worker no look, so
 * no rescue, ever picks instead. */
static weft__g *seeded_step(weft__p *w, unsigned tick) {
    timers_step(w, tick);
    w->offers_seen = offers_now(); /* before looking: see idle_sleep */
    return seed_pick(w);
}

/* g was found: a spinner wakes a replacement (there may be more work), and
 * the poller role goes on to an idle worker. */
static weft__g *found(weft__p *w, weft__g *g) {
    if (w->spinning) {
        stop_spinning(w);
        wakep();
    }
    if (poller_mine(w))
        poller_release(false);
    return g;
}

/* A goroutine for w to run; NULL when the runtime stops or w was retired
 * (the caller then gives w up). */
static weft__g *find_runnable(weft__p *w) {
    for (;;) {
        if (atomic_load_explicit(&rt.stopping, memory_order_relaxed) ||
            retired(w))
            return NULL;
        unsigned tick = tick_next(w);
        weft__g *g;
        if (WEFT__UNLIKELY(rt.seeded))
            g = seeded_step(w, tick);
        else if (!(g = fair_step(w, tick)) && !(g = local_step(w, tick)) &&
                 !(g = global_step(w)) && !(g = poll_step(w)))
            g = spin_step(w);
        if (g)
            return found(w, g);
        stop_spinning(w);
        idle_step(w);
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

static void g_attach_stack(weft__p *w, weft__g *g) {
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
static inline void run_hook(weft__m *w) {
    void (*after)(weft__m *, void *) = w->after;
    if (after) {
        w->after = NULL;
        after(w, w->after_arg);
    }
}

/* g, which has a stack, runs on w now. */
static inline void g_running(weft__m *w, weft__g *g) {
    /* release: the monitor reads g's fields through it (HOGWARN) */
    atomic_store_explicit(&w->cur, g, memory_order_release);
    atomic_store_explicit(&g->status, WEFT__G_RUNNING, memory_order_relaxed);
}

static inline void set_running(weft__m *w, weft__g *g) {
    if (!g->stack)
        g_attach_stack(w->p, g);
    g_running(w, g);
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_run(g);
}

/* g0 side: run g until it switches back to g0. */
static void run(weft__m *w, weft__g *g) {
    set_running(w, g);
    void *fake = NULL;
    san_before(w, g, &fake, false);
    weft__switch(&w->g0, &g->ctx);
    san_after(fake);
    run_hook(w);
}

/* A goroutine to switch to directly, without the detour through g0: the
 * local runnext or ring.  Every 61st schedule (the global queue's turn),
 * when timers may be due, under WEFT_SEED or on a retired P, g0 decides
 * instead. */
static inline __attribute__((always_inline)) weft__g *next_local(weft__p *w) {
    unsigned tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
    if (tick % FAIR_TICK == 0 ||
        atomic_load_explicit(&w->slow, memory_order_relaxed) ||
        (tick % 16 == 0 && timers_due()))
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
switch_away(weft__m *w, weft__g *g, weft__g *next, bool dying) {
    void *fake = NULL;
    if (next) {
        set_running(w, next);
        san_before(w, next, &fake, dying);
        weft__switch(&g->ctx, &next->ctx);
    } else {
        atomic_store_explicit(&w->cur, NULL, memory_order_relaxed);
        san_before(w, NULL, &fake, dying);
        weft__switch(&g->ctx, &w->g0);
    }
    san_after(fake);
    run_hook(weft__m_self());
}

/* leave's cases other than the common one, out of line (see leave). */
static WEFT__NOINLINE void leave_checked(weft__m *m, weft__g *g) {
    g_stop_checks(g);
    switch_away(m, g, next_local(m->p), false);
}

/* leave to next, which has never run (or to g0 if NULL), out of line. */
static WEFT__NOINLINE void leave_slow(weft__m *m, weft__g *g, weft__g *next,
                                      unsigned tick) {
    if (next)
        atomic_store_explicit(&m->p->tick, tick + 1, memory_order_relaxed);
    switch_away(m, g, next, false);
}

/* leave's common case, from g to next (NULL: to g0) on a tick that is not
 * g0's: straight code with one call, the switch, and no value kept across
 * it, so that it saves no register of its own (the switch saves the
 * goroutine's).  m->after is set. */
static inline __attribute__((always_inline)) void
switch_local(weft__m *m, weft__g *g, weft__g *next, unsigned tick) {
    if (WEFT__UNLIKELY(!weft__stack_ok(g->stack)))
        weft__fatal("goroutine %llu stack overflow", (unsigned long long)g->id);
    if (WEFT__UNLIKELY(!next || !next->stack)) {
        leave_slow(m, g, next, tick);
        return;
    }
    atomic_store_explicit(&m->p->tick, tick + 1, memory_order_relaxed);
    g_running(m, next);
    void *fake = NULL;
    san_before(m, next, &fake, false);
    weft__switch(&g->ctx, &next->ctx);
    san_after(fake);
    run_hook(weft__m_self());
}

/* Ticks of g0's (next_local), a retired P, WEFT_SEED or tracing. */
static inline __attribute__((always_inline)) bool leave_rare(weft__p *p,
                                                             unsigned tick) {
    return tick % 16 == 0 || tick % FAIR_TICK == 0 ||
           atomic_load_explicit(&p->slow, memory_order_relaxed) ||
           weft__tracing();
}

/* Leave the running goroutine g: after(arg) will run once g's stack is no
 * longer in use.  Switches straight to the next local goroutine if there
 * is one, else to g0.  Returns when g is resumed, maybe on another worker.
 * Only the common case is inline (switch_local). */
static inline __attribute__((always_inline)) void
leave(weft__m *m, weft__g *g, void (*after)(weft__m *, void *), void *arg) {
    m->after = after;
    m->after_arg = arg;
    weft__p *p = m->p;
    unsigned tick = atomic_load_explicit(&p->tick, memory_order_relaxed);
    if (WEFT__UNLIKELY(leave_rare(p, tick))) {
        leave_checked(m, g);
        return;
    }
    switch_local(m, g, runq_get(p), tick);
}

/* Make g runnable.  A goroutine readying another (a channel hand-off, an
 * unlock) puts it in runnext and wakes no other worker, even when that
 * pushes the previous runnext into the ring: the waker usually blocks
 * soon, and both then run on this core with their data still in cache.
 * Waking a second core for them costs more than it gains whenever they
 * exchange values (every hand-off then moves cache lines between cores,
 * and the woken core spins stealing from this one).  If the waker instead
 * keeps running, the monitor's periodic look (monitor.c) steals the
 * waiting goroutines, and a worker that finds work wakes the
 * next.  A spawn always offers the new goroutine to an idle worker, as Go
 * does: that is how a program asks for parallelism. */
/* m is the caller's M (NULL on a plain thread). */
static inline __attribute__((always_inline)) void ready(weft__m *m, weft__g *g,
                                                        bool spawn) {
    /* g may still be switching out on another worker */
    while (atomic_load_explicit(&g->status, memory_order_acquire) ==
           WEFT__G_RUNNING)
        weft__cpu_relax();
    atomic_store_explicit(&g->status, WEFT__G_RUNNABLE, memory_order_relaxed);
    if (!m) {
        g->link = NULL;
        weft__gq_put_list(g, g, 1);
        wakep();
        return;
    }
    weft__p *w = m->p;
    if (atomic_load_explicit(&m->cur, memory_order_relaxed)) {
        weft__g *old = next_swap_w(w, g);
        if (old)
            local_put(w, old);
        if (spawn)
            wakep_spawn(offer(w));
        return;
    }
    local_put(w, g);
    offer(w);
    wakep();
}

void weft__ready(weft__g *g) {
    ready(weft__m_self(), g, false);
}

/* ---- goroutine life cycle ------------------------------------------------ */

/* A finished goroutine whose stack has been handed to the next goroutine
 * (g_exit) or back to the cache (g_free_after, on g0). */
static void g_retire(weft__p *w, weft__g *g) {
#ifdef WEFT_TSAN
    __tsan_destroy_fiber(g->tsan_fiber);
#endif
    weft__g_live(&w->gc, -1);
    weft__g_put(&w->gc, g);
}

static void g_free_after(weft__m *m, void *arg) {
    weft__g *g = arg;
    weft__stack_put(&m->p->stacks, g->stack);
    g_retire(m->p, g);
}

/* g's function has returned.  When the next local goroutine has never run
 * and wants a stack of the same size, it inherits g's and is returned, to
 * be called from the same g_main frame: no switch, no stack to fetch, no
 * frame to lay out (a spawner's goroutines mostly run this way).  Else g
 * switches away for good. */
static weft__g *g_exit(weft__g *g) {
    weft__m *m = weft__m_self();
    weft__p *w = m->p;
    atomic_store_explicit(&g->status, WEFT__G_DEAD, memory_order_relaxed);
    g_stop_checks(g);
    weft__g *next = next_local(w);
    if (next && !next->stack && next->stack_size == g->stack_size) {
        next->stack = g->stack;
#ifdef WEFT_TSAN
        next->tsan_fiber = __tsan_create_fiber(0);
        __tsan_switch_to_fiber(next->tsan_fiber, 0);
#endif
        set_running(m, next);
        g_retire(w, g);
        return next;
    }
    m->after = g_free_after;
    m->after_arg = g;
    switch_away(m, g, next, true);
    __builtin_unreachable();
}

static void g_main(void *arg) {
    weft__g *g = arg;
    san_after(NULL);
    run_hook(weft__m_self());
    for (;;) {
        g->fn(g->arg);
        g = g_exit(g);
    }
}

int weft__go(weft_fn fn, void *arg, const weft_goopts *opts, const char *file,
             int line) {
    size_t size = opts ? opts->stack_size : 0;
    weft__m *m = weft__m_self();
    weft__p *w = m ? m->p : NULL;
    /* A stack of another size than the runtime's is rare and may be huge:
     * reserve it now, so that failing is -ENOMEM here and not fatal at the
     * first run. */
    weft__stack *st = NULL;
    if (size && size != rt.stack_size) {
        st = weft__stack_get(w ? &w->stacks : NULL, size);
        if (!st)
            return -ENOMEM;
    }
    weft__g *g = weft__g_get(w ? &w->gc : NULL);
    if (!g) {
        if (st)
            weft__stack_put(w ? &w->stacks : NULL, st);
        return -ENOMEM;
    }
    g->fn = fn;
    g->arg = arg;
    g->spawn_file = file;
    g->spawn_line = (uint16_t)line;
    if (WEFT__UNLIKELY((unsigned)line > WEFT__SPAWN_LINE_MAX))
        g->spawn_line = 0; /* weft_dump names the file alone */
    g->stack_size = size ? size : rt.stack_size;
    if (st) {
        g->stack = st;
        g_stack_ready(g);
    }
    if (opts && opts->name) {
        snprintf(g->name, sizeof g->name, "%s", opts->name);
        atomic_store_explicit(&g->flags, WEFT__G_NAMED, memory_order_relaxed);
    }
    g->id = weft__g_new_id(w ? &w->gc : NULL);
    atomic_store_explicit(&g->status, WEFT__G_WAITING, memory_order_relaxed);
    weft__g_live(w ? &w->gc : NULL, 1);
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_spawn(g);
    ready(m, g, true); /* no switch since m was read */
    return 0;
}

/* ---- yielding and sleeping ---------------------------------------------- */

static void yield_after(weft__m *m, void *arg) {
    weft__g *g = arg;
    atomic_store_explicit(&g->status, WEFT__G_RUNNABLE, memory_order_relaxed);
    weft__p *p = m->p;
    local_put(p, g);
    offer(p); /* it still has work: another worker may take it */
}

/* A yield with nothing local to switch to (or under WEFT_SEED, or on a
 * retired P), out of line and holding only p across its calls, so that the
 * common case in weft_yield makes only tail calls.  When the global queue
 * is empty too and no timer is due, nothing but the caller could run here:
 * the yield is a no-op, except that it counts as a schedule: every
 * FAIR_TICK-th one goes through find_runnable anyway (next_local declines
 * that tick), whose fairness check polls descriptors.  With every worker
 * busy nobody holds the poller role, so goroutines that only yield would
 * otherwise keep a goroutine whose descriptor is ready parked for ever.
 * On a retired P the yield always switches: to g0, which gives the P up. */
static WEFT__NOINLINE void yield_slow(weft__p *p) {
    if (WEFT__UNLIKELY(rt.seeded)) {
        if (weft__rand() & 1)
            return; /* WEFT_SEED: whether a yield switches is a draw */
    } else if (!retired(p) && !weft__gq_len() && !timers_due()) {
        unsigned tick =
            atomic_load_explicit(&p->tick, memory_order_relaxed) + 1;
        atomic_store_explicit(&p->tick, tick, memory_order_relaxed);
        if (tick % FAIR_TICK != 0)
            return;
    }
    weft__m *m = weft__m_self();
    weft__g *g = atomic_load_explicit(&m->cur, memory_order_relaxed);
    leave(m, g, yield_after, g);
}

/* weft_yield on a tick of g0's, a retired P or under WEFT_SEED. */
static WEFT__NOINLINE void yield_rare(weft__m *m, weft__g *g, weft__p *p) {
    if (atomic_load_explicit(&p->slow, memory_order_relaxed) || runq_empty(p))
        yield_slow(p);
    else
        leave(m, g, yield_after, g);
}

void weft_yield(void) {
    weft__m *m = weft__m_self();
    weft__g *g = m ? atomic_load_explicit(&m->cur, memory_order_relaxed) : NULL;
    if (!g) {
        sched_yield();
        return;
    }
    weft__p *p = m->p;
    unsigned tick = atomic_load_explicit(&p->tick, memory_order_relaxed);
    if (WEFT__UNLIKELY(leave_rare(p, tick))) {
        yield_rare(m, g, p);
        return;
    }
    weft__g *next = runq_get(p);
    if (WEFT__UNLIKELY(!next)) {
        yield_slow(p);
        return;
    }
    m->after = yield_after;
    m->after_arg = g;
    switch_local(m, g, next, tick);
}

uint64_t weft_id(void) {
    weft__g *g = weft__curg();
    return g ? g->id : 0;
}

size_t weft_goroutines(void) {
    if (!atomic_load_explicit(&rt.started, memory_order_acquire))
        return 0;
    long n = weft__g_live_threads();
    for (int i = 0, np = nps(); i < np; i++)
        n += atomic_load_explicit(&rt.ps[i]->gc.nlive, memory_order_acquire);
    return n > 0 ? (size_t)n : 0;
}

int weft__nprocs(void) {
    return rt.nprocs;
}

/* ---- parking, for the waiter (waiter.c) --------------------------------- */

void weft__leave(weft__g *g, void (*after)(weft__m *, void *), void *arg) {
    weft__m *m = weft__m_self();
    leave(m, g, after, arg);
}

/* ---- hand-off: retired Ps and spare Ms -----------------------------------
 *
 * Who may move a P: only its own M gives it up (p_release, on g0, once the
 * P is retired), and only the monitor gives a free P to an M
 * (weft__sched_handoff), both under rt.m_lock; the M it is given to is a
 * spare asleep on its futex word or a thread not started yet, so the P is
 * never run by two Ms.  The retired P's goroutines go to the global queue
 * before the P is freed, and wakep runs after: none is lost. */

/* Goroutines gathered for the global queue. */
typedef struct glist {
    weft__g *head, *tail;
    size_t n;
} glist;

static void glist_add(glist *l, weft__g *g) {
    g->link = NULL;
    if (l->tail)
        l->tail->link = g;
    else
        l->head = g;
    l->tail = g;
    l->n++;
}

/* Queue them, and wake a worker for them; how many. */
static size_t glist_queue(glist *l) {
    if (l->n) {
        weft__gq_put_list(l->head, l->tail, l->n);
        wakep();
    }
    return l->n;
}

/* m's P p was retired and its goroutine has switched: queue p's goroutines
 * for the active Ps, free p and make m a spare. */
static void p_release(weft__m *m, weft__p *p) {
    if (p->spinning) { /* woken as a spinner: pass that on */
        stop_spinning(p);
        wakep();
    }
    if (poller_mine(p))
        poller_release(true);
    glist l = {0};
    for (weft__g *g;
         (g = next_take(&p->next, rt.next_fenced)) || (g = ring_get(&p->q));)
        glist_add(&l, g);
    glist_queue(&l);
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_m("P lost");
    weft__lock_acquire(&rt.m_lock);
    atomic_store_explicit(&p->m, NULL, memory_order_relaxed);
    p->idle_next = rt.free_ps;
    rt.free_ps = p;
    m->p = NULL;
    m->spare = true;
    m->spare_next = rt.spares;
    rt.spares = m;
    weft__m_arm(m);
    weft__lock_release(&rt.m_lock);
    atomic_fetch_sub(&rt.nheld, 1);
}

/* m is a spare: wait to be given a P (true), or end (false) after
 * SPARE_LINGER unused or when the runtime stops. */
static bool spare_wait(weft__m *m) {
    if (WEFT__UNLIKELY(weft__tracing()))
        weft__trace_m("spare");
    for (;;) {
        bool woken = weft__m_sleep_for(m, SPARE_LINGER);
        weft__lock_acquire(&rt.m_lock);
        if (m->p) {
            weft__lock_release(&rt.m_lock);
            return true;
        }
        if (woken && !atomic_load(&rt.stopping)) { /* spurious */
            weft__m_arm(m);
            weft__lock_release(&rt.m_lock);
            continue;
        }
        if (!atomic_load(&rt.stopping)) { /* unused for SPARE_LINGER */
            weft__m **q = &rt.spares;
            while (*q != m)
                q = &(*q)->spare_next;
            *q = m->spare_next;
            m->spare = false;
            /* nobody joins it: the next new M reuses the struct (m_get) */
            pthread_detach(pthread_self());
            m->joined = true;
            m->spare_next = rt.ended;
            rt.ended = m;
        }
        atomic_fetch_sub(&rt.nthreads, 1);
        weft__lock_release(&rt.m_lock);
        if (WEFT__UNLIKELY(weft__tracing()))
            weft__trace_m("M exit");
        return false;
    }
}

/* Each M's loop (thread.c starts it). */
static void m_loop(weft__m *m) {
    if (WEFT__UNLIKELY(weft__tracing()) && m->id >= rt.nprocs)
        weft__trace_m("M new"); /* started for a hand-off */
    weft__netpoll_home = m->p->slot;
    for (;;) {
        weft__g *g = find_runnable(m->p);
        if (g) {
            run(m, g);
            continue;
        }
        if (atomic_load(&rt.stopping))
            return;
        p_release(m, m->p);
        if (!spare_wait(m))
            return;
        weft__netpoll_home = m->p->slot;
    }
}

static uint64_t m_rng_seed(int id) {
    return (rt.seed + (uint64_t)id + 1) * 0x9E3779B97F4A7C15ull | 1;
}

/* Under rt.m_lock: an M struct for a new thread, NULL if out of memory. */
static weft__m *m_get(void) {
    weft__m *m = rt.ended;
    if (m) { /* its thread is detached, and past its last use of m */
        rt.ended = m->spare_next;
        m->joined = false;
        return m;
    }
    if (!(m = weft__m_new(rt.nms)))
        return NULL;
    m->rng = m_rng_seed(m->id);
    rt.ms[rt.nms++] = m;
    return m;
}

/* Under rt.m_lock: a free P, NULL if out of memory. */
static weft__p *p_get(void) {
    weft__p *p = rt.free_ps;
    if (p) {
        rt.free_ps = p->idle_next;
        atomic_store_explicit(&p->slow, 0, memory_order_relaxed);
        return p;
    }
    int n = atomic_load_explicit(&rt.nps, memory_order_relaxed);
    if (!(p = weft__p_new(n)))
        return NULL;
    rt.ps[n] = p;
    atomic_store_explicit(&rt.nps, n + 1, memory_order_release);
    return p;
}

/* Wake v wherever it sleeps, on the idle list or as the poller, so that
 * it goes through find_runnable again: a retired v to give itself up, a
 * successor to move into its set. */
static void p_rouse(weft__p *v) {
    if ((atomic_load_explicit(&v->idle, memory_order_relaxed) &&
         idle_remove(v)) ||
        poller_mine(v))
        p_wake(v);
}

int weft__sched_handoff(weft__p *v) {
    weft__lock_acquire(&rt.m_lock);
    if (retired(v) || !p_m(v)) {
        weft__lock_release(&rt.m_lock);
        return 0;
    }
    weft__m *m = rt.spares;
    bool fresh = !m;
    if (fresh && atomic_load(&rt.nthreads) >= rt.max_threads) {
        weft__lock_release(&rt.m_lock);
        return -EAGAIN;
    }
    weft__p *p = p_get();
    if (p && fresh)
        m = m_get();
    if (!m) {
        if (p) {
            p->idle_next = rt.free_ps;
            rt.free_ps = p;
        }
        weft__lock_release(&rt.m_lock);
        return -ENOMEM;
    }
    if (!fresh) {
        rt.spares = m->spare_next;
        m->spare = false;
    }
    m->p = p;
    atomic_store_explicit(&p->m, m, memory_order_relaxed);
    p->slot = v->slot;
    int err = fresh ? weft__m_start(m, m_loop) : 0;
    if (err) {
        m->p = NULL;
        atomic_store_explicit(&p->m, NULL, memory_order_relaxed);
        p->idle_next = rt.free_ps;
        rt.free_ps = p;
        m->spare_next = rt.ended;
        rt.ended = m;
        m->joined = true; /* no thread to join */
        weft__lock_release(&rt.m_lock);
        return -err;
    }
    if (fresh)
        atomic_fetch_add(&rt.nthreads, 1);
    atomic_fetch_add(&rt.nheld, 1);
    atomic_fetch_or(&v->slow, WEFT__P_RETIRED);
    atomic_store(&rt.slots[v->slot].p, p);
    weft__lock_release(&rt.m_lock);
    if (WEFT__UNLIKELY(weft__tracing())) {
        weft__m *held = p_m(v);
        weft__g *g = atomic_load_explicit(&held->cur, memory_order_acquire);
        weft__trace_handoff(v->id, held->id, m->id,
                            g ? __atomic_load_n(&g->id, __ATOMIC_RELAXED) : 0);
    }
    if (!fresh)
        weft__m_wake(m);
    p_rouse(v);
    weft__sched_rescue(v);
    return 0;
}

/* The monitor's scratch ring for what it steals: only its thread calls
 * weft__sched_rescue. */
static weft__runq rescue_ring;

size_t weft__sched_rescue(weft__p *v) {
    glist l = {0};
    weft__g *g;
    /* a bounded number of halves: v's goroutine may be refilling it */
    for (int i = 0; i < 8 && (g = runq_steal(&rescue_ring, &v->q)); i++) {
        glist_add(&l, g);
        while ((g = ring_get(&rescue_ring)))
            glist_add(&l, g);
    }
    if ((g = next_steal(&v->next, rt.next_fenced)))
        glist_add(&l, g);
    if (l.n && WEFT__UNLIKELY(weft__tracing()))
        weft__trace_steal(v->id);
    return glist_queue(&l);
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

/* Every P and M (see weft__p_free for flush). */
static void procs_free(bool flush) {
    for (int i = 0, n = nps(); i < n; i++)
        weft__p_free(rt.ps[i], flush);
    for (int i = 0; i < rt.nms; i++)
        free(rt.ms[i]);
    free(rt.ps);
    free(rt.ms);
    free(rt.slots);
    rt.ps = NULL;
    rt.ms = NULL;
    rt.slots = NULL;
    atomic_store(&rt.nps, 0);
    rt.nms = 0;
}

/* WEFT_MAXTHREADS: the threads that run goroutines, at least procs. */
static int max_threads(void) {
    const char *env = getenv("WEFT_MAXTHREADS");
    long v = WEFT__MAX_THREADS;
    if (env && *env) {
        char *end;
        long e = strtol(env, &end, 10);
        if (*end == 0 && e > 0 && e <= 65536)
            v = e;
    }
    return v < rt.nprocs ? rt.nprocs : (int)v;
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
    rt.max_threads = max_threads();
    rt.stack_size =
        cfg && cfg->stack_size ? cfg->stack_size : WEFT_DEFAULT_STACK;
    atomic_store(&rt.stopping, false);
    atomic_store(&rt.poll_deadline, POLL_AWAKE);
    return rt.nprocs;
}

/* Stop and join every M that was started. */
static void ms_stop(void) {
    atomic_store(&rt.stopping, true);
    weft__lock_acquire(&rt.m_lock);
    int n = rt.nms;
    weft__lock_release(&rt.m_lock);
    for (int i = 0; i < n; i++)
        weft__m_wake(rt.ms[i]);
    for (int i = 0; i < n; i++) {
        for (int s = 0; s < rt.nprocs; s++)
            weft__netpoll_break(s);
        weft__lock_acquire(&rt.m_lock); /* a spare may be ending detached */
        bool joined = rt.ms[i]->joined;
        rt.ms[i]->joined = true;
        weft__lock_release(&rt.m_lock);
        if (!joined)
            weft__m_join(rt.ms[i]);
    }
}

int weft__sched_start(void) {
    rt.ps = calloc((size_t)rt.max_threads, sizeof *rt.ps);
    rt.ms = calloc((size_t)rt.max_threads, sizeof *rt.ms);
    rt.slots =
        aligned_alloc(WEFT__CACHELINE, (size_t)rt.nprocs * sizeof *rt.slots);
    if (!rt.ps || !rt.ms || !rt.slots) {
        procs_free(true);
        return -ENOMEM;
    }
    for (int i = 0; i < rt.nprocs; i++) {
        weft__lock_acquire(&rt.m_lock);
        weft__p *p = p_get();
        weft__m *m = p ? m_get() : NULL;
        weft__lock_release(&rt.m_lock);
        if (!m) {
            procs_free(true);
            return -ENOMEM;
        }
        m->p = p;
        atomic_store_explicit(&p->m, m, memory_order_relaxed);
        p->slot = i;
        atomic_init(&rt.slots[i].p, p);
        atomic_init(&rt.slots[i].sleeper, NULL);
        rt.slots[i].polls_seen = 0;
        if (rt.seeded)
            atomic_store_explicit(&p->slow, WEFT__P_SEEDED,
                                  memory_order_relaxed);
        m->joined = true; /* until its thread starts */
    }
    for (int i = 0; i < rt.nprocs; i++) {
        if (weft__m_start(rt.ms[i], m_loop) != 0) {
            ms_stop();
            procs_free(true);
            return -EAGAIN;
        }
        rt.ms[i]->joined = false;
        atomic_fetch_add(&rt.nthreads, 1);
    }
    atomic_store_explicit(&rt.started, true, memory_order_release);
    return 0;
}

/* The scheduler's memory and counts, back to a stopped runtime's, once no
 * M runs (joined, or gone in a forked child: see weft__p_free). */
static void sched_free(bool flush) {
    procs_free(flush);
    weft__gq_release();
    rt.idle = NULL;
    rt.free_ps = NULL;
    rt.spares = NULL;
    rt.ended = NULL;
    atomic_store(&rt.nidle, 0);
    atomic_store(&rt.nspinning, 0);
    atomic_store(&rt.nthreads, 0);
    atomic_store(&rt.nheld, 0);
    atomic_store(&rt.poller, 0);
    atomic_store(&rt.mon_word, MON_AWAKE);
    weft__g_release_all();
}

void weft__sched_stop(void) {
    atomic_store(&rt.started, false);
    ms_stop();
    sched_free(true);
}

void weft__sched_atfork(int phase) {
    if (phase == 0) {
        weft__g_atfork(0);
        weft__gq_atfork(0);
        weft__lock_acquire(&rt.m_lock);
        weft__lock_acquire(&rt.idle_lock);
        return;
    }
    weft__lock_release(&rt.idle_lock);
    weft__lock_release(&rt.m_lock);
    weft__gq_atfork(phase);
    weft__g_atfork(phase);
    if (phase == 2)
        weft__m_forget_self(); /* a goroutine that forked goes on as a
                                   plain thread */
}

void weft__sched_forget(void) {
    if (!atomic_load(&rt.started))
        return;
    atomic_store(&rt.started, false);
    sched_free(false);
    atomic_store(&rt.stopping, false);
}

/* ---- for the monitor (monitor.h) and the deadlock detector ------------ */

int weft__sched_nps(void) {
    return nps();
}

weft__p *weft__sched_p(int i) {
    return rt.ps[i];
}

void weft__sched_poll_unwatched(void) {
    for (int s = 0; s < rt.nprocs; s++) {
        struct slot *sl = &rt.slots[s];
        weft__p *p = atomic_load(&sl->p);
        unsigned n = atomic_load_explicit(&p->polls, memory_order_relaxed);
        if (n == sl->polls_seen && !atomic_load(&p->in_set))
            weft__netpoll(s, 0);
        sl->polls_seen = n;
    }
}

void weft__sched_wakep(void) {
    wakep();
}

bool weft__sched_seeded(void) {
    return rt.seeded;
}

/* The poller is asleep in epoll (not searching, not handing the role on). */
static bool poller_asleep(void) {
    return atomic_load(&rt.poller) &&
           atomic_load(&rt.poll_deadline) != POLL_AWAKE;
}

bool weft__sched_p_asleep(weft__p *p) {
    return atomic_load_explicit(&p->idle, memory_order_relaxed) ||
           (poller_mine(p) && poller_asleep());
}

bool weft__sched_watched(void) {
    return poller_asleep() || atomic_load(&rt.nidle) > 0;
}

/* Nothing runs: every active P sleeps and no retired one is held. */
static bool all_asleep(void) {
    return atomic_load(&rt.nheld) == 0 &&
           atomic_load(&rt.nidle) + poller_asleep() >= rt.nprocs;
}

/*
 * The monitor's sleep.  A timed one (ns >= 0) ends early only at shutdown.
 * The deep one (ns < 0) lasts while every P sleeps; its Dekker pair with
 * mon_kick: the monitor publishes MON_ASLEEP, then checks that every P
 * sleeps; a P that leaves its sleep has published that (its removal from
 * the idle list, or POLL_AWAKE), then reads the word; all seq_cst, so one
 * of the two sees the other.
 */
void weft__sched_mon_sleep(int64_t ns, bool idle) {
    if (!idle) {
        weft__futex_wait(&rt.mon_word, MON_AWAKE, ns);
        return;
    }
    int64_t end = ns < 0 ? -1 : weft_now() + ns, left = ns;
    atomic_store(&rt.mon_word, MON_ASLEEP);
    while (all_asleep() && atomic_load(&rt.mon_word) == MON_ASLEEP &&
           (end < 0 || (left = end - weft_now()) > 0))
        weft__futex_wait(&rt.mon_word, MON_ASLEEP, left);
    atomic_store(&rt.mon_word, MON_AWAKE);
}

void weft__sched_mon_wake(void) {
    atomic_store(&rt.mon_word, MON_AWAKE);
    weft__futex_wake(&rt.mon_word, 1);
}

int weft__sched_threads(void) {
    return atomic_load(&rt.nthreads);
}

int weft__sched_threads_max(void) {
    return rt.max_threads;
}

bool weft__sched_quiet(uint64_t *epoch) {
    /* ticks first: a worker seen idle afterwards must bump its tick before
     * it can run anything (see deadlock.c).  While stopping, exiting
     * workers still count as idle.  A retired P still held means a
     * goroutine runs in C. */
    uint64_t e = 0;
    for (int i = 0, n = nps(); i < n; i++)
        e += atomic_load(&rt.ps[i]->tick);
    *epoch = e;
    return atomic_load(&rt.nidle) == rt.nprocs - 1 &&
           atomic_load(&rt.nheld) == 0 && !atomic_load(&rt.stopping);
}
