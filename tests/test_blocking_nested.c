/* SPDX-License-Identifier: MIT */
/*
 * Nested weft_blocking: a call made from a helper thread runs inline there.
 * Before, each outer call held a helper while it waited for its inner job;
 * with 64 outer calls running no helper was left for any inner one, and
 * every caller hung.
 */
#include "check.h"

#include <stdatomic.h>
#include <time.h>

enum { N = 100 };

static atomic_int inner_runs, outer_running;
static weft_wg wg;

static void inner(void *arg) {
    (void)arg;
    atomic_fetch_add(&inner_runs, 1);
}

/* Waits (bounded) until every helper of the pool (64, see weft.h) runs an
 * outer call before it makes its inner one: the schedule that hung. */
static void outer(void *arg) {
    (void)arg;
    atomic_fetch_add(&outer_running, 1);
    for (int i = 0; i < 2000 && atomic_load(&outer_running) < 64; i++) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ(weft_blocking(inner, NULL), 0);
}

static void caller(void *arg) {
    (void)arg;
    CHECK_EQ(weft_blocking(outer, NULL), 0);
    weft_wg_done(&wg);
}

int main(void) {
    TEST_BEGIN(60);
    weft_wg_add(&wg, N);
    for (int i = 0; i < N; i++)
        CHECK_EQ(weft_go(caller, NULL), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&inner_runs), N);
    /* from a plain thread too: the helper of its outer call runs inner */
    CHECK_EQ(weft_blocking(outer, NULL), 0);
    CHECK_EQ(atomic_load(&inner_runs), N + 1);
    TEST_OK();
    return 0;
}
