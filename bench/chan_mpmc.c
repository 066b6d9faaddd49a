/* SPDX-License-Identifier: MIT */
/*
 * chan_mpmc: 4 producers send the integers 0..N-1 (producer p a contiguous
 * quarter) through one buffered channel of capacity 128; 4 consumers
 * receive until it is closed, which the root does once every producer is
 * done.  Value: ns per item.
 *
 * Result check: the consumers must receive N values summing to N(N-1)/2.
 * Go twin: bench/go/chan_mpmc.
 */
#include "bench.h"

#define SIDE 4

struct worker {
    int64_t lo, hi;     /* producer: values sent */
    int64_t sum, count; /* consumer: what it received */
    weft_chan *ch;
    weft_wg *wg;
};

static void producer(void *arg) {
    struct worker *w = arg;
    for (int64_t v = w->lo; v < w->hi; v++)
        BENCH_TRY(weft_send(w->ch, &v));
    weft_wg_done(w->wg);
}

static void consumer(void *arg) {
    struct worker *w = arg;
    int64_t v;
    while (weft_recv(w->ch, &v) == 0) {
        w->sum += v;
        w->count++;
    }
    weft_wg_done(w->wg);
}

struct mpmc {
    int64_t n;
    int64_t ns;
    int64_t sum, count;
};

static void root(void *arg) {
    struct mpmc *s = arg;
    weft_chan *ch = bench_chan(sizeof(int64_t), 128);
    weft_wg producers = {0}, consumers = {0};
    struct worker prod[SIDE], cons[SIDE];
    weft_wg_add(&producers, SIDE);
    weft_wg_add(&consumers, SIDE);
    int64_t t0 = weft_now();
    for (int i = 0; i < SIDE; i++) {
        prod[i] = (struct worker){.lo = s->n * i / SIDE,
                                  .hi = s->n * (i + 1) / SIDE,
                                  .ch = ch,
                                  .wg = &producers};
        cons[i] = (struct worker){.ch = ch, .wg = &consumers};
        BENCH_TRY(weft_go(producer, &prod[i]));
        BENCH_TRY(weft_go(consumer, &cons[i]));
    }
    weft_wg_wait(&producers);
    BENCH_TRY(weft_close(ch));
    weft_wg_wait(&consumers);
    s->ns = weft_now() - t0;
    for (int i = 0; i < SIDE; i++) {
        s->sum += cons[i].sum;
        s->count += cons[i].count;
    }
    weft_chan_free(ch);
}

int main(int argc, char **argv) {
    struct mpmc s = {.n = bench_n(argc, argv, 10000000)};
    bench_run(root, &s);
    BENCH_CHECK(s.count == s.n);
    BENCH_CHECK(s.sum == s.n * (s.n - 1) / 2);
    bench_report("chan_mpmc", s.n, (double)s.ns / (double)s.n, NULL);
    return 0;
}
