/* SPDX-License-Identifier: MIT */
/*
 * weft_shutdown: 0 once nothing is alive (goroutines that are only
 * returning are waited for), -EBUSY with nothing stopped while a goroutine
 * is alive or a timer is armed; a timer from before a shutdown never
 * touches the heap of the runtime that follows.
 */
#include "check.h"

/* Each scenario's shutdown goes through here (see the report of issue 13:
 * built against the old void weft_shutdown, it becomes a plain call). */
static int shutdown_rc;
#define SHUTDOWN() (shutdown_rc = weft_shutdown())

static weft_wg wg;

static void done(void *arg) {
    (void)arg;
    weft_wg_done(&wg);
}

/* Stopped means stopped: weft_init succeeds only on a stopped runtime. */
static void check_stopped(void) {
    weft_config cfg = {.procs = 2};
    CHECK_EQ(weft_init(&cfg), 0);
}

/* After the last weft_wg_done its caller is still returning; shutdown
 * must wait for it instead of doing nothing (about one round in three). */
static void test_after_wg_wait(void) {
    int rounds = 300 / test_scale();
    for (int r = 0; r < rounds; r++) {
        weft_wg_add(&wg, 8);
        for (int i = 0; i < 8; i++)
            CHECK_EQ(weft_go(done, NULL), 0);
        weft_wg_wait(&wg);
        SHUTDOWN();
        CHECK_EQ(shutdown_rc, 0);
        CHECK_EQ(weft_goroutines(), 0);
        check_stopped();
    }
}

/* A timer armed across a shutdown: before, shutdown dropped the heap, and
 * stopping the old timer after the restart removed the new one. */
static void test_armed_timer(void) {
    weft_timer *old = weft_timer_start(WEFT_SEC(30), 0);
    CHECK(old);
    SHUTDOWN();
    CHECK_EQ(shutdown_rc, -EBUSY);
    weft_timer *t = weft_timer_start(WEFT_MS(20), 0);
    CHECK(t);
    CHECK_EQ(weft_timer_stop(old), 1);
    int64_t at;
    CHECK_EQ(weft_recv_timeout(weft_timer_chan(t), &at, WEFT_SEC(10)), 0);
    CHECK_EQ(weft_timer_stop(t), 0);
    CHECK_EQ(weft_shutdown(), 0);
}

/* The same with a context's deadline. */
static void test_armed_ctx(void) {
    weft_ctx *old = weft_ctx_with_timeout(weft_ctx_background(), WEFT_SEC(30));
    CHECK(old);
    SHUTDOWN();
    CHECK_EQ(shutdown_rc, -EBUSY);
    weft_ctx *c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(20));
    CHECK(c);
    weft_ctx_free(old);
    CHECK_EQ(weft_recv_timeout(weft_ctx_done(c), NULL, WEFT_SEC(10)), -EPIPE);
    CHECK_EQ(weft_ctx_err(c), -ETIMEDOUT);
    weft_ctx_free(c);
    CHECK_EQ(weft_shutdown(), 0);
}

/* A timer that fired before a shutdown is no longer queued: stopping it
 * after the restart leaves the new heap alone. */
static void test_fired_timer(void) {
    weft_timer *old = weft_timer_start(0, 0);
    CHECK(old);
    int64_t at;
    CHECK_EQ(weft_recv(weft_timer_chan(old), &at), 0);
    CHECK_EQ(weft_shutdown(), 0);
    weft_timer *t = weft_timer_start(WEFT_MS(20), 0);
    weft_timer *u = weft_timer_start(WEFT_MS(40), 0);
    CHECK(t && u);
    CHECK_EQ(weft_timer_stop(old), 0);
    CHECK_EQ(weft_recv_timeout(weft_timer_chan(t), &at, WEFT_SEC(10)), 0);
    CHECK_EQ(weft_recv_timeout(weft_timer_chan(u), &at, WEFT_SEC(10)), 0);
    CHECK_EQ(weft_timer_stop(t), 0);
    CHECK_EQ(weft_timer_stop(u), 0);
    CHECK_EQ(weft_shutdown(), 0);
}

static weft_chan *gate;
static int inner_rc;

static void blocked(void *arg) {
    (void)arg;
    weft_recv(gate, NULL);
    weft_wg_done(&wg);
}

static void from_goroutine(void *arg) {
    (void)arg;
    inner_rc = weft_shutdown();
    weft_wg_done(&wg);
}

/* Alive goroutines: a blocked one fails at once (not after the wait for
 * returning ones), and so does a call from a goroutine. */
static void test_alive(void) {
    gate = weft_chan_make(0, 0);
    CHECK(gate);
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(blocked, NULL), 0);
    while (!strstr(test_dump(), "chan receive"))
        weft_sleep(WEFT_MS(1));
    int64_t t0 = weft_now();
    CHECK_EQ(weft_shutdown(), -EBUSY);
    CHECK(weft_now() - t0 < WEFT_MS(900) * test_scale());
    CHECK_EQ(weft_goroutines(), 1);
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(from_goroutine, NULL), 0);
    CHECK_EQ(weft_close(gate), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(inner_rc, -EBUSY);
    weft_chan_free(gate);
    CHECK_EQ(weft_shutdown(), 0);
    CHECK_EQ(weft_shutdown(), 0); /* stopped already: nothing to do */
}

int main(void) {
    TEST_BEGIN(120);
    test_after_wg_wait();
    test_armed_timer();
    test_armed_ctx();
    test_fired_timer();
    test_alive();
    TEST_OK();
    return 0;
}
