/* SPDX-License-Identifier: MIT */
/*
 * The monitor (Go's sysmon): a thread of its own, outside the Ps, that
 * notices a goroutine holding its thread (a CPU loop, a plain blocking
 * call) while other goroutines wait, and hands its P's work to another
 * thread (monitor.h has the thresholds).
 *
 * Each look samples every P, single writer, into mon.s[]: its schedule
 * tick, its ring's tail and its offer count.  A tick that has not moved
 * since `since` means one goroutine has run there all that time (the P's
 * M bumps the tick at every switch; a sleeping P is recognised apart).
 * Then, per look:
 *   1. rescue: goroutines queued on a P that does not get to them (its
 *      ring's head has not passed the tail seen at the previous look, or
 *      the same goroutine waits in its runnext while the tick stands
 *      still) go to the global
 *      queue, and an idle worker is woken; one that offered goroutines
 *      since (yields, which wake nobody) gets an idle worker woken to
 *      steal them, which is cheaper than moving them; when
 *      no P sleeps only a retired P's are moved (an active P will get to
 *      its own, unless step 3 hands it off);
 *   2. service: the epoll set of a P that has neither polled it nor slept
 *      in it since the previous look is peeked, and when no P sleeps
 *      nobody watches timers: the monitor runs the due ones, so their
 *      goroutines reach the global queue;
 *   3. hand-off: when goroutines wait that no taker is getting to (the
 *      global queue has not been taken from since the previous look, or
 *      a held P's ring head has not moved past what was queued then, or
 *      its runnext waits) and no P sleeps to take them, each P held for
 *      WEFT__HANDOFF_NS or more, whose thread has not spent most of the
 *      last look waiting for a CPU (holding), is retired
 *      and a free P given to a spare or new M (weft__sched_handoff), at
 *      most one per waiting goroutine, up to WEFT_MAXTHREADS threads;
 *   4. WEFT_HOGWARN: a goroutine that has held its thread that long is
 *      named on stderr, once in its life.
 * And every WEFT__SWEEP_NS, whatever the Ps do, the netpoller's sweep
 * re-checks the registrations goroutines have waited on since the
 * previous one (netpoll.c, "Registration").
 * Cadence: see WEFT__LOOK_MIN.  While every P sleeps and none is held the
 * monitor sleeps without a timeout (weft__sched_mon_sleep), and the first
 * P to wake wakes it: an idle process costs nothing.  Only descriptor
 * waits the sweep has yet to look at set a timeout, of one sweep period.
 *
 * Under WEFT_SEED (one P, a schedule drawn from the seed) the monitor
 * hands nothing off: a second thread would make the schedule depend on
 * time again.
 */
#include "monitor.h"
#include "netpoll.h"
#include "proc.h"
#include "runq.h"
#include "sched.h"
#include "sys.h"
#include "thread.h"
#include "timer.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sample {
    atomic_uint tick;   /* as last seen */
    atomic_llong since; /* when tick was first seen at that value */
    unsigned tail, offers;
    void *next; /* runnext as last seen (compared only, never followed) */
    /* holding's probes of the thread's CPU times: the stretch they belong
     * to (its tick), the last one, and the CPU time at the first */
    unsigned probe_tick;
    int64_t probe_at;
    uint64_t probe_run, probe_wait, first_run;
} sample;

static struct {
    pthread_t thread;
    atomic_bool running, stop;
    sample *s; /* one per P slot; weft_dump reads since and tick */
    int ns;
    int *held; /* a look's candidates for step 3, longest held first */
    int64_t *held_ns;
    int64_t hogwarn; /* WEFT_HOGWARN in ns, 0: off */
    int64_t handoff; /* WEFT__HANDOFF_NS, or longer under valgrind */
    size_t gq_taken; /* weft__gq_taken at the previous look */
    int64_t swept;   /* when weft__netpoll_sweep last ran */
    bool cap_warned;
} mon;

static int64_t hogwarn_env(void) {
    const char *env = getenv("WEFT_HOGWARN");
    if (!env || !*env)
        return 0;
    char *end;
    long ms = strtol(env, &end, 10);
    return *end == 0 && ms > 0 && ms < 86400000 ? WEFT_MS(ms) : 0;
}

/* One line on stderr, once: the hand-offs stop at the cap. */
static void cap_warn(int err) {
    if (mon.cap_warned)
        return;
    mon.cap_warned = true;
    char line[200];
    int n;
    if (err == -EAGAIN)
        n = snprintf(line, sizeof line,
                     "weft: all %d threads (WEFT_MAXTHREADS) are held by "
                     "goroutines; the others wait for one to return\n",
                     weft__sched_threads());
    else
        n = snprintf(line, sizeof line,
                     "weft: no thread for a hand-off (%s); the others wait "
                     "for a held one to return\n",
                     strerror(-err));
    ssize_t r = write(2, line, (size_t)n);
    (void)r;
}

/* The goroutine name, read byte by byte: the goroutine may be exiting. */
static void name_of(const weft__g *g, char *buf, size_t n) {
    size_t i = 0;
    for (; i + 1 < n && i < sizeof g->name; i++) {
        char c = __atomic_load_n(&g->name[i], __ATOMIC_RELAXED);
        if (!c)
            break;
        buf[i] = c;
    }
    buf[i] = 0;
}

/* p's goroutine has held its thread for held ns: name it, once. */
static void hog_check(weft__p *p, sample *s, int64_t held) {
    weft__m *m = atomic_load_explicit(&p->m, memory_order_relaxed);
    weft__g *g = m ? atomic_load_explicit(&m->cur, memory_order_acquire) : NULL;
    if (!g || (atomic_load_explicit(&g->flags, memory_order_relaxed) &
               WEFT__G_HOGWARNED))
        return;
    char name[sizeof g->name + 1];
    name_of(g, name, sizeof name);
    uint64_t id = __atomic_load_n(&g->id, __ATOMIC_RELAXED);
    const char *file = __atomic_load_n(&g->spawn_file, __ATOMIC_RELAXED);
    int line = __atomic_load_n(&g->spawn_line, __ATOMIC_RELAXED);
    /* still the same stretch: the tick has not moved while we read */
    if (atomic_load_explicit(&p->tick, memory_order_acquire) !=
        atomic_load_explicit(&s->tick, memory_order_relaxed))
        return;
    atomic_fetch_or_explicit(&g->flags, WEFT__G_HOGWARNED,
                             memory_order_relaxed);
    char site[160] = "?", out[320];
    if (file && line)
        snprintf(site, sizeof site, "%s:%d", file, line);
    else if (file) /* a line past WEFT__SPAWN_LINE_MAX */
        snprintf(site, sizeof site, "%s", file);
    int n = snprintf(out, sizeof out,
                     "weft: goroutine %llu \"%s\" (spawned at %s) has held "
                     "its thread for %lld ms\n",
                     (unsigned long long)id, name[0] ? name : "-", site,
                     (long long)(held / 1000000));
    ssize_t r = write(2, out, (size_t)n);
    (void)r;
}

/* How long thread tid has run and waited for a CPU so far (ns), from the
 * kernel's schedstat; false if that is not available. */
static bool cpu_times(int tid, uint64_t *run, uint64_t *wait) {
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    unsigned long long r, w;
    if (sscanf(buf, "%llu %llu", &r, &w) != 2)
        return false;
    *run = r;
    *wait = w;
    return true;
}

/* p's goroutine has not switched for the threshold: does it hold its
 * thread, rather than the thread waiting for a CPU the machine does not
 * have?  On a loaded machine the kernel keeps runnable threads off their
 * CPU for milliseconds, and another thread would wait the same.  Holding:
 * the thread has run for the threshold since this stretch's first probe
 * (a CPU loop, however loaded the machine), or it spent most of the time
 * since the last probe neither running nor waiting for a CPU (blocked in a
 * call).  The first probe of a stretch only records. */
static bool holding(weft__p *p, sample *s, int64_t now) {
    weft__m *m = atomic_load_explicit(&p->m, memory_order_relaxed);
    uint64_t run, wait;
    if (!m || !cpu_times(atomic_load_explicit(&m->tid, memory_order_relaxed),
                         &run, &wait))
        return m != NULL;
    unsigned tick = atomic_load_explicit(&s->tick, memory_order_relaxed);
    bool first = s->probe_tick != tick || !s->probe_at;
    int64_t span = now - s->probe_at;
    int64_t busy = (int64_t)((run - s->probe_run) + (wait - s->probe_wait));
    if (first)
        s->first_run = run;
    s->probe_tick = tick;
    s->probe_at = now;
    s->probe_run = run;
    s->probe_wait = wait;
    return !first &&
           ((int64_t)(run - s->first_run) >= mon.handoff || busy < span / 2);
}

typedef struct look_result {
    bool running; /* some active P runs a goroutine, or one is held */
    bool asleep;  /* some active P sleeps */
    bool acted;
    size_t queued; /* goroutines queued on held Ps */
} look_result;

/* Step 1 for P i, and its sample; true if p's goroutine holds its thread
 * (held for how long in *held). */
static bool sample_p(int i, int64_t now, look_result *r, int64_t *held) {
    weft__p *p = weft__sched_p(i);
    sample *s = &mon.s[i];
    if (!atomic_load_explicit(&p->m, memory_order_relaxed))
        return false; /* free */
    unsigned tick = atomic_load_explicit(&p->tick, memory_order_relaxed);
    unsigned h = atomic_load_explicit(&p->q.head, memory_order_acquire);
    unsigned t = atomic_load_explicit(&p->q.tail, memory_order_acquire);
    unsigned offers = atomic_load_explicit(&p->offers, memory_order_relaxed);
    bool moved = tick != atomic_load_explicit(&s->tick, memory_order_relaxed);
    if (moved) {
        atomic_store_explicit(&s->tick, tick, memory_order_relaxed);
        atomic_store_explicit(&s->since, now, memory_order_relaxed);
    }
    void *g_next = atomic_load_explicit(&p->next.g, memory_order_relaxed);
    /* the same goroutine in runnext since the previous look, while the
     * tick stood still (a spawner replaces it at every spawn) */
    bool next = g_next && g_next == s->next && !moved;
    s->next = g_next;
    /* no taker got past what was queued at the previous look */
    bool ring_waits = h != t && (int)(s->tail - h) > 0;
    bool offered = h != t && offers != s->offers;
    s->tail = t;
    s->offers = offers;
    bool retired =
        atomic_load_explicit(&p->slow, memory_order_relaxed) & WEFT__P_RETIRED;
    bool asleep = !retired && weft__sched_p_asleep(p);
    /* With no P asleep, nobody but p could take them: step 3 decides.
     * Goroutines p offered (yields) wait for a thief, which wakep sends. */
    if (!weft__sched_seeded() && (retired || weft__sched_watched())) {
        if ((ring_waits || next) && weft__sched_rescue(p)) {
            r->acted = true;
            ring_waits = next = false; /* for the count below */
        } else if (offered) {
            weft__sched_wakep();
        }
    }
    if (asleep) {
        r->asleep = true;
        return false;
    }
    r->running = true;
    *held = now - atomic_load_explicit(&s->since, memory_order_relaxed);
    if (moved)
        return false;
    if (mon.hogwarn && *held >= mon.hogwarn)
        hog_check(p, s, *held);
    if (retired)
        return false;
    /* waiting behind the held goroutine, which no stealer is taking */
    r->queued += (ring_waits ? t - h : 0) + next;
    return true;
}

static look_result look(int64_t now) {
    look_result r = {0};
    if (now - mon.swept >= WEFT__SWEEP_NS) {
        mon.swept = now;
        weft__netpoll_sweep();
    }
    size_t taken = atomic_load_explicit(&weft__gq_taken, memory_order_relaxed);
    bool gq_moved = taken != mon.gq_taken;
    mon.gq_taken = taken;
    int n = weft__sched_nps(), nheld = 0;
    for (int i = 0; i < n && i < mon.ns; i++) {
        int64_t held;
        if (!sample_p(i, now, &r, &held) || held < mon.handoff)
            continue;
        int j = nheld++;
        for (; j > 0 && mon.held_ns[j - 1] < held; j--) {
            mon.held[j] = mon.held[j - 1];
            mon.held_ns[j] = mon.held_ns[j - 1];
        }
        mon.held[j] = i;
        mon.held_ns[j] = held;
    }
    if (weft__sched_seeded())
        return r;
    /* step 2: descriptors whose P does not get to them, and timers when
     * nobody sleeps, so nobody watches them */
    if (weft__netpoll_waiting())
        weft__sched_poll_unwatched();
    if (weft__sched_watched())
        return r;
    int64_t next = weft__timers_next();
    if (next >= 0 && next <= now)
        weft__timers_run(now);
    /* step 3: what waits is what no taker is getting to */
    size_t waiting = (gq_moved ? 0 : weft__gq_len()) + r.queued;
    size_t handed = 0;
    for (int k = 0; k < nheld && handed < waiting; k++) {
        weft__p *p = weft__sched_p(mon.held[k]);
        r.acted = true; /* or about to: the next look comes soon */
        if (!holding(p, &mon.s[mon.held[k]], now))
            continue;
        int err = weft__sched_handoff(p);
        if (err) {
            cap_warn(err);
            break;
        }
        handed++;
    }
    return r;
}

static void *mon_main(void *arg) {
    (void)arg;
    weft__trace_thread(-1); /* the trace's "monitor" track */
    int64_t delay = WEFT__LOOK_MIN;
    for (;;) {
        weft__sched_mon_sleep(delay, false);
        if (atomic_load(&mon.stop))
            break;
        look_result r = look(weft_now());
        if (!r.running) {
            weft__sched_mon_sleep(weft__netpoll_unswept() ? WEFT__SWEEP_NS : -1,
                                  true);
            delay = WEFT__LOOK_MIN;
            continue;
        }
        if (r.acted || r.asleep)
            delay = WEFT__LOOK_MIN;
        else if ((delay *= 2) > WEFT__LOOK_MAX)
            delay = WEFT__LOOK_MAX;
        if (mon.hogwarn && delay > mon.hogwarn / 2)
            delay = mon.hogwarn / 2;
    }
    return NULL;
}

static void monitor_free(void) {
    atomic_store(&mon.running, false);
    free(mon.s);
    free(mon.held);
    free(mon.held_ns);
    mon.s = NULL;
    mon.held = NULL;
    mon.held_ns = NULL;
}

int weft__monitor_start(void) {
    mon.hogwarn = hogwarn_env();
    /* valgrind runs one thread at a time, tens of times slower: a worker
     * waiting for its turn would look held */
    mon.handoff = WEFT__HANDOFF_NS * (RUNNING_ON_VALGRIND ? 50 : 1);
    mon.cap_warned = false;
    mon.ns = weft__sched_threads_max();
    mon.s = calloc((size_t)mon.ns, sizeof *mon.s);
    mon.held = calloc((size_t)mon.ns, sizeof *mon.held);
    mon.held_ns = calloc((size_t)mon.ns, sizeof *mon.held_ns);
    atomic_store(&mon.stop, false);
    if (!mon.s || !mon.held || !mon.held_ns) {
        monitor_free();
        return -ENOMEM;
    }
    if (weft__thread_start(&mon.thread, NULL, mon_main, NULL) != 0) {
        monitor_free();
        return -EAGAIN;
    }
    atomic_store(&mon.running, true);
    return 0;
}

void weft__monitor_stop(void) {
    if (!atomic_load(&mon.running))
        return;
    atomic_store(&mon.stop, true);
    weft__sched_mon_wake();
    pthread_join(mon.thread, NULL);
    monitor_free();
}

void weft__monitor_forget(void) {
    monitor_free();
}

int weft__monitor_threads(void) {
    return atomic_load(&mon.running);
}

int64_t weft__g_held_ns(const weft__g *g, bool *handed_off) {
    *handed_off = false;
    if (atomic_load_explicit(&g->status, memory_order_relaxed) !=
        WEFT__G_RUNNING)
        return -1;
    int n = weft__sched_nps();
    for (int i = 0; i < n && i < mon.ns && mon.s; i++) {
        weft__p *p = weft__sched_p(i);
        weft__m *m = atomic_load_explicit(&p->m, memory_order_relaxed);
        if (!m || atomic_load_explicit(&m->cur, memory_order_relaxed) != g)
            continue;
        *handed_off = atomic_load_explicit(&p->slow, memory_order_relaxed) &
                      WEFT__P_RETIRED;
        sample *s = &mon.s[i];
        if (atomic_load_explicit(&p->tick, memory_order_relaxed) !=
            atomic_load_explicit(&s->tick, memory_order_relaxed))
            return 0;
        return weft_now() -
               atomic_load_explicit(&s->since, memory_order_relaxed);
    }
    return 0;
}
