/* SPDX-License-Identifier: MIT */
/*
 * weft_blocking: calls run on helper threads concurrently while workers
 * keep running goroutines; fn runs as a plain thread and may call weft
 * functions (send on a channel, start goroutines, wait on a WaitGroup,
 * sleep); plain threads may call weft_blocking too.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define SLEEPERS 8

static void nap_100ms(void *arg) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    CHECK_EQ(weft_id(), 0); /* a plain thread */
    atomic_fetch_add((atomic_int *)arg, 1);
}

struct caller {
    atomic_int *naps;
    weft_wg *wg;
};

static void caller_main(void *arg) {
    struct caller *c = arg;
    CHECK_EQ(weft_blocking(nap_100ms, c->naps), 0);
    weft_wg_done(c->wg);
}

static atomic_int spins;

static void spinner(void *arg) {
    int64_t end = weft_now() + WEFT_MS(150);
    while (weft_now() < end) {
        atomic_fetch_add(&spins, 1);
        weft_yield();
    }
    weft_wg_done(arg);
}

/* 8 goroutines each block 100 ms in a helper: together well under 800 ms,
 * and a spinning goroutine keeps running meanwhile. */
static void test_concurrent(void) {
    atomic_int naps = 0;
    weft_wg wg = {0}, spin_wg = {0};
    struct caller c = {&naps, &wg};
    int64_t t0 = weft_now();
    weft_wg_add(&spin_wg, 1);
    CHECK_EQ(weft_go(spinner, &spin_wg), 0);
    weft_wg_add(&wg, SLEEPERS);
    for (int i = 0; i < SLEEPERS; i++)
        CHECK_EQ(weft_go(caller_main, &c), 0);
    weft_wg_wait(&wg);
    int64_t took = weft_now() - t0;
    weft_wg_wait(&spin_wg);
    CHECK_EQ(atomic_load(&naps), SLEEPERS);
    CHECK(took < WEFT_MS(600) * test_scale());
    CHECK(atomic_load(&spins) > 0);
    printf("%d blocking calls of 100 ms took %lld ms\n", SLEEPERS,
           (long long)(took / 1000000));
}

/* fn uses the runtime from its helper thread. */
static void child(void *arg) {
    weft_sleep(WEFT_MS(1));
    weft_wg_done(arg);
}

static void uses_weft(void *arg) {
    weft_wg wg = {0};
    weft_wg_add(&wg, 10);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(weft_go(child, &wg), 0);
    weft_wg_wait(&wg);
    weft_sleep(WEFT_MS(1));
    *(int *)arg = 42;
}

/* fn sends on an unbuffered channel: it waits, as a plain thread, for the
 * receiving goroutine. */
static void send_42(void *arg) {
    int v = 42;
    CHECK_EQ(weft_send(arg, &v), 0);
}

struct recv_arg {
    weft_chan *c;
    weft_wg wg;
};

static void receiver(void *arg) {
    struct recv_arg *r = arg;
    int v = 0;
    CHECK_EQ(weft_recv(r->c, &v), 0);
    CHECK_EQ(v, 42);
    weft_wg_done(&r->wg);
}

static void blocking_from_goroutine(void *arg) {
    struct recv_arg r = {.c = weft_chan_make(sizeof(int), 0)};
    CHECK(r.c != NULL);
    weft_wg_add(&r.wg, 1);
    CHECK_EQ(weft_go(receiver, &r), 0);
    CHECK_EQ(weft_blocking(send_42, r.c), 0);
    weft_wg_wait(&r.wg);
    weft_chan_free(r.c);

    int v = 0;
    CHECK_EQ(weft_blocking(uses_weft, &v), 0);
    CHECK_EQ(v, 42);
    weft_wg_done(arg);
}

static void test_fn_calls_weft(void) {
    weft_wg wg = {0};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(blocking_from_goroutine, &wg), 0);
    weft_wg_wait(&wg);
}

static void *thread_main(void *arg) {
    int v = 0;
    CHECK_EQ(weft_blocking(uses_weft, &v), 0);
    CHECK_EQ(v, 42);
    atomic_fetch_add((atomic_int *)arg, 1);
    return NULL;
}

static void test_from_threads(void) {
    atomic_int done = 0;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, thread_main, &done), 0);
    int v = 0;
    CHECK_EQ(weft_blocking(uses_weft, &v), 0); /* main() too */
    CHECK_EQ(v, 42);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(atomic_load(&done), 4);
    CHECK_EQ(weft_blocking(NULL, NULL), -EINVAL);
}

/* More concurrent calls than the pool's upper bound still all complete. */
static void count(void *arg) {
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void many_caller(void *arg) {
    struct caller *c = arg;
    CHECK_EQ(weft_blocking(count, c->naps), 0);
    weft_wg_done(c->wg);
}

static void test_many(void) {
    atomic_int n = 0;
    weft_wg wg = {0};
    struct caller c = {&n, &wg};
    int calls = 200;
    weft_wg_add(&wg, calls);
    for (int i = 0; i < calls; i++)
        CHECK_EQ(weft_go(many_caller, &c), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&n), calls);
}

int main(void) {
    TEST_BEGIN(60);
    test_concurrent();
    test_fn_calls_weft();
    test_from_threads();
    test_many();
    TEST_OK();
    return 0;
}
