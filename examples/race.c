/* SPDX-License-Identifier: MIT */
/*
 * race: a race condition, and the four ways to cure it.
 *
 * A race condition is a bug whose effect depends on how the steps of
 * independently running code happen to interleave.  The classic one:
 * RACE_G goroutines each add 1 to a shared counter RACE_N times.  `counter++`
 * is three steps - read, add, write back - and when another goroutine writes
 * between this one's read and its write, that other update is overwritten
 * and lost.  A weft_yield() between the read and the write makes the window
 * wide, so the loss shows on every run, even on one core.
 *
 * The cures, each giving the right total:
 *   1. share nothing: each goroutine counts in its own variable and sends
 *      its result over a channel; only main adds them up;
 *   2. share only what nobody writes: the goroutines read a common plan
 *      fixed before they start, and each writes only its own result slot;
 *   3. one writer: a single goroutine owns the counter; the others send it
 *      increments over a channel;
 *   4. make the read-modify-write one indivisible step: an atomic add, or
 *      a weft_mutex held across the three steps.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <weft.h>

#define RACE_G 8
#define RACE_N 1000

/* State shared by one experiment's goroutines. */
typedef struct race_run {
    weft_wg wg;
    weft_chan *chan;  /* cures 1 and 3 */
    int slot[RACE_G]; /* cure 2: slot[i] is written by goroutine i only */
} race_run;

typedef struct race_arg {
    int id;
    race_run *run;
} race_arg;

/* Start RACE_G goroutines running fn and wait for all of them. */
static int race_start(weft_fn fn, race_run *run) {
    race_arg args[RACE_G];
    weft_wg_add(&run->wg, RACE_G);
    for (int i = 0; i < RACE_G; i++) {
        args[i] = (race_arg){i, run};
        if (weft_go(fn, &args[i]) != 0)
            return -1;
    }
    weft_wg_wait(&run->wg);
    return 0;
}

static int race_report(const char *how, long total) {
    long want = (long)RACE_G * RACE_N;
    printf("  %-36s %5ld of %ld%s\n", how, total, want,
           total == want ? "" : "  <- updates lost");
    return total != want;
}

/* ---- the race ------------------------------------------------------------ */

static int race_counter; /* shared and unprotected */

/* The race is the point here, so ThreadSanitizer (`make race`), which
 * would rightly stop the program at it, is told to look away. */
__attribute__((no_sanitize("thread"))) static void race_unsafe(void *arg) {
    race_arg *a = arg;
    for (int i = 0; i < RACE_N; i++) {
        int v = race_counter; /* read */
        weft_yield();         /* others run in between... */
        race_counter = v + 1; /* ...and their updates get overwritten */
    }
    weft_wg_done(&a->run->wg);
}

static int race_show_bug(void) {
    race_run run = {0};
    race_counter = 0;
    if (race_start(race_unsafe, &run))
        return -1;
    race_report("shared counter, no protection:", race_counter);
    return 0; /* wrong, as expected: not a failure of this program */
}

/* ---- cure 1: share nothing ----------------------------------------------- */

static void race_own_count(void *arg) {
    race_arg *a = arg;
    long mine = 0; /* nobody else can see it */
    for (int i = 0; i < RACE_N; i++) {
        long v = mine;
        weft_yield();
        mine = v + 1;
    }
    WEFT_SEND(a->run->chan, mine);
    weft_wg_done(&a->run->wg);
}

static int race_cure_nothing_shared(void) {
    race_run run = {.chan = weft_chan_make(sizeof(long), RACE_G)};
    if (!run.chan || race_start(race_own_count, &run))
        return -1;
    long total = 0, part;
    for (int i = 0; i < RACE_G; i++) {
        WEFT_RECV(run.chan, &part);
        total += part;
    }
    weft_chan_free(run.chan);
    return race_report("1. share nothing (send results):", total);
}

/* ---- cure 2: share only read-only data ----------------------------------- */

static int race_plan[RACE_G]; /* filled before the goroutines start */

static void race_follow_plan(void *arg) {
    race_arg *a = arg;
    int *mine = &a->run->slot[a->id];
    for (int i = 0; i < race_plan[a->id]; i++) {
        int v = *mine;
        weft_yield();
        *mine = v + 1;
    }
    weft_wg_done(&a->run->wg);
}

static int race_cure_read_only(void) {
    race_run run = {0};
    for (int i = 0; i < RACE_G; i++)
        race_plan[i] = RACE_N;
    if (race_start(race_follow_plan, &run))
        return -1;
    long total = 0;
    for (int i = 0; i < RACE_G; i++)
        total += run.slot[i];
    return race_report("2. shared data is read-only:", total);
}

/* ---- cure 3: a single writer --------------------------------------------- */

typedef struct race_owner {
    weft_chan *updates; /* increments in */
    weft_chan *result;  /* the final count out */
} race_owner;

/* The only goroutine that ever touches the counter. */
static void race_own_counter(void *arg) {
    race_owner *o = arg;
    long counter = 0;
    int delta;
    while (WEFT_RECV(o->updates, &delta) == 0) /* until updates is closed */
        counter += delta;
    WEFT_SEND(o->result, counter);
}

static void race_send_increments(void *arg) {
    race_arg *a = arg;
    int one = 1;
    for (int i = 0; i < RACE_N; i++) {
        weft_yield();
        WEFT_SEND(a->run->chan, one);
    }
    weft_wg_done(&a->run->wg);
}

static int race_cure_one_writer(void) {
    race_owner o = {weft_chan_make(sizeof(int), 64),
                    weft_chan_make(sizeof(long), 0)};
    race_run run = {.chan = o.updates};
    if (!o.updates || !o.result || weft_go(race_own_counter, &o) ||
        race_start(race_send_increments, &run))
        return -1;
    weft_close(o.updates); /* every sender is done: the owner may finish */
    long total;
    WEFT_RECV(o.result, &total);
    weft_chan_free(o.updates);
    weft_chan_free(o.result);
    return race_report("3. one writer owns the counter:", total);
}

/* ---- cure 4: atomic read-modify-write ------------------------------------ */

static atomic_long race_atomic_counter;

static void race_atomic_add(void *arg) {
    race_arg *a = arg;
    for (int i = 0; i < RACE_N; i++) {
        weft_yield();
        atomic_fetch_add(&race_atomic_counter, 1); /* one indivisible step */
    }
    weft_wg_done(&a->run->wg);
}

static weft_mutex race_lock;
static long race_locked_counter; /* only touched with race_lock held */

static void race_mutex_add(void *arg) {
    race_arg *a = arg;
    for (int i = 0; i < RACE_N; i++) {
        weft_mutex_lock(&race_lock);
        long v = race_locked_counter;
        weft_yield(); /* others run, but none can enter the lock */
        race_locked_counter = v + 1;
        weft_mutex_unlock(&race_lock);
    }
    weft_wg_done(&a->run->wg);
}

static int race_cure_atomic(void) {
    race_run run = {0};
    atomic_store(&race_atomic_counter, 0);
    if (race_start(race_atomic_add, &run))
        return -1;
    int bad = race_report("4a. atomic add:", atomic_load(&race_atomic_counter));
    race_locked_counter = 0;
    if (race_start(race_mutex_add, &run))
        return -1;
    return bad | race_report("4b. read-modify-write under a mutex:",
                             race_locked_counter);
}

static int race_run_all(void) {
    printf("%d goroutines each add 1 to a counter %d times:\n", RACE_G, RACE_N);
    if (race_show_bug() < 0)
        return 1;
    return race_cure_nothing_shared() != 0 || race_cure_read_only() != 0 ||
           race_cure_one_writer() != 0 || race_cure_atomic() != 0;
}

#ifndef WEFT_TOUR
int main(void) {
    return race_run_all();
}
#endif
