/* SPDX-License-Identifier: MIT */
/*
 * Goroutines that only yield must not starve descriptor waits or timers.
 * With every worker busy yielding nobody holds the poller role, and a yield
 * with nothing else queued used to return at once, so a goroutine parked
 * in weft_read never saw the data main wrote.  Each configuration runs in
 * a child process (the worker count is read at runtime start): one worker
 * with one spinner, two workers with two.
 */
#include "child.h"

#include <stdatomic.h>
#include <stdbool.h>

static int fds[2];
static atomic_bool got_data, slept, gave_up;
static weft_wg wg;

static void reader(void *arg) {
    (void)arg;
    char c;
    if (weft_read(fds[0], &c, 1) == 1)
        atomic_store(&got_data, true);
    weft_wg_done(&wg);
}

static void sleeper(void *arg) {
    (void)arg;
    weft_sleep(WEFT_MS(20));
    atomic_store(&slept, true);
    weft_wg_done(&wg);
}

/* Yields until the reader and the sleeper are done, for at most 10 s. */
static void spinner(void *arg) {
    (void)arg;
    int64_t limit = weft_now() + WEFT_SEC(10);
    while (!atomic_load(&got_data) || !atomic_load(&slept)) {
        weft_yield();
        if (weft_now() > limit) {
            atomic_store(&gave_up, true);
            break;
        }
    }
    weft_wg_done(&wg);
}

static int run(void) {
    CHECK(pipe(fds) == 0);
    int procs = weft_procs();
    weft_wg_add(&wg, 2 + procs);
    CHECK_EQ(weft_go(reader, NULL), 0);
    for (int i = 0; i < procs; i++)
        CHECK_EQ(weft_go(spinner, NULL), 0);
    CHECK_EQ(weft_go(sleeper, NULL), 0);
    usleep(100 * 1000); /* the reader parks, the spinners take the workers */
    CHECK(write(fds[1], "x", 1) == 1);
    weft_wg_wait(&wg);
    CHECK(atomic_load(&got_data));
    CHECK(atomic_load(&slept));
    CHECK(!atomic_load(&gave_up));
    return 0;
}

int main(void) {
    TEST_BEGIN(60);
    child_run_ok(run, "WEFT_PROCS=1", 9);
    child_run_ok(run, "WEFT_PROCS=2", 9);
    TEST_OK();
    return 0;
}
