/* SPDX-License-Identifier: MIT */
/*
 * Contexts: background, cancellation and its propagation, deadlines,
 * values, lifetimes (children outliving parents), concurrent cancellation
 * from goroutines and threads, and the canonical stop-a-worker loop.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* done is closed: a receive fails with -EPIPE at once */
static bool is_done(weft_ctx *c) {
    return weft_try_recv(weft_ctx_done(c), NULL) == -EPIPE;
}

static void check_open(weft_ctx *c) {
    CHECK_EQ(weft_ctx_err(c), 0);
    CHECK_EQ(weft_try_recv(weft_ctx_done(c), NULL), -EAGAIN);
}

static void check_cancelled(weft_ctx *c, int err) {
    CHECK_EQ(weft_ctx_err(c), err);
    CHECK(is_done(c));
}

static void test_background(void) {
    weft_ctx *bg = weft_ctx_background();
    CHECK(bg != NULL);
    CHECK(bg == weft_ctx_background());
    CHECK(weft_ctx_done(bg) == NULL);
    CHECK_EQ(weft_ctx_err(bg), 0);
    CHECK(weft_ctx_value(bg, "k") == NULL);
    weft_ctx_cancel(bg);
    weft_ctx_free(bg);
    CHECK_EQ(weft_ctx_err(bg), 0);
    CHECK(weft_ctx_done(bg) == NULL);
}

static void test_null(void) {
    errno = 0;
    CHECK(weft_ctx_with_cancel(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(weft_ctx_with_deadline(NULL, weft_now()) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(weft_ctx_with_timeout(NULL, WEFT_MS(1)) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(weft_ctx_with_value(NULL, "k", NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    weft_ctx_free(NULL);
    weft_ctx_cancel(NULL);
    CHECK(weft_ctx_done(NULL) == NULL);
    CHECK(weft_ctx_value(NULL, "k") == NULL);
}

/* ---- cancel wakes waiters ------------------------------------------------ */

typedef struct waiter {
    weft_ctx *ctx;
    weft_wg *wg;
    atomic_int woke;
} waiter;

static void recv_waiter(void *arg) {
    waiter *w = arg;
    CHECK_EQ(weft_recv(weft_ctx_done(w->ctx), NULL), -EPIPE);
    CHECK_EQ(weft_ctx_err(w->ctx), -ECANCELED);
    atomic_fetch_add(&w->woke, 1);
    weft_wg_done(w->wg);
}

static void select_waiter(void *arg) {
    waiter *w = arg;
    weft_case cases[2] = {
        {.chan = NULL, .op = WEFT_RECV},
        {.chan = weft_ctx_done(w->ctx), .op = WEFT_RECV},
    };
    CHECK_EQ(weft_select(cases, 2, WEFT_FOREVER), 1);
    CHECK_EQ(cases[1].err, -EPIPE);
    atomic_fetch_add(&w->woke, 1);
    weft_wg_done(w->wg);
}

static void *thread_waiter(void *arg) {
    recv_waiter(arg);
    return NULL;
}

static void test_cancel_wakes(void) {
    weft_wg wg = {0};
    waiter w = {.ctx = weft_ctx_with_cancel(weft_ctx_background()), .wg = &wg};
    CHECK(w.ctx != NULL);
    check_open(w.ctx);
    weft_wg_add(&wg, 5);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(weft_go(recv_waiter, &w), 0);
        CHECK_EQ(weft_go(select_waiter, &w), 0);
    }
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_waiter, &w), 0);
    weft_sleep(WEFT_MS(20)); /* let them block (they pass either way) */
    CHECK_EQ(atomic_load(&w.woke), 0);
    weft_ctx_cancel(w.ctx);
    weft_wg_wait(&wg);
    pthread_join(t, NULL);
    CHECK_EQ(atomic_load(&w.woke), 5);
    check_cancelled(w.ctx, -ECANCELED);
    weft_ctx_cancel(w.ctx); /* idempotent */
    check_cancelled(w.ctx, -ECANCELED);
    weft_ctx_free(w.ctx);
}

/* ---- propagation --------------------------------------------------------- */

static void test_tree(void) {
    weft_ctx *bg = weft_ctx_background();
    weft_ctx *root = weft_ctx_with_cancel(bg);
    weft_ctx *a = weft_ctx_with_cancel(root);
    weft_ctx *b = weft_ctx_with_cancel(root);
    weft_ctx *a1 = weft_ctx_with_cancel(a);
    weft_ctx *av = weft_ctx_with_value(a, "k", NULL);
    weft_ctx *av1 = weft_ctx_with_timeout(av, WEFT_SEC(3600));
    weft_ctx *b1 = weft_ctx_with_deadline(b, weft_now() + WEFT_SEC(3600));
    weft_ctx *all[] = {root, a, b, a1, av, av1, b1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(all[i] != NULL);
        check_open(all[i]);
    }
    weft_ctx_cancel(a1); /* a leaf: nothing else moves */
    check_cancelled(a1, -ECANCELED);
    check_open(a);

    weft_ctx_cancel(a);
    check_cancelled(a, -ECANCELED);
    check_cancelled(av, -ECANCELED);
    check_cancelled(av1, -ECANCELED);
    check_open(root);
    check_open(b);
    check_open(b1);

    weft_ctx_cancel(av); /* no-op on a value context */
    weft_ctx_cancel(root);
    check_cancelled(root, -ECANCELED);
    check_cancelled(b, -ECANCELED);
    check_cancelled(b1, -ECANCELED);

    /* a child of a cancelled parent starts cancelled */
    weft_ctx *late = weft_ctx_with_timeout(av1, WEFT_SEC(3600));
    check_cancelled(late, -ECANCELED);
    weft_ctx_free(late);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        weft_ctx_free(all[i]);
}

/* a chain far deeper than any recursion would survive on a small stack */
typedef struct chain {
    weft_ctx **c;
    int n;
    weft_wg *wg;
} chain;

static void deep_chain(void *arg) {
    chain *ch = arg;
    weft_ctx *root = weft_ctx_with_cancel(weft_ctx_background());
    weft_ctx *p = root;
    for (int i = 0; i < ch->n; i++) {
        ch->c[i] = i % 3 == 1 ? weft_ctx_with_value(p, ch, NULL)
                              : weft_ctx_with_cancel(p);
        CHECK(ch->c[i] != NULL);
        p = ch->c[i];
    }
    check_open(p);
    weft_ctx_cancel(root);
    check_cancelled(p, -ECANCELED);
    weft_ctx_free(root);
    for (int i = 0; i < ch->n; i += 2) /* free out of order */
        weft_ctx_free(ch->c[i]);
    CHECK(weft_ctx_value(p, ch) == NULL);
    for (int i = 1; i < ch->n; i += 2)
        weft_ctx_free(ch->c[i]);
    weft_wg_done(ch->wg);
}

static void test_deep_chain(void) {
    weft_wg wg = {0};
    chain ch = {.n = 20000 / test_scale(), .wg = &wg};
    ch.c = calloc((size_t)ch.n, sizeof *ch.c);
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(deep_chain, &ch), 0); /* on a goroutine's stack */
    weft_wg_wait(&wg);
    free(ch.c);
}

/* ---- deadlines ----------------------------------------------------------- */

static void test_deadline(void) {
    weft_ctx *bg = weft_ctx_background();
    int64_t t0 = weft_now();
    weft_ctx *p = weft_ctx_with_timeout(bg, WEFT_MS(50));
    weft_ctx *child = weft_ctx_with_cancel(p);
    weft_ctx *val = weft_ctx_with_value(p, "k", NULL);
    weft_ctx *later = weft_ctx_with_timeout(p, WEFT_SEC(3600));
    weft_ctx *forever = weft_ctx_with_timeout(bg, WEFT_FOREVER);
    weft_ctx *never = weft_ctx_with_deadline(bg, WEFT_FOREVER);
    CHECK(p && child && val && later && forever && never);
    check_open(p);
    CHECK_EQ(weft_recv(weft_ctx_done(p), NULL), -EPIPE);
    int64_t took = weft_now() - t0;
    CHECK(took >= WEFT_MS(45));
    CHECK(took < WEFT_SEC(10));
    check_cancelled(p, -ETIMEDOUT);
    CHECK_EQ(weft_recv(weft_ctx_done(child), NULL), -EPIPE);
    check_cancelled(child, -ETIMEDOUT);
    check_cancelled(val, -ETIMEDOUT);
    CHECK_EQ(weft_recv(weft_ctx_done(later), NULL), -EPIPE);
    check_cancelled(later, -ETIMEDOUT);
    weft_ctx_cancel(p); /* the first reason stays */
    check_cancelled(p, -ETIMEDOUT);

    weft_ctx *after = weft_ctx_with_cancel(val); /* parent timed out already */
    check_cancelled(after, -ETIMEDOUT);

    weft_ctx *past = weft_ctx_with_deadline(bg, weft_now() - WEFT_MS(1));
    check_cancelled(past, -ETIMEDOUT);
    weft_ctx *zero = weft_ctx_with_timeout(bg, 0);
    check_cancelled(zero, -ETIMEDOUT);
    weft_ctx *neg = weft_ctx_with_deadline(bg, -5);
    check_cancelled(neg, -ETIMEDOUT);
    check_open(forever);
    check_open(never);

    weft_ctx *all[] = {p,     child, val,  later, forever,
                       never, after, past, zero,  neg};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        weft_ctx_free(all[i]);
}

/* timers firing while their contexts are freed and their parents cancelled */
static void test_deadline_races(void) {
    int rounds = 200 / test_scale();
    for (int r = 0; r < rounds; r++) {
        weft_ctx *root = weft_ctx_with_cancel(weft_ctx_background());
        weft_ctx *c[8];
        for (int i = 0; i < 8; i++)
            c[i] = weft_ctx_with_timeout(i < 4 ? root : c[i - 4],
                                         WEFT_US(10 * i + r % 7));
        weft_sleep(WEFT_US(r % 50));
        if (r % 2)
            weft_ctx_cancel(root);
        for (int i = 7; i >= 0; i--)
            if ((i + r) % 3)
                weft_ctx_free(c[i]);
        weft_ctx_free(root);
        for (int i = 0; i < 8; i++)
            if (!((i + r) % 3)) {
                CHECK(is_done(c[i]));
                weft_ctx_free(c[i]);
            }
    }
}

/* ---- values -------------------------------------------------------------- */

static void test_values(void) {
    static const char k1[] = "key", k2[] = "key", k3[] = "other";
    int v1, v2, v3;
    weft_ctx *bg = weft_ctx_background();
    weft_ctx *a = weft_ctx_with_value(bg, k1, &v1);
    weft_ctx *b = weft_ctx_with_cancel(a);
    weft_ctx *c = weft_ctx_with_value(b, k2, &v2);
    weft_ctx *d = weft_ctx_with_value(c, k1, &v3);
    CHECK(a && b && c && d);
    CHECK(weft_ctx_value(d, k1) == &v3); /* nearest wins */
    CHECK(weft_ctx_value(c, k1) == &v1);
    CHECK(weft_ctx_value(d, k2) == &v2); /* same text, other address */
    CHECK(weft_ctx_value(b, k2) == NULL);
    CHECK(weft_ctx_value(d, k3) == NULL);
    CHECK(weft_ctx_value(d, NULL) == NULL);

    /* a value context's done and err are its parent's */
    CHECK(weft_ctx_done(a) == NULL);
    CHECK_EQ(weft_ctx_err(a), 0);
    CHECK(weft_ctx_done(d) == weft_ctx_done(b));
    weft_ctx_cancel(d);
    check_open(b);
    weft_ctx_cancel(b);
    check_cancelled(d, -ECANCELED);
    weft_ctx_free(d);
    weft_ctx_free(c);
    weft_ctx_free(b);
    weft_ctx_free(a);
}

/* ---- lifetimes ----------------------------------------------------------- */

static void test_child_outlives_parent(void) {
    static const char key[] = "k";
    int v;
    weft_ctx *g = weft_ctx_with_cancel(weft_ctx_background());
    weft_ctx *p = weft_ctx_with_value(g, key, &v);
    weft_ctx *c = weft_ctx_with_timeout(p, WEFT_SEC(3600));
    weft_ctx *gc = weft_ctx_with_cancel(c);
    CHECK(g && p && c && gc);
    weft_ctx_free(g); /* cancels the whole chain, frees nothing below */
    check_cancelled(gc, -ECANCELED);
    weft_ctx_free(p);
    weft_ctx_free(c);
    CHECK(weft_ctx_value(gc, key) == &v); /* walks freed-by-user parents */
    check_cancelled(gc, -ECANCELED);
    weft_ctx *late = weft_ctx_with_value(gc, "x", NULL);
    check_cancelled(late, -ECANCELED);
    weft_ctx_free(gc);
    CHECK(weft_ctx_value(late, key) == &v);
    weft_ctx_free(late);

    /* freeing a child first leaves the parent alone */
    weft_ctx *q = weft_ctx_with_cancel(weft_ctx_background());
    weft_ctx *qc = weft_ctx_with_cancel(q);
    weft_ctx_free(qc);
    check_open(q);
    weft_ctx_free(q);
}

/* ---- concurrency --------------------------------------------------------- */

/* Kids with an even index are shared: everyone reads and cancels them, main
 * frees them at the end.  Each odd kid belongs to one party, which frees it
 * while the others cancel the root (propagation racing frees). */
enum { KIDS = 64, CANCELLERS = 6, THREADS = 2, PARTIES = CANCELLERS + THREADS };

typedef struct storm {
    weft_ctx *root;
    weft_ctx *kid[KIDS];
    weft_wg wg;
    atomic_int go, ids;
} storm;

static void storm_run(storm *s) {
    int id = atomic_fetch_add(&s->ids, 1);
    while (!atomic_load(&s->go))
        weft_yield();
    for (int i = 0; i < KIDS; i++) {
        int k = (i * 7 + id * 13) % KIDS; /* a permutation of the kids */
        bool mine = k % 2 && (k / 2) % PARTIES == id;
        if (k % 2 == 0 || mine) {
            int e = weft_ctx_err(s->kid[k]);
            CHECK(e == 0 || e == -ECANCELED);
            CHECK(weft_ctx_done(s->kid[k]) != NULL);
            if (i % 3 == 0)
                weft_ctx_cancel(s->kid[k]);
        }
        if (mine)
            weft_ctx_free(s->kid[k]);
        if (i == KIDS / 2)
            weft_ctx_cancel(s->root);
    }
    weft_wg_done(&s->wg);
}

static void storm_g(void *arg) {
    storm_run(arg);
}

static void *storm_t(void *arg) {
    storm_run(arg);
    return NULL;
}

static void test_concurrent_cancel(void) {
    int rounds = 100 / test_scale();
    for (int r = 0; r < rounds; r++) {
        storm *s = calloc(1, sizeof *s);
        s->root = weft_ctx_with_cancel(weft_ctx_background());
        for (int i = 0; i < KIDS; i++) {
            weft_ctx *p = i < KIDS / 2 ? s->root : s->kid[i - KIDS / 2];
            s->kid[i] = weft_ctx_with_cancel(p);
            CHECK(s->kid[i] != NULL);
        }
        weft_wg_add(&s->wg, PARTIES);
        for (int i = 0; i < CANCELLERS; i++)
            CHECK_EQ(weft_go(storm_g, s), 0);
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            CHECK_EQ(pthread_create(&t[i], NULL, storm_t, s), 0);
        atomic_store(&s->go, 1);
        weft_wg_wait(&s->wg);
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        check_cancelled(s->root, -ECANCELED);
        for (int i = 0; i < KIDS; i += 2) {
            check_cancelled(s->kid[i], -ECANCELED);
            weft_ctx_free(s->kid[i]);
        }
        weft_ctx_free(s->root);
        free(s);
    }
}

/* ---- the canonical way to stop a goroutine ------------------------------- */

typedef struct worker {
    weft_ctx *ctx;
    weft_chan *in;
    int sum, got;
    weft_wg wg;
} worker;

static void worker_loop(void *arg) {
    worker *w = arg;
    for (;;) {
        int v;
        weft_case cases[2] = {
            {.chan = w->in, .op = WEFT_RECV, .elem = &v},
            {.chan = weft_ctx_done(w->ctx), .op = WEFT_RECV},
        };
        int i = weft_select(cases, 2, WEFT_FOREVER);
        if (i == 1)
            break;
        CHECK_EQ(i, 0);
        CHECK_EQ(cases[0].err, 0);
        w->sum += v;
        w->got++;
    }
    weft_wg_done(&w->wg);
}

static void test_stop_worker(void) {
    worker w = {.ctx = weft_ctx_with_cancel(weft_ctx_background()),
                .in = weft_chan_make(sizeof(int), 0)};
    CHECK(w.ctx && w.in);
    weft_wg_add(&w.wg, 1);
    CHECK_EQ(weft_go(worker_loop, &w), 0);
    for (int i = 1; i <= 10; i++)
        CHECK_EQ(weft_send(w.in, &i),
                 0); /* unbuffered: taken when it returns */
    weft_ctx_cancel(w.ctx);
    weft_wg_wait(&w.wg);
    CHECK_EQ(w.got, 10);
    CHECK_EQ(w.sum, 55);
    CHECK_EQ(weft_try_send(w.in, &w.sum), -EAGAIN); /* nobody listens now */
    weft_chan_free(w.in);
    weft_ctx_free(w.ctx);
}

int main(void) {
    TEST_BEGIN(60);
    test_background();
    test_null();
    test_cancel_wakes();
    test_tree();
    test_deep_chain();
    test_deadline();
    test_deadline_races();
    test_values();
    test_child_outlives_parent();
    test_concurrent_cancel();
    test_stop_worker();
    TEST_OK();
    return 0;
}
