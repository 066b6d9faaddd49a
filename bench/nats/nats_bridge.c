/* SPDX-License-Identifier: MIT */
/*
 * nats_bridge: what the weft bridge costs over libnats alone, measured in
 * the same run against the same server (its own nats-server on loopback,
 * or $NATS_URL).  Two connections: one publishes, one subscribes.
 *
 *   throughput  N 16-byte values one way.
 *     raw:    a thread calls natsConnection_Publish in a loop; the
 *             subscription callback checks the order and counts.
 *     bridge: goroutine -> weft channel -> weft_nats_publish ->
 *             NATS -> weft_nats_subscribe channel -> goroutine checks.
 *   latency     M round trips, one at a time (ping, echo, pong), on
 *               connections that write each publish at once (send_asap;
 *               libnats's default batching adds ~1 ms per hop to both).
 *     raw:    a thread publishes and waits on a condition variable that
 *             the pong callback signals; the echo is a callback publishing.
 *     bridge: goroutines only: send on the ping channel, an echo goroutine
 *             receives and sends on the pong channel, receive the answer.
 *
 * Equal work on both sides: two connections each (publisher, subscriber;
 * client, echo), the same libnats options where both have one (send_asap
 * as above, default I/O buffers, for throughput pending limits of 1M
 * messages / 512 MiB), the same 16-byte payloads one message each, the
 * clock started after the connections and subscriptions exist.  What
 * differs is the bridge's own design: raw runs libnats as its API
 * documents by default (a reader thread per connection, a delivery thread
 * per subscription); the bridge serves the socket from goroutines through
 * libnats's event-loop interface (src/nats/loop.c), so a message reaches
 * its goroutine with goroutine switches where raw hands it from thread to
 * thread, and in exchange pays for the channel hops at both ends.
 *
 * Rounds alternate raw and bridge; each figure is the median round.  Nine
 * by default: on a 2-core machine single rounds of either side swing by
 * 30%, and with five the median CPU figure still moved by 20 points from
 * run to run.
 * Output: `<name> <N> <value> [key=value ...]` lines, as the other benches,
 * then a summary with the ratios.  Any lost or misordered value fails the
 * run (exit 1).
 *
 *   build/bench/nats_bridge [N [M [rounds]]]   (default 1000000 20000 9)
 */
#include "../../tests/nats/nats_test.h"

#include <nats/nats.h>
#include <pthread.h>
#include <sys/resource.h>

typedef struct val {
    uint64_t seq;
    uint64_t pad;
} val;

static void fail(const char *what) {
    fprintf(stderr, "bench: FAILED: %s\n", what);
    exit(1);
}

/* CPU time (user + system) of this process so far: every thread, libnats's
 * and weft's; not the server's. */
static int64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* A throughput run: values per second, and CPU ns this process spent per
 * value (less sensitive to other load on the machine than the rate). */
typedef struct tput {
    double rate, cpu;
} tput;

static tput tput_of(uint64_t n, int64_t ns, int64_t cpu) {
    return (tput){(double)n * 1e9 / (double)ns, (double)cpu / (double)n};
}

/* ---- a latch raw threads wait on --------------------------------------------
 */

typedef struct latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t count;
} latch;

static void latch_add(latch *l) {
    pthread_mutex_lock(&l->mu);
    l->count++;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void latch_wait(latch *l, uint64_t want) {
    pthread_mutex_lock(&l->mu);
    while (l->count < want)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

/* ---- throughput
 * -------------------------------------------------------------- */

typedef struct raw_sink {
    uint64_t next, n;
    bool bad;
    latch done;
} raw_sink;

static void raw_count(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                      void *closure) {
    raw_sink *k = closure;
    val v;
    (void)nc, (void)sub;
    if (natsMsg_GetDataLength(m) != sizeof v)
        k->bad = true;
    memcpy(&v, natsMsg_GetData(m), sizeof v);
    k->bad |= v.seq != k->next++;
    natsMsg_Destroy(m);
    if (k->next == k->n)
        latch_add(&k->done);
}

static natsConnection *raw_connect(const char *url, bool asap) {
    natsOptions *o = NULL;
    natsConnection *c = NULL;
    if (natsOptions_Create(&o) != NATS_OK ||
        natsOptions_SetURL(o, url) != NATS_OK ||
        natsOptions_SetSendAsap(o, asap) != NATS_OK ||
        natsConnection_Connect(&c, o) != NATS_OK)
        fail("raw connect");
    natsOptions_Destroy(o);
    return c;
}

static weft_nats *bridge_connect(const char *url, bool asap) {
    weft_nats *nc = NULL;
    weft_nats_opts o = {.timeout = WEFT_SEC(5), .send_asap = asap};
    if (weft_nats_connect_with(url, &o, &nc))
        fail("weft_nats_connect");
    return nc;
}

static tput raw_throughput(const char *url, uint64_t n) {
    natsConnection *pc = raw_connect(url, false), *sc = raw_connect(url, false);
    raw_sink k = {
        .n = n, .done = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER}};
    natsSubscription *sub;
    if (natsConnection_Subscribe(&sub, sc, "b.tp", raw_count, &k) != NATS_OK)
        fail("raw subscribe");
    natsSubscription_SetPendingLimits(sub, 1 << 20, 512 << 20);
    natsConnection_Flush(sc);
    int64_t t0 = weft_now(), c0 = cpu_ns();
    for (uint64_t i = 0; i < n; i++) {
        val v = {.seq = i};
        if (natsConnection_Publish(pc, "b.tp", &v, sizeof v) != NATS_OK)
            fail("raw publish");
    }
    natsConnection_Flush(pc);
    latch_wait(&k.done, 1);
    int64_t ns = weft_now() - t0, cpu = cpu_ns() - c0;
    if (k.bad)
        fail("raw throughput: lost or misordered");
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(pc);
    natsConnection_Destroy(sc);
    return tput_of(n, ns, cpu);
}

typedef struct src {
    weft_chan *c;
    uint64_t n;
} src;

static void gen(void *arg) {
    src *s = arg;
    for (uint64_t i = 0; i < s->n; i++) {
        val v = {.seq = i};
        weft_send(s->c, &v);
    }
    weft_close(s->c);
}

typedef struct pump {
    weft_nats *nc;
    const char *subject;
    weft_chan *c;
    int r;
    weft_wg done;
} pump;

static void pump_run(void *arg) {
    pump *p = arg;
    weft_nats_pubopts po = {.elem_size = sizeof(val)};
    p->r = weft_nats_publish(p->nc, p->subject, p->c, &po);
    weft_wg_done(&p->done);
}

static void pump_start(pump *p, weft_nats *nc, const char *subject) {
    *p = (pump){
        .nc = nc, .subject = subject, .c = weft_chan_make(sizeof(val), 4096)};
    weft_wg_add(&p->done, 1);
    weft_go(pump_run, p);
}

static void pump_stop(pump *p) {
    weft_close(p->c);
    weft_wg_wait(&p->done);
    if (p->r)
        fail("weft_nats_publish");
    weft_chan_free(p->c);
}

static weft_nats_sub *sub_chan(weft_nats *nc, const char *subject) {
    weft_nats_sub *s;
    weft_nats_subopts so = {.elem_size = sizeof(val), .cap = 4096};
    if (weft_nats_subscribe(nc, subject, &so, &s) ||
        weft_nats_flush(nc, WEFT_SEC(5)))
        fail("weft_nats_subscribe");
    return s;
}

typedef struct sink {
    weft_chan *c;
    uint64_t n;
    weft_wg done;
} sink;

static void sink_run(void *arg) {
    sink *k = arg;
    for (uint64_t i = 0; i < k->n; i++) {
        val v;
        if (weft_recv(k->c, &v) || v.seq != i)
            fail("bridge throughput: lost or misordered");
    }
    weft_wg_done(&k->done);
}

static tput bridge_throughput(const char *url, uint64_t n) {
    weft_nats *pc = bridge_connect(url, false),
              *sc = bridge_connect(url, false);
    weft_nats_sub *s = sub_chan(sc, "b.tp");
    sink k = {.c = weft_nats_sub_chan(s), .n = n};
    weft_wg_add(&k.done, 1);
    weft_go(sink_run, &k);
    pump p;
    int64_t t0 = weft_now(), c0 = cpu_ns();
    pump_start(&p, pc, "b.tp");
    src g = {p.c, n};
    /* the generator closes p.c; pump_stop's close then just fails */
    weft_go(gen, &g);
    weft_wg_wait(&k.done);
    int64_t ns = weft_now() - t0, cpu = cpu_ns() - c0;
    pump_stop(&p);
    weft_nats_sub_free(s);
    weft_nats_close(pc);
    weft_nats_close(sc);
    return tput_of(n, ns, cpu);
}

/* ---- latency
 * ---------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct lat {
    double median, p99;
} lat;

static lat summarize(int64_t *rtt, uint64_t m) {
    qsort(rtt, m, sizeof *rtt, cmp_i64);
    return (lat){(double)rtt[m / 2], (double)rtt[m * 99 / 100]};
}

static void raw_echo(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                     void *closure) {
    (void)sub, (void)closure;
    natsConnection_Publish(nc, "b.pong", natsMsg_GetData(m),
                           natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

typedef struct raw_client {
    latch got;
    uint64_t last;
} raw_client;

static void raw_pong(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                     void *closure) {
    raw_client *c = closure;
    (void)nc, (void)sub;
    memcpy(&c->last, natsMsg_GetData(m), sizeof c->last);
    natsMsg_Destroy(m);
    latch_add(&c->got);
}

static lat raw_latency(const char *url, uint64_t m, int64_t *rtt) {
    natsConnection *cc = raw_connect(url, true), *ec = raw_connect(url, true);
    raw_client c = {
        .got = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER}};
    natsSubscription *ping, *pong;
    if (natsConnection_Subscribe(&ping, ec, "b.ping", raw_echo, NULL) ||
        natsConnection_Subscribe(&pong, cc, "b.pong", raw_pong, &c))
        fail("raw subscribe");
    natsConnection_Flush(ec);
    natsConnection_Flush(cc);
    for (uint64_t i = 0; i < m; i++) {
        val v = {.seq = i};
        int64_t t0 = weft_now();
        natsConnection_Publish(cc, "b.ping", &v, sizeof v);
        latch_wait(&c.got, i + 1);
        rtt[i] = weft_now() - t0;
        if (c.last != i)
            fail("raw latency: wrong answer");
    }
    natsSubscription_Destroy(ping);
    natsSubscription_Destroy(pong);
    natsConnection_Destroy(cc);
    natsConnection_Destroy(ec);
    return summarize(rtt, m);
}

typedef struct echo {
    weft_chan *in, *out;
    weft_wg done;
} echo;

static void echo_run(void *arg) {
    echo *e = arg;
    val v;
    while (weft_recv(e->in, &v) == 0)
        weft_send(e->out, &v);
    weft_wg_done(&e->done);
}

typedef struct bridge_lat {
    const char *url;
    uint64_t m;
    int64_t *rtt;
    lat out;
    weft_wg done;
} bridge_lat;

static void bridge_client(void *arg) {
    bridge_lat *b = arg;
    weft_nats *cc = bridge_connect(b->url, true),
              *ec = bridge_connect(b->url, true);
    weft_nats_sub *ping = sub_chan(ec, "b.ping"),
                  *pong = sub_chan(cc, "b.pong");
    pump to_ping, to_pong;
    pump_start(&to_ping, cc, "b.ping");
    pump_start(&to_pong, ec, "b.pong");
    echo e = {.in = weft_nats_sub_chan(ping), .out = to_pong.c};
    weft_wg_add(&e.done, 1);
    weft_go(echo_run, &e);
    for (uint64_t i = 0; i < b->m; i++) {
        val v = {.seq = i};
        int64_t t0 = weft_now();
        weft_send(to_ping.c, &v);
        if (weft_recv(weft_nats_sub_chan(pong), &v) || v.seq != i)
            fail("bridge latency: wrong answer");
        b->rtt[i] = weft_now() - t0;
    }
    weft_nats_sub_close(ping); /* ends the echo */
    weft_wg_wait(&e.done);
    pump_stop(&to_ping);
    pump_stop(&to_pong);
    weft_nats_sub_free(ping);
    weft_nats_sub_free(pong);
    weft_nats_close(cc);
    weft_nats_close(ec);
    b->out = summarize(b->rtt, b->m);
    weft_wg_done(&b->done);
}

static lat bridge_latency(const char *url, uint64_t m, int64_t *rtt) {
    bridge_lat b = {.url = url, .m = m, .rtt = rtt};
    weft_wg_add(&b.done, 1);
    weft_go(bridge_client, &b);
    weft_wg_wait(&b.done);
    return b.out;
}

/* ---- driver
 * ---------------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    uint64_t m = argc > 2 ? strtoull(argv[2], NULL, 10) : 20000;
    int rounds = argc > 3 ? atoi(argv[3]) : 9;
    if (!n || !m || rounds < 1 || rounds > 64)
        fail("usage: nats_bridge [N [M [rounds]]]");
    nt_server srv = {0};
    const char *url = getenv("NATS_URL");
    if (!url) {
        nt_server_start(&srv);
        url = srv.url;
    }
    double tr[64], tb[64], cr[64], cb[64], lrm[64], lrp[64], lbm[64], lbp[64];
    int64_t *rtt = calloc(m, sizeof *rtt);
    for (int r = 0; r < rounds; r++) {
        tput a = raw_throughput(url, n), b = bridge_throughput(url, n);
        tr[r] = a.rate, cr[r] = a.cpu, tb[r] = b.rate, cb[r] = b.cpu;
        lat la = raw_latency(url, m, rtt), lb = bridge_latency(url, m, rtt);
        lrm[r] = la.median, lrp[r] = la.p99;
        lbm[r] = lb.median, lbp[r] = lb.p99;
        fprintf(stderr,
                "round %d: throughput raw %.0f bridge %.0f /s (cpu %.0f / "
                "%.0f ns per value), latency raw %.0f bridge %.0f ns\n",
                r + 1, a.rate, b.rate, a.cpu, b.cpu, la.median, lb.median);
    }
    double rawt = median(tr, rounds), brt = median(tb, rounds);
    double rawc = median(cr, rounds), brc = median(cb, rounds);
    double rawl = median(lrm, rounds), brl = median(lbm, rounds);
    printf("nats_throughput_raw %" PRIu64 " %.0f unit=values/s cpu_ns=%.0f\n",
           n, rawt, rawc);
    printf("nats_throughput_bridge %" PRIu64 " %.0f unit=values/s "
           "cpu_ns=%.0f\n",
           n, brt, brc);
    printf("nats_latency_raw %" PRIu64 " %.0f unit=ns/roundtrip p99=%.0f\n", m,
           rawl, median(lrp, rounds));
    printf("nats_latency_bridge %" PRIu64 " %.0f unit=ns/roundtrip p99=%.0f\n",
           m, brl, median(lbp, rounds));
    printf("bridge/raw: throughput %.3f (cost %+.1f%%), cpu per value %.3f "
           "(cost %+.1f%%), latency %.3f (cost %+.1f%%); median of %d "
           "rounds\n",
           brt / rawt, (rawt / brt - 1) * 100, brc / rawc,
           (brc / rawc - 1) * 100, brl / rawl, (brl / rawl - 1) * 100, rounds);
    free(rtt);
    if (srv.pid)
        nt_server_cleanup(&srv);
    return 0;
}
