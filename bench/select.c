/* SPDX-License-Identifier: MIT */
/*
 * select: one goroutine receives N values with weft_select over 4
 * unbuffered channels, each fed by its own producer (producer p sends the
 * integers i < N with i mod 4 == p).  Value: ns per select.
 *
 * Result check: the values received must sum to N(N-1)/2, and each channel
 * must have delivered exactly its producer's count.  Go twin:
 * bench/go/select.
 */
#include "bench.h"

#define FEEDS 4

struct producer {
    int64_t first, n;
    weft_chan *out;
    weft_wg *wg;
};

static void producer(void *arg) {
    struct producer *p = arg;
    for (int64_t v = p->first; v < p->n; v += FEEDS)
        BENCH_TRY(weft_send(p->out, &v));
    weft_wg_done(p->wg);
}

struct sel {
    int64_t n;
    int64_t ns;
};

static void root(void *arg) {
    struct sel *s = arg;
    struct producer prod[FEEDS];
    weft_case cases[FEEDS];
    int64_t v, sum = 0, got[FEEDS] = {0};
    weft_wg wg = {0};
    weft_wg_add(&wg, FEEDS);
    for (int p = 0; p < FEEDS; p++) {
        prod[p] = (struct producer){
            .first = p, .n = s->n, .out = bench_chan(sizeof(v), 0), .wg = &wg};
        cases[p] =
            (weft_case){.chan = prod[p].out, .op = WEFT_RECV, .elem = &v};
        BENCH_TRY(weft_go(producer, &prod[p]));
    }
    int64_t t0 = weft_now();
    for (int64_t i = 0; i < s->n; i++) {
        int k = weft_select(cases, FEEDS, WEFT_FOREVER);
        BENCH_CHECK(k >= 0 && k < FEEDS && cases[k].err == 0);
        sum += v;
        got[k]++;
    }
    s->ns = weft_now() - t0;
    weft_wg_wait(&wg);
    BENCH_CHECK(sum == s->n * (s->n - 1) / 2);
    for (int p = 0; p < FEEDS; p++) {
        BENCH_CHECK(got[p] == (s->n - p + FEEDS - 1) / FEEDS);
        weft_chan_free(prod[p].out);
    }
}

int main(int argc, char **argv) {
    struct sel s = {.n = bench_n(argc, argv, 4000000)};
    bench_run(root, &s);
    bench_report("select", s.n, (double)s.ns / (double)s.n, NULL);
    return 0;
}
