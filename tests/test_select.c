/* SPDX-License-Identifier: MIT */
/*
 * weft_select: readiness, default and timeouts, NULL and closed channels,
 * one channel in two cases, fairness, exactly-once under contention,
 * plain threads, argument checks, big selects.  The single-caller part runs
 * on the main thread and again inside a goroutine.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SENTINEL 0x5a5a5a5au
#define UNTOUCHED 12345

static void spawn(weft_fn fn, void *arg) {
    CHECK_EQ(weft_go(fn, arg), 0);
}

static weft_case rcase(weft_chan *c, void *out) {
    return (weft_case){
        .chan = c, .op = WEFT_RECV, .elem = out, .err = UNTOUCHED};
}

static weft_case scase(weft_chan *c, void *in) {
    return (weft_case){
        .chan = c, .op = WEFT_SEND, .elem = in, .err = UNTOUCHED};
}

static weft_chan *mk(size_t cap) {
    weft_chan *c = weft_chan_make(sizeof(unsigned), cap);
    CHECK(c);
    return c;
}

/* ---- single caller ------------------------------------------------------ */

static void test_ready_case(void) {
    weft_chan *a = mk(1), *b = mk(1);
    unsigned va = SENTINEL, vb = SENTINEL, x = 9;
    CHECK_EQ(weft_send(b, &x), 0);
    weft_case cs[2] = {rcase(a, &va), rcase(b, &vb)};
    CHECK_EQ(weft_select(cs, 2, WEFT_FOREVER), 1);
    CHECK_EQ(cs[1].err, 0);
    CHECK_EQ(vb, 9);
    CHECK_EQ(cs[0].err, UNTOUCHED);
    CHECK_EQ(va, SENTINEL);
    /* a send case: only b has room now */
    CHECK_EQ(weft_send(a, &x), 0);
    unsigned y = 4;
    weft_case ss[2] = {scase(a, &y), scase(b, &y)};
    CHECK_EQ(weft_select(ss, 2, 0), 1);
    CHECK_EQ(weft_chan_len(b), 1);
    CHECK_EQ(ss[0].err, UNTOUCHED);
    weft_chan_free(a);
    weft_chan_free(b);
}

static void test_default_and_timeout(void) {
    weft_chan *a = mk(0), *b = mk(1);
    unsigned x = 1, v = SENTINEL;
    CHECK_EQ(weft_send(b, &x), 0); /* b full: its send case blocks */
    weft_case cs[2] = {rcase(a, &v), scase(b, &x)};
    CHECK_EQ(weft_select(cs, 2, 0), -ETIMEDOUT);
    CHECK_EQ(weft_select(cs, 2, -7), -ETIMEDOUT);
    int64_t t0 = weft_now();
    CHECK_EQ(weft_select(cs, 2, WEFT_MS(20)), -ETIMEDOUT);
    int64_t dt = weft_now() - t0;
    CHECK(dt >= WEFT_MS(19) && dt < WEFT_SEC(5));
    CHECK_EQ(cs[0].err, UNTOUCHED);
    CHECK_EQ(cs[1].err, UNTOUCHED);
    CHECK_EQ(v, SENTINEL);
    CHECK_EQ(weft_chan_len(b), 1);
    /* the timed-out select left no node behind */
    CHECK_EQ(weft_try_send(a, &x), -EAGAIN);
    CHECK_EQ(weft_try_recv(b, &v), 0);
    CHECK_EQ(weft_try_recv(b, &v), -EAGAIN);
    weft_chan_free(a);
    weft_chan_free(b);
}

static void test_null_channels(void) {
    weft_chan *a = mk(1);
    unsigned x = 3, v = SENTINEL;
    weft_case cs[3] = {rcase(NULL, &v), rcase(a, &v), scase(NULL, &x)};
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(weft_send(a, &x), 0);
        CHECK_EQ(weft_select(cs, 3, WEFT_FOREVER), 1);
    }
    CHECK_EQ(cs[0].err, UNTOUCHED);
    CHECK_EQ(cs[2].err, UNTOUCHED);
    weft_case none[2] = {rcase(NULL, &v), scase(NULL, &x)};
    CHECK_EQ(weft_select(none, 2, 0), -ETIMEDOUT);
    int64_t t0 = weft_now();
    CHECK_EQ(weft_select(none, 2, WEFT_MS(10)), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= WEFT_MS(9));
    weft_chan_free(a);
}

static void test_closed_fires(void) {
    weft_chan *a = mk(0), *b = mk(0), *c = mk(2);
    CHECK_EQ(weft_close(b), 0);
    unsigned v = SENTINEL, x = 5;
    weft_case cs[2] = {rcase(a, &v), rcase(b, &v)};
    CHECK_EQ(weft_select(cs, 2, WEFT_FOREVER), 1);
    CHECK_EQ(cs[1].err, -EPIPE);
    CHECK_EQ(v, SENTINEL);
    weft_case ss[2] = {scase(a, &x), scase(b, &x)};
    CHECK_EQ(weft_select(ss, 2, 0), 1);
    CHECK_EQ(ss[1].err, -EPIPE);
    /* buffered values still come first */
    CHECK_EQ(weft_send(c, &x), 0);
    CHECK_EQ(weft_close(c), 0);
    weft_case bc[1] = {rcase(c, &v)};
    CHECK_EQ(weft_select(bc, 1, 0), 0);
    CHECK_EQ(bc[0].err, 0);
    CHECK_EQ(v, 5);
    v = SENTINEL;
    CHECK_EQ(weft_select(bc, 1, 0), 0);
    CHECK_EQ(bc[0].err, -EPIPE);
    CHECK_EQ(v, SENTINEL);
    weft_chan_free(a);
    weft_chan_free(b);
    weft_chan_free(c);
}

static void test_same_channel_both_ways(void) {
    weft_chan *c = mk(1);
    unsigned x = 8, v = SENTINEL;
    weft_case cs[2] = {rcase(c, &v), scase(c, &x)};
    CHECK_EQ(weft_select(cs, 2, 0), 1); /* empty: only the send can go */
    CHECK_EQ(cs[1].err, 0);
    cs[1].err = UNTOUCHED;
    CHECK_EQ(weft_select(cs, 2, 0), 0); /* full: only the receive can */
    CHECK_EQ(v, 8);
    CHECK_EQ(cs[1].err, UNTOUCHED);
    weft_case dup[4] = {rcase(c, &v), rcase(c, &v), rcase(NULL, &v),
                        rcase(c, &v)};
    CHECK_EQ(weft_select(dup, 4, 0), -ETIMEDOUT);
    weft_chan_free(c);
}

static void test_fairness(void) {
    weft_chan *a = weft_chan_make(0, 1), *b = weft_chan_make(0, 1);
    CHECK(a && b);
    CHECK_EQ(weft_send(a, NULL), 0);
    CHECK_EQ(weft_send(b, NULL), 0);
    weft_case cs[2] = {rcase(a, NULL), rcase(b, NULL)};
    int hits[2] = {0, 0};
    for (int i = 0; i < 10000; i++) {
        int k = weft_select(cs, 2, 0);
        CHECK(k == 0 || k == 1);
        hits[k]++;
        CHECK_EQ(weft_send(cs[k].chan, NULL), 0);
    }
    CHECK(hits[0] >= 3500 && hits[0] <= 6500);
    CHECK(hits[1] >= 3500 && hits[1] <= 6500);
    weft_chan_free(a);
    weft_chan_free(b);
}

static void test_invalid(void) {
    weft_chan *c = mk(1);
    unsigned x = 1, v = SENTINEL;
    CHECK_EQ(weft_send(c, &x), 0);
    weft_case cs[2] = {rcase(c, &v), rcase(c, &v)};
    cs[1].op = 7;
    CHECK_EQ(weft_select(cs, 2, WEFT_FOREVER), -EINVAL);
    cs[1].op = 0;
    CHECK_EQ(weft_select(cs, 2, 0), -EINVAL);
    CHECK_EQ(weft_select(NULL, 1, 0), -EINVAL);
    weft_case nul[2] = {rcase(c, &v), scase(c, NULL)}; /* nothing to send */
    CHECK_EQ(weft_select(nul, 2, 0), -EINVAL);
    CHECK_EQ(weft_chan_len(c), 1);
    CHECK_EQ(v, SENTINEL);
    CHECK_EQ(cs[0].err, UNTOUCHED);
    CHECK_EQ(nul[0].err, UNTOUCHED);
    weft_chan_free(c);
}

static void test_no_cases(void) {
    CHECK_EQ(weft_select(NULL, 0, 0), -ETIMEDOUT);
    weft_case dummy;
    CHECK_EQ(weft_select(&dummy, 0, 0), -ETIMEDOUT);
    int64_t t0 = weft_now();
    CHECK_EQ(weft_select(NULL, 0, WEFT_MS(10)), -ETIMEDOUT);
    int64_t dt = weft_now() - t0;
    CHECK(dt >= WEFT_MS(9) && dt < WEFT_SEC(5));
}

/* ---- with a partner ---------------------------------------------------- */

struct later {
    weft_chan *c;
    unsigned v;
    int64_t delay;
    bool close;
};

/* Copies *arg first: the waiting side may return as soon as it is served. */
static void later_op(void *arg) {
    struct later l = *(struct later *)arg;
    weft_sleep(l.delay);
    if (l.close)
        CHECK_EQ(weft_close(l.c), 0);
    else
        CHECK_EQ(weft_send(l.c, &l.v), 0);
}

static void test_blocking_wakeups(void) {
    weft_chan *a = mk(0), *b = mk(0);
    unsigned va = SENTINEL, vb = SENTINEL;
    weft_case cs[2] = {rcase(a, &va), rcase(b, &vb)};
    struct later l = {b, 17, WEFT_MS(5), false};
    spawn(later_op, &l);
    CHECK_EQ(weft_select(cs, 2, INT64_MAX), 1);
    CHECK_EQ(vb, 17);
    CHECK_EQ(cs[1].err, 0);
    CHECK_EQ(va, SENTINEL);
    /* a blocked send case woken by close reports -EPIPE */
    unsigned x = 1;
    weft_case ss[2] = {rcase(b, &vb), scase(a, &x)};
    l = (struct later){a, 0, WEFT_MS(5), true};
    spawn(later_op, &l);
    CHECK_EQ(weft_select(ss, 2, WEFT_FOREVER), 1);
    CHECK_EQ(ss[1].err, -EPIPE);
    CHECK_EQ(ss[0].err, UNTOUCHED);
    weft_chan_free(a);
    weft_chan_free(b);
}

enum { BIGN = 100 };

static void test_big(void) {
    weft_chan *ch[BIGN];
    unsigned out[BIGN];
    weft_case cs[BIGN];
    for (int i = 0; i < BIGN; i++) {
        ch[i] = mk(i % 2);
        out[i] = SENTINEL;
        cs[i] = rcase(ch[i], &out[i]);
    }
    CHECK_EQ(weft_select(cs, BIGN, 0), -ETIMEDOUT);
    for (int round = 0; round < 40; round++) {
        int k = (int)((unsigned)round * 37u % BIGN);
        struct later l = {ch[k], (unsigned)round, round % 2 ? 0 : WEFT_MS(1),
                          false};
        spawn(later_op, &l);
        CHECK_EQ(weft_select(cs, BIGN, WEFT_FOREVER), k);
        CHECK_EQ(out[k], (unsigned)round);
        CHECK_EQ(cs[k].err, 0);
        cs[k].err = UNTOUCHED;
    }
    for (int i = 0; i < BIGN; i++)
        CHECK_EQ(cs[i].err, UNTOUCHED);
    /* 100 cases naming one channel both ways */
    unsigned x = 77, v = SENTINEL;
    for (int i = 0; i < BIGN; i++)
        cs[i] = i % 3 ? rcase(ch[1], &v) : scase(ch[1], &x);
    int k = weft_select(cs, BIGN, 0);
    CHECK(k >= 0 && k % 3 == 0); /* empty, cap 1: only sends can go */
    k = weft_select(cs, BIGN, 0);
    CHECK(k >= 0 && k % 3 != 0);
    CHECK_EQ(v, 77);
    for (int i = 0; i < BIGN; i++)
        weft_chan_free(ch[i]);
}

static void suite(void) {
    test_ready_case();
    test_default_and_timeout();
    test_null_channels();
    test_closed_fires();
    test_same_channel_both_ways();
    test_fairness();
    test_invalid();
    test_no_cases();
    test_blocking_wakeups();
    test_big();
}

static void suite_g(void *arg) {
    suite();
    weft_wg_done(arg);
}

/* ---- contention: every value delivered exactly once ---------------------- */

enum { NCH = 3, NPROD = 4, NCONS = 4 };

static struct {
    weft_chan *ch[NCH];
    int per_prod;
    atomic_uchar *seen;     /* NPROD * per_prod delivery counts */
    atomic_int sent[NPROD]; /* values 0..sent-1 of each producer went out */
    atomic_long received;
    weft_wg prod_wg, cons_wg;
} ct;

static void deliver(unsigned v) {
    CHECK(v < (unsigned)(NPROD * ct.per_prod));
    CHECK_EQ(atomic_fetch_add(&ct.seen[v], 1), 0);
    atomic_fetch_add(&ct.received, 1);
}

/* Producers select a send over every channel (producer 0 uses weft_send);
 * the same value sits in all cases, so two firing cases would show up as a
 * duplicate.  They stop at the first -EPIPE (a close racing them). */
static int produce_one(int id, int i, unsigned v) {
    if (id == 0)
        return weft_send(ct.ch[i % NCH], &v);
    weft_case cs[NCH];
    for (int k = 0; k < NCH; k++)
        cs[k] = scase(ct.ch[k], &v);
    int r = weft_select(cs, NCH, WEFT_FOREVER);
    CHECK(r >= 0 && r < NCH);
    for (int k = 0; k < NCH; k++)
        CHECK(k == r || cs[k].err == UNTOUCHED);
    return cs[r].err;
}

static void producer(void *arg) {
    int id = (int)(intptr_t)arg;
    int i = 0;
    for (; i < ct.per_prod; i++) {
        int r = produce_one(id, i, (unsigned)(id * ct.per_prod + i));
        if (r == -EPIPE)
            break;
        CHECK_EQ(r, 0);
    }
    atomic_store(&ct.sent[id], i);
    weft_wg_done(&ct.prod_wg);
}

/* Consumers select a receive until every channel is closed and drained;
 * consumer 1 uses a short timeout (timed-out nodes must be skipped),
 * consumer 0 calls weft_recv on one channel at a time. */
static void consumer(void *arg) {
    int id = (int)(intptr_t)arg;
    weft_chan *live[NCH];
    memcpy(live, ct.ch, sizeof live);
    int open = NCH;
    while (open > 0) {
        unsigned v = SENTINEL;
        weft_case cs[NCH];
        for (int k = 0; k < NCH; k++)
            cs[k] = rcase(live[k], &v);
        int r;
        if (id == 0) {
            int k = 0;
            while (!live[k])
                k++;
            r = k;
            cs[k].err = weft_recv(live[k], &v);
        } else {
            r = weft_select(cs, NCH, id == 1 ? WEFT_US(300) : WEFT_FOREVER);
        }
        if (r == -ETIMEDOUT)
            continue;
        CHECK(r >= 0 && r < NCH);
        if (cs[r].err == -EPIPE) {
            CHECK_EQ(v, SENTINEL);
            live[r] = NULL;
            open--;
            continue;
        }
        CHECK_EQ(cs[r].err, 0);
        deliver(v);
    }
    weft_wg_done(&ct.cons_wg);
}

static void *consumer_thread(void *arg) {
    consumer(arg);
    return NULL;
}

static void *producer_thread(void *arg) {
    producer(arg);
    return NULL;
}

/* close_early: close the channels while producers are still sending. */
static void test_contention(bool close_early) {
    ct.per_prod = 20000 / test_scale();
    size_t total = (size_t)NPROD * (size_t)ct.per_prod;
    ct.seen = calloc(total, 1);
    CHECK(ct.seen);
    atomic_store(&ct.received, 0);
    for (int k = 0; k < NCH; k++)
        ct.ch[k] = mk((size_t)k); /* caps 0, 1, 2 */
    weft_wg_add(&ct.prod_wg, NPROD);
    weft_wg_add(&ct.cons_wg, NCONS);
    pthread_t pt, cth;
    for (int i = 0; i < NPROD - 1; i++)
        spawn(producer, (void *)(intptr_t)i);
    CHECK_EQ(pthread_create(&pt, NULL, producer_thread,
                            (void *)(intptr_t)(NPROD - 1)),
             0);
    for (int i = 0; i < NCONS - 1; i++)
        spawn(consumer, (void *)(intptr_t)i);
    CHECK_EQ(pthread_create(&cth, NULL, consumer_thread,
                            (void *)(intptr_t)(NCONS - 1)),
             0);
    if (close_early)
        while (atomic_load(&ct.received) < (long)total / 3)
            weft_sleep(WEFT_US(200));
    else
        weft_wg_wait(&ct.prod_wg);
    for (int k = 0; k < NCH; k++)
        CHECK_EQ(weft_close(ct.ch[k]), 0);
    weft_wg_wait(&ct.prod_wg);
    weft_wg_wait(&ct.cons_wg);
    CHECK_EQ(pthread_join(pt, NULL), 0);
    CHECK_EQ(pthread_join(cth, NULL), 0);
    long expect = 0;
    for (int p = 0; p < NPROD; p++) {
        int sent = atomic_load(&ct.sent[p]);
        CHECK(close_early || sent == ct.per_prod);
        expect += sent;
        for (int i = 0; i < ct.per_prod; i++) /* sent: once, else never */
            CHECK_EQ(atomic_load(&ct.seen[p * ct.per_prod + i]), i < sent);
    }
    CHECK_EQ(atomic_load(&ct.received), expect);
    for (int k = 0; k < NCH; k++)
        weft_chan_free(ct.ch[k]);
    free(ct.seen);
}

/* Two goroutines each offer to send on a and b and to receive from a and
 * b; every select must pair with the other goroutine's. */
static struct {
    weft_chan *a, *b;
    int rounds;
    atomic_int sends, recvs;
    weft_wg wg;
} sp;

static void pair_side(void *arg) {
    unsigned me = (unsigned)(intptr_t)arg;
    for (int i = 0; i < sp.rounds; i++) {
        unsigned x = me << 24 | (unsigned)i, ra = SENTINEL, rb = SENTINEL;
        weft_case cs[4] = {scase(sp.a, &x), rcase(sp.a, &ra), scase(sp.b, &x),
                           rcase(sp.b, &rb)};
        int r = weft_select(cs, 4, WEFT_FOREVER);
        CHECK(r >= 0 && r < 4);
        CHECK_EQ(cs[r].err, 0);
        if (r % 2 == 0) {
            atomic_fetch_add(&sp.sends, 1);
            continue;
        }
        unsigned got = r == 1 ? ra : rb;
        CHECK_EQ(got >> 24, 1 - me); /* from the other side, never itself */
        atomic_fetch_add(&sp.recvs, 1);
    }
    weft_wg_done(&sp.wg);
}

static void test_select_pairs(void) {
    sp.a = mk(0);
    sp.b = mk(0);
    sp.rounds = 5000 / test_scale();
    weft_wg_add(&sp.wg, 2);
    spawn(pair_side, (void *)(intptr_t)0);
    spawn(pair_side, (void *)(intptr_t)1);
    weft_wg_wait(&sp.wg);
    CHECK_EQ(atomic_load(&sp.sends), sp.rounds);
    CHECK_EQ(atomic_load(&sp.recvs), sp.rounds);
    weft_chan_free(sp.a);
    weft_chan_free(sp.b);
}

/* A select blocked from a plain thread, served by a goroutine. */
static void *thread_select(void *arg) {
    weft_chan **ch = arg;
    unsigned v = SENTINEL;
    weft_case cs[2] = {rcase(ch[0], &v), rcase(ch[1], &v)};
    CHECK_EQ(weft_select(cs, 2, WEFT_FOREVER), 1);
    CHECK_EQ(v, 21);
    return NULL;
}

static void test_thread_select(void) {
    weft_chan *ch[2] = {mk(0), mk(0)};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_select, ch), 0);
    struct later l = {ch[1], 21, WEFT_MS(10), false};
    spawn(later_op, &l);
    CHECK_EQ(pthread_join(t, NULL), 0);
    weft_chan_free(ch[0]);
    weft_chan_free(ch[1]);
}

static atomic_int forever_returned;

static void select_forever(void *arg) {
    (void)arg;
    weft_select(NULL, 0, WEFT_FOREVER);
    atomic_store(&forever_returned, 1);
}

int main(void) {
    TEST_BEGIN(120);
    suite();
    weft_wg wg = {0};
    weft_wg_add(&wg, 1);
    spawn(suite_g, &wg);
    weft_wg_wait(&wg);
    test_contention(false);
    test_contention(true);
    test_select_pairs();
    test_thread_select();
    spawn(select_forever, NULL);
    weft_sleep(WEFT_MS(50));
    CHECK_EQ(atomic_load(&forever_returned), 0);
    CHECK(weft_goroutines() >= 1);
    TEST_OK();
    return 0;
}
