/* SPDX-License-Identifier: MIT */
/*
 * sieve: Go's concurrent prime sieve, a daisy chain of goroutines.
 *
 * gen sends 2, 3, 4, ... down a channel.  main takes the first number, a
 * prime p, prints it, and splices a new filter goroutine into the chain
 * that drops the multiples of p and passes the rest on.  The next number to
 * reach main is again prime, and so on: after SIEVE_PRIMES primes, that
 * many filters run concurrently, each holding one prime, each a sequential
 * process talking to its neighbours only through channels (CSP).
 *
 * Stopping the chain: Go's version simply lets the program exit.  Here
 * main closes the channel it reads from.  In weft (unlike Go, where it
 * would panic) a send on a closed channel returns -EPIPE, so the last
 * filter learns nobody listens any more; it closes its own input and
 * returns, and the news travels up the chain to gen.  Each sender frees
 * the channel it sent on once it got -EPIPE: by then the receiver has
 * closed it and let go of it.
 */
#include <stdio.h>
#include <weft.h>

#define SIEVE_PRIMES 20

typedef struct sieve_filter {
    weft_chan *in, *out;
    int prime;
    weft_wg *wg;
} sieve_filter;

/* Send v; on -EPIPE (the reader hung up) free c and return -1. */
static int sieve_pass(weft_chan *c, int v) {
    if (WEFT_SEND(c, v) == 0)
        return 0;
    weft_chan_free(c);
    return -1;
}

static void sieve_gen(void *arg) {
    sieve_filter *f = arg;
    for (int i = 2; sieve_pass(f->out, i) == 0; i++)
        ;
    weft_wg_done(f->wg);
}

static void sieve_filter_run(void *arg) {
    sieve_filter *f = arg;
    int v;
    while (WEFT_RECV(f->in, &v) == 0)
        if (v % f->prime != 0 && sieve_pass(f->out, v) < 0)
            break;
    weft_close(f->in); /* tell the goroutine upstream to stop */
    weft_wg_done(f->wg);
}

static int sieve_run(void) {
    static const int first[SIEVE_PRIMES] = {2,  3,  5,  7,  11, 13, 17,
                                            19, 23, 29, 31, 37, 41, 43,
                                            47, 53, 59, 61, 67, 71};
    sieve_filter f[SIEVE_PRIMES + 1];
    weft_wg wg = {0};
    weft_chan *ch = weft_chan_make(sizeof(int), 0);
    f[0] = (sieve_filter){.out = ch, .wg = &wg};
    weft_wg_add(&wg, 1);
    if (!ch || weft_go(sieve_gen, &f[0]) != 0)
        return 1;
    int bad = 0;
    printf("first %d primes:", SIEVE_PRIMES);
    for (int i = 1; i <= SIEVE_PRIMES; i++) {
        int prime;
        WEFT_RECV(ch, &prime);
        printf(" %d", prime);
        bad |= prime != first[i - 1];
        weft_chan *next = weft_chan_make(sizeof(int), 0);
        f[i] = (sieve_filter){ch, next, prime, &wg};
        weft_wg_add(&wg, 1);
        if (!next || weft_go(sieve_filter_run, &f[i]) != 0)
            return 1;
        ch = next;
    }
    printf("\n");
    weft_close(ch); /* hang up: the chain unwinds from the end */
    weft_wg_wait(&wg);
    printf("closed the end of the chain: %d filters and gen returned\n",
           SIEVE_PRIMES);
    return bad;
}

#ifndef WEFT_TOUR
int main(void) {
    return sieve_run();
}
#endif
