/* SPDX-License-Identifier: MIT */
/*
 * pipeline: stages joined by channels, fan-out, fan-in, and a deadline.
 *
 *            nums               out[0..W-1]           merged
 *   gen  ------------>  square x W  ---------->  merge  -------->  main
 *         (fan-out: W workers      (fan-in: one select
 *          read one channel)        over W channels)
 *
 * gen emits 1..PIPE_N; PIPE_W workers take numbers from the same channel
 * (whoever is free takes the next one: fan-out), square them slowly, and
 * each writes to its own channel; merge collects the W channels into one
 * (fan-in), with one select over all of them - a case whose channel has
 * closed is switched off by setting its channel to NULL, as Go does with a
 * nil channel.
 *
 * main reads results until a deadline: a one-shot timer is one more case in
 * its select (Go's time.After).  Whatever happens first, main then closes
 * `done`.  Every stage sends through pipe_send, a select between its output
 * and done, so no stage can be left blocked on a send nobody will take:
 * every goroutine of the pipeline returns, and main waits for that before
 * freeing the channels.  Run twice: with a generous deadline (all results)
 * and with a tight one (the pipeline is cut short, cleanly).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <weft.h>

#define PIPE_N 40
#define PIPE_W 4
#define PIPE_WORK_MS 5

typedef struct pipe_run {
    weft_chan *done; /* closed by main: every stage stops */
    weft_chan *nums;
    weft_chan *out[PIPE_W];
    weft_chan *merged;
    weft_wg stages; /* every goroutine of the pipeline */
} pipe_run;

typedef struct pipe_worker {
    pipe_run *run;
    int id;
} pipe_worker;

/* Send v on c unless done is closed first: 0 if sent, -1 if told to stop. */
static int pipe_send(weft_chan *c, long v, weft_chan *done) {
    weft_case cases[] = {{.chan = c, .op = WEFT_SEND, .elem = &v},
                         {.chan = done, .op = WEFT_RECV}};
    return weft_select(cases, 2, WEFT_FOREVER) == 0 ? 0 : -1;
}

static void pipe_gen(void *arg) {
    pipe_run *r = arg;
    for (long i = 1; i <= PIPE_N; i++)
        if (pipe_send(r->nums, i, r->done) < 0)
            break;
    weft_close(r->nums);
    weft_wg_done(&r->stages);
}

static void pipe_square(void *arg) {
    pipe_worker *w = arg;
    pipe_run *r = w->run;
    long v;
    while (WEFT_RECV(r->nums, &v) == 0) {
        weft_sleep(WEFT_MS(PIPE_WORK_MS)); /* the slow part */
        if (pipe_send(r->out[w->id], v * v, r->done) < 0)
            break;
    }
    weft_close(r->out[w->id]);
    weft_wg_done(&r->stages);
}

static void pipe_merge(void *arg) {
    pipe_run *r = arg;
    weft_case in[PIPE_W];
    long v;
    for (int i = 0; i < PIPE_W; i++)
        in[i] = (weft_case){.chan = r->out[i], .op = WEFT_RECV, .elem = &v};
    for (int open = PIPE_W; open > 0;) {
        int i = weft_select(in, PIPE_W, WEFT_FOREVER);
        if (in[i].err == -EPIPE) { /* that worker is finished */
            in[i].chan = NULL;     /* never ready again */
            open--;
        } else if (pipe_send(r->merged, v, r->done) < 0) {
            break;
        }
    }
    weft_close(r->merged);
    weft_wg_done(&r->stages);
}

static int pipe_start(pipe_run *r, pipe_worker *w) {
    r->done = weft_chan_make(0, 0);
    r->nums = weft_chan_make(sizeof(long), 0);
    r->merged = weft_chan_make(sizeof(long), 0);
    if (!r->done || !r->nums || !r->merged)
        return -1;
    weft_wg_add(&r->stages, PIPE_W + 2);
    for (int i = 0; i < PIPE_W; i++) {
        w[i] = (pipe_worker){r, i};
        if (!(r->out[i] = weft_chan_make(sizeof(long), 0)) ||
            weft_go(pipe_square, &w[i]) != 0)
            return -1;
    }
    return weft_go(pipe_gen, r) || weft_go(pipe_merge, r) ? -1 : 0;
}

static void pipe_free(pipe_run *r) {
    weft_chan_free(r->done);
    weft_chan_free(r->nums);
    weft_chan_free(r->merged);
    for (int i = 0; i < PIPE_W; i++)
        weft_chan_free(r->out[i]);
}

/* Run the pipeline, collecting results until deadline_ms. */
static int pipe_run_with_deadline(int deadline_ms) {
    pipe_run r = {0};
    pipe_worker w[PIPE_W];
    weft_timer *deadline = weft_timer_start(WEFT_MS(deadline_ms), 0);
    if (!deadline || pipe_start(&r, w) < 0)
        return 1;
    long v, sum = 0;
    int got = 0;
    weft_case cases[] = {{.chan = r.merged, .op = WEFT_RECV, .elem = &v},
                         {.chan = weft_timer_chan(deadline), .op = WEFT_RECV}};
    while (weft_select(cases, 2, WEFT_FOREVER) == 0 && cases[0].err == 0) {
        sum += v;
        got++;
    }
    bool late = got < PIPE_N;
    weft_close(r.done);      /* stop whatever still runs */
    weft_wg_wait(&r.stages); /* and wait until it has */
    weft_timer_stop(deadline);
    pipe_free(&r);
    long want = (long)PIPE_N * (PIPE_N + 1) * (2 * PIPE_N + 1) / 6;
    printf("  deadline %4d ms: %2d of %d results%s, all %d stages returned\n",
           deadline_ms, got, PIPE_N,
           late ? " (cut short)" : ", sum of squares right", PIPE_W + 2);
    return late ? sum > want : sum != want;
}

static int pipeline_run(void) {
    printf("gen -> %d squarers (%d ms each) -> merge -> main, %d numbers:\n",
           PIPE_W, PIPE_WORK_MS, PIPE_N);
    return pipe_run_with_deadline(5000) || pipe_run_with_deadline(20);
}

#ifndef WEFT_TOUR
int main(void) {
    return pipeline_run();
}
#endif
