/* SPDX-License-Identifier: MIT */
/*
 * Durations at the edge of the clock (issue 13, item 4): now + ns
 * saturates at INT64_MAX, a deadline that never comes but is still a
 * deadline.  A goroutine sleeping INT64_MAX is asleep on a timer, not
 * deadlocked; a timer with delay INT64_MAX does not fire; a period of
 * INT64_MAX fires once, then never again, and does not spin (with one
 * worker a spinning timer loop would starve everything).  A context with
 * timeout INT64_MAX gets that same deadline (weft__deadline, as every wait
 * does): weft_ctx_deadline says INT64_MAX, and waiting for the context to
 * end is waiting on a timer, not a deadlock.  Each part runs in a child
 * with WEFT_PROCS=1: the deadlock detector ends a process.
 */
#include "child.h"

static void sleep_forever(void *arg) {
    (void)arg;
    weft_sleep(INT64_MAX);
}

static void bye(int sig) {
    (void)sig;
    _exit(0);
}

/* main blocks in weft for good too: only the sleeper's timer, far in the
 * future, keeps the deadlock detector (exit 2) quiet until the alarm. */
static int sleeper(void) {
    CHECK_EQ(weft_go(sleep_forever, NULL), 0);
    signal(SIGALRM, bye);
    alarm(2);
    weft_wg never = {0};
    weft_wg_add(&never, 1);
    weft_wg_wait(&never);
    return 1;
}

/* As sleeper, with main waiting for a context that ends at INT64_MAX. */
static int ctx_waiter(void) {
    weft_ctx *ctx = weft_ctx_with_timeout(weft_ctx_background(), INT64_MAX);
    CHECK(ctx);
    int64_t d = 0;
    CHECK_EQ(weft_ctx_deadline(ctx, &d), 1);
    CHECK_EQ(d, INT64_MAX);
    signal(SIGALRM, bye);
    alarm(2);
    weft_recv(weft_ctx_done(ctx), NULL);
    return 1;
}

static void ping(void *c) {
    int v = 0;
    CHECK_EQ(weft_send(c, &v), 0);
}

static int timers(void) {
    alarm(30 * (unsigned)test_scale());
    int64_t at;
    weft_timer *never = weft_timer_start(INT64_MAX, 0);
    CHECK(never);
    CHECK_EQ(weft_recv_timeout(weft_timer_chan(never), &at, WEFT_MS(200)),
             -ETIMEDOUT);
    CHECK_EQ(weft_timer_stop(never), 1);

    weft_timer *once = weft_timer_start(0, INT64_MAX);
    CHECK(once);
    CHECK_EQ(weft_recv(weft_timer_chan(once), &at), 0);
    /* the only worker must stay free to run other goroutines */
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    CHECK(c);
    for (int i = 0; i < 10; i++) {
        int v;
        CHECK_EQ(weft_go(ping, c), 0);
        CHECK_EQ(weft_recv_timeout(c, &v, WEFT_SEC(5)), 0);
    }
    CHECK_EQ(weft_recv_timeout(weft_timer_chan(once), &at, WEFT_MS(200)),
             -ETIMEDOUT);
    CHECK_EQ(weft_timer_stop(once), 0);
    weft_chan_free(c);

    weft_ctx *ctx = weft_ctx_with_timeout(weft_ctx_background(), INT64_MAX);
    CHECK(ctx);
    CHECK_EQ(weft_recv_timeout(weft_ctx_done(ctx), NULL, WEFT_MS(50)),
             -ETIMEDOUT);
    CHECK_EQ(weft_ctx_err(ctx), 0);
    weft_ctx_free(ctx);
    return 0;
}

int main(void) {
    TEST_BEGIN(120);
    static const char *const env[] = {"WEFT_PROCS=1", NULL};
    static child c;
    child_run(sleeper, env, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    CHILD_CHECK(&c, c.secs >= 1.9);
    child_run(ctx_waiter, env, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    CHILD_CHECK(&c, c.secs >= 1.9);
    child_run(timers, env, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    TEST_OK();
    return 0;
}
