/* SPDX-License-Identifier: MIT */
/*
 * Deadlock detection: "all goroutines are asleep".
 *
 * When to look.  Only when the whole runtime is idle: the worker holding
 * the poller role, about to sleep with no timer pending, sleeps at most
 * PERIOD instead of forever (the scheduler's idle hook, weft__idle_hook,
 * which the diagnostics install as weft__deadlock_ops) and calls check()
 * when that period passed undisturbed.  The detector performs no sleep of
 * its own.  Nothing is added to any hot path, and an idle process wakes
 * four times a second.  Never once exit() has begun (the exit handler
 * uninstalls the hook): the exiting thread is neither blocked in weft nor
 * going to wake anybody.
 *
 * What is checked (the API's deadlock rule): every other worker sleeps on
 * the idle list; every goroutine is parked on an unclaimed park; no timer,
 * descriptor wait or weft_blocking call is pending; and every thread of the
 * process is a worker, an idle weft_blocking pool thread, a sanitizer's
 * own thread (see sanitizer_thread), or a plain thread blocked in weft without
 * a deadline on a park nobody has claimed.  A thread that never called weft, or
 * runs, makes the counts differ and prevents the report.
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
#include "diag.h"
#include "monitor.h"
#include "netpoll.h"
#include "sched.h"
#include "sys.h"
#include "timer.h"
#include "trace.h"
#include "waiter.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PERIOD WEFT_MS(250)

/* ThreadSanitizer runs threads of its own in the process (a background
 * thread; two in a forked child), which sleep in the raw nanosleep system
 * call between short runs.  glibc's sleeps use clock_nanosleep, so under
 * TSan a thread sleeping in nanosleep is taken for one of them; one caught
 * running counts as a user thread and just defers the report. */
static bool sanitizer_thread(const char *tid) {
#ifdef WEFT_TSAN
    char path[320], want[16], buf[16] = {0};
    snprintf(path, sizeof path, "/proc/self/task/%s/syscall", tid);
    int n = snprintf(want, sizeof want, "%d ", (int)SYS_nanosleep);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    return r >= n && strncmp(buf, want, (size_t)n) == 0;
#else
    (void)tid;
    return false;
#endif
}

static int tasks(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.' && !sanitizer_thread(e->d_name);
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
    int expect = weft__sched_threads() + weft__monitor_threads() + asleep;
    if (asleep < 0 || before != expect)
        return false;
    size_t awake = 0;
    weft__diag_walk(count_awake, &awake);
    if (awake || !nothing_pending() || tasks() != expect)
        return false;
    return weft__sched_quiet(&e1) && e0 == e1 && gen == weft__threads_gen();
}

/* After a PERIOD of idling undisturbed (the hook's contract).  The hook is
 * read after the check: a thread seen in a sanitizer's exit-time sleep
 * means exit had uninstalled it before. */
static void check(void) {
    if (!dead() || atomic_load(&weft__idle_hook) != &weft__deadlock_ops)
        return;
    weft__deadlock_report();
    exit(2);
}

const weft__idle_ops weft__deadlock_ops = {.period = PERIOD, .check = check};
