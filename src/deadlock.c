/*
 * Deadlock detection: "all goroutines are asleep".
 *
 * When to look.  Only when the whole runtime is idle: the worker holding
 * the poller role, about to sleep with no timer pending, sleeps at most
 * PERIOD instead of forever (weft__deadlock_idle) and checks when that
 * period passed undisturbed.  Nothing is added to any hot path, and an idle
 * process wakes four times a second.
 *
 * What is checked (the API's deadlock rule): every other worker sleeps on
 * the idle list; every goroutine is parked on an unclaimed park; no timer,
 * descriptor wait or weft_blocking call is pending; and every thread of the
 * process is a worker, an idle weft_blocking pool thread, a sanitizer's
 * own thread, or a plain thread blocked in weft without a deadline on a
 * park nobody has claimed.  A thread that never called weft, or runs, makes
 * the counts differ and prevents the report.
 *
 * Why a snapshot taken piece by piece is enough, in the order dead() reads:
 *  1. The other workers are idle (after their ticks were summed).  If the
 *     sum is the same at the end, no goroutine ran in between: a worker
 *     bumps its tick before it runs anything, and weft__sched_quiet also
 *     refuses while weft_shutdown stops the workers (which then still
 *     count as idle, and no longer as threads).
 *  2. The task count.  So the only actors left are threads, and every
 *     thread alive from here on is counted: a running one makes the count
 *     exceed what the registry explains.  A thread that acted before and
 *     is gone left its mark where the next steps look: a goroutine it
 *     readied is runnable, a thread it woke has a claimed park, a timer
 *     it started is pending.
 *  3. The registry (with its generation, compared at the end), the
 *     goroutines, pending timers and descriptor waits, the count again.
 * Nothing can wake a sleeper but a running goroutine (none ran), a thread
 * (counted), a timer or a descriptor (none pending): dead stays dead.
 */
#include "weft_internal.h"

#include <dirent.h>
#include <stdio.h>

#define PERIOD WEFT_MS(250)

/* Threads a sanitizer runs inside the process: ThreadSanitizer starts one
 * background thread at the first pthread_create (weft's first worker, at
 * the latest) and keeps it to the end. */
#ifdef WEFT_TSAN
#define SAN_THREADS 1
#else
#define SAN_THREADS 0
#endif

bool weft__deadlock_on;

static int tasks(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void count_awake(weft__g *g, void *arg) {
    size_t *awake = arg;
    if (!weft__g_blocked_on(g))
        ++*awake;
}

static bool nothing_pending(void) {
    return !weft__timers_pending() && !weft__netpoll_waiting() &&
           !weft__blocking_pending();
}

static bool dead(void) {
    uint64_t e0, e1;
    if (!weft__sched_quiet(&e0))
        return false;
    int before = tasks();
    uint64_t gen = weft__threads_gen();
    if (!nothing_pending())
        return false;
    int asleep = weft__threads_asleep();
    int expect = weft_procs() + asleep + SAN_THREADS;
    if (asleep < 0 || before != expect)
        return false;
    size_t awake = 0;
    weft__foreach_g(count_awake, &awake);
    if (awake || !nothing_pending() || tasks() != expect)
        return false;
    return weft__sched_quiet(&e1) && e0 == e1 && gen == weft__threads_gen();
}

void weft__deadlock_idle(void) {
    int64_t until = weft_now() + PERIOD;
    weft__netpoll(until);
    if (weft_now() < until || !dead())
        return;
    weft__deadlock_report();
    exit(2);
}
