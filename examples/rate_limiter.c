/* SPDX-License-Identifier: MIT */
/*
 * rate_limiter: a ticker paces work; a buffered channel allows bursts.
 *
 * A ticker is a timer with a period: weft_timer_start(delay, period) sends
 * the time on its channel every period (Go's time.Ticker).  Waiting for a
 * tick before each request caps the rate at one request per period.
 *
 * To allow short bursts while keeping the same average rate, keep a bucket
 * of tokens: a buffered channel holding up to RATE_BURST of them.  A
 * refill goroutine adds one per tick (a full bucket simply skips it: that
 * is a try_send); a request takes one.  The first RATE_BURST requests find
 * tokens waiting and go at once, the rest are paced by the ticker.  The
 * refill goroutine stops when told (done channel) and stops its own ticker:
 * a ticker must be stopped by the goroutine that receives from it.
 */
#include <stdio.h>
#include <weft.h>

#define RATE_REQUESTS 5
#define RATE_BURST 3
#define RATE_PERIOD_MS 20

static double rate_ms_since(int64_t t0) {
    return (double)(weft_now() - t0) / 1e6;
}

/* One request per tick.  Returns the time the requests took, in ms. */
static double rate_steady(void) {
    weft_timer *tick =
        weft_timer_start(WEFT_MS(RATE_PERIOD_MS), WEFT_MS(RATE_PERIOD_MS));
    if (!tick)
        return -1;
    int64_t t0 = weft_now();
    printf("steady, one per %d ms:", RATE_PERIOD_MS);
    for (int i = 1; i <= RATE_REQUESTS; i++) {
        weft_recv(weft_timer_chan(tick), NULL); /* wait for the next tick */
        printf(" #%d@%.0fms", i, rate_ms_since(t0));
    }
    printf("\n");
    double took = rate_ms_since(t0);
    weft_timer_stop(tick);
    return took;
}

typedef struct rate_bucket {
    weft_chan *tokens; /* signal channel with RATE_BURST slots */
    weft_chan *done;   /* closed to stop the refill goroutine */
    weft_wg stopped;
} rate_bucket;

static void rate_refill(void *arg) {
    rate_bucket *b = arg;
    weft_timer *tick =
        weft_timer_start(WEFT_MS(RATE_PERIOD_MS), WEFT_MS(RATE_PERIOD_MS));
    weft_case cases[] = {{.chan = weft_timer_chan(tick), .op = WEFT_RECV},
                         {.chan = b->done, .op = WEFT_RECV}};
    while (tick && weft_select(cases, 2, WEFT_FOREVER) == 0)
        weft_try_send(b->tokens, NULL); /* a full bucket drops the token */
    weft_timer_stop(tick);
    weft_wg_done(&b->stopped);
}

/* A burst of RATE_BURST, then one per tick. */
static double rate_bursty(void) {
    rate_bucket b = {.tokens = weft_chan_make(0, RATE_BURST),
                     .done = weft_chan_make(0, 0)};
    if (!b.tokens || !b.done)
        return -1;
    for (int i = 0; i < RATE_BURST; i++)
        weft_send(b.tokens, NULL); /* start with a full bucket */
    weft_wg_add(&b.stopped, 1);
    if (weft_go(rate_refill, &b) != 0)
        return -1;
    int64_t t0 = weft_now();
    printf("bursts of %d:          ", RATE_BURST);
    for (int i = 1; i <= RATE_REQUESTS; i++) {
        weft_recv(b.tokens, NULL); /* take a token */
        printf(" #%d@%.0fms", i, rate_ms_since(t0));
    }
    printf("\n");
    double took = rate_ms_since(t0);
    weft_close(b.done);
    weft_wg_wait(&b.stopped);
    weft_chan_free(b.tokens);
    weft_chan_free(b.done);
    return took;
}

static int rate_limiter_run(void) {
    /* loose lower bounds: a tick never comes early */
    double steady = rate_steady();
    double bursty = rate_bursty();
    return steady < (RATE_REQUESTS - 1) * RATE_PERIOD_MS ||
           bursty < (RATE_REQUESTS - RATE_BURST - 1) * RATE_PERIOD_MS;
}

#ifndef WEFT_TOUR
int main(void) {
    return rate_limiter_run();
}
#endif
