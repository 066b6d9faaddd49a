/* SPDX-License-Identifier: MIT */
/*
 * select_timeout: waiting on several channels at once, with a time limit.
 *
 * weft_select takes an array of cases (a receive or a send on a channel),
 * waits until one of them can go ahead, performs exactly that one and
 * returns its index.  Its last argument bounds the wait:
 *   - a timeout: -ETIMEDOUT if no case got ready in time;
 *   - 0: do not wait at all, Go's `default:` branch;
 *   - WEFT_FOREVER: wait as long as it takes.
 * A one-shot timer's channel can also be a case (Go's time.After), which
 * is how one deadline can cover a whole loop of selects.
 */
#include <errno.h>
#include <stdio.h>
#include <weft.h>

/* Reply on the channel after the given delay. */
typedef struct sel_reply {
    weft_chan *c;
    int64_t delay;
    weft_wg done;
} sel_reply;

static void sel_answer(void *arg) {
    sel_reply *r = arg;
    weft_sleep(r->delay);
    int v = 42;
    WEFT_SEND(r->c, v); /* buffered: never stuck, even if nobody waits */
    weft_wg_done(&r->done);
}

/* Ask a server that answers after answer_ms; wait at most limit_ms. */
static int sel_ask(int answer_ms, int limit_ms) {
    sel_reply r = {.c = weft_chan_make(sizeof(int), 1),
                   .delay = WEFT_MS(answer_ms)};
    weft_chan *quit = weft_chan_make(0, 0); /* nobody closes it here */
    int v = 0;
    weft_wg_add(&r.done, 1);
    if (!r.c || !quit || weft_go(sel_answer, &r) != 0)
        return -1;
    weft_case cases[] = {{.chan = r.c, .op = WEFT_RECV, .elem = &v},
                         {.chan = quit, .op = WEFT_RECV}};
    int i = weft_select(cases, 2, WEFT_MS(limit_ms));
    printf("  answer in %3d ms, limit %3d ms: %s", answer_ms, limit_ms,
           i == 0 ? "got" : weft_strerror(i));
    if (i == 0)
        printf(" %d", v);
    printf("\n");
    weft_wg_wait(&r.done); /* the server may still be using r.c */
    weft_chan_free(r.c);
    weft_chan_free(quit);
    return i;
}

/* Non-blocking sends: a full channel is a cue to drop, not to wait. */
static int sel_default(void) {
    weft_chan *c = weft_chan_make(sizeof(int), 2);
    int sent = 0, dropped = 0;
    if (!c)
        return -1;
    for (int v = 0; v < 5; v++) {
        weft_case send = {.chan = c, .op = WEFT_SEND, .elem = &v};
        if (weft_select(&send, 1, 0) == 0) /* select { case c <- v: ... */
            sent++;
        else /* ... default: } */
            dropped++;
    }
    printf("  5 sends into a buffer of 2, with default: %d sent, %d dropped\n",
           sent, dropped);
    weft_chan_free(c);
    return sent == 2 ? 0 : -1;
}

/* One deadline for a whole loop: the timer's channel is one more case. */
static int sel_deadline(void) {
    weft_timer *deadline = weft_timer_start(WEFT_MS(30), 0);
    weft_timer *tick = weft_timer_start(WEFT_MS(4), WEFT_MS(4));
    if (!deadline || !tick)
        return -1;
    int ticks = 0;
    weft_case cases[] = {{.chan = weft_timer_chan(tick), .op = WEFT_RECV},
                         {.chan = weft_timer_chan(deadline), .op = WEFT_RECV}};
    while (weft_select(cases, 2, WEFT_FOREVER) == 0)
        ticks++;
    printf("  a 4 ms ticker until a 30 ms deadline: %d ticks\n", ticks);
    weft_timer_stop(tick);
    weft_timer_stop(deadline);
    return ticks > 0 ? 0 : -1;
}

static int select_timeout_run(void) {
    printf("select with a time limit:\n");
    /* wide margins: the outcome must not hinge on scheduling delays of a
     * loaded (or emulated) machine */
    int late = sel_ask(1000, 10);
    int soon = sel_ask(5, 2000);
    return late != -ETIMEDOUT || soon != 0 || sel_default() != 0 ||
           sel_deadline() != 0;
}

#ifndef WEFT_TOUR
int main(void) {
    return select_timeout_run();
}
#endif
