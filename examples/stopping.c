/* SPDX-License-Identifier: MIT */
/*
 * stopping: how a goroutine ends, and what a stuck one looks like.
 *
 * weft has no way to kill a goroutine from outside, just as Go has none: a
 * goroutine stops by returning.  So every goroutine needs a planned end.
 * The program shows, in order:
 *   1. a loop that ends by itself (it runs out of work);
 *   2. a goroutine told to stop: it watches a done channel (closed by the
 *      one who wants it gone) in a select next to its work.  A context
 *      (weft_ctx) packages the same thing: its done channel is closed when
 *      it is cancelled or its deadline passes, and weft_ctx_err says which;
 *   3. the mistake to avoid: a goroutine blocked forever on a channel that
 *      nobody will use again - a worker answering a caller who stopped
 *      waiting.  It never ends, holds its stack and whatever it points to,
 *      and nothing complains; weft_dump(), which lists every goroutine and
 *      what it waits on, finds it.  Then the fix;
 *   4. a goroutine that never ends on purpose (a background heartbeat): it
 *      runs until the program ends, which ends every goroutine with it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <weft.h>

/* ---- 1. the loop ends by itself ------------------------------------------ */

static void stop_sum(void *arg) {
    weft_chan *out = arg;
    long sum = 0;
    for (int i = 1; i <= 1000; i++) /* a loop with an end */
        sum += i;
    WEFT_SEND(out, sum);
} /* returning is the goroutine's end */

static int stop_show_finite(void) {
    weft_chan *out = weft_chan_make(sizeof(long), 0);
    long sum;
    if (!out || weft_go(stop_sum, out) != 0)
        return 1;
    WEFT_RECV(out, &sum);
    weft_chan_free(out);
    printf("1. loop ends by itself: summed 1..1000 = %ld and returned\n", sum);
    return sum != 500500;
}

/* ---- 2. it is told to stop: a done channel, or a context ----------------- */

typedef struct stop_worker {
    weft_chan *done;   /* closed when the worker must stop */
    weft_chan *report; /* its last words: the rounds of work it did */
} stop_worker;

static void stop_until_done(void *arg) {
    stop_worker *w = arg;
    long rounds = 0;
    weft_case watch[] = {{.chan = w->done, .op = WEFT_RECV}};
    for (;;) {
        /* select { case <-done: return; case <-time.After(1ms): work } */
        if (weft_select(watch, 1, WEFT_MS(1)) == 0)
            break; /* done was closed */
        rounds++;
    }
    WEFT_SEND(w->report, rounds);
}

/* Start a worker that runs until done is closed. */
static int stop_start(stop_worker *w, weft_chan *done) {
    w->done = done;
    w->report = weft_chan_make(sizeof(long), 0);
    return !w->report || weft_go(stop_until_done, w) != 0 ? -1 : 0;
}

/* Wait for the worker to return; the rounds of work it did. */
static long stop_wait(stop_worker *w) {
    long rounds = -1;
    WEFT_RECV(w->report, &rounds);
    weft_chan_free(w->report);
    return rounds;
}

static int stop_show_done(void) {
    weft_chan *done = weft_chan_make(0, 0);
    stop_worker w;
    if (!done || stop_start(&w, done) < 0)
        return 1;
    weft_sleep(WEFT_MS(20));
    weft_close(done); /* a close reaches every goroutine watching done */
    printf("2. told to stop: a done channel closed after 20 ms: %ld rounds, "
           "returned\n",
           stop_wait(&w));
    weft_chan_free(done);
    return 0;
}

/* The same worker, stopped by a context: a context's done is a channel,
 * closed by weft_ctx_cancel, or by the deadline of a timeout context. */
static int stop_show_ctx(void) {
    weft_ctx *cancel = weft_ctx_with_cancel(weft_ctx_background());
    weft_ctx *timeout =
        weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(20));
    stop_worker a, b;
    if (!cancel || !timeout || stop_start(&a, weft_ctx_done(cancel)) < 0 ||
        stop_start(&b, weft_ctx_done(timeout)) < 0)
        return 1;
    weft_sleep(WEFT_MS(20));
    weft_ctx_cancel(cancel);
    long ra = stop_wait(&a), rb = stop_wait(&b);
    int ea = weft_ctx_err(cancel), eb = weft_ctx_err(timeout);
    printf("   a context cancelled after 20 ms: %ld rounds (ctx: %s)\n"
           "   a context with a 20 ms timeout:  %ld rounds (ctx: %s)\n",
           ra, weft_strerror(ea), rb, weft_strerror(eb));
    weft_ctx_free(cancel);
    weft_ctx_free(timeout);
    return ea != -ECANCELED || eb != -ETIMEDOUT;
}

/* ---- 3. blocked by mistake: a goroutine leak ----------------------------- */

typedef struct stop_lookup {
    weft_chan *answer; /* the caller waits here, for a while */
    weft_chan *slow;   /* closed when the lookup may answer */
    weft_wg *finished; /* NULL for the leaky version */
} stop_lookup;

/* A slow lookup: it answers when slow is closed.  Its slowness is that
 * gate, opened once the caller has given up, not a sleep: on a loaded
 * machine a lookup that sleeps 20 ms could still answer within the 5 ms
 * the caller waits, and there would be no late answer to show. */
static void stop_slow_lookup(void *arg) {
    stop_lookup *l = arg;
    weft_recv(l->slow, NULL);
    int answer = 42;
    WEFT_SEND(l->answer, answer); /* unbuffered: waits for a receiver */
    if (l->finished)
        weft_wg_done(l->finished);
}

/* Ask, but give up after 5 ms.  The answer channel has cap slots. */
static int stop_ask(stop_lookup *l, size_t cap) {
    weft_goopts named = {.name = "slow-lookup"};
    int answer;
    l->answer = weft_chan_make(sizeof(int), cap);
    l->slow = weft_chan_make(0, 0);
    if (!l->answer || !l->slow ||
        weft_go_with(stop_slow_lookup, l, &named) != 0)
        return -1;
    int r = WEFT_RECV_TIMEOUT(l->answer, &answer, WEFT_MS(5));
    weft_close(l->slow); /* the lookup answers now, too late */
    return r;
}

/* Static so that a leak checker sees it reachable: the goroutine itself is
 * the leak this part shows. */
static stop_lookup stop_leaky;

static int stop_show_leak(void) {
    if (stop_ask(&stop_leaky, 0) != -ETIMEDOUT)
        return 1;
    weft_sleep(WEFT_MS(20)); /* the lookup has answered by now... */
    printf("3. blocked by mistake: the caller gave up, so nobody receives "
           "the answer;\n   %zu goroutine(s) alive, and weft_dump() shows who "
           "is stuck where:\n",
           weft_goroutines());
    weft_dump(stdout); /* ...but it is stuck in "chan send" forever */

    /* The fix: room for one answer, so the send never waits. */
    weft_wg finished = {0};
    stop_lookup fixed = {.finished = &finished};
    weft_wg_add(&finished, 1);
    if (stop_ask(&fixed, 1) != -ETIMEDOUT)
        return 1;
    weft_wg_wait(&finished);
    weft_chan_free(fixed.answer);
    weft_chan_free(fixed.slow);
    printf("   fixed with a buffer of one: the late answer is dropped off, "
           "the lookup returns\n");
    return 0;
}

/* ---- 4. it runs until the program ends ----------------------------------- */

static atomic_long stop_beats;

static void stop_heartbeat(void *arg) {
    (void)arg;
    for (;;) { /* no end: main returning stops it */
        weft_sleep(WEFT_MS(5));
        atomic_fetch_add(&stop_beats, 1);
    }
}

static int stop_show_forever(void) {
    weft_goopts named = {.name = "heartbeat"};
    if (weft_go_with(stop_heartbeat, NULL, &named) != 0)
        return 1;
    weft_sleep(WEFT_MS(30));
    printf("4. runs until the program ends: heartbeat has beaten %ld times "
           "and goes on\n",
           atomic_load(&stop_beats));
    return 0;
}

static int stopping_run(void) {
    return stop_show_finite() || stop_show_done() || stop_show_ctx() ||
           stop_show_leak() || stop_show_forever();
}

#ifndef WEFT_TOUR
int main(void) {
    return stopping_run();
}
#endif
