/* SPDX-License-Identifier: MIT */
/*
 * graceful_shutdown: workers and a ticker that stop cleanly on SIGINT or
 * SIGTERM.
 *
 *   graceful_shutdown          sends itself SIGTERM after 300 ms
 *   graceful_shutdown -wait    runs until you press Ctrl-C (or kill it)
 *
 * What it shows: Go's signal.NotifyContext.  weft_signal_ctx gives a
 * context the first SIGINT or SIGTERM cancels; everything else just
 * watches that context: the producer (main) stops queueing jobs, even in
 * the middle of its pacing sleep (weft_sleep_ctx), the ticker stops, and
 * the workers finish the jobs already queued and return.  Freeing the context
 * gives the signals their default action back, so a second Ctrl-C during a
 * slow shutdown ends the program at once.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

#define WORKERS 4

static weft_chan *jobs; /* int */
static weft_wg running;
static int done_by[WORKERS];

static void worker(void *arg) {
    int id = (int)(intptr_t)arg;
    int job;
    while (weft_recv(jobs, &job) == 0)
        done_by[id]++;
    weft_wg_done(&running);
}

int main(int argc, char **argv) {
    int sigs[] = {SIGINT, SIGTERM};
    weft_ctx *ctx = weft_signal_ctx(weft_ctx_background(), sigs, 2);
    jobs = weft_chan_make(sizeof(int), 16);
    weft_wg_add(&running, WORKERS);
    for (int i = 0; i < WORKERS; i++)
        weft_go(worker, (void *)(intptr_t)i);
    bool self = argc < 2 || strcmp(argv[1], "-wait") != 0;
    if (self)
        printf("sending myself SIGTERM in 300 ms\n");
    else
        printf("pid %d: press Ctrl-C to stop\n", (int)getpid());

    weft_timer *tick = weft_timer_start(WEFT_MS(100), WEFT_MS(100));
    int64_t start = weft_now();
    int queued = 0;
    weft_chan *done = weft_ctx_done(ctx);
    for (bool stop = false; !stop;) {
        weft_case cases[] = {{done, WEFT_RECV, NULL, 0},
                             {weft_timer_chan(tick), WEFT_RECV, NULL, 0},
                             {jobs, WEFT_SEND, &queued, 0}};
        switch (weft_select(cases, 3, WEFT_FOREVER)) {
        case 0:
            stop = true;
            break;
        case 1:
            printf("tick: %d jobs queued\n", queued);
            if (self && weft_now() - start >= WEFT_MS(300))
                kill(getpid(), SIGTERM); /* as `kill <pid>` would */
            break;
        case 2:
            queued++;
            weft_sleep_ctx(ctx, WEFT_MS(1)); /* pace the producer */
            break;
        }
    }
    printf("signal: %s; draining\n", weft_strerror(weft_ctx_err(ctx)));
    weft_timer_stop(tick);
    weft_close(jobs); /* workers finish what is queued, then return */
    weft_wg_wait(&running);
    weft_ctx_free(ctx); /* Go's stop(): default signal actions again */
    int total = 0;
    for (int i = 0; i < WORKERS; i++)
        total += done_by[i];
    printf("stopped cleanly: %d of %d jobs done\n", total, queued);
    weft_chan_free(jobs);
    return total == queued ? 0 : 1;
}
