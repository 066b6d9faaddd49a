/* SPDX-License-Identifier: MIT */
/*
 * spawn: start N goroutines that each only call weft_wg_done, then wait for
 * them all.  Value: ns per goroutine (creation, first run, exit).
 *
 * Result check: the WaitGroup was set to N, so weft_wg_wait returning means
 * exactly N goroutines ran (one done too many would be fatal); every
 * weft_go must succeed.  Go twin: bench/go/spawn.
 *
 * The WaitGroup is on the heap, as the twin's is (`go build -gcflags=-m`:
 * "moved to heap: wg", its closures capture it).  In root's frame it would
 * share a cache line with the frames each weft_go call pushes, and every
 * weft_wg_done on the other core would take that line from the spawner:
 * 31 instead of 18 ns here (docs/BENCHMARKS.md).
 */
#include "bench.h"

struct spawn {
    int64_t n;
    int64_t ns;
};

static void child(void *wg) {
    weft_wg_done(wg);
}

static void root(void *arg) {
    struct spawn *s = arg;
    weft_wg *wg = calloc(1, sizeof *wg);
    BENCH_CHECK(wg);
    int64_t t0 = weft_now();
    weft_wg_add(wg, s->n);
    for (int64_t i = 0; i < s->n; i++)
        BENCH_TRY(weft_go(child, wg));
    weft_wg_wait(wg);
    s->ns = weft_now() - t0;
    free(wg);
}

int main(int argc, char **argv) {
    struct spawn s = {.n = bench_n(argc, argv, 1000000)};
    bench_run(root, &s);
    bench_report("spawn", s.n, (double)s.ns / (double)s.n, NULL);
    return 0;
}
