/* SPDX-License-Identifier: MIT */
/*
 * The runtime's life: the one file that owns the order in which the layers
 * start, stop and survive a fork.  Everything below it is started, stopped
 * and released from here, by name; nothing below calls up into it except
 * through weft__ensure, which only the public entry points above the
 * scheduler call.
 *
 * Start (weft_init, or the first weft call through weft__ensure): the
 * scheduler's configuration (seed, workers, stack size), the netpoller,
 * the diagnostics (signals, WEFT_DEADLOCK, WEFT_LEAKCHECK, WEFT_TRACE),
 * then the workers.  Shutdown: refuse while anything would be cut off,
 * stop and join the workers, then release the timers, the subsystems that
 * joined (the weft_blocking pool), the netpoller, the stacks, and flush
 * the trace: in that order.
 */
#include "runtime.h"
#include "diag.h"
#include "monitor.h"
#include "netpoll.h"
#include "sched.h"
#include "stack.h"
#include "sys.h"
#include "timer.h"
#include "trace.h"

#include <pthread.h>
#include <time.h>

atomic_int weft__rt_state; /* WEFT__RT_STOPPED or WEFT__RT_RUNNING */

static struct {
    pthread_mutex_t init_lock;
    weft__subsystem *subs; /* under init_lock */
} rt = {.init_lock = PTHREAD_MUTEX_INITIALIZER};

void weft__runtime_join(weft__subsystem *s) {
    pthread_mutex_lock(&rt.init_lock);
    s->next = rt.subs;
    rt.subs = s;
    pthread_mutex_unlock(&rt.init_lock);
}

/* ---- fork() ---------------------------------------------------------------
 *
 * The child of a fork has one thread, the one that called fork, and none
 * of the workers, helpers or goroutines: it starts a fresh runtime on its
 * first weft call.  Every lock whose data the child keeps or frees is held
 * across the fork, taken in the order the code nests them (init_lock
 * before the helper pool's mutex (a joined subsystem) before the thread
 * registry's lock; the rest are leaves), so the child sees each structure
 * between two updates. The child then drops everything that belongs to the
 * parent's threads.
 */
static void fork_prepare(void) {
    pthread_mutex_lock(&rt.init_lock);
    for (weft__subsystem *s = rt.subs; s; s = s->next)
        s->atfork(0);
    weft__threads_atfork(0);
    weft__timers_atfork(0);
    weft__stack_atfork(true);
    weft__sched_atfork(0);
}

static void fork_unlock(int phase) {
    weft__sched_atfork(phase);
    weft__stack_atfork(false);
    weft__timers_atfork(phase);
    weft__threads_atfork(phase);
    for (weft__subsystem *s = rt.subs; s; s = s->next)
        s->atfork(phase);
}

static void fork_parent(void) {
    fork_unlock(1);
    pthread_mutex_unlock(&rt.init_lock);
}

static void fork_child(void) {
    fork_unlock(2);
    weft__trace_atfork_child();
    if (atomic_load(&weft__rt_state) == WEFT__RT_RUNNING) {
        weft__monitor_forget();
        weft__sched_forget();
        weft__netpoll_forget();
        atomic_store(&weft__rt_state, WEFT__RT_STOPPED);
    }
    pthread_mutex_unlock(&rt.init_lock);
}

static void fork_register(void) {
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Called with rt.init_lock held. */
static int start(const weft_config *cfg) {
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pthread_once(&fork_once, fork_register);
    int nprocs = weft__sched_config(cfg);
    int r = weft__netpoll_init(nprocs);
    if (r < 0)
        return r;
    weft__diag_init(nprocs);
    weft__worker_init = weft__diag_worker_init;
    r = weft__sched_start();
    if (r < 0) {
        weft__netpoll_release();
        return r;
    }
    if ((r = weft__monitor_start()) < 0) {
        weft__monitor_stop();
        weft__sched_stop();
        weft__netpoll_release();
        return r;
    }
    atomic_store_explicit(&weft__rt_state, WEFT__RT_RUNNING,
                          memory_order_release);
    return 0;
}

int weft_init(const weft_config *cfg) {
    if (cfg && (cfg->procs < 0 || cfg->stack_size > WEFT_STACK_MAX))
        return -EINVAL;
    pthread_mutex_lock(&rt.init_lock);
    int r = -EALREADY;
    if (atomic_load(&weft__rt_state) != WEFT__RT_RUNNING)
        r = start(cfg);
    pthread_mutex_unlock(&rt.init_lock);
    return r;
}

void weft__ensure_slow(void) {
    pthread_mutex_lock(&rt.init_lock);
    int r = 0;
    if (atomic_load(&weft__rt_state) != WEFT__RT_RUNNING)
        r = start(NULL);
    pthread_mutex_unlock(&rt.init_lock);
    if (r < 0)
        weft__fatal("cannot start the runtime: %s", weft_strerror(r));
}

/* How long weft_shutdown waits for goroutines that are only returning. */
#define SHUTDOWN_WAIT WEFT_SEC(1)

static void count_blocked(weft__g *g, void *arg) {
    if (weft__g_blocked_on(g))
        ++*(size_t *)arg;
}

/* With rt.init_lock held, on a plain thread: 0 when nothing would be cut
 * off by stopping, else -EBUSY.  A goroutine that called the last
 * weft_wg_done may still be returning, its count not yet dropped: it is
 * waited for, but one that is blocked is alive and fails at once. */
static int shutdown_quiet(void) {
    int64_t until = weft_now() + SHUTDOWN_WAIT;
    while (weft_goroutines() > 0) {
        size_t blocked = 0;
        weft__diag_walk(count_blocked, &blocked);
        if (blocked || weft_now() >= until) {
            weft__leaks_report();
            return -EBUSY;
        }
        struct timespec ts = {0, 100 * 1000};
        nanosleep(&ts, NULL);
    }
    /* an armed timer (a weft_timer, a context's deadline) would be left
     * with a slot in a heap that no longer exists */
    if (weft__timers_pending())
        return -EBUSY;
    for (weft__subsystem *s = rt.subs; s; s = s->next)
        if (s->busy())
            return -EBUSY;
    return 0;
}

int weft_shutdown(void) {
    pthread_mutex_lock(&rt.init_lock);
    int r = 0;
    if (atomic_load(&weft__rt_state) == WEFT__RT_RUNNING)
        r = weft__curg() ? -EBUSY : shutdown_quiet();
    if (r < 0 || atomic_load(&weft__rt_state) != WEFT__RT_RUNNING) {
        pthread_mutex_unlock(&rt.init_lock);
        return r;
    }
    weft__monitor_stop();
    weft__sched_stop();
    weft__timers_release();
    for (weft__subsystem *s = rt.subs; s; s = s->next)
        s->release();
    weft__netpoll_release();
    weft__stack_release_all();
    weft__trace_flush();
    atomic_store(&weft__rt_state, WEFT__RT_STOPPED);
    pthread_mutex_unlock(&rt.init_lock);
    return 0;
}

int weft_procs(void) {
    weft__ensure();
    return weft__nprocs();
}

const char *weft_version(void) {
    return WEFT_VERSION;
}
