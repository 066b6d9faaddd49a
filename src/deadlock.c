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
 * Why a snapshot taken piece by piece is enough.  The pieces are read
 * between two readings of three generation counters: the sum of the
 * workers' schedule ticks (a worker bumps its tick before it can run any
 * goroutine, so "idle at the first reading, same tick at the last" means
 * no goroutine ran in between), the thread registry's generation (bumped
 * whenever a plain thread starts or stops blocking), and the task count.
 * Anything able to wake a sleeper is a running goroutine (none ran), a
 * running thread (it would be counted as a task at the start, or have left
 * a trace: a readied goroutine is seen runnable, a woken thread changes the
 * generation, a timer or descriptor wait is seen pending at the end), a
 * timer (none pending) or a descriptor (none waited on).  So if every
 * piece says "asleep" and no counter moved, the state was dead throughout
 * and stays dead.
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
    uint64_t gen = weft__threads_gen(), e0, e1;
    if (!weft__sched_quiet(&e0) || !nothing_pending())
        return false;
    int asleep = weft__threads_asleep();
    int expect = weft_procs() + asleep + SAN_THREADS;
    if (asleep < 0 || tasks() != expect)
        return false;
    size_t awake = 0;
    weft__foreach_g(count_awake, &awake);
    if (awake || !nothing_pending() || tasks() != expect)
        return false;
    weft__sched_quiet(&e1);
    return e0 == e1 && gen == weft__threads_gen();
}

void weft__deadlock_idle(void) {
    int64_t until = weft_now() + PERIOD;
    weft__netpoll(until);
    if (weft_now() < until || !dead())
        return;
    weft__deadlock_report();
    exit(2);
}
