/* SPDX-License-Identifier: MIT */
/*
 * ring: 1,000 goroutines in a ring of unbuffered channels (node i receives
 * on ch[i] and sends on ch[i+1 mod 1000]).  The root puts a token holding
 * N into ch[0]; each node passes it on less one, so the node that receives
 * 0 has seen N hops.  It reports its index, then closes its output; each
 * node closes its output when its input is closed, so the ring winds down
 * (after the clock stops).  Value: ns per hop.
 *
 * Result check: the node that saw the token reach 0 must be N mod 1000.
 * Go twin: bench/go/ring.
 */
#include "bench.h"

#define RING 1000

struct node {
    int64_t id;
    weft_chan *in, *out, *done;
    weft_wg *wg;
};

static void node(void *arg) {
    struct node *nd = arg;
    int64_t t;
    while (weft_recv(nd->in, &t) == 0) {
        if (t == 0) {
            BENCH_TRY(weft_send(nd->done, &nd->id));
            break;
        }
        t--;
        BENCH_TRY(weft_send(nd->out, &t));
    }
    BENCH_TRY(weft_close(nd->out));
    weft_wg_done(nd->wg);
}

struct ring {
    int64_t n;
    int64_t ns;
    int64_t last;
};

static void root(void *arg) {
    struct ring *s = arg;
    weft_chan *ch[RING];
    struct node *nodes = calloc(RING, sizeof(*nodes));
    weft_chan *done = bench_chan(sizeof(int64_t), 1);
    weft_wg wg = {0};
    BENCH_CHECK(nodes != NULL);
    for (int i = 0; i < RING; i++)
        ch[i] = bench_chan(sizeof(int64_t), 0);
    weft_wg_add(&wg, RING);
    for (int i = 0; i < RING; i++) {
        nodes[i] = (struct node){.id = i,
                                 .in = ch[i],
                                 .out = ch[(i + 1) % RING],
                                 .done = done,
                                 .wg = &wg};
        BENCH_TRY(weft_go(node, &nodes[i]));
    }
    int64_t t0 = weft_now();
    BENCH_TRY(weft_send(ch[0], &s->n));
    BENCH_TRY(weft_recv(done, &s->last));
    s->ns = weft_now() - t0;
    weft_wg_wait(&wg);
    for (int i = 0; i < RING; i++)
        weft_chan_free(ch[i]);
    weft_chan_free(done);
    free(nodes);
}

int main(int argc, char **argv) {
    struct ring s = {.n = bench_n(argc, argv, 1000000)};
    bench_run(root, &s);
    BENCH_CHECK(s.last == s.n % RING);
    bench_report("ring", s.n, (double)s.ns / (double)s.n, NULL);
    return 0;
}
