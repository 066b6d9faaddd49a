/* SPDX-License-Identifier: MIT */
/*
 * The server restarts mid-stream (graceful stop, start on the same port
 * with the same JetStream store), while one connection publishes a paced
 * stream of numbered values and another receives it.
 *
 * Core NATS: both connections reconnect by themselves and the stream goes
 * on; what arrives is in order, and the gap is the loss, counted and
 * printed.  JetStream: every value arrives (duplicates counted).
 */
#include "nats_test.h"

#include <stdatomic.h>

#define PACE_EVERY 10
#define PACE WEFT_MS(1)

typedef struct producer {
    weft_nats *nc;
    const char *subject;
    int jetstream;
    uint64_t n;
    weft_chan *c;
    int result;
    atomic_bool finished;
    weft_wg done;
} producer;

static void feed(void *arg) {
    producer *p = arg;
    for (uint64_t i = 0; i < p->n; i++) {
        CHECK_EQ(weft_send(p->c, &i), 0);
        if (i % PACE_EVERY == 0)
            weft_sleep(PACE);
    }
    weft_close(p->c);
}

static void publish(void *arg) {
    producer *p = arg;
    weft_nats_pubopts po = {.elem_size = sizeof(uint64_t),
                            .jetstream = p->jetstream,
                            .ack_wait = WEFT_SEC(1)};
    p->result = weft_nats_publish(p->nc, p->subject, p->c, &po);
    atomic_store(&p->finished, true);
    weft_wg_done(&p->done);
}

static void producer_start(producer *p) {
    p->c = weft_chan_make(sizeof(uint64_t), 64);
    weft_wg_add(&p->done, 1);
    CHECK_EQ(weft_go(feed, p), 0);
    CHECK_EQ(weft_go(publish, p), 0);
}

static void producer_wait(producer *p) {
    weft_wg_wait(&p->done);
    if (p->result)
        fprintf(stderr, "publish: %s\n", weft_strerror(p->result));
    CHECK_EQ(p->result, 0);
    weft_chan_free(p->c);
}

static weft_nats *connect_fast(const char *url) {
    weft_nats *nc = NULL;
    weft_nats_opts o = {.timeout = WEFT_SEC(10),
                        .reconnect_wait = WEFT_MS(100)};
    CHECK_EQ(weft_nats_connect_with(url, &o, &nc), 0);
    return nc;
}

static void test_core(nt_server *srv, weft_nats *pc, weft_nats *sc) {
    producer p = {.nc = pc, .subject = "r.core", .n = 10000};
    weft_nats_sub *s;
    weft_nats_subopts so = {.elem_size = sizeof(uint64_t), .cap = 4096};
    CHECK_EQ(weft_nats_subscribe(sc, "r.core", &so, &s), 0);
    CHECK_EQ(weft_nats_flush(sc, WEFT_SEC(5)), 0);
    producer_start(&p);
    uint64_t got = 0, last = 0, at = 0;
    bool restarted = false;
    for (;;) {
        uint64_t v;
        int r = weft_recv_timeout(weft_nats_sub_chan(s), &v, WEFT_SEC(2));
        if (r == -ETIMEDOUT && !atomic_load(&p.finished))
            continue;
        if (r)
            break;
        CHECK(got == 0 || v > last); /* in order; a gap is a loss */
        last = v;
        got++;
        if (!restarted && got >= p.n / 4) {
            nt_server_restart(srv);
            restarted = true;
            at = v;
        }
        if (v == p.n - 1)
            break;
    }
    producer_wait(&p);
    CHECK(restarted && last > at); /* the stream went on after it */
    CHECK(weft_nats_reconnects(pc) >= 1 && weft_nats_reconnects(sc) >= 1);
    printf("core: %" PRIu64 " sent, %" PRIu64 " received in order, %" PRIu64
           " lost across the restart (dropped on our side: %" PRIu64 ")\n",
           p.n, got, p.n - got, weft_nats_sub_dropped(s));
    weft_nats_sub_free(s);
}

static void test_jetstream(nt_server *srv, weft_nats *pc, weft_nats *sc) {
    producer p = {.nc = pc, .subject = "r.js", .jetstream = 1, .n = 5000};
    CHECK_EQ(weft_nats_stream(pc, "R", "r.js"), 0);
    weft_nats_sub *s;
    weft_nats_subopts so = {.elem_size = sizeof(uint64_t),
                            .durable = "rd",
                            .stream = "R",
                            .ack_wait = WEFT_SEC(1)};
    CHECK_EQ(weft_nats_subscribe(sc, "r.js", &so, &s), 0);
    uint64_t before = weft_nats_reconnects(sc);
    producer_start(&p);
    bool *seen = calloc(p.n, sizeof *seen);
    uint64_t distinct = 0, dups = 0;
    while (distinct < p.n) {
        uint64_t v;
        CHECK_EQ(weft_recv_timeout(weft_nats_sub_chan(s), &v, WEFT_SEC(30)), 0);
        CHECK(v < p.n);
        dups += seen[v];
        distinct += !seen[v];
        seen[v] = true;
        if (distinct == p.n / 4)
            nt_server_restart(srv);
    }
    producer_wait(&p);
    CHECK(weft_nats_reconnects(sc) > before);
    printf("jetstream: %" PRIu64 " sent, all received across the restart, "
           "%" PRIu64 " twice\n",
           p.n, dups);
    free(seen);
    weft_nats_sub_free(s);
}

int main(void) {
    TEST_BEGIN(200);
    nt_server srv;
    nt_server_start(&srv);
    weft_nats *pc = connect_fast(srv.url), *sc = connect_fast(srv.url);
    test_core(&srv, pc, sc);
    test_jetstream(&srv, pc, sc);
    weft_nats_close(pc);
    weft_nats_close(sc);
    nt_server_cleanup(&srv);
    TEST_OK();
    return 0;
}
