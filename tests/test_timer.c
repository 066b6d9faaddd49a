/* SPDX-License-Identifier: MIT */
/* Timers and sleeps: one-shot and periodic timers, dropped ticks, stop,
 * bad arguments, many concurrent sleepers, plain-thread use. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

static weft_wg wg;

static void test_one_shot(void) {
    int64_t t0 = weft_now();
    weft_timer *t = weft_timer_start(WEFT_MS(10), 0);
    CHECK(t != NULL);
    weft_chan *c = weft_timer_chan(t);
    CHECK_EQ(weft_chan_cap(c), 1);
    int64_t at = 0;
    CHECK_EQ(weft_recv(c, &at), 0);
    CHECK(at >= t0 + WEFT_MS(10));
    CHECK(at <= weft_now());
    /* fired once, never closed: nothing more arrives */
    CHECK_EQ(weft_recv_timeout(c, &at, WEFT_MS(30)), -ETIMEDOUT);
    CHECK_EQ(weft_timer_stop(t), 0); /* already fired */
}

static void test_stop_before_fire(void) {
    weft_timer *t = weft_timer_start(WEFT_SEC(10), 0);
    CHECK(t != NULL);
    CHECK_EQ(weft_timer_stop(t), 1);
    CHECK_EQ(weft_timer_stop(NULL), -EINVAL);
    CHECK(weft_timer_chan(NULL) == NULL);
}

static void test_bad_args(void) {
    errno = 0;
    CHECK(weft_timer_start(WEFT_MS(1), -1) == NULL);
    CHECK_EQ(errno, EINVAL);
    /* a negative delay fires at once */
    weft_timer *t = weft_timer_start(-WEFT_SEC(1), 0);
    CHECK(t != NULL);
    int64_t at;
    CHECK_EQ(weft_recv_timeout(weft_timer_chan(t), &at, WEFT_SEC(5)), 0);
    weft_timer_stop(t);
}

static void test_periodic(void) {
    weft_timer *t = weft_timer_start(WEFT_MS(2), WEFT_MS(2));
    CHECK(t != NULL);
    int64_t prev = 0;
    for (int i = 0; i < 5; i++) {
        int64_t at;
        CHECK_EQ(weft_recv(weft_timer_chan(t), &at), 0);
        CHECK(at > prev);
        prev = at;
    }
    /* unread ticks are dropped, not queued: after a long pause at most one
     * tick waits in the channel */
    weft_sleep(WEFT_MS(30));
    CHECK(weft_chan_len(weft_timer_chan(t)) <= 1);
    CHECK_EQ(weft_timer_stop(t), 0);
}

/* Many goroutines sleeping at once, each for its own time. */
static atomic_int late;

static void sleeper(void *arg) {
    int64_t d = WEFT_US(100) * (1 + (intptr_t)arg % 50);
    int64_t t0 = weft_now();
    weft_sleep(d);
    if (weft_now() - t0 < d)
        atomic_fetch_add(&late, 1); /* woke early: a bug */
    weft_wg_done(&wg);
}

static void test_many_sleepers(void) {
    int n = test_max_live(10000 / test_scale());
    weft_wg_add(&wg, n);
    for (intptr_t i = 0; i < n; i++)
        CHECK_EQ(weft_go(sleeper, (void *)i), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&late), 0);
}

/* A timer's channel used from a plain thread, with the timer stopped by
 * that same thread (the receiver, as the contract asks). */
static void *thread_timer(void *arg) {
    (void)arg;
    weft_timer *t = weft_timer_start(WEFT_MS(5), 0);
    int64_t at;
    CHECK_EQ(weft_recv(weft_timer_chan(t), &at), 0);
    weft_timer_stop(t);
    CHECK_EQ(weft_sleep(WEFT_MS(2)), 0);
    return NULL;
}

static void test_plain_thread(void) {
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, thread_timer, NULL), 0);
    pthread_join(th, NULL);
}

/* Timers in a select: a timeout case next to a channel that never sends. */
static void test_select_timer(void) {
    weft_chan *never = weft_chan_make(sizeof(int), 0);
    weft_timer *t = weft_timer_start(WEFT_MS(5), 0);
    int v;
    int64_t at;
    weft_case cs[2] = {{never, WEFT_RECV, &v, 0},
                       {weft_timer_chan(t), WEFT_RECV, &at, 0}};
    CHECK_EQ(weft_select(cs, 2, WEFT_SEC(10)), 1);
    weft_timer_stop(t);
    weft_chan_free(never);
}

/* A process whose only goroutine sleeps is idle: the workers wait for the
 * timer instead of waking each other.  (Handing the poller role on at every
 * wake-up once kept them at ~50 ms of CPU per second.)  Loose bound. */
/* weft_timer_stop with receivers parked on the channel (plain, timed and
 * in a select): each wakes with -EPIPE; none sleeps on freed memory. */
static weft_wg stop_wg;

static void stop_waiter(void *arg) {
    weft_chan *c = arg;
    int64_t at;
    CHECK_EQ(weft_recv(c, &at), -EPIPE);
    weft_wg_done(&stop_wg);
}

static void stop_timed_waiter(void *arg) {
    int64_t at;
    CHECK_EQ(weft_recv_timeout(arg, &at, WEFT_SEC(30)), -EPIPE);
    weft_wg_done(&stop_wg);
}

static void stop_selector(void *arg) {
    int64_t at;
    weft_chan *other = weft_chan_make(0, 0);
    CHECK(other);
    weft_case cs[2] = {{.chan = other, .op = WEFT_RECV},
                       {.chan = arg, .op = WEFT_RECV, .elem = &at}};
    CHECK_EQ(weft_select(cs, 2, WEFT_FOREVER), 1);
    CHECK_EQ(cs[1].err, -EPIPE);
    weft_chan_free(other);
    weft_wg_done(&stop_wg);
}

static void test_stop_with_waiters(void) {
    for (int round = 0; round < 20 / test_scale(); round++) {
        weft_timer *t = weft_timer_start(WEFT_SEC(30), 0);
        CHECK(t);
        weft_wg_add(&stop_wg, 3);
        CHECK_EQ(weft_go(stop_waiter, weft_timer_chan(t)), 0);
        CHECK_EQ(weft_go(stop_timed_waiter, weft_timer_chan(t)), 0);
        CHECK_EQ(weft_go(stop_selector, weft_timer_chan(t)), 0);
        /* all three parked: a receive that starts after stop would be a
         * use after free */
        for (;;) {
            const char *d = test_dump();
            if (test_count(d, "[waiting] -: chan receive") +
                    test_count(d, "[waiting] -: select") ==
                3)
                break;
            weft_sleep(WEFT_MS(1));
        }
        CHECK_EQ(weft_timer_stop(t), 1);
        weft_wg_wait(&stop_wg);
    }
}

static int64_t cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static void long_sleeper(void *arg) {
    (void)arg;
    weft_sleep(WEFT_SEC(1));
    weft_wg_done(&wg);
}

static void test_idle_with_timer(void) {
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(long_sleeper, NULL), 0);
    int64_t c0 = cpu_now();
    weft_wg_wait(&wg);
    CHECK(cpu_now() - c0 < WEFT_MS(25));
}

static void run_all(void *arg) {
    (void)arg;
    test_one_shot();
    test_stop_before_fire();
    test_bad_args();
    test_periodic();
    test_select_timer();
    weft_wg_done(&wg);
}

int main(void) {
    TEST_BEGIN(60);
    /* from a goroutine ... */
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(run_all, NULL), 0);
    weft_wg_wait(&wg);
    /* ... and from main, a plain thread */
    test_one_shot();
    test_periodic();
    test_many_sleepers();
    test_plain_thread();
    test_idle_with_timer();
    test_stop_with_waiters();
    TEST_OK();
    return 0;
}
