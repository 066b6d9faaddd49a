/* SPDX-License-Identifier: MIT */
/* Goroutines and the scheduler: spawning, ids, workers, migration, stacks,
 * 1,000,000 parked goroutines, shutdown and restart. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/syscall.h>

static weft_wg wg;
static atomic_long counter;

static void add_one(void *arg) {
    atomic_fetch_add(&counter, (long)(intptr_t)arg);
    weft_wg_done(&wg);
}

static void test_spawn_many(void) {
    int n = test_max_live(100000 / test_scale());
    atomic_store(&counter, 0);
    weft_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go(add_one, (void *)(intptr_t)1), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&counter), n);
}

static uint64_t ids[64];

static void record_id(void *arg) {
    ids[(intptr_t)arg] = weft_id();
    weft_wg_done(&wg);
}

static void test_ids(void) {
    CHECK_EQ(weft_id(), 0); /* main is a plain thread */
    weft_wg_add(&wg, 64);
    for (intptr_t i = 0; i < 64; i++)
        CHECK_EQ(weft_go(record_id, (void *)i), 0);
    weft_wg_wait(&wg);
    for (int i = 0; i < 64; i++) {
        CHECK(ids[i] > 0);
        for (int j = 0; j < i; j++)
            CHECK(ids[i] != ids[j]);
    }
}

static void test_bad_args(void) {
    CHECK_EQ(weft_go(NULL, NULL), -EINVAL);
    weft_config bad = {.procs = -1};
    CHECK_EQ(weft_init(&bad), -EINVAL);
    CHECK(weft_procs() >= 1); /* first use starts the runtime */
    CHECK_EQ(weft_init(NULL), -EALREADY);
    CHECK(strcmp(weft_version(), WEFT_VERSION) == 0);
    CHECK(weft_strerror(-ETIMEDOUT) != NULL);
    CHECK(weft_strerror(12345) != NULL);
    CHECK(strcmp(weft_strerror(EPIPE), weft_strerror(-EPIPE)) == 0);
}

/* Each goroutine spins until it has seen every worker thread busy at once:
 * proves goroutines really run in parallel on every worker. */
static atomic_int running_now, max_running;

static void busy(void *arg) {
    (void)arg;
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int m = atomic_load(&max_running);
    while (now > m && !atomic_compare_exchange_weak(&max_running, &m, now))
        ;
    int64_t end = weft_now() + WEFT_MS(200);
    while (atomic_load(&max_running) < weft_procs() && weft_now() < end)
        ;
    atomic_fetch_sub(&running_now, 1);
    weft_wg_done(&wg);
}

static void test_parallel(void) {
    int n = weft_procs() * 4;
    weft_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go(busy, NULL), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&max_running), weft_procs());
}

/* A goroutine that yields many times ends up on several threads; errno and
 * the goroutine's identity must stay right across every switch. */
static atomic_int migrated;

/* errno is thread-local: set and read it only in a function that makes no
 * weft call, as weft.h says. */
__attribute__((noinline)) static int errno_roundtrip(int v) {
    errno = v;
    return weft_errno();
}

static void wanderer(void *arg) {
    (void)arg;
    /* gettid, not pthread_self: glibc declares pthread_self const, so the
     * compiler may reuse its value across a switch (the TLS trap) */
    long first = syscall(SYS_gettid);
    uint64_t me = weft_id();
    bool moved = false;
    /* at least the given rounds; then on until some goroutine has moved
     * (bounded: how soon a move happens depends on the machine's load) */
    int64_t end = weft_now() + WEFT_SEC(20);
    for (int i = 0; i < 20000 / test_scale() ||
                    (!atomic_load(&migrated) && !moved && weft_now() < end);
         i++) {
        if (i % 64 == 0)
            weft_sleep(WEFT_US(20)); /* woken by whichever worker runs timers */
        else
            weft_yield();
        CHECK_EQ(weft_id(), me);
        CHECK_EQ(errno_roundtrip(EDOM + i % 2), EDOM + i % 2);
        if (syscall(SYS_gettid) != first)
            moved = true;
    }
    if (moved)
        atomic_fetch_add(&migrated, 1);
    weft_wg_done(&wg);
}

static void test_migration(void) {
    int n = 16;
    weft_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go(wanderer, NULL), 0);
    weft_wg_wait(&wg);
    if (weft_procs() > 1)
        CHECK(atomic_load(&migrated) > 0);
}

/* Goroutines woken by a hand-off stay on their waker's worker (no wake-up
 * is sent for them: one in runnext, the ones it displaced in the ring).
 * They must still run while their waker keeps that worker busy without a
 * switch point: the poller's look rescues them.  Loose bound: long before
 * the waker's 2 s of spinning end. */
#define WOKEN 3
static atomic_int woken;

static void sleeper_on_chan(void *arg) {
    weft_chan *c = arg;
    int v;
    CHECK_EQ(weft_recv(c, &v), 0);
    atomic_fetch_add(&woken, 1);
    weft_wg_done(&wg);
}

static void busy_waker(void *arg) {
    weft_chan **c = arg;
    weft_sleep(WEFT_MS(20)); /* let the receivers block */
    int v = 1;
    for (int i = 0; i < WOKEN; i++)
        CHECK_EQ(weft_send(c[i], &v), 0);
    int64_t t0 = weft_now();
    while (atomic_load(&woken) < WOKEN && weft_now() - t0 < WEFT_SEC(2))
        ; /* keep this worker busy without a switch point */
    CHECK_EQ(atomic_load(&woken), WOKEN);
    weft_wg_done(&wg);
}

static void test_woken_not_starved(void) {
    if (weft_procs() < 2)
        return;
    weft_chan *c[WOKEN];
    weft_wg_add(&wg, WOKEN + 1);
    for (int i = 0; i < WOKEN; i++) {
        CHECK((c[i] = weft_chan_make(sizeof(int), 0)) != NULL);
        CHECK_EQ(weft_go(sleeper_on_chan, c[i]), 0);
    }
    CHECK_EQ(weft_go(busy_waker, c), 0);
    weft_wg_wait(&wg);
    for (int i = 0; i < WOKEN; i++)
        weft_chan_free(c[i]);
}

/* Deep recursion on a big requested stack: each level keeps a 256-byte
 * frame alive across its call (a pad read after it), so the compiler cannot
 * turn the recursion into a loop.  Returns n. */
static long deep(long n) {
    volatile char pad[256];
    pad[n % 256] = 1;
    if (n == 0)
        return 0;
    long r = deep(n - 1);
    return r + pad[n % 256];
}

static long deep_result;

static void recurse(void *arg) {
    deep_result = deep((long)(intptr_t)arg);
    weft_wg_done(&wg);
}

static void test_big_stack(void) {
    weft_goopts o = {.stack_size = 16u << 20, .name = "deep"};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go_with(recurse, (void *)(intptr_t)30000, &o), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(deep_result, 30000);
}

/* 1,000,000 goroutines parked at once on one WaitGroup, then released. */
static weft_wg gate, parked;

static void park_on_gate(void *arg) {
    (void)arg;
    weft_wg_done(&parked);
    weft_wg_wait(&gate);
    weft_wg_done(&wg);
}

static void test_million(void) {
    int n = test_max_live(1000000 / test_scale());
    weft_wg_add(&gate, 1);
    weft_wg_add(&parked, n);
    weft_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go(park_on_gate, NULL), 0);
    weft_wg_wait(&parked);
    CHECK(weft_goroutines() >= (size_t)n);
    weft_wg_done(&gate);
    weft_wg_wait(&wg);
}

static void test_sleep(void) {
    int64_t t0 = weft_now();
    CHECK_EQ(weft_sleep(WEFT_MS(20)), 0);
    int64_t dt = weft_now() - t0;
    CHECK(dt >= WEFT_MS(20));
    CHECK(dt < WEFT_SEC(5));
    CHECK_EQ(weft_sleep(0), 0);
    CHECK_EQ(weft_sleep(-5), 0);
}

static void nothing(void *arg) {
    (void)arg;
    weft_wg_done(&wg);
}

static void test_shutdown_restart(void) {
    CHECK_EQ(weft_shutdown(), 0);
    weft_config cfg = {.procs = 3};
    CHECK_EQ(weft_init(&cfg), 0);
    CHECK_EQ(weft_procs(), 3);
    weft_wg_add(&wg, 10);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(weft_go(nothing, NULL), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(weft_shutdown(), 0);
}

/* A goroutine that exits hands its stack to the next new goroutine when
 * that one asks for the same size (g_exit): a burst mixing sizes must
 * still give each goroutine the stack it asked for (a default stack is
 * too small for deep(3000)), and a recycled g must not keep the name of
 * the goroutine that used it before. */
enum { HANDOFF = 200, HANDOFF_DEEP = 3000 };
static atomic_long handoff_sum;
static weft_chan *handoff_gate;

static void handoff_deep(void *arg) {
    atomic_fetch_add(&handoff_sum, deep((long)(intptr_t)arg));
    weft_wg_done(&wg);
}

static void handoff_burst(void *arg) {
    (void)arg;
    weft_goopts big = {.stack_size = 4u << 20, .name = "handoff-big"};
    for (int i = 0; i < HANDOFF; i++) {
        if (i % 2)
            CHECK_EQ(weft_go_with(handoff_deep, (void *)(intptr_t)HANDOFF_DEEP,
                                  &big),
                     0);
        else
            CHECK_EQ(weft_go(handoff_deep, (void *)(intptr_t)10), 0);
    }
    weft_wg_done(&wg);
}

static void handoff_wait(void *arg) {
    (void)arg;
    weft_wg_done(&wg);
    CHECK_EQ(weft_recv(handoff_gate, NULL), -EPIPE);
    weft_wg_done(&wg);
}

/* Spawned from a goroutine, the waiters get the g structs its worker freed
 * last: those of the burst, named ones among them. */
enum { WAITERS = 64 };
static void handoff_spawn_waiters(void *arg) {
    (void)arg;
    for (int i = 0; i < WAITERS; i++)
        CHECK_EQ(weft_go(handoff_wait, NULL), 0);
}

static void test_exit_handoff(void) {
    atomic_store(&handoff_sum, 0);
    weft_wg_add(&wg, HANDOFF + 1);
    CHECK_EQ(weft_go(handoff_burst, NULL), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&handoff_sum), HANDOFF / 2 * (HANDOFF_DEEP + 10));

    CHECK((handoff_gate = weft_chan_make(0, 0)) != NULL);
    weft_wg_add(&wg, WAITERS);
    CHECK_EQ(weft_go(handoff_spawn_waiters, NULL), 0);
    weft_wg_wait(&wg);
    /* until every waiter has parked (it counts itself just before); the
     * burst's goroutines may still be exiting, under their names, but no
     * waiter may show one */
    for (;;) {
        char *dump = test_dump();
        CHECK_EQ(test_count(dump, "[waiting] handoff-big"), 0);
        if (test_count(dump, "[waiting] -: chan receive") == WAITERS)
            break;
        weft_sleep(WEFT_MS(1));
    }
    weft_wg_add(&wg, WAITERS);
    CHECK_EQ(weft_close(handoff_gate), 0);
    weft_wg_wait(&wg);
    weft_chan_free(handoff_gate);
}

int main(void) {
    /* a million goroutines take tens of CPU seconds: a loaded machine
     * (CMakeLists.txt gives ctest's bound the same room) */
    TEST_BEGIN(120 * test_load_factor());
    test_bad_args();
    test_spawn_many();
    test_ids();
    test_parallel();
    test_migration();
    test_woken_not_starved();
    test_big_stack();
    test_exit_handoff();
    test_sleep();
    test_million();
    test_shutdown_restart();
    TEST_OK();
    return 0;
}
