/* SPDX-License-Identifier: MIT */
/*
 * worker_pool: a fixed number of goroutines share a queue of jobs.
 *
 * main puts POOL_JOBS jobs on a buffered channel and closes it; POOL_WORKERS
 * workers each take the next job whenever they are free, until the channel
 * is closed and empty, and send each result on a results channel.  The pool
 * bounds how much runs at once (here: POOL_WORKERS jobs), whatever the
 * number of jobs.  With jobs that wait (a sleep stands in for I/O), three
 * workers finish in about a third of the time one would take.
 */
#include <stdio.h>
#include <weft.h>

#define POOL_WORKERS 3
#define POOL_JOBS 9
#define POOL_JOB_MS 10

typedef struct pool_result {
    int job, worker, value;
} pool_result;

typedef struct pool {
    weft_chan *jobs;    /* int job numbers; closed when all are queued */
    weft_chan *results; /* pool_result */
    weft_wg running;    /* workers that have not returned yet */
} pool;

typedef struct pool_worker {
    int id;
    pool *p;
} pool_worker;

static void pool_work(void *arg) {
    pool_worker *w = arg;
    int job;
    while (WEFT_RECV(w->p->jobs, &job) == 0) {
        weft_sleep(WEFT_MS(POOL_JOB_MS)); /* the job's slow part */
        pool_result r = {job, w->id, job * 2};
        WEFT_SEND(w->p->results, r);
    }
    weft_wg_done(&w->p->running);
}

static int worker_pool_run(void) {
    pool p = {.jobs = weft_chan_make(sizeof(int), POOL_JOBS),
              .results = weft_chan_make(sizeof(pool_result), POOL_JOBS)};
    pool_worker w[POOL_WORKERS];
    if (!p.jobs || !p.results)
        return 1;
    int64_t t0 = weft_now();
    weft_wg_add(&p.running, POOL_WORKERS);
    for (int i = 0; i < POOL_WORKERS; i++) {
        w[i] = (pool_worker){i + 1, &p};
        if (weft_go(pool_work, &w[i]) != 0)
            return 1;
    }
    for (int j = 1; j <= POOL_JOBS; j++)
        WEFT_SEND(p.jobs, j);
    weft_close(p.jobs); /* no more jobs: idle workers return */
    int sum = 0;
    for (int j = 0; j < POOL_JOBS; j++) {
        pool_result r;
        WEFT_RECV(p.results, &r);
        printf("  worker %d did job %d -> %d\n", r.worker, r.job, r.value);
        sum += r.value;
    }
    printf("%d jobs of %d ms on %d workers: %.0f ms (one worker: %d ms)\n",
           POOL_JOBS, POOL_JOB_MS, POOL_WORKERS,
           (double)(weft_now() - t0) / 1e6, POOL_JOBS * POOL_JOB_MS);
    weft_wg_wait(&p.running); /* nobody may still be using the channels */
    weft_chan_free(p.jobs);
    weft_chan_free(p.results);
    return sum != POOL_JOBS * (POOL_JOBS + 1);
}

#ifndef WEFT_TOUR
int main(void) {
    return worker_pool_run();
}
#endif
