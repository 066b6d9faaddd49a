/* SPDX-License-Identifier: MIT */
/*
 * pingpong: two goroutines, two unbuffered channels; the root sends i on
 * ping, the echo goroutine answers i + 1 on pong.  N round trips.
 * Value: ns per round trip (two unbuffered hand-offs).
 *
 * Result check: every answer must be the question plus one.  Go twin:
 * bench/go/pingpong.
 */
#include "bench.h"

struct pingpong {
    int64_t n;
    int64_t ns;
    weft_chan *ping, *pong;
    weft_wg echo_done;
};

/* Answers until ping is closed. */
static void echo(void *arg) {
    struct pingpong *s = arg;
    int64_t v;
    while (weft_recv(s->ping, &v) == 0) {
        v++;
        BENCH_TRY(weft_send(s->pong, &v));
    }
    weft_wg_done(&s->echo_done);
}

static void root(void *arg) {
    struct pingpong *s = arg;
    s->ping = bench_chan(sizeof(int64_t), 0);
    s->pong = bench_chan(sizeof(int64_t), 0);
    weft_wg_add(&s->echo_done, 1);
    BENCH_TRY(weft_go(echo, s));
    int64_t t0 = weft_now();
    for (int64_t i = 0; i < s->n; i++) {
        int64_t v;
        BENCH_TRY(weft_send(s->ping, &i));
        BENCH_TRY(weft_recv(s->pong, &v));
        BENCH_CHECK(v == i + 1);
    }
    s->ns = weft_now() - t0;
    BENCH_TRY(weft_close(s->ping));
    weft_wg_wait(&s->echo_done);
    weft_chan_free(s->ping);
    weft_chan_free(s->pong);
}

int main(int argc, char **argv) {
    struct pingpong s = {.n = bench_n(argc, argv, 1000000)};
    bench_run(root, &s);
    bench_report("pingpong", s.n, (double)s.ns / (double)s.n, NULL);
    return 0;
}
