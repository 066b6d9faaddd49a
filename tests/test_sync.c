/* SPDX-License-Identifier: MIT */
/* Sync primitives from goroutines on every worker and from plain threads:
 * mutex, rwmutex, WaitGroup, Once, Cond, and the fatal misuse reports. */
#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

static weft_wg wg;

/* ---- mutex: a plain counter protected by it, goroutines + threads ---- */
static weft_mutex mu;
static long plain_counter;
static int iters;

static void bump(void) {
    for (int i = 0; i < iters; i++) {
        weft_mutex_lock(&mu);
        plain_counter++;
        if (i % 97 == 0)
            weft_yield(); /* hold it across a switch now and then */
        weft_mutex_unlock(&mu);
    }
}

static void bump_g(void *arg) {
    (void)arg;
    bump();
    weft_wg_done(&wg);
}

static void *bump_t(void *arg) {
    (void)arg;
    bump();
    return NULL;
}

static void test_mutex(void) {
    iters = 20000 / test_scale();
    int ng = 16, nt = 3;
    pthread_t th[3];
    weft_wg_add(&wg, ng);
    for (int i = 0; i < ng; i++)
        CHECK_EQ(weft_go(bump_g, NULL), 0);
    for (int i = 0; i < nt; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, bump_t, NULL), 0);
    weft_wg_wait(&wg);
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(plain_counter, (long)(ng + nt) * iters);
    CHECK_EQ(weft_mutex_trylock(&mu), 0);
    CHECK_EQ(weft_mutex_trylock(&mu), -EBUSY);
    weft_mutex_unlock(&mu);
}

/* A mutex freed right after its last unlock (the C pattern): heap-allocated,
 * handed between two parties, freed by whoever unlocks last. */
static void handoff(void *arg) {
    weft_mutex *m = arg;
    weft_mutex_lock(m);
    weft_mutex_unlock(m);
    free(m);
    weft_wg_done(&wg);
}

static void test_mutex_free_after_unlock(void) {
    for (int i = 0; i < 2000 / test_scale(); i++) {
        weft_mutex *m = calloc(1, sizeof *m);
        weft_mutex_lock(m);
        weft_wg_add(&wg, 1);
        CHECK_EQ(weft_go(handoff, m), 0);
        weft_yield();
        weft_mutex_unlock(m); /* m may be gone as soon as this returns */
        weft_wg_wait(&wg);
    }
}

/* Starvation: hogs re-take the mutex in a tight loop; a newcomer must
 * still get it (hand-off mode), within a very loose bound. */
static weft_mutex hogged;
static atomic_bool stop_hogs;

static void hog(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_hogs)) {
        weft_mutex_lock(&hogged);
        for (volatile int i = 0; i < 200; i++)
            ;
        weft_mutex_unlock(&hogged);
    }
    weft_wg_done(&wg);
}

static void test_mutex_no_starvation(void) {
    int hogs = 4;
    weft_wg_add(&wg, hogs);
    for (int i = 0; i < hogs; i++)
        CHECK_EQ(weft_go(hog, NULL), 0);
    weft_sleep(WEFT_MS(20));
    for (int i = 0; i < 20; i++) {
        int64_t t0 = weft_now();
        weft_mutex_lock(&hogged);
        weft_mutex_unlock(&hogged);
        CHECK(weft_now() - t0 < WEFT_SEC(2));
    }
    atomic_store(&stop_hogs, true);
    weft_wg_wait(&wg);
}

/* ---- WaitGroup: 10,000 goroutines; freed right after wait ---- */
static atomic_int done_count;

static void wg_worker(void *arg) {
    atomic_fetch_add(&done_count, 1);
    weft_wg_done(arg);
}

static void test_wg(void) {
    int n = test_max_live(10000);
    weft_wg *w = calloc(1, sizeof *w);
    weft_wg_add(w, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go(wg_worker, w), 0);
    weft_wg_wait(w);
    CHECK_EQ(atomic_load(&done_count), n);
    free(w); /* the last done may still be returning: must be fine */
    weft_wg zero = {0};
    weft_wg_wait(&zero); /* counter 0: returns at once */
}

/* ---- Once under contention ---- */
static weft_once once;
static atomic_int once_runs, once_seen;

static void init_once(void *arg) {
    (void)arg;
    weft_sleep(WEFT_MS(5)); /* others must wait for this, not skip it */
    atomic_fetch_add(&once_runs, 1);
}

static void once_g(void *arg) {
    (void)arg;
    weft_once_do(&once, init_once, NULL);
    if (atomic_load(&once_runs) == 1)
        atomic_fetch_add(&once_seen, 1);
    weft_wg_done(&wg);
}

static void test_once(void) {
    int n = 100;
    weft_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go(once_g, NULL), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&once_runs), 1);
    CHECK_EQ(atomic_load(&once_seen), n);
}

/* ---- rwmutex: readers overlap, writers exclude ---- */
static weft_rwmutex rw;
static atomic_int readers_in, writers_in, max_readers, violations;

static void reader(void *arg) {
    (void)arg;
    for (int i = 0; i < 200; i++) {
        weft_rwmutex_rlock(&rw);
        int r = atomic_fetch_add(&readers_in, 1) + 1;
        if (atomic_load(&writers_in))
            atomic_fetch_add(&violations, 1);
        int m = atomic_load(&max_readers);
        while (r > m && !atomic_compare_exchange_weak(&max_readers, &m, r))
            ;
        weft_sleep(WEFT_US(50));
        atomic_fetch_sub(&readers_in, 1);
        weft_rwmutex_runlock(&rw);
    }
    weft_wg_done(&wg);
}

static void writer(void *arg) {
    (void)arg;
    for (int i = 0; i < 50; i++) {
        weft_rwmutex_lock(&rw);
        if (atomic_fetch_add(&writers_in, 1) != 0 || atomic_load(&readers_in))
            atomic_fetch_add(&violations, 1);
        weft_yield();
        atomic_fetch_sub(&writers_in, 1);
        weft_rwmutex_unlock(&rw);
    }
    weft_wg_done(&wg);
}

static void test_rwmutex(void) {
    weft_wg_add(&wg, 10);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(weft_go(reader, NULL), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(weft_go(writer, NULL), 0);
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&violations), 0);
    CHECK(atomic_load(&max_readers) > 1);
}

/* A waiting writer blocks new readers. */
static atomic_int stage;

static void late_reader(void *arg) {
    (void)arg;
    weft_rwmutex_rlock(&rw);
    CHECK_EQ(atomic_load(&stage), 2); /* only after the writer finished */
    weft_rwmutex_runlock(&rw);
    weft_wg_done(&wg);
}

static void waiting_writer(void *arg) {
    (void)arg;
    weft_rwmutex_lock(&rw);
    atomic_store(&stage, 2);
    weft_rwmutex_unlock(&rw);
    weft_wg_done(&wg);
}

static void test_writer_preference(void) {
    weft_rwmutex_rlock(&rw); /* main holds a read lock */
    weft_wg_add(&wg, 2);
    CHECK_EQ(weft_go(waiting_writer, NULL), 0);
    weft_sleep(WEFT_MS(20)); /* let the writer queue */
    CHECK_EQ(weft_go(late_reader, NULL), 0);
    weft_sleep(WEFT_MS(20)); /* the reader must be queued behind it */
    atomic_store(&stage, 1);
    weft_rwmutex_runlock(&rw);
    weft_wg_wait(&wg);
}

/* ---- Cond: signal wakes one, broadcast wakes all ---- */
static weft_mutex cmu;
static weft_cond cv;
static int tickets, woken;

static void cond_waiter(void *arg) {
    (void)arg;
    weft_mutex_lock(&cmu);
    while (tickets == 0)
        weft_cond_wait(&cv, &cmu);
    tickets--;
    woken++;
    weft_mutex_unlock(&cmu);
    weft_wg_done(&wg);
}

static int waiting_now(void) {
    weft_mutex_lock(&cmu);
    int w = woken;
    weft_mutex_unlock(&cmu);
    return w;
}

static void test_cond(void) {
    int n = 8;
    weft_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go(cond_waiter, NULL), 0);
    weft_sleep(WEFT_MS(20));
    weft_mutex_lock(&cmu);
    tickets = 1;
    weft_cond_signal(&cv);
    weft_mutex_unlock(&cmu);
    while (waiting_now() < 1)
        weft_sleep(WEFT_MS(1));
    weft_sleep(WEFT_MS(20));
    CHECK_EQ(waiting_now(), 1); /* one signal, one waiter */
    weft_mutex_lock(&cmu);
    tickets = n - 1;
    weft_cond_broadcast(&cv);
    weft_mutex_unlock(&cmu);
    weft_wg_wait(&wg);
    CHECK_EQ(woken, n);
    weft_cond_signal(&cv); /* no waiters: nothing happens */
}

/* ---- misuse is fatal with a clear message ---- */
static void expect_fatal(void (*fn)(void), const char *what) {
    int pipefd[2];
    CHECK_EQ(pipe(pipefd), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        fn();
        _exit(0);
    }
    close(pipefd[1]);
    char buf[512] = {0};
    size_t got = 0;
    ssize_t r;
    while ((r = read(pipefd[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(pipefd[0]);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(buf, "weft: fatal: ") != NULL);
    CHECK(strstr(buf, what) != NULL);
}

static void bad_unlock(void) {
    weft_mutex m = {0};
    weft_mutex_unlock(&m);
}

static void bad_wg(void) {
    weft_wg w = {0};
    weft_wg_done(&w);
}

static void bad_runlock(void) {
    weft_rwmutex m = {0};
    weft_rwmutex_runlock(&m);
}

int main(void) {
    TEST_BEGIN(120);
    test_mutex();
    test_mutex_free_after_unlock();
    test_mutex_no_starvation();
    test_wg();
    test_once();
    test_rwmutex();
    test_writer_preference();
    test_cond();
    expect_fatal(bad_unlock, "unlocked mutex");
    expect_fatal(bad_wg, "negative WaitGroup counter");
    expect_fatal(bad_runlock, "unlocked rwmutex");
    TEST_OK();
    return 0;
}
