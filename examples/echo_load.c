/* SPDX-License-Identifier: MIT */
/*
 * echo_load: a TCP echo server under load from LOAD_CLIENTS concurrent
 * clients, all of them goroutines in one process, over loopback.
 *
 * The server has the shape of examples/echo_server.c: an accept loop, and
 * one goroutine per connection that reads and writes everything back in
 * plain straight-line code.  The clients are LOAD_CLIENTS goroutines, each
 * connecting and then making LOAD_ROUNDS request/response round trips of
 * LOAD_MSG bytes, checking every echo.  weft_read, weft_write, weft_accept
 * and weft_dial park only the calling goroutine while its socket is not
 * ready, so thousands of connections share one worker thread per core: no
 * thread per connection, no callbacks.  The program prints the round trips
 * per second it measured.
 *
 * Both ends of every connection live in this process, two descriptors
 * each, so the soft RLIMIT_NOFILE is raised as far as the hard limit
 * allows (and fewer clients run if even that is too low).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <weft.h>

#define LOAD_CLIENTS 1000
#define LOAD_ROUNDS 20
#define LOAD_MSG 64
#define LOAD_SPARE_FDS 64

typedef struct load_run load_run;

typedef struct load_conn {
    load_run *run;
    int fd;
} load_conn;

struct load_run {
    int lfd;       /* listening socket */
    char addr[64]; /* where it listens, as "127.0.0.1:port" */
    int clients;
    load_conn *conns;   /* one per accepted connection */
    weft_wg server;     /* the accept loop and the connections it serves */
    weft_chan *results; /* each client sends its count of good echoes */
};

/* ---- the server -----------------------------------------------------------
 */

/* One connection: echo until the client closes its end. */
static void load_serve(void *arg) {
    load_conn *c = arg;
    char buf[4096];
    ssize_t n;
    while ((n = weft_read(c->fd, buf, sizeof buf)) > 0)
        if (weft_write(c->fd, buf, (size_t)n) < 0)
            break;
    close(c->fd);
    weft_wg_done(&c->run->server);
}

/* Accept as many connections as there are clients, a goroutine each. */
static void load_accept(void *arg) {
    load_run *r = arg;
    for (int i = 0; i < r->clients; i++) {
        int fd = weft_accept_timeout(r->lfd, NULL, NULL, WEFT_SEC(10));
        if (fd < 0)
            break; /* a client could not connect: do not wait forever */
        r->conns[i] = (load_conn){r, fd};
        weft_wg_add(&r->server, 1);
        if (weft_go(load_serve, &r->conns[i]) != 0) {
            close(fd);
            weft_wg_done(&r->server);
        }
    }
    close(r->lfd);
    weft_wg_done(&r->server);
}

/* ---- the clients ----------------------------------------------------------
 */

/* Read exactly n bytes: 0, or -1 on error or early end of file. */
static int load_read_full(int fd, char *buf, size_t n) {
    while (n > 0) {
        ssize_t got = weft_read(fd, buf, n);
        if (got <= 0)
            return -1;
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}

static void load_client(void *arg) {
    load_run *r = arg;
    int good = 0;
    int fd = weft_dial("tcp", r->addr, WEFT_SEC(10));
    if (fd >= 0) {
        char out[LOAD_MSG], in[LOAD_MSG];
        for (int i = 0; i < LOAD_ROUNDS; i++) {
            memset(out, 'a' + i % 26, sizeof out);
            if (weft_write(fd, out, sizeof out) < 0 ||
                load_read_full(fd, in, sizeof in) < 0 ||
                memcmp(in, out, sizeof in) != 0)
                break;
            good++;
        }
        close(fd); /* the server's read sees end of file */
    }
    WEFT_SEND(r->results, good);
}

/* ---- setting up and measuring
 * ------------------------------------------------ */

/* How many clients the descriptor limit allows, raising it if need be. */
static int load_fit_clients(int want) {
    struct rlimit rl;
    rlim_t need = (rlim_t)want * 2 + LOAD_SPARE_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    if (rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need)
        return want;
    return rl.rlim_cur > 2 * LOAD_SPARE_FDS
               ? (int)((rl.rlim_cur - LOAD_SPARE_FDS) / 2)
               : 1;
}

/* A listening socket on 127.0.0.1, any free port, written to r->addr. */
static int load_listen(load_run *r) {
    r->lfd = weft_listen("tcp", "127.0.0.1:0");
    int e =
        r->lfd < 0 ? r->lfd : weft_local_addr(r->lfd, r->addr, sizeof r->addr);
    if (e < 0) {
        fprintf(stderr, "echo_load: listen: %s\n", weft_strerror(e));
        return -1;
    }
    return 0;
}

static int echo_load_run(void) {
    load_run r = {.clients = load_fit_clients(LOAD_CLIENTS)};
    r.conns = calloc((size_t)r.clients, sizeof *r.conns);
    r.results = weft_chan_make(sizeof(int), (size_t)r.clients);
    if (!r.conns || !r.results || load_listen(&r) < 0)
        return 1;
    weft_wg_add(&r.server, 1);
    if (weft_go(load_accept, &r) != 0)
        return 1;
    int64_t t0 = weft_now();
    for (int i = 0; i < r.clients; i++)
        if (weft_go(load_client, &r) != 0)
            return 1;
    long good = 0;
    for (int i = 0; i < r.clients; i++) {
        int g;
        WEFT_RECV(r.results, &g);
        good += g;
    }
    double secs = (double)(weft_now() - t0) / 1e9;
    weft_wg_wait(&r.server); /* every connection closed, listener too */
    printf("echo server on %s, %d client goroutines x %d "
           "requests of %d bytes:\n  %ld echoed intact in %.3f s = %.0f "
           "requests/s\n",
           r.addr, r.clients, LOAD_ROUNDS, LOAD_MSG, good, secs,
           (double)good / secs);
    weft_chan_free(r.results);
    free(r.conns);
    return good != (long)r.clients * LOAD_ROUNDS;
}

#ifndef WEFT_TOUR
int main(void) {
    return echo_load_run();
}
#endif
