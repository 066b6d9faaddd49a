/* SPDX-License-Identifier: MIT */
/*
 * NATS bridge, one process: connect errors, channel -> subject -> channel
 * in order, codecs, wrong-size and oversize values, the full-channel drop
 * counter, cancellation, JetStream publish/subscribe with a durable that
 * survives its subscription, manual acks, and closing the connection
 * under a live subscription.
 */
#include "nats_test.h"

#include <stdbool.h>

static nt_server srv;

static void cleanup(void) {
    nt_server_cleanup(&srv);
}

/* ---- connect failures --------------------------------------------------- */

typedef struct canceller {
    weft_ctx *ctx;
    weft_wg wg;
} canceller;

static void cancel_later(void *arg) {
    canceller *k = arg;
    weft_sleep(WEFT_MS(100));
    weft_ctx_cancel(k->ctx);
    weft_wg_done(&k->wg);
}

/* A context cancelled 100 ms from now; cancel_wait before freeing it. */
static canceller *cancel_soon(void) {
    canceller *k = calloc(1, sizeof *k);
    k->ctx = weft_ctx_with_cancel(weft_ctx_background());
    weft_wg_add(&k->wg, 1);
    CHECK_EQ(weft_go(cancel_later, k), 0);
    return k;
}

static void cancel_wait(canceller *k) {
    weft_wg_wait(&k->wg);
    weft_ctx_free(k->ctx);
    free(k);
}

static void test_connect_errors(void) {
    weft_nats *nc = NULL;
    CHECK_EQ(weft_nats_connect("", 0, &nc), -EINVAL);
    CHECK_EQ(weft_nats_connect(NULL, 0, &nc), -EINVAL);
    /* srv is stopped: its port has no listener */
    int64_t t0 = weft_now();
    CHECK_EQ(weft_nats_connect(srv.url, 0, &nc), -ECONNREFUSED);
    CHECK(weft_now() - t0 < WEFT_SEC(2));
    t0 = weft_now();
    CHECK_EQ(weft_nats_connect(srv.url, WEFT_MS(300), &nc), -ECONNREFUSED);
    CHECK(weft_now() - t0 >= WEFT_MS(250));
    canceller *k = cancel_soon();
    weft_nats_opts o = {.timeout = WEFT_FOREVER, .ctx = k->ctx};
    CHECK_EQ(weft_nats_connect_with(srv.url, &o, &nc), -ECANCELED);
    cancel_wait(k);
    CHECK(nc == NULL);
}

/* ---- core publish / subscribe ---------------------------------------------
 */

typedef struct feed {
    weft_chan *c;
    uint64_t from, n;
} feed;

static void feeder(void *arg) {
    feed *f = arg;
    for (uint64_t i = f->from; i < f->from + f->n; i++)
        CHECK_EQ(weft_send(f->c, &i), 0);
    weft_close(f->c);
}

/* Publish n uint64 values from `from` on subject through a channel. */
static void publish_seq(weft_nats *nc, const char *subject, uint64_t from,
                        uint64_t n, int jetstream) {
    weft_chan *c = weft_chan_make(sizeof(uint64_t), 64);
    feed f = {c, from, n};
    CHECK_EQ(weft_go(feeder, &f), 0);
    weft_nats_pubopts po = {.elem_size = sizeof(uint64_t),
                            .jetstream = jetstream};
    CHECK_EQ(weft_nats_publish(nc, subject, c, &po), 0);
    weft_chan_free(c);
}

static void test_roundtrip(weft_nats *nc) {
    weft_nats_sub *s;
    weft_nats_subopts so = {.elem_size = sizeof(uint64_t), .cap = 128};
    CHECK_EQ(weft_nats_subscribe(nc, "t.seq", &so, &s), 0);
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(5)), 0);
    publish_seq(nc, "t.seq", 0, 5000, 0);
    for (uint64_t i = 0; i < 5000; i++) {
        uint64_t v;
        CHECK_EQ(weft_recv_timeout(weft_nats_sub_chan(s), &v, WEFT_SEC(10)), 0);
        CHECK_EQ(v, i);
    }
    /* a message of the wrong size is dropped and counted */
    CHECK_EQ(weft_nats_send(nc, "t.seq", "abc", 3), 0);
    uint64_t x = 77, v;
    CHECK_EQ(weft_nats_send(nc, "t.seq", &x, sizeof x), 0);
    CHECK_EQ(weft_recv_timeout(weft_nats_sub_chan(s), &v, WEFT_SEC(10)), 0);
    CHECK_EQ(v, 77);
    weft_nats_sub_stats st; /* counted just after the send returned */
    for (int t = 0; t < 1000; t++) {
        weft_nats_sub_stats_get(s, &st);
        if (st.delivered == 5001)
            break;
        weft_sleep(WEFT_MS(1));
    }
    CHECK_EQ(st.bad, 1);
    CHECK_EQ(st.dropped, 1);
    CHECK_EQ(st.delivered, 5001);
    weft_nats_sub_close(s);
    CHECK_EQ(weft_recv(weft_nats_sub_chan(s), &v), -EPIPE);
    weft_nats_sub_free(s);
}

/* ---- codecs -----------------------------------------------------------------
 */

typedef struct point {
    int32_t x, y;
} point;

static ssize_t enc_point(const void *elem, void *buf, size_t cap, void *arg) {
    const point *p = elem;
    (void)arg;
    int n = snprintf(buf, cap, "%d,%d", p->x, p->y);
    return n < 0 || (size_t)n >= cap ? -EMSGSIZE : n;
}

static int dec_point(const void *data, size_t len, void *elem, void *arg) {
    char tmp[64];
    point *p = elem;
    (void)arg;
    if (len >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, data, len);
    tmp[len] = 0;
    return sscanf(tmp, "%d,%d", &p->x, &p->y) == 2 ? 0 : -EINVAL;
}

static void point_feeder(void *arg) {
    weft_chan *c = arg;
    for (int i = 0; i < 100; i++) {
        point p = {i, -i};
        CHECK_EQ(weft_send(c, &p), 0);
    }
    weft_close(c);
}

static void test_codec(weft_nats *nc) {
    weft_nats_sub *s;
    weft_nats_subopts so = {
        .elem_size = sizeof(point), .cap = 16, .decode = dec_point};
    CHECK_EQ(weft_nats_subscribe(nc, "t.pt", &so, &s), 0);
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(5)), 0);
    weft_chan *c = weft_chan_make(sizeof(point), 0);
    CHECK_EQ(weft_go(point_feeder, c), 0);
    weft_nats_pubopts po = {.elem_size = sizeof(point), .encode = enc_point};
    CHECK_EQ(weft_nats_publish(nc, "t.pt", c, &po), 0);
    weft_chan_free(c);
    CHECK_EQ(weft_nats_send(nc, "t.pt", "junk", 4), 0); /* decode fails */
    for (int i = 0; i < 100; i++) {
        point p;
        CHECK_EQ(weft_recv_timeout(weft_nats_sub_chan(s), &p, WEFT_SEC(10)), 0);
        CHECK(p.x == i && p.y == -i);
    }
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(5)), 0);
    for (int t = 0; t < 500 && weft_nats_sub_dropped(s) == 0; t++)
        weft_sleep(WEFT_MS(10));
    CHECK_EQ(weft_nats_sub_dropped(s), 1);
    weft_nats_sub_free(s);
}

/* ---- oversize values ------------------------------------------------------
 */

static ssize_t enc_huge(const void *elem, void *buf, size_t cap, void *arg) {
    (void)elem, (void)buf, (void)arg;
    return (ssize_t)cap + 1;
}

static void test_oversize(weft_nats *nc) {
    size_t max = weft_nats_max_payload(nc);
    CHECK(max >= 1024);
    char *big = calloc(1, max + 1);
    CHECK_EQ(weft_nats_send(nc, "t.big", big, max + 1), -EMSGSIZE);
    weft_chan *c = weft_chan_make(max + 1, 1);
    weft_nats_pubopts po = {.elem_size = max + 1};
    CHECK_EQ(weft_nats_publish(nc, "t.big", c, &po), -EMSGSIZE);
    weft_nats_sub *s;
    weft_nats_subopts so = {.elem_size = max + 1};
    CHECK_EQ(weft_nats_subscribe(nc, "t.big", &so, &s), -EMSGSIZE);
    weft_chan_free(c);
    /* an encoder producing too much: the publish stops with -EMSGSIZE */
    c = weft_chan_make(1, 1);
    CHECK_EQ(weft_send(c, big), 0);
    po = (weft_nats_pubopts){.elem_size = 1, .encode = enc_huge};
    CHECK_EQ(weft_nats_publish(nc, "t.big", c, &po), -EMSGSIZE);
    weft_chan_free(c);
    free(big);
}

/* ---- a full channel: drops are counted -------------------------------------
 */

static void test_full(weft_nats *nc) {
    weft_nats_sub *s;
    weft_nats_subopts so = {.elem_size = sizeof(uint64_t),
                            .cap = 4,
                            .full_wait = 1}; /* drop at once */
    CHECK_EQ(weft_nats_subscribe(nc, "t.full", &so, &s), 0);
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(5)), 0);
    publish_seq(nc, "t.full", 0, 100, 0);
    weft_nats_sub_stats st;
    for (int t = 0; t < 1000; t++) {
        weft_nats_sub_stats_get(s, &st);
        if (st.delivered + st.dropped == 100)
            break;
        weft_sleep(WEFT_MS(10));
    }
    CHECK_EQ(st.delivered, 4);
    CHECK_EQ(st.full, 96);
    CHECK_EQ(st.dropped, 96);
    for (uint64_t i = 0; i < 4; i++) {
        uint64_t v;
        CHECK_EQ(weft_try_recv(weft_nats_sub_chan(s), &v), 0);
        CHECK_EQ(v, i);
    }
    weft_nats_sub_free(s);

    /* never drop here: the feeder waits, libnats's queue (10 messages)
     * fills and libnats drops; freeing unblocks the feeder */
    so = (weft_nats_subopts){.elem_size = sizeof(uint64_t),
                             .cap = 1,
                             .full_wait = WEFT_FOREVER,
                             .pending_msgs = 10};
    CHECK_EQ(weft_nats_subscribe(nc, "t.full", &so, &s), 0);
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(5)), 0);
    publish_seq(nc, "t.full", 0, 100, 0);
    for (int t = 0; t < 1000; t++) {
        weft_nats_sub_stats_get(s, &st);
        if (st.lib >= 100 - 1 - 1 - 10)
            break;
        weft_sleep(WEFT_MS(10));
    }
    CHECK_EQ(st.full, 0);
    CHECK(st.lib >= 100 - 1 - 1 - 10 && st.lib < 100);
    CHECK_EQ(st.dropped, st.lib);
    weft_nats_sub_close(s);
    weft_nats_sub_stats_get(s, &st);
    CHECK(st.lib >= 100 - 1 - 1 - 10); /* still known once closed */
    weft_nats_sub_free(s);
}

/* ---- many subscriptions on one connection ----------------------------------
 * The connection's reader wakes exactly the feeders with messages; idle
 * ones stay parked and still get theirs later, in order.
 */

#define NSUBS 16

static void recv_seq(weft_nats_sub *s, uint64_t from, uint64_t n);

static void test_many_subs(weft_nats *nc) {
    weft_nats_sub *s[NSUBS];
    char subj[NSUBS][16];
    weft_nats_subopts so = {.elem_size = sizeof(uint64_t), .cap = 256};
    for (int i = 0; i < NSUBS; i++) {
        snprintf(subj[i], sizeof subj[i], "t.many.%d", i);
        CHECK_EQ(weft_nats_subscribe(nc, subj[i], &so, &s[i]), 0);
    }
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(5)), 0);
    for (int round = 0; round < 3; round++)
        for (int i = round; i < NSUBS; i += 2) {
            publish_seq(nc, subj[i], (uint64_t)round * 100, 100, 0);
            recv_seq(s[i], (uint64_t)round * 100, 100);
            uint64_t v;
            for (int j = 0; j < NSUBS; j++)
                CHECK_EQ(weft_try_recv(weft_nats_sub_chan(s[j]), &v), -EAGAIN);
        }
    for (int i = 0; i < NSUBS; i++) {
        weft_nats_sub_stats st;
        weft_nats_sub_stats_get(s[i], &st);
        CHECK_EQ(st.dropped, 0);
        weft_nats_sub_free(s[i]);
    }
}

/* ---- cancelling a publish
 * ---------------------------------------------------- */

static void test_cancel(weft_nats *nc) {
    weft_chan *c = weft_chan_make(sizeof(uint64_t), 4);
    canceller *k = cancel_soon();
    weft_nats_pubopts po = {.elem_size = sizeof(uint64_t), .ctx = k->ctx};
    CHECK_EQ(weft_nats_publish(nc, "t.cancel", c, &po), -ECANCELED);
    po.jetstream = 1; /* already cancelled: returns at once */
    CHECK_EQ(weft_nats_publish(nc, "t.cancel", c, &po), -ECANCELED);
    cancel_wait(k);
    weft_chan_free(c);
}

/* ---- JetStream
 * ------------------------------------------------------------------ */

static void recv_seq(weft_nats_sub *s, uint64_t from, uint64_t n) {
    for (uint64_t i = from; i < from + n; i++) {
        uint64_t v;
        CHECK_EQ(weft_recv_timeout(weft_nats_sub_chan(s), &v, WEFT_SEC(10)), 0);
        CHECK_EQ(v, i);
    }
}

static void test_jetstream(weft_nats *nc) {
    CHECK_EQ(weft_nats_stream(nc, "T", "t.js"), 0);
    CHECK_EQ(weft_nats_stream(nc, "T", "t.js"), 0); /* exists: fine */
    publish_seq(nc, "t.js", 0, 1000, 1);
    weft_nats_subopts so = {
        .elem_size = sizeof(uint64_t), .durable = "d1", .stream = "T"};
    weft_nats_sub *s;
    CHECK_EQ(weft_nats_subscribe(nc, "t.js", &so, &s), 0);
    CHECK_EQ(weft_chan_cap(weft_nats_sub_chan(s)), 0);
    recv_seq(s, 0, 1000);
    weft_nats_sub_free(s);
    /* the durable survives its subscription: it resumes where it was */
    publish_seq(nc, "t.js", 1000, 100, 1);
    CHECK_EQ(weft_nats_subscribe(nc, "t.js", &so, &s), 0);
    recv_seq(s, 1000, 100);
    weft_nats_sub_free(s);

    weft_chan *c = weft_chan_make(sizeof(uint64_t), 1);
    uint64_t v = 1;
    CHECK_EQ(weft_send(c, &v), 0);
    weft_nats_pubopts po = {.elem_size = sizeof v, .jetstream = 1};
    CHECK_EQ(weft_nats_publish(nc, "no.stream", c, &po), -EHOSTUNREACH);
    weft_chan_free(c);

    so.stream = "NOPE";
    CHECK_EQ(weft_nats_subscribe(nc, "t.js", &so, &s), -ENOENT);
    so.stream = NULL;
    CHECK_EQ(weft_nats_subscribe(nc, "t.js", &so, &s), -EINVAL);
}

static void test_manual_ack(weft_nats *nc) {
    publish_seq(nc, "t.js", 2000, 10, 1);
    weft_nats_subopts so = {
        .manual_ack = 1, .cap = 16, .durable = "d2", .stream = "T"};
    weft_nats_sub *s;
    CHECK_EQ(weft_nats_subscribe(nc, "t.js", &so, &s), 0);
    weft_chan *c = weft_nats_sub_chan(s);
    bool seen[1110] = {0}, naked = false;
    int acked = 0;
    while (acked < 1110) {
        weft_nats_msg m;
        CHECK_EQ(weft_recv_timeout(c, &m, WEFT_SEC(10)), 0);
        CHECK_EQ(m.len, sizeof(uint64_t));
        uint64_t v;
        memcpy(&v, m.data, sizeof v);
        CHECK(v < 2010 && (v < 1100 || v >= 2000));
        size_t k = v >= 2000 ? 1100 + (v - 2000) : v;
        if (v == 5 && !naked) { /* give one back: it comes again */
            naked = true;
            CHECK_EQ(weft_nats_nak(&m), 0);
            continue;
        }
        CHECK(!seen[k]);
        seen[k] = true;
        CHECK_EQ(weft_nats_ack(&m), 0);
        CHECK_EQ(weft_nats_ack(&m), -EINVAL); /* released already */
        acked++;
    }
    CHECK(naked);
    weft_nats_sub_free(s);
}

/* ---- closing the connection closes its subscriptions' channels -------------
 */

static void test_close_with_sub(void) {
    weft_nats *nc = nt_connect(srv.url);
    weft_nats_sub *s, *full;
    weft_nats_subopts so = {.elem_size = 8, .cap = 4};
    CHECK_EQ(weft_nats_subscribe(nc, "t.close", &so, &s), 0);
    /* and one whose feeder waits for room without limit */
    so = (weft_nats_subopts){
        .elem_size = 8, .cap = 1, .full_wait = WEFT_FOREVER};
    CHECK_EQ(weft_nats_subscribe(nc, "t.close.full", &so, &full), 0);
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(5)), 0);
    publish_seq(nc, "t.close.full", 0, 3, 0);
    for (int t = 0; t < 1000 && weft_chan_len(weft_nats_sub_chan(full)) < 1;
         t++)
        weft_sleep(WEFT_MS(1));
    weft_nats_close(nc);
    uint64_t v;
    CHECK_EQ(weft_recv_timeout(weft_nats_sub_chan(s), &v, WEFT_SEC(10)),
             -EPIPE);
    CHECK_EQ(weft_recv(weft_nats_sub_chan(full), &v), 0); /* buffered */
    CHECK_EQ(v, 0);
    CHECK_EQ(weft_recv_timeout(weft_nats_sub_chan(full), &v, WEFT_SEC(10)),
             -EPIPE);
    weft_nats_sub_free(s);
    weft_nats_sub_free(full);
}

int main(void) {
    TEST_BEGIN(120);
    nt_server_start(&srv);
    atexit(cleanup);
    nt_server_stop(&srv);
    test_connect_errors();
    nt_server_run(&srv, srv.port);

    weft_nats *nc = nt_connect(srv.url);
    test_roundtrip(nc);
    test_codec(nc);
    test_oversize(nc);
    test_full(nc);
    test_many_subs(nc);
    test_cancel(nc);
    test_jetstream(nc);
    test_manual_ack(nc);
    weft_nats_close(nc);
    test_close_with_sub();
    TEST_OK();
    return 0;
}
