/* SPDX-License-Identifier: MIT */
/*
 * Channel semantics, one property per function.  The whole suite runs
 * twice: on the main thread (a plain thread blocks on a futex) and inside a
 * goroutine (it parks).
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define SENTINEL 0x5a5a5a5au

static void spawn(weft_fn fn, void *arg) {
    CHECK_EQ(weft_go(fn, arg), 0);
}

/* ---- ordering ---------------------------------------------------------- */

static void test_fifo_buffered(void) {
    weft_chan *c = weft_chan_make(sizeof(int), 16);
    CHECK(c);
    CHECK_EQ(weft_chan_cap(c), 16);
    int next_in = 0, next_out = 0;
    /* uneven batches so head and tail wrap around many times */
    for (int round = 0; round < 200; round++) {
        int batch = round % 17;
        for (int i = 0; i < batch && weft_chan_len(c) < 16; i++) {
            CHECK_EQ(weft_send(c, &next_in), 0);
            next_in++;
        }
        CHECK_EQ(weft_chan_len(c), (size_t)(next_in - next_out));
        for (int i = 0; i < (round * 7) % 13 && next_out < next_in; i++) {
            int v = -1;
            CHECK_EQ(weft_recv(c, &v), 0);
            CHECK_EQ(v, next_out++);
        }
    }
    while (next_out < next_in) {
        int v = -1;
        CHECK_EQ(weft_try_recv(c, &v), 0);
        CHECK_EQ(v, next_out++);
    }
    CHECK_EQ(weft_chan_len(c), 0);
    weft_chan_free(c);
}

struct seq {
    weft_chan *c;
    int n;
};

/* Senders copy *s first: the receiver may return (and s go out of scope)
 * as soon as the last value arrives. */
static void send_seq(void *arg) {
    struct seq s = *(struct seq *)arg;
    for (int i = 0; i < s.n; i++)
        CHECK_EQ(weft_send(s.c, &i), 0);
}

static void test_fifo_unbuffered(void) {
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    CHECK(c);
    CHECK_EQ(weft_chan_cap(c), 0);
    struct seq s = {c, 2000};
    spawn(send_seq, &s);
    for (int i = 0; i < s.n; i++) {
        int v = -1;
        CHECK_EQ(weft_recv(c, &v), 0);
        CHECK_EQ(v, i);
    }
    weft_chan_free(c);
}

/* ---- unbuffered rendezvous ------------------------------------------------
 */

struct rendezvous {
    weft_chan *c;
    atomic_int receiving;
    int got;
    weft_wg wg;
};

static void late_receiver(void *arg) {
    struct rendezvous *r = arg;
    weft_sleep(WEFT_MS(20));
    atomic_store(&r->receiving, 1);
    CHECK_EQ(weft_recv(r->c, &r->got), 0);
    weft_wg_done(&r->wg);
}

static void test_unbuffered_waits_for_receiver(void) {
    struct rendezvous r = {.c = weft_chan_make(sizeof(int), 0)};
    CHECK(r.c);
    int v = 42;
    CHECK_EQ(weft_try_send(r.c, &v), -EAGAIN); /* nobody receives */
    weft_wg_add(&r.wg, 1);
    spawn(late_receiver, &r);
    CHECK_EQ(weft_send(r.c, &v), 0);
    CHECK_EQ(atomic_load(&r.receiving), 1);
    weft_wg_wait(&r.wg);
    CHECK_EQ(r.got, 42);
    weft_chan_free(r.c);
}

/* ---- close ------------------------------------------------------------- */

static void test_close_drains(void) {
    weft_chan *c = weft_chan_make(sizeof(int), 4);
    CHECK(c);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_send(c, &i), 0);
    CHECK_EQ(weft_close(c), 0);
    CHECK_EQ(weft_close(c), -EPIPE);
    CHECK_EQ(weft_chan_len(c), 3);
    for (int i = 0; i < 3; i++) {
        int v = -1;
        CHECK_EQ(weft_recv(c, &v), 0);
        CHECK_EQ(v, i);
    }
    for (int i = 0; i < 3; i++) {
        unsigned v = SENTINEL;
        CHECK_EQ(weft_recv(c, &v), -EPIPE);
        CHECK_EQ(weft_try_recv(c, &v), -EPIPE);
        CHECK_EQ(weft_recv_timeout(c, &v, WEFT_MS(1)), -EPIPE);
        CHECK_EQ(weft_recv_timeout(c, &v, 0), -EPIPE);
        CHECK_EQ(v, SENTINEL);
    }
    int x = 7;
    CHECK_EQ(weft_send(c, &x), -EPIPE);
    CHECK_EQ(weft_try_send(c, &x), -EPIPE);
    CHECK_EQ(weft_send_timeout(c, &x, WEFT_MS(1)), -EPIPE);
    CHECK_EQ(weft_chan_len(c), 0);
    weft_chan_free(c);
}

struct blocked {
    weft_chan *c;
    int op;
    unsigned buf;
    int result;
    weft_wg *wg;
};

static void blocked_op(void *arg) {
    struct blocked *b = arg;
    b->result = b->op == WEFT_SEND ? weft_send(b->c, &b->buf)
                                   : weft_recv(b->c, &b->buf);
    weft_wg_done(b->wg);
}

static void *blocked_thread(void *arg) {
    blocked_op(arg);
    return NULL;
}

/* Four waiters per queue: goroutines and plain threads. */
static void test_close_wakes_waiters(size_t cap) {
    enum { N = 8 };
    weft_chan *rc = weft_chan_make(sizeof(unsigned), cap);
    weft_chan *sc = weft_chan_make(sizeof(unsigned), cap);
    CHECK(rc && sc);
    unsigned fill = 1;
    for (size_t i = 0; i < cap; i++)
        CHECK_EQ(weft_send(sc, &fill), 0);
    weft_wg wg = {0};
    weft_wg_add(&wg, N);
    struct blocked b[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        b[i] = (struct blocked){.c = i % 2 ? sc : rc,
                                .op = i % 2 ? WEFT_SEND : WEFT_RECV,
                                .buf = SENTINEL,
                                .result = 1,
                                .wg = &wg};
        if (i < N / 2)
            spawn(blocked_op, &b[i]);
        else
            CHECK_EQ(pthread_create(&th[i], NULL, blocked_thread, &b[i]), 0);
    }
    weft_sleep(WEFT_MS(30)); /* let them block (either way: -EPIPE) */
    CHECK_EQ(weft_close(rc), 0);
    CHECK_EQ(weft_close(sc), 0);
    weft_wg_wait(&wg);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(b[i].result, -EPIPE);
        CHECK_EQ(b[i].buf, SENTINEL);
        if (i >= N / 2)
            CHECK_EQ(pthread_join(th[i], NULL), 0);
    }
    for (size_t i = 0; i < cap; i++) /* buffered values survive the close */
        CHECK_EQ(weft_recv(sc, &fill), 0);
    CHECK_EQ(weft_recv(sc, &fill), -EPIPE);
    weft_chan_free(rc);
    weft_chan_free(sc);
}

/* ---- argument checks ------------------------------------------------------
 */

static void test_null_channel(void) {
    unsigned v = SENTINEL;
    CHECK_EQ(weft_send(NULL, &v), -EINVAL);
    CHECK_EQ(weft_recv(NULL, &v), -EINVAL);
    CHECK_EQ(weft_try_send(NULL, &v), -EINVAL);
    CHECK_EQ(weft_try_recv(NULL, &v), -EINVAL);
    CHECK_EQ(weft_send_timeout(NULL, &v, WEFT_MS(1)), -EINVAL);
    CHECK_EQ(weft_recv_timeout(NULL, &v, WEFT_MS(1)), -EINVAL);
    CHECK_EQ(weft_send_timeout(NULL, &v, WEFT_FOREVER), -EINVAL);
    CHECK_EQ(weft_recv_timeout(NULL, &v, 0), -EINVAL);
    CHECK_EQ(weft_close(NULL), -EINVAL);
    CHECK_EQ(weft_chan_len(NULL), 0);
    CHECK_EQ(weft_chan_cap(NULL), 0);
    CHECK_EQ(v, SENTINEL);
    weft_chan_free(NULL);
}

static void test_make_errors(void) {
    errno = 0;
    CHECK(weft_chan_make(SIZE_MAX / 2, 3) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(weft_chan_make(SIZE_MAX, SIZE_MAX) == NULL);
    CHECK_EQ(errno, ENOMEM);
    weft_chan *c = weft_chan_make(8, 0);
    CHECK(c);
    CHECK_EQ(weft_try_send(c, NULL), -EINVAL); /* no value to copy */
    weft_chan_free(c);
}

/* ---- element sizes --------------------------------------------------------
 */

static void signal_sender(void *arg) {
    struct seq s = *(struct seq *)arg;
    for (int i = 0; i < s.n; i++)
        CHECK_EQ(weft_send(s.c, NULL), 0);
}

static void test_signal_channels(void) {
    weft_chan *c = weft_chan_make(0, 3);
    CHECK(c);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_send(c, NULL), 0);
    CHECK_EQ(weft_try_send(c, NULL), -EAGAIN);
    CHECK_EQ(weft_chan_len(c), 3);
    int dummy = 5;
    CHECK_EQ(weft_recv(c, &dummy), 0);
    CHECK_EQ(dummy, 5); /* nothing to copy */
    CHECK_EQ(weft_recv(c, NULL), 0);
    CHECK_EQ(weft_try_recv(c, NULL), 0);
    CHECK_EQ(weft_try_recv(c, NULL), -EAGAIN);
    weft_chan_free(c);

    c = weft_chan_make(0, 0);
    CHECK(c);
    struct seq s = {c, 100};
    spawn(signal_sender, &s);
    for (int i = 0; i < s.n; i++)
        CHECK_EQ(weft_recv(c, NULL), 0);
    CHECK_EQ(weft_close(c), 0);
    CHECK_EQ(weft_recv(c, NULL), -EPIPE);
    weft_chan_free(c);
}

enum { BIG = 4096, BIG_N = 50 };

static void fill_big(unsigned char *b, int k) {
    for (int i = 0; i < BIG; i++)
        b[i] = (unsigned char)(i * 31 + k * 7 + (i >> 8));
}

static void big_sender(void *arg) {
    struct seq s = *(struct seq *)arg;
    unsigned char b[BIG];
    for (int k = 0; k < s.n; k++) {
        fill_big(b, k);
        CHECK_EQ(weft_send(s.c, b), 0);
        memset(b, 0xff, BIG); /* the channel must hold its own copy */
    }
}

static void test_large_elements(size_t cap) {
    weft_chan *c = weft_chan_make(BIG, cap);
    CHECK(c);
    struct seq s = {c, BIG_N};
    spawn(big_sender, &s);
    static _Thread_local unsigned char got[BIG], want[BIG];
    for (int k = 0; k < BIG_N; k++) {
        CHECK_EQ(weft_recv(c, got), 0);
        fill_big(want, k);
        CHECK(memcmp(got, want, BIG) == 0);
    }
    weft_chan_free(c);
}

/* ---- try and timeouts -----------------------------------------------------
 */

static void test_try(void) {
    weft_chan *c = weft_chan_make(sizeof(unsigned), 1);
    CHECK(c);
    unsigned v = SENTINEL, one = 1;
    CHECK_EQ(weft_try_recv(c, &v), -EAGAIN);
    CHECK_EQ(v, SENTINEL);
    CHECK_EQ(weft_try_send(c, &one), 0);
    CHECK_EQ(weft_try_send(c, &one), -EAGAIN);
    CHECK_EQ(weft_try_recv(c, &v), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(weft_close(c), 0);
    v = SENTINEL;
    CHECK_EQ(weft_try_recv(c, &v), -EPIPE);
    CHECK_EQ(weft_try_send(c, &one), -EPIPE);
    CHECK_EQ(v, SENTINEL);
    weft_chan_free(c);
}

static void delayed_send(void *arg) {
    struct seq s = *(struct seq *)arg;
    weft_sleep(WEFT_MS(10));
    CHECK_EQ(weft_send(s.c, &s.n), 0);
}

static void test_timeouts(void) {
    weft_chan *c = weft_chan_make(sizeof(unsigned), 0);
    CHECK(c);
    unsigned v = SENTINEL, one = 1;
    CHECK_EQ(weft_recv_timeout(c, &v, 0), -ETIMEDOUT);
    CHECK_EQ(weft_send_timeout(c, &one, 0), -ETIMEDOUT);
    CHECK_EQ(weft_recv_timeout(c, &v, -5), -ETIMEDOUT);
    CHECK_EQ(weft_send_timeout(c, &one, -5), -ETIMEDOUT);
    int64_t t0 = weft_now();
    CHECK_EQ(weft_recv_timeout(c, &v, WEFT_MS(20)), -ETIMEDOUT);
    int64_t t1 = weft_now();
    CHECK_EQ(weft_send_timeout(c, &one, WEFT_MS(20)), -ETIMEDOUT);
    int64_t t2 = weft_now();
    CHECK(t1 - t0 >= WEFT_MS(19) && t1 - t0 < WEFT_SEC(5));
    CHECK(t2 - t1 >= WEFT_MS(19) && t2 - t1 < WEFT_SEC(5));
    CHECK_EQ(v, SENTINEL);
    /* the timed-out waiters left no node behind */
    CHECK_EQ(weft_try_send(c, &one), -EAGAIN);
    CHECK_EQ(weft_try_recv(c, &v), -EAGAIN);

    struct seq s = {c, 77};
    spawn(delayed_send, &s);
    CHECK_EQ(weft_recv_timeout(c, &v, WEFT_FOREVER), 0);
    CHECK_EQ(v, 77);
    s.n = 78;
    spawn(delayed_send, &s);
    CHECK_EQ(weft_recv_timeout(c, &v, WEFT_SEC(30)), 0);
    CHECK_EQ(v, 78);
    s.n = 79; /* a timeout too large to add to the clock */
    spawn(delayed_send, &s);
    CHECK_EQ(weft_recv_timeout(c, &v, INT64_MAX), 0);
    CHECK_EQ(v, 79);
    weft_chan_free(c);
}

/* ---- driver ----------------------------------------------------------------
 */

static void suite(void) {
    test_fifo_buffered();
    test_fifo_unbuffered();
    test_unbuffered_waits_for_receiver();
    test_close_drains();
    test_close_wakes_waiters(0);
    test_close_wakes_waiters(2);
    test_null_channel();
    test_make_errors();
    test_signal_channels();
    test_large_elements(0);
    test_large_elements(3);
    test_try();
    test_timeouts();
}

static void suite_g(void *arg) {
    suite();
    weft_wg_done(arg);
}

int main(void) {
    TEST_BEGIN(60);
    suite();
    weft_wg wg = {0};
    weft_wg_add(&wg, 1);
    spawn(suite_g, &wg);
    weft_wg_wait(&wg);
    TEST_OK();
    return 0;
}
