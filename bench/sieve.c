/* SPDX-License-Identifier: MIT */
/*
 * sieve: Go's concurrent prime sieve.  A generator sends 2, 3, 4, ... on an
 * unbuffered channel; the root takes the first number of the chain as the
 * next prime and appends a filter goroutine that drops its multiples.
 * Value: ns per prime for the first N primes; also total_ms.
 *
 * Unlike the tour's version, the generator stops at the N-th prime (known
 * from a plain sieve computed before the clock starts) and closes its
 * channel; each filter closes its output when its input closes.  Inside
 * the timed part the work is the same, and afterwards every goroutine ends,
 * so nothing leaks.  Result check: the primes must be the plain sieve's.
 * Go twin: bench/go/sieve.
 */
#include "bench.h"

#include <string.h>

struct stage {
    int64_t prime; /* filters: multiples to drop; generator: last number */
    weft_chan *in, *out;
    weft_wg *wg;
};

static void generate(void *arg) {
    struct stage *st = arg;
    for (int64_t i = 2; i <= st->prime; i++)
        BENCH_TRY(weft_send(st->out, &i));
    BENCH_TRY(weft_close(st->out));
    weft_wg_done(st->wg);
}

static void filter(void *arg) {
    struct stage *st = arg;
    int64_t v;
    while (weft_recv(st->in, &v) == 0)
        if (v % st->prime != 0)
            BENCH_TRY(weft_send(st->out, &v));
    BENCH_TRY(weft_close(st->out));
    weft_wg_done(st->wg);
}

/* The first n primes, by the sieve of Eratosthenes (sequential, untimed). */
static int64_t *first_primes(int64_t n) {
    int64_t *primes = malloc((size_t)n * sizeof(*primes));
    BENCH_CHECK(primes != NULL);
    for (int64_t limit = 64;; limit *= 2) {
        char *composite = calloc((size_t)limit, 1);
        int64_t found = 0;
        BENCH_CHECK(composite != NULL);
        for (int64_t i = 2; i < limit && found < n; i++) {
            if (composite[i])
                continue;
            primes[found++] = i;
            for (int64_t j = i * i; j < limit; j += i)
                composite[j] = 1;
        }
        free(composite);
        if (found == n)
            return primes;
    }
}

struct sieve {
    int64_t n;
    int64_t ns;
};

static void root(void *arg) {
    struct sieve *s = arg;
    int64_t *want = first_primes(s->n), *got = malloc(s->n * sizeof(*got));
    /* stage 0 is the generator, stage i filters the i-th prime */
    struct stage *st = calloc((size_t)s->n + 1, sizeof(*st));
    weft_wg wg = {0};
    BENCH_CHECK(got != NULL && st != NULL);
    weft_wg_add(&wg, s->n + 1);
    int64_t t0 = weft_now();
    st[0] = (struct stage){.prime = want[s->n - 1],
                           .out = bench_chan(sizeof(int64_t), 0),
                           .wg = &wg};
    BENCH_TRY(weft_go(generate, &st[0]));
    for (int64_t i = 1; i <= s->n; i++) {
        weft_chan *ch = st[i - 1].out;
        BENCH_TRY(weft_recv(ch, &got[i - 1]));
        st[i] = (struct stage){.prime = got[i - 1],
                               .in = ch,
                               .out = bench_chan(sizeof(int64_t), 0),
                               .wg = &wg};
        BENCH_TRY(weft_go(filter, &st[i]));
    }
    s->ns = weft_now() - t0;
    BENCH_CHECK(weft_recv(st[s->n].out, NULL) == -EPIPE);
    weft_wg_wait(&wg);
    BENCH_CHECK(memcmp(got, want, s->n * sizeof(*got)) == 0);
    for (int64_t i = 0; i <= s->n; i++)
        weft_chan_free(st[i].out);
    free(st);
    free(got);
    free(want);
}

int main(int argc, char **argv) {
    struct sieve s = {.n = bench_n(argc, argv, 5000)};
    bench_run(root, &s);
    char extra[32];
    snprintf(extra, sizeof(extra), "total_ms=%.1f", (double)s.ns / 1e6);
    bench_report("sieve", s.n, (double)s.ns / (double)s.n, extra);
    return 0;
}
