/* SPDX-License-Identifier: MIT */
/*
 * Groups: success, first failure wins and cancels the siblings, the limit
 * holds, try_go, wait outlasts every task, use from goroutines and threads.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

static int count_task(weft_ctx *ctx, void *arg) {
    (void)ctx;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static void test_all_succeed(void) {
    atomic_int n = 0;
    weft_group *g = weft_group_make(NULL);
    CHECK(g != NULL);
    CHECK_EQ(weft_ctx_err(weft_group_ctx(g)), 0);
    for (int i = 0; i < 50; i++)
        CHECK_EQ(weft_group_go(g, count_task, &n), 0);
    CHECK_EQ(weft_group_wait(g), 0);
    CHECK_EQ(atomic_load(&n), 50);

    g = weft_group_make(NULL); /* an empty group */
    CHECK_EQ(weft_group_wait(g), 0);
}

static void test_null(void) {
    atomic_int n = 0;
    CHECK_EQ(weft_group_go(NULL, count_task, &n), -EINVAL);
    CHECK_EQ(weft_group_try_go(NULL, count_task, &n), -EINVAL);
    CHECK_EQ(weft_group_wait(NULL), -EINVAL);
    errno = 0;
    CHECK(weft_group_ctx(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    weft_group_limit(NULL, 3);
    weft_group *g = weft_group_make(NULL);
    CHECK_EQ(weft_group_go(g, NULL, NULL), -EINVAL);
    CHECK_EQ(weft_group_wait(g), 0);
    CHECK_EQ(atomic_load(&n), 0);
}

/* ---- first failure ------------------------------------------------------- */

typedef struct failer {
    int64_t after;
    int code;
} failer;

static int fail_task(weft_ctx *ctx, void *arg) {
    failer *f = arg;
    (void)ctx;
    weft_sleep(f->after);
    return f->code;
}

static atomic_int stopped;

static int sibling_task(weft_ctx *ctx, void *arg) {
    (void)arg;
    CHECK_EQ(weft_recv(weft_ctx_done(ctx), NULL), -EPIPE);
    CHECK_EQ(weft_ctx_err(ctx), -ECANCELED);
    atomic_fetch_add(&stopped, 1);
    return weft_ctx_err(ctx); /* a later failure: must not win */
}

static void test_first_error(void) {
    failer f[] = {
        {WEFT_MS(400), -ENOENT}, {WEFT_MS(10), -EIO}, {WEFT_MS(800), -EPERM}};
    atomic_store(&stopped, 0);
    weft_group *g = weft_group_make(NULL);
    weft_ctx *watch = weft_ctx_with_cancel(weft_group_ctx(g));
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_group_go(g, sibling_task, NULL), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_group_go(g, fail_task, &f[i]), 0);
    CHECK_EQ(weft_recv(weft_ctx_done(watch), NULL), -EPIPE);
    CHECK_EQ(weft_ctx_err(watch), -ECANCELED);
    CHECK_EQ(weft_group_wait(g), -EIO);
    CHECK_EQ(atomic_load(&stopped), 4);
    weft_ctx_free(watch);
}

/* wait cancels the group's context even when everything succeeded */
static void test_wait_cancels(void) {
    weft_group *g = weft_group_make(NULL);
    weft_ctx *watch = weft_ctx_with_cancel(weft_group_ctx(g));
    atomic_int n = 0;
    CHECK_EQ(weft_group_go(g, count_task, &n), 0);
    CHECK_EQ(weft_group_wait(g), 0);
    CHECK_EQ(weft_ctx_err(watch), -ECANCELED);
    weft_ctx_free(watch);
}

/* a cancelled parent reaches the tasks */
static void test_parent_cancel(void) {
    weft_ctx *parent = weft_ctx_with_cancel(weft_ctx_background());
    weft_group *g = weft_group_make(parent);
    atomic_store(&stopped, 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_group_go(g, sibling_task, NULL), 0);
    weft_ctx_cancel(parent);
    CHECK_EQ(weft_group_wait(g), -ECANCELED);
    CHECK_EQ(atomic_load(&stopped), 3);
    weft_ctx_free(parent);
}

/* ---- the limit ----------------------------------------------------------- */

static atomic_int running, max_running, finished;

static int limited_task(weft_ctx *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    int now = atomic_fetch_add(&running, 1) + 1;
    int m = atomic_load(&max_running);
    while (now > m && !atomic_compare_exchange_weak(&max_running, &m, now))
        ;
    for (int i = 0; i < 3; i++)
        weft_yield();
    weft_sleep(WEFT_US(200));
    atomic_fetch_sub(&running, 1);
    atomic_fetch_add(&finished, 1);
    return 0;
}

static void run_limited(void) {
    atomic_store(&running, 0);
    atomic_store(&max_running, 0);
    atomic_store(&finished, 0);
    weft_group *g = weft_group_make(NULL);
    weft_group_limit(g, 3);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(weft_group_go(g, limited_task, NULL), 0);
    CHECK_EQ(weft_group_wait(g), 0);
    CHECK_EQ(atomic_load(&finished), 100);
    CHECK(atomic_load(&max_running) >= 1);
    CHECK(atomic_load(&max_running) <= 3);
}

static int gated_task(weft_ctx *ctx, void *arg) {
    (void)ctx;
    CHECK_EQ(weft_recv(weft_ctx_done(arg), NULL), -EPIPE);
    return 0;
}

typedef struct starter {
    weft_group *g;
    weft_ctx *gate;
    atomic_int started;
    weft_wg wg;
} starter;

static void blocked_starter(void *arg) {
    starter *s = arg;
    CHECK_EQ(weft_group_go(s->g, gated_task, s->gate), 0);
    atomic_store(&s->started, 1);
    weft_wg_done(&s->wg);
}

static void test_try_go(void) {
    starter s = {.g = weft_group_make(NULL),
                 .gate = weft_ctx_with_cancel(weft_ctx_background())};
    weft_group_limit(s.g, 2);
    CHECK_EQ(weft_group_try_go(s.g, gated_task, s.gate), 0);
    CHECK_EQ(weft_group_try_go(s.g, gated_task, s.gate), 0);
    CHECK_EQ(weft_group_try_go(s.g, gated_task, s.gate), -EAGAIN);
    weft_group_limit(s.g, 3); /* one more slot */
    CHECK_EQ(weft_group_try_go(s.g, gated_task, s.gate), 0);
    CHECK_EQ(weft_group_try_go(s.g, gated_task, s.gate), -EAGAIN);

    /* weft_group_go waits while every slot is taken */
    weft_wg_add(&s.wg, 1);
    CHECK_EQ(weft_go(blocked_starter, &s), 0);
    weft_sleep(WEFT_MS(20));
    CHECK_EQ(atomic_load(&s.started), 0);
    weft_ctx_cancel(s.gate); /* the tasks end, slots free up */
    weft_wg_wait(&s.wg);
    CHECK_EQ(atomic_load(&s.started), 1);
    CHECK_EQ(weft_group_wait(s.g), 0);
    weft_ctx_free(s.gate);
}

/* ---- wait outlasts every task -------------------------------------------- */

enum { FLAGS = 200 };
static atomic_int flags[FLAGS];

static int flag_task(weft_ctx *ctx, void *arg) {
    (void)ctx;
    int i = (int)(intptr_t)arg;
    weft_sleep(WEFT_US((i * 37) % 3000));
    atomic_store(&flags[i], 1);
    return 0;
}

static void test_wait_all(void) {
    for (int i = 0; i < FLAGS; i++)
        atomic_store(&flags[i], 0);
    weft_group *g = weft_group_make(NULL);
    for (int i = 0; i < FLAGS; i++)
        CHECK_EQ(weft_group_go(g, flag_task, (void *)(intptr_t)i), 0);
    CHECK_EQ(weft_group_wait(g), 0);
    for (int i = 0; i < FLAGS; i++)
        CHECK_EQ(atomic_load(&flags[i]), 1);
}

/* ---- from a goroutine, a plain thread, and nested ------------------------ */

static int nested_task(weft_ctx *ctx, void *arg) {
    weft_group *g = weft_group_make(ctx);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_group_go(g, count_task, arg), 0);
    return weft_group_wait(g);
}

static void scenarios(void) {
    test_all_succeed();
    run_limited();
    atomic_int n = 0;
    weft_group *g = weft_group_make(NULL);
    weft_group_limit(g, 2);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_group_go(g, nested_task, &n), 0);
    CHECK_EQ(weft_group_wait(g), 0);
    CHECK_EQ(atomic_load(&n), 20);
}

static void scenarios_g(void *arg) {
    scenarios();
    weft_wg_done(arg);
}

static void *scenarios_t(void *arg) {
    (void)arg;
    scenarios();
    return NULL;
}

static void test_contexts_of_use(void) {
    weft_wg wg = {0};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(scenarios_g, &wg), 0);
    weft_wg_wait(&wg);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, scenarios_t, NULL), 0);
    pthread_join(t, NULL);
}

int main(void) {
    TEST_BEGIN(60);
    test_null();
    test_all_succeed();
    test_first_error();
    test_wait_cancels();
    test_parent_cancel();
    run_limited();
    test_try_go();
    test_wait_all();
    test_contexts_of_use();
    TEST_OK();
    return 0;
}
