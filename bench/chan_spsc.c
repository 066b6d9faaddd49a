/* SPDX-License-Identifier: MIT */
/*
 * chan_spsc: one producer sends the integers 0..N-1 through a buffered
 * channel of capacity 128 and closes it; the root receives until the close.
 * Value: ns per item.
 *
 * Result check: the values must arrive in order, N of them.  Go twin:
 * bench/go/chan_spsc.
 */
#include "bench.h"

struct spsc {
    int64_t n;
    int64_t ns;
    int64_t received;
    weft_chan *ch;
    weft_wg producer_done;
};

static void producer(void *arg) {
    struct spsc *s = arg;
    for (int64_t v = 0; v < s->n; v++)
        BENCH_TRY(weft_send(s->ch, &v));
    BENCH_TRY(weft_close(s->ch));
    weft_wg_done(&s->producer_done);
}

static void root(void *arg) {
    struct spsc *s = arg;
    int64_t v, next = 0;
    s->ch = bench_chan(sizeof(v), 128);
    weft_wg_add(&s->producer_done, 1);
    int64_t t0 = weft_now();
    BENCH_TRY(weft_go(producer, s));
    while (weft_recv(s->ch, &v) == 0) {
        BENCH_CHECK(v == next);
        next++;
    }
    s->ns = weft_now() - t0;
    s->received = next;
    weft_wg_wait(&s->producer_done);
    weft_chan_free(s->ch);
}

int main(int argc, char **argv) {
    struct spsc s = {.n = bench_n(argc, argv, 10000000)};
    bench_run(root, &s);
    BENCH_CHECK(s.received == s.n);
    bench_report("chan_spsc", s.n, (double)s.ns / (double)s.n, NULL);
    return 0;
}
