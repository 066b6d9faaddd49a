/* SPDX-License-Identifier: MIT */
/*
 * A worker pool whose workers run as goroutines in this process or as
 * processes on any number of hosts, chosen by a flag.  The worker code is
 * the same either way: it receives jobs from one channel and sends results
 * on another; only where those channels come from changes.
 *
 *   nats_workers -local 4                 4 worker goroutines, plain channels
 *   nats_workers -url URL -worker [-w 4]  a worker process (run one per host)
 *   nats_workers -url URL -submit         send the jobs, collect the results
 *   nats_workers -url URL -spawn 3        -submit, with 3 local -worker
 *                                         processes started for the run
 *   common:  -jobs N (default 2000), -js (jobs through JetStream: a job
 *            taken by a worker that dies is redelivered to another)
 *
 * Across processes, jobs go to the subject work.jobs, load-balanced over
 * the queue group "workers"; results come back on work.results.  A worker
 * process stops cleanly on SIGINT or SIGTERM: it stops taking jobs,
 * finishes the ones it holds, flushes their results and exits.
 *
 * Try it:  url=$(tools/nats-test-server.sh start /tmp/nats1)
 *          build/examples/nats_workers -url "$url" -spawn 3 -js
 *          tools/nats-test-server.sh stop /tmp/nats1
 */
#define _GNU_SOURCE
#include "weft_nats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct job {
    uint64_t id;
    uint64_t n;
} job;

typedef struct result {
    uint64_t id;
    uint64_t steps; /* the answer */
    int32_t pid;    /* who computed it */
    int32_t pad_;
} result;

/* ---- the worker: the same code in both modes ------------------------------
 */

typedef struct pool {
    weft_chan *jobs, *results;
    weft_wg running;
} pool;

static uint64_t collatz_steps(uint64_t n) {
    uint64_t steps = 0;
    for (; n > 1; steps++)
        n = n % 2 ? 3 * n + 1 : n / 2;
    return steps;
}

static void worker(void *arg) {
    pool *p = arg;
    job j;
    while (weft_recv(p->jobs, &j) == 0) {
        result r = {.id = j.id, .steps = collatz_steps(j.n), .pid = getpid()};
        if (weft_send(p->results, &r) != 0)
            break;
    }
    weft_wg_done(&p->running);
}

/* Start w workers; p->running counts them down as they finish. */
static void pool_run(pool *p, int w) {
    weft_wg_add(&p->running, w);
    for (int i = 0; i < w; i++)
        weft_go(worker, p);
}

/* ---- the submitting side ------------------------------------------------- */

typedef struct jobgen {
    weft_chan *jobs;
    uint64_t n;
} jobgen;

static void generate(void *arg) {
    jobgen *g = arg;
    for (uint64_t i = 0; i < g->n; i++) {
        job j = {.id = i, .n = 1000000 + i * 7919};
        weft_send(g->jobs, &j);
    }
    weft_close(g->jobs);
}

/* Receive until every job id has a result; print who did how much. */
static int collect(weft_chan *results, uint64_t n) {
    bool *done = calloc(n, sizeof *done);
    struct {
        int32_t pid;
        uint64_t count;
    } by[64] = {{0}};
    uint64_t have = 0, sum = 0;
    while (have < n) {
        result r;
        int e = weft_recv_timeout(results, &r, WEFT_SEC(30));
        if (e) {
            fprintf(stderr, "results: %s after %" PRIu64 " of %" PRIu64 "\n",
                    weft_strerror(e), have, n);
            free(done);
            return 1;
        }
        if (r.id >= n || done[r.id])
            continue; /* a JetStream redelivery: already have it */
        done[r.id] = true;
        have++;
        sum += r.steps;
        for (int i = 0; i < 64; i++)
            if (by[i].pid == r.pid || by[i].count == 0) {
                by[i].pid = r.pid;
                by[i].count++;
                break;
            }
    }
    printf("%" PRIu64 " jobs done, total steps %" PRIu64 "\n", n, sum);
    for (int i = 0; i < 64 && by[i].count; i++)
        printf("  pid %d: %" PRIu64 " jobs\n", by[i].pid, by[i].count);
    free(done);
    return 0;
}

static int run_local(int w, uint64_t n) {
    pool p = {.jobs = weft_chan_make(sizeof(job), 64),
              .results = weft_chan_make(sizeof(result), 64)};
    jobgen g = {p.jobs, n};
    weft_go(generate, &g);
    pool_run(&p, w);
    int r = collect(p.results, n);
    weft_wg_wait(&p.running); /* jobs closed: every worker returns */
    weft_chan_free(p.jobs);
    weft_chan_free(p.results);
    return r;
}

/* ---- across processes: the channels come from NATS --------------------------
 */

typedef struct opts {
    const char *url;
    bool js;
    int w;
    uint64_t n;
} opts;

static weft_nats *connect_or_die(const char *url) {
    weft_nats *nc;
    int e = weft_nats_connect(url, WEFT_SEC(5), &nc);
    if (e) {
        fprintf(stderr, "connect %s: %s\n", url, weft_strerror(e));
        exit(1);
    }
    return nc;
}

static weft_nats_sub *subscribe_jobs(weft_nats *nc, bool js) {
    weft_nats_subopts so = {
        .elem_size = sizeof(job), .cap = 16, .queue = "workers"};
    if (js) {
        so.durable = "workers";
        so.stream = "WORK";
        so.ack_wait = WEFT_SEC(5);
    }
    weft_nats_sub *s;
    int e = js ? weft_nats_stream(nc, "WORK", "work.jobs") : 0;
    if (e == 0)
        e = weft_nats_subscribe(nc, "work.jobs", &so, &s);
    if (e) {
        fprintf(stderr, "subscribe work.jobs: %s\n", weft_strerror(e));
        exit(1);
    }
    return s;
}

static void *stop_on_signal(void *arg) {
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    weft_nats_sub_close(arg); /* the jobs channel closes: workers finish */
    return NULL;
}

/* The results channel closes after the last worker: the publish drains. */
static void close_results(void *arg) {
    pool *p = arg;
    weft_wg_wait(&p->running);
    weft_close(p->results);
}

static int run_worker(const opts *o) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts */
    weft_nats *nc = connect_or_die(o->url);
    weft_nats_sub *s = subscribe_jobs(nc, o->js);
    weft_nats_flush(nc, WEFT_SEC(5));
    pthread_t t;
    pthread_create(&t, NULL, stop_on_signal, s);
    pool p = {.jobs = weft_nats_sub_chan(s),
              .results = weft_chan_make(sizeof(result), 64)};
    pool_run(&p, o->w);
    weft_go(close_results, &p);
    printf("ready\n");
    fflush(stdout);
    weft_nats_pubopts po = {.elem_size = sizeof(result)};
    int e = weft_nats_publish(nc, "work.results", p.results, &po);
    pthread_join(t, NULL);
    weft_nats_sub_free(s);
    weft_chan_free(p.results);
    weft_nats_close(nc);
    return e ? 1 : 0;
}

static int run_submit(const opts *o) {
    weft_nats *nc = connect_or_die(o->url);
    weft_nats_sub *rs;
    weft_nats_subopts so = {.elem_size = sizeof(result), .cap = 256};
    int e = weft_nats_subscribe(nc, "work.results", &so, &rs);
    if (e == 0 && o->js)
        e = weft_nats_stream(nc, "WORK", "work.jobs");
    if (e) {
        fprintf(stderr, "set-up: %s\n", weft_strerror(e));
        return 1;
    }
    weft_nats_flush(nc, WEFT_SEC(5));
    jobgen g = {weft_chan_make(sizeof(job), 64), o->n};
    weft_go(generate, &g);
    weft_nats_pubopts po = {.elem_size = sizeof(job), .jetstream = o->js};
    e = weft_nats_publish(nc, "work.jobs", g.jobs, &po);
    int r = e ? 1 : collect(weft_nats_sub_chan(rs), o->n);
    if (e)
        fprintf(stderr, "publish jobs: %s\n", weft_strerror(e));
    weft_nats_sub_free(rs);
    weft_chan_free(g.jobs);
    weft_nats_close(nc);
    return r;
}

/* -spawn: start k worker processes of this program, wait until each is
 * subscribed, submit, then stop them. */
static int run_spawn(const opts *o, int k) {
    pid_t pids[64];
    char w[16], self[512];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return 1;
    self[len] = 0;
    snprintf(w, sizeof w, "%d", o->w);
    char *argv[] = {self, "-url", (char *)o->url,       "-worker",
                    "-w", w,      o->js ? "-js" : NULL, NULL};
    k = k > 64 ? 64 : k;
    for (int i = 0; i < k; i++) {
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) != 0)
            return 1;
        pids[i] = fork();
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            dup2(ready[1], 1);
            execv(self, argv);
            _exit(127);
        }
        close(ready[1]);
        char line[8];
        if (read(ready[0], line, sizeof line) <= 0)
            return 1;
        close(ready[0]);
    }
    int r = run_submit(o);
    for (int i = 0; i < k; i++)
        kill(pids[i], SIGTERM);
    for (int i = 0; i < k; i++)
        waitpid(pids[i], NULL, 0);
    return r;
}

static int usage(void) {
    fprintf(stderr, "usage: nats_workers -local N | -url URL (-worker [-w N] | "
                    "-submit | -spawn N) [-jobs N] [-js]\n");
    return 2;
}

int main(int argc, char **argv) {
    opts o = {.w = 2, .n = 2000};
    int local = 0, spawn = 0;
    bool worker_mode = false, submit = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-js"))
            o.js = true;
        else if (!strcmp(a, "-worker"))
            worker_mode = true;
        else if (!strcmp(a, "-submit"))
            submit = true;
        else if (v && !strcmp(a, "-url"))
            o.url = argv[++i];
        else if (v && !strcmp(a, "-local"))
            local = atoi(argv[++i]);
        else if (v && !strcmp(a, "-spawn"))
            spawn = atoi(argv[++i]);
        else if (v && !strcmp(a, "-w"))
            o.w = atoi(argv[++i]);
        else if (v && !strcmp(a, "-jobs"))
            o.n = strtoull(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (local > 0)
        return run_local(local, o.n);
    if (!o.url || o.w <= 0)
        return usage();
    if (worker_mode)
        return run_worker(&o);
    if (spawn > 0)
        return run_spawn(&o, spawn);
    return submit ? run_submit(&o) : usage();
}
