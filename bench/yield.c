/* SPDX-License-Identifier: MIT */
/*
 * yield: two goroutines call weft_yield, N times in total (N/2 each).
 * Value: ns per yield.
 *
 * Result check: each goroutine reports how many yields it made; the sum
 * must be N.  Go twin: bench/go/yield (runtime.Gosched).
 */
#include "bench.h"

struct yielder {
    int64_t n;
    int64_t done;
    weft_wg *wg;
};

static void yielder(void *arg) {
    struct yielder *y = arg;
    int64_t i;
    for (i = 0; i < y->n; i++)
        weft_yield();
    y->done = i;
    weft_wg_done(y->wg);
}

struct yield {
    int64_t n;
    int64_t ns;
    int64_t total;
};

static void root(void *arg) {
    struct yield *s = arg;
    weft_wg wg = {0};
    struct yielder y[2] = {{.n = s->n / 2, .wg = &wg},
                           {.n = s->n - s->n / 2, .wg = &wg}};
    int64_t t0 = weft_now();
    weft_wg_add(&wg, 2);
    for (int i = 0; i < 2; i++)
        BENCH_TRY(weft_go(yielder, &y[i]));
    weft_wg_wait(&wg);
    s->ns = weft_now() - t0;
    s->total = y[0].done + y[1].done;
}

int main(int argc, char **argv) {
    struct yield s = {.n = bench_n(argc, argv, 5000000)};
    bench_run(root, &s);
    BENCH_CHECK(s.total == s.n);
    bench_report("yield", s.n, (double)s.ns / (double)s.n, NULL);
    return 0;
}
