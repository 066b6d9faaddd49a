/* SPDX-License-Identifier: MIT */
/*
 * Fairness on one worker: two goroutines that keep waking each other (each
 * hand-off puts the other in runnext) must not starve a goroutine waiting
 * in the worker's ring, and yielding goroutines take turns.  With one
 * worker no other core can rescue anyone, so only the scheduler's own
 * order is tested here.
 */
#include "check.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

static atomic_bool bystander_ran, pair_exhausted;
static weft_wg wg;

/* Each side of the pair passes the token back until the bystander has run,
 * or a bound far beyond what fairness needs is reached. */
#define BOUND 2000000

static void pair_side(void *arg) {
    weft_chan **c = arg; /* c[0]: receive from, c[1]: send to */
    int v = 0;
    long i = 0;
    for (; i < BOUND && !atomic_load(&bystander_ran); i++) {
        if (weft_send(c[1], &v) != 0 || weft_recv(c[0], &v) != 0)
            break;
    }
    if (i == BOUND)
        atomic_store(&pair_exhausted, true);
    weft_close(c[1]); /* the other side's next receive ends its loop */
    weft_wg_done(&wg);
}

static void bystander(void *arg) {
    (void)arg;
    atomic_store(&bystander_ran, true);
    weft_wg_done(&wg);
}

static void first_side(void *arg) {
    weft_chan **c = arg;
    int v = 0;
    /* start the exchange, then leave the rest to pair_side */
    CHECK_EQ(weft_recv(c[0], &v), 0);
    pair_side(c);
}

static void test_pair_does_not_starve_ring(void) {
    weft_chan *ab = weft_chan_make(sizeof(int), 0);
    weft_chan *ba = weft_chan_make(sizeof(int), 0);
    CHECK(ab && ba);
    weft_chan *a[2] = {ba, ab}, *b[2] = {ab, ba};
    weft_wg_add(&wg, 3);
    CHECK_EQ(weft_go(first_side, b), 0);
    CHECK_EQ(weft_go(pair_side, a), 0);
    CHECK_EQ(weft_go(bystander, NULL), 0);
    weft_wg_wait(&wg);
    CHECK(atomic_load(&bystander_ran));
    CHECK(!atomic_load(&pair_exhausted));
    weft_chan_free(ab);
    weft_chan_free(ba);
}

/* Yielders alternate: each records the other's count at every turn. */
static atomic_long turns[2];
static long max_lead;

static weft_chan *start;

static atomic_int arrived;

static void yielder(void *arg) {
    int me = (int)(intptr_t)arg;
    CHECK_EQ(weft_recv(start, NULL), -EPIPE); /* both exist before turns */
    /* The close readies one waiter, then the other: until the second has
     * run, the first may be alone on the worker and its yields return at
     * once (seen under ThreadSanitizer, which slows the closing thread
     * between the two).  Count turns only once both have run. */
    atomic_fetch_add(&arrived, 1);
    while (atomic_load(&arrived) < 2)
        weft_yield();
    for (int i = 0; i < 10000; i++) {
        atomic_fetch_add(&turns[me], 1);
        long lead = atomic_load(&turns[me]) - atomic_load(&turns[!me]);
        if (lead > max_lead)
            max_lead = lead; /* one worker: no concurrent writer */
        weft_yield();
    }
    weft_wg_done(&wg);
}

static void test_yielders_alternate(void) {
    CHECK((start = weft_chan_make(0, 0)) != NULL);
    weft_wg_add(&wg, 2);
    CHECK_EQ(weft_go(yielder, (void *)0), 0);
    CHECK_EQ(weft_go(yielder, (void *)1), 0);
    CHECK_EQ(weft_close(start), 0);
    weft_wg_wait(&wg);
    weft_chan_free(start);
    CHECK(max_lead <= 2);
}

int main(void) {
    TEST_BEGIN(60);
    setenv("WEFT_PROCS", "1", 1);
    /* the one worker's own order: no hand-off to a second thread (which a
     * goroutine slowed past the monitor's threshold, under a sanitizer on
     * a loaded machine, would get) */
    setenv("WEFT_MAXTHREADS", "1", 1);
    CHECK_EQ(weft_procs(), 1);
    test_pair_does_not_starve_ring();
    test_yielders_alternate();
    TEST_OK();
    return 0;
}
