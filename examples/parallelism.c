/* SPDX-License-Identifier: MIT */
/*
 * parallelism: concurrency is not parallelism.
 *
 * Concurrency is a way to structure a program: pieces of work that can
 * proceed independently, in an order nobody fixes in advance.  Parallelism
 * is what the hardware does with them: pieces running at the same instant
 * on different cores.  A program needs the first to get the second, but the
 * first alone buys no speed.
 *
 * Part 1 runs PAR_WAITERS goroutines on a runtime with ONE worker thread,
 * each waiting PAR_WAIT_MS (a stand-in for waiting on a disk or a network).
 * While one waits, the worker runs the others, so they all finish in about
 * PAR_WAIT_MS: concurrency, on one core, without any parallelism.
 *
 * Part 2 runs one CPU-bound job - counting the primes below PAR_LIMIT, cut
 * into PAR_CHUNKS ranges, one goroutine per range, the counts sent back on
 * a channel - first with one worker, then with one worker per CPU.  Same
 * code, same goroutines; only the number of cores they may use changes, and
 * so does the wall time.
 *
 * The worker count is fixed while the runtime runs, so the program restarts
 * it between runs: weft_shutdown() (which fails while a goroutine is alive) and
 * weft_init() with the new count.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <weft.h>

#define PAR_LIMIT 2000000
#define PAR_CHUNKS 64
#define PAR_WAITERS 1000
#define PAR_WAIT_MS 50
#define PAR_RUNS 3

/* Restart the runtime with procs workers (0: WEFT_PROCS or one per CPU).
 * Goroutines that just finished may still be on their way out: shutdown
 * waits for them. */
static int par_restart(int procs) {
    weft_config cfg = {.procs = procs};
    int r = weft_shutdown();
    return r < 0 ? r : weft_init(&cfg);
}

/* ---- part 1: waiting overlaps, even on one core -------------------------- */

typedef struct par_waiter {
    weft_wg wg;
    int64_t wait; /* how long each goroutine waits (a stand-in for I/O) */
} par_waiter;

static void par_wait(void *arg) {
    par_waiter *pw = arg;
    weft_sleep(pw->wait); /* parks: the worker runs the others meanwhile */
    weft_wg_done(&pw->wg);
}

/* PAR_WAITERS goroutines each waiting PAR_WAIT_MS on one worker. */
static int par_show_waiting(void) {
    if (par_restart(1) < 0)
        return 1;
    par_waiter pw = {.wait = WEFT_MS(PAR_WAIT_MS)};
    int64_t t0 = weft_now();
    weft_wg_add(&pw.wg, PAR_WAITERS);
    for (int i = 0; i < PAR_WAITERS; i++)
        if (weft_go(par_wait, &pw) != 0)
            return 1;
    weft_wg_wait(&pw.wg);
    double secs = (double)(weft_now() - t0) / 1e9;
    printf("1 worker, %d goroutines each waiting %d ms: all done in %.3f s\n"
           "  (one after the other: %.0f s)\n",
           PAR_WAITERS, PAR_WAIT_MS, secs, PAR_WAITERS * PAR_WAIT_MS / 1e3);
    return 0;
}

/* ---- part 2: the same work on one core and on all of them ---------------- */

typedef struct par_range {
    int lo, hi;     /* count primes in [lo, hi) */
    weft_chan *out; /* where the count goes: nothing else is shared */
} par_range;

static int par_is_prime(int n) {
    if (n < 2)
        return 0;
    for (int d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

static void par_count_range(void *arg) {
    par_range *r = arg;
    long n = 0;
    for (int i = r->lo; i < r->hi; i++)
        n += par_is_prime(i);
    WEFT_SEND(r->out, n);
}

typedef struct par_timing {
    double wall, cpu; /* seconds: elapsed, and CPU used by the process */
} par_timing;

/* Count the primes below PAR_LIMIT with PAR_CHUNKS goroutines, timed.
 * Returns the count, or -1. */
static long par_count_primes(par_timing *t) {
    weft_chan *out = weft_chan_make(sizeof(long), PAR_CHUNKS);
    if (!out)
        return -1;
    par_range r[PAR_CHUNKS];
    int64_t t0 = weft_now();
    clock_t c0 = clock();
    for (int i = 0; i < PAR_CHUNKS; i++) {
        r[i] = (par_range){(int)((long)PAR_LIMIT * i / PAR_CHUNKS),
                           (int)((long)PAR_LIMIT * (i + 1) / PAR_CHUNKS), out};
        if (weft_go(par_count_range, &r[i]) != 0)
            return -1;
    }
    long total = 0, n;
    for (int i = 0; i < PAR_CHUNKS; i++) {
        WEFT_RECV(out, &n);
        total += n;
    }
    t->wall = (double)(weft_now() - t0) / 1e9;
    t->cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    weft_chan_free(out);
    return total;
}

/* The fastest of PAR_RUNS runs with procs workers: other programs on the
 * machine only ever make a run slower. */
static long par_best_of(int procs, par_timing *best) {
    long count = -1;
    if (par_restart(procs) < 0)
        return -1;
    for (int i = 0; i < PAR_RUNS; i++) {
        par_timing t;
        count = par_count_primes(&t);
        if (count < 0)
            return -1;
        if (i == 0 || t.wall < best->wall)
            *best = t;
    }
    return count;
}

/* Time the prime count with one worker, then with every worker. */
static int par_show_speedup(void) {
    par_timing t1, tn;
    long c1 = par_best_of(1, &t1);
    long cn = par_best_of(0, &tn);
    if (c1 < 0 || c1 != cn) {
        printf("the two runs disagree: %ld and %ld primes\n", c1, cn);
        return 1;
    }
    int procs = weft_procs();
    printf("%d goroutines count the %ld primes below %d (best of %d):\n",
           PAR_CHUNKS, c1, PAR_LIMIT, PAR_RUNS);
    printf("  1 worker : %.3f s wall, %.3f s CPU  (concurrent)\n", t1.wall,
           t1.cpu);
    printf("  %d workers: %.3f s wall, %.3f s CPU  (concurrent and parallel)\n",
           procs, tn.wall, tn.cpu);
    printf("  speedup %.2fx with %d workers%s\n", t1.wall / tn.wall, procs,
           procs == 1 ? " (only one: nothing ran in parallel)" : "");
    return 0;
}

static int parallelism_run(void) {
    return par_show_waiting() || par_show_speedup();
}

#ifndef WEFT_TOUR
int main(void) {
    return parallelism_run();
}
#endif
