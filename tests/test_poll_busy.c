/* SPDX-License-Identifier: MIT */
/*
 * A descriptor wait must be served while the P whose epoll set holds the
 * descriptor is kept busy by a goroutine that never switches.  Each P
 * sleeps in its own set and peeks it only between goroutines, so here
 * only the monitor's peek of an unwatched set (weft__sched_poll_unwatched)
 * can see the data: the reader registers its pipe on its own P, then the
 * hog it spawned runs there (it went to that P's runnext) and spins until
 * the reader is done, for at most 5 s.  One worker and two, each in a
 * child process (the worker count is read at runtime start).
 */
#include "child.h"

#include <stdatomic.h>
#include <stdbool.h>

static int fds[2];
static atomic_bool got_data, parked, gave_up;
static _Atomic(int64_t) read_at;
static weft_wg wg;

static void hog(void *arg) {
    (void)arg;
    int64_t limit = weft_now() + WEFT_SEC(5);
    while (!atomic_load(&got_data))
        if (weft_now() > limit) {
            atomic_store(&gave_up, true);
            break;
        }
    weft_wg_done(&wg);
}

/* Spawns the hog onto its own P, then parks reading the pipe. */
static void reader(void *arg) {
    (void)arg;
    CHECK_EQ(weft_go(hog, NULL), 0);
    atomic_store(&parked, true);
    char c;
    if (weft_read(fds[0], &c, 1) == 1) {
        atomic_store(&read_at, weft_now());
        atomic_store(&got_data, true);
    }
    weft_wg_done(&wg);
}

static int run(void) {
    CHECK(pipe(fds) == 0);
    weft_wg_add(&wg, 2);
    CHECK_EQ(weft_go(reader, NULL), 0);
    while (!atomic_load(&parked))
        usleep(1000);
    usleep(50 * 1000); /* the reader parks, the hog takes its P */
    int64_t wrote = weft_now();
    CHECK(write(fds[1], "x", 1) == 1);
    weft_wg_wait(&wg);
    CHECK(atomic_load(&got_data));
    CHECK(!atomic_load(&gave_up));
    /* a few of the monitor's looks; generous for sanitizers and valgrind */
    CHECK(atomic_load(&read_at) - wrote < WEFT_SEC(2));
    return 0;
}

int main(void) {
    TEST_BEGIN(60);
    child_run_ok(run, "WEFT_PROCS=1", 9);
    child_run_ok(run, "WEFT_PROCS=2", 9);
    TEST_OK();
    return 0;
}
