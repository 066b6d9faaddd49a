/* SPDX-License-Identifier: MIT */
/*
 * idle_mem: N goroutines all blocked receiving on one unbuffered signal
 * channel.  Value: resident memory per blocked goroutine, in bytes: RSS
 * from /proc/self/statm once they are all blocked, minus RSS before the
 * first was started, over N.
 *
 * Result check: after the channel is closed, every goroutine must have
 * been woken with -EPIPE.  Go twin: bench/go/idle_mem.
 */
#include "bench.h"

#include <stdatomic.h>

struct idle {
    int64_t n;
    int64_t bytes;
    weft_chan *gate;
    weft_wg started, finished;
    atomic_llong released;
};

static void sleeper(void *arg) {
    struct idle *s = arg;
    weft_wg_done(&s->started);
    if (weft_recv(s->gate, NULL) == -EPIPE)
        atomic_fetch_add(&s->released, 1);
    weft_wg_done(&s->finished);
}

static void root(void *arg) {
    struct idle *s = arg;
    s->gate = bench_chan(0, 0);
    weft_wg_add(&s->started, s->n);
    weft_wg_add(&s->finished, s->n);
    int64_t before = bench_rss_bytes();
    for (int64_t i = 0; i < s->n; i++)
        BENCH_TRY(weft_go(sleeper, s));
    weft_wg_wait(&s->started);
    /* the last ones may be between weft_wg_done and parking */
    weft_sleep(WEFT_MS(20));
    s->bytes = bench_rss_bytes() - before;
    BENCH_TRY(weft_close(s->gate));
    weft_wg_wait(&s->finished);
    weft_chan_free(s->gate);
}

int main(int argc, char **argv) {
    struct idle s = {.n = bench_n(argc, argv, 100000)};
    bench_run(root, &s);
    BENCH_CHECK(atomic_load(&s.released) == s.n);
    bench_report("idle_mem", s.n, (double)s.bytes / (double)s.n, NULL);
    return 0;
}
