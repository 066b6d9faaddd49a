/* SPDX-License-Identifier: MIT */
/*
 * Channels under load: 8 producers x 8 consumers (two of each are plain
 * threads) for capacities 0, 1 and 64.  Every value arrives exactly once
 * and each consumer sees each producer's values in increasing order.  Then
 * the same with a close racing the producers: exactly the values whose
 * send returned 0 arrive.  Last, the lifetime rule: a receiver frees the
 * channel right after its last receive while the sender may still be
 * returning from weft_send (run under ASan to mean anything).
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { NPROD = 8, NCONS = 8, NTHREADS = 2 };

static struct {
    weft_chan *c;
    int per_prod; /* values each producer tries to send */
    atomic_int sent[NPROD];
    atomic_uchar *seen; /* NPROD * per_prod delivery counts */
    atomic_long received;
    weft_wg prod_wg, cons_wg;
} st;

static uint32_t encode(int prod, int seq) {
    return (uint32_t)prod << 24 | (uint32_t)seq;
}

/* Stops at the first -EPIPE: the values it sent are exactly 0..sent-1. */
static void producer(void *arg) {
    int id = (int)(intptr_t)arg;
    int i = 0;
    for (; i < st.per_prod; i++) {
        uint32_t v = encode(id, i);
        int r = weft_send(st.c, &v);
        if (r == -EPIPE)
            break;
        CHECK_EQ(r, 0);
    }
    atomic_store(&st.sent[id], i);
    weft_wg_done(&st.prod_wg);
}

static void consumer(void *arg) {
    (void)arg;
    int last[NPROD];
    for (int p = 0; p < NPROD; p++)
        last[p] = -1;
    for (;;) {
        uint32_t v = 0xffffffffu;
        int r = weft_recv(st.c, &v);
        if (r == -EPIPE) {
            CHECK_EQ(v, 0xffffffffu);
            break;
        }
        CHECK_EQ(r, 0);
        int p = (int)(v >> 24), seq = (int)(v & 0xffffff);
        CHECK(p < NPROD && seq < st.per_prod);
        CHECK(seq > last[p]); /* per-producer FIFO */
        last[p] = seq;
        CHECK_EQ(atomic_fetch_add(&st.seen[p * st.per_prod + seq], 1), 0);
        atomic_fetch_add(&st.received, 1);
    }
    weft_wg_done(&st.cons_wg);
}

static void *thread_run(void *arg) {
    void **fa = arg;
    ((weft_fn)(uintptr_t)fa[0])(fa[1]);
    return NULL;
}

/* Start fn(arg) as a goroutine, or as a plain thread when th is non-NULL. */
static void start(weft_fn fn, void *arg, pthread_t *th, void **slot) {
    if (!th) {
        CHECK_EQ(weft_go(fn, arg), 0);
        return;
    }
    slot[0] = (void *)(uintptr_t)fn;
    slot[1] = arg;
    CHECK_EQ(pthread_create(th, NULL, thread_run, slot), 0);
}

/* close_after < 0: close once every producer finished; else close as soon
 * as that many values were received. */
static void run_mpmc(size_t cap, long close_after) {
    st.c = weft_chan_make(sizeof(uint32_t), cap);
    CHECK(st.c);
    st.per_prod = 20000 / test_scale();
    size_t total = (size_t)NPROD * (size_t)st.per_prod;
    st.seen = calloc(total, 1);
    CHECK(st.seen);
    atomic_store(&st.received, 0);
    weft_wg_add(&st.prod_wg, NPROD);
    weft_wg_add(&st.cons_wg, NCONS);
    pthread_t th[NTHREADS * 2];
    void *slots[NTHREADS * 2][2];
    for (int i = 0; i < NCONS; i++)
        start(consumer, NULL, i < NTHREADS ? &th[i] : NULL,
              i < NTHREADS ? slots[i] : NULL);
    for (int i = 0; i < NPROD; i++) {
        int t = NTHREADS + i;
        start(producer, (void *)(intptr_t)i, i < NTHREADS ? &th[t] : NULL,
              i < NTHREADS ? slots[t] : NULL);
    }
    if (close_after >= 0) {
        while (atomic_load(&st.received) < close_after)
            weft_sleep(WEFT_US(200));
        CHECK_EQ(weft_close(st.c), 0);
        weft_wg_wait(&st.prod_wg);
    } else {
        weft_wg_wait(&st.prod_wg);
        CHECK_EQ(weft_close(st.c), 0);
    }
    weft_wg_wait(&st.cons_wg);
    for (int i = 0; i < NTHREADS * 2; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    long expect = 0;
    for (int p = 0; p < NPROD; p++) {
        int sent = atomic_load(&st.sent[p]);
        if (close_after < 0)
            CHECK_EQ(sent, st.per_prod);
        expect += sent;
        for (int s = 0; s < st.per_prod; s++) /* sent: once, else never */
            CHECK_EQ(atomic_load(&st.seen[p * st.per_prod + s]), s < sent);
    }
    CHECK_EQ(atomic_load(&st.received), expect);
    weft_chan_free(st.c);
    free(st.seen);
}

/* ---- free right after the last receive ----------------------------------- */

enum { NSENDERS = 3 };

/* Senders take a channel from jobs, send one value on it, and never touch
 * it again; the receiver frees it as soon as the value arrives. */
static void lifetime_sender(void *arg) {
    weft_chan *jobs = arg;
    weft_chan *c;
    while (weft_recv(jobs, &c) == 0) {
        uint64_t v = (uint64_t)(uintptr_t)c;
        CHECK_EQ(weft_send(c, &v), 0);
    }
}

static void lifetime_receiver(void *arg) {
    weft_chan *jobs = arg;
    int n = 20000 / test_scale();
    for (int i = 0; i < n; i++) {
        weft_chan *c = weft_chan_make(sizeof(uint64_t), (size_t)(i % 2));
        CHECK(c);
        CHECK_EQ(weft_send(jobs, &c), 0);
        if (i % 7 == 0)
            weft_yield(); /* sometimes the sender blocks first */
        uint64_t v = 0;
        if (i % 3 == 0) {
            CHECK_EQ(weft_recv(c, &v), 0);
        } else if (i % 3 == 1) {
            CHECK_EQ(weft_recv_timeout(c, &v, WEFT_SEC(60)), 0);
        } else {
            weft_case cs[2] = {{.chan = NULL, .op = WEFT_RECV},
                               {.chan = c, .op = WEFT_RECV, .elem = &v}};
            CHECK_EQ(weft_select(cs, 2, WEFT_FOREVER), 1);
        }
        CHECK_EQ(v, (uint64_t)(uintptr_t)c);
        weft_chan_free(c);
    }
}

static void lifetime_receiver_g(void *arg) {
    void **a = arg;
    lifetime_receiver(a[0]);
    weft_wg_done(a[1]);
}

static void run_lifetime(bool receiver_in_goroutine) {
    weft_chan *jobs = weft_chan_make(sizeof(weft_chan *), 4);
    CHECK(jobs);
    pthread_t th;
    void *slot[2];
    for (int i = 0; i < NSENDERS; i++)
        start(lifetime_sender, jobs, i == 0 ? &th : NULL, i == 0 ? slot : NULL);
    if (receiver_in_goroutine) {
        weft_wg wg = {0};
        weft_wg_add(&wg, 1);
        void *a[2] = {jobs, &wg};
        CHECK_EQ(weft_go(lifetime_receiver_g, a), 0);
        weft_wg_wait(&wg);
    } else {
        lifetime_receiver(jobs);
    }
    CHECK_EQ(weft_close(jobs), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    while (weft_goroutines() > 0) /* senders leave their loop */
        weft_sleep(WEFT_MS(1));
    weft_chan_free(jobs);
}

int main(void) {
    TEST_BEGIN(240);
    size_t caps[3] = {0, 1, 64};
    for (int i = 0; i < 3; i++)
        run_mpmc(caps[i], -1);
    for (int i = 0; i < 3; i++)
        run_mpmc(caps[i], (long)NPROD * (20000 / test_scale()) / 3);
    run_lifetime(true);
    run_lifetime(false);
    TEST_OK();
    return 0;
}
