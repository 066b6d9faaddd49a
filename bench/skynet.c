/* SPDX-License-Identifier: MIT */
/*
 * skynet: the classic benchmark.  A tree of goroutines with branching 10
 * and N leaves (N a power of 10); leaf k sends k to its parent on the
 * parent's unbuffered channel, every inner node sends the sum of its
 * children.  Value: ns per leaf; also total_ms and peak_rss_mb.
 *
 * Children read their arguments from the parent's stack: the parent stays
 * blocked receiving until all of them have sent, so the frame outlives
 * every reader.  Result check: the root sum must be N(N-1)/2.  Go twin:
 * bench/go/skynet.
 */
#include "bench.h"

#define BRANCH 10

struct node {
    weft_chan *out;
    int64_t num, size;
};

static void node(void *arg) {
    struct node me = *(struct node *)arg;
    if (me.size == 1) {
        BENCH_TRY(weft_send(me.out, &me.num));
        return;
    }
    weft_chan *rc = bench_chan(sizeof(int64_t), 0);
    struct node kids[BRANCH];
    int64_t sub = me.size / BRANCH, sum = 0, v;
    for (int i = 0; i < BRANCH; i++) {
        kids[i] =
            (struct node){.out = rc, .num = me.num + i * sub, .size = sub};
        BENCH_TRY(weft_go(node, &kids[i]));
    }
    for (int i = 0; i < BRANCH; i++) {
        BENCH_TRY(weft_recv(rc, &v));
        sum += v;
    }
    weft_chan_free(rc);
    BENCH_TRY(weft_send(me.out, &sum));
}

struct skynet {
    int64_t n;
    int64_t ns;
    int64_t sum;
};

static void root(void *arg) {
    struct skynet *s = arg;
    weft_chan *c = bench_chan(sizeof(int64_t), 0);
    struct node top = {.out = c, .num = 0, .size = s->n};
    int64_t t0 = weft_now();
    BENCH_TRY(weft_go(node, &top));
    BENCH_TRY(weft_recv(c, &s->sum));
    s->ns = weft_now() - t0;
    weft_chan_free(c);
}

int main(int argc, char **argv) {
    struct skynet s = {.n = bench_n(argc, argv, 1000000)};
    int64_t p = 1;
    while (p < s.n)
        p *= BRANCH;
    if (p != s.n)
        bench_fail("skynet: N must be a power of %d", BRANCH);
    bench_run(root, &s);
    BENCH_CHECK(s.sum == s.n * (s.n - 1) / 2);
    char extra[64];
    snprintf(extra, sizeof(extra), "total_ms=%.1f peak_rss_mb=%.1f",
             (double)s.ns / 1e6, bench_peak_rss_mb());
    bench_report("skynet", s.n, (double)s.ns / (double)s.n, extra);
    return 0;
}
