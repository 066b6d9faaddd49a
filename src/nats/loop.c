/* SPDX-License-Identifier: MIT */
/*
 * The connection's socket, served by goroutines through libnats's external
 * event loop interface (natsOptions_SetEventLoop) instead of libnats's own
 * reader thread.
 *
 * Why: with libnats's threads a value crosses three threads on its way in
 * (reader thread -> subscription's delivery thread -> the goroutine's
 * worker), each hand-off a thread wake-up.  Here the socket is watched by
 * weft's netpoller: the reader goroutine parses what arrived and wakes the
 * goroutine of each core subscription with messages, which drains that
 * (synchronous) subscription into its channel.  Goroutine to goroutine is
 * a switch on the same worker, not a wake-up, so a value arriving costs one
 * wake-up: the poller's, the one libnats's reader thread also costs.
 * JetStream subscriptions keep their libnats delivery thread (acks,
 * redelivery and flow control live there).
 *
 * libnats calls back (on whatever thread it runs):
 *   attach        connected or reconnected: the new socket, read at once.
 *                 The reader and the writer each get a dup of it, theirs
 *                 to wait on and to close;
 *   read remove   it is about to close the socket (closing, or going to
 *                 reconnect): we shut the socket down, which wakes our
 *                 goroutines (its close(2) would not, and closes only
 *                 libnats's descriptor);
 *   write add     it buffered data: the writer flushes it
 *                 (natsConnection_ProcessWriteEvent, which says "remove"
 *                 once all is written);
 *   detach        closed for good: the goroutines stop, every core
 *                 subscription's channel is closed.
 * State changes happen under nc->mu and the goroutines are kicked through
 * cap-1 channels, so no wake-up is lost.  A wait on the socket needs no
 * deadline: the descriptor is ours, and a socket being given up is shut
 * down first, which makes it ready.
 */
#include "nats_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define YIELD_EVERY 16 /* reads, each up to libnats's I/O buffer */

static void kick(weft_chan *c) {
    (void)weft_try_send(c, NULL); /* full: a kick is pending already */
}

/* Wake the goroutine of each core subscription that went idle and now has
 * messages.  It sets idle before its last look (NextMsg); its messages
 * come only from ProcessReadEvent, which ran before: one of the two sees
 * the other.  libnats's count is read outside mu (the subscription's lock
 * must not nest in ours, which libnats's callbacks take under its own), so
 * the watches looked at are pinned: a feeder that ends waits until the
 * reader is done with its watch. */
static void wake_watches(weft_nats *nc) {
    pthread_mutex_lock(&nc->mu);
    size_t n = 0;
    for (weft__nats_watch *w = nc->watches; w; w = w->next)
        n += atomic_load(&w->idle);
    if (n > nc->idle_cap) {
        weft__nats_watch **a = realloc(nc->idle, n * sizeof *a);
        if (!a) {
            pthread_mutex_unlock(&nc->mu);
            return; /* they find their messages when next woken */
        }
        nc->idle = a;
        nc->idle_cap = n;
    }
    n = 0;
    for (weft__nats_watch *w = nc->watches; w; w = w->next)
        if (atomic_load(&w->idle)) {
            atomic_fetch_add(&w->pins, 1);
            nc->idle[n++] = w;
        }
    pthread_mutex_unlock(&nc->mu);
    for (size_t i = 0; i < n; i++) {
        weft__nats_watch *w = nc->idle[i];
        int msgs = 0;
        if (natsSubscription_GetPending(w->sub, &msgs, NULL) == NATS_OK &&
            msgs > 0 && atomic_exchange(&w->idle, false))
            kick(w->kick);
        atomic_fetch_sub(&w->pins, 1);
    }
}

/* A goroutine's own descriptor for the socket: take the one the last
 * attach made, if any.  Under mu; returns the replaced descriptor, to
 * close after unlocking (nobody else knows it any more). */
static int take(int *mine, int *next) {
    if (*next < 0)
        return -1;
    int old = *mine;
    *mine = *next;
    *next = -1;
    return old;
}

static void close_fd(int fd) {
    if (fd >= 0)
        close(fd);
}

/* The reader or the writer (*mine its descriptor) is done. */
static void io_end(weft_nats *nc, int *mine) {
    pthread_mutex_lock(&nc->mu);
    close_fd(*mine);
    *mine = -1;
    pthread_mutex_unlock(&nc->mu);
    weft_wg_done(&nc->io);
}

/* Whether the socket just found readable is still the one to read.  The
 * wake-up can be on_read's shutdown of a socket libnats is replacing;
 * reading then could take bytes of the next socket's handshake, which
 * libnats's reconnect thread reads itself until it attaches it. */
static bool still_reading(weft_nats *nc) {
    pthread_mutex_lock(&nc->mu);
    bool yes = nc->reading && nc->rfd_new < 0;
    pthread_mutex_unlock(&nc->mu);
    return yes;
}

/* Waits for the socket (or, while there is none, for a kick), reads it
 * and hands what came to the subscriptions. */
static void reader(void *arg) {
    weft_nats *nc = arg;
    unsigned reads = 0;
    for (;;) {
        pthread_mutex_lock(&nc->mu);
        bool done = nc->detached;
        int old = take(&nc->rfd, &nc->rfd_new);
        int fd = nc->reading ? nc->rfd : -1;
        pthread_mutex_unlock(&nc->mu);
        close_fd(old);
        if (done)
            break;
        if (fd < 0) {
            weft_recv(nc->rkick, NULL);
            continue;
        }
        int r = weft_wait_fd(fd, WEFT_READABLE, WEFT_FOREVER);
        if (r > 0 && still_reading(nc)) {
            natsConnection_ProcessReadEvent(nc->lc);
            wake_watches(nc);
            /* The woken feeders run when the reader parks (the socket is
             * drained), on this worker, with a large batch each; under a
             * stream that never lets it park, give them a turn now and
             * then anyway. */
            if (++reads % YIELD_EVERY == 0)
                weft_yield();
        } else if (r < 0) {
            /* cannot poll it (out of memory): retry after a pause */
            weft_recv_timeout(nc->rkick, NULL, WEFT_MS(10));
        }
    }
    io_end(nc, &nc->rfd);
}

/* Writes what libnats buffered whenever it asks, waiting for room in the
 * socket when a write was partial. */
static void writer(void *arg) {
    weft_nats *nc = arg;
    for (;;) {
        pthread_mutex_lock(&nc->mu);
        bool done = nc->detached, want = nc->writing;
        int old = take(&nc->wfd, &nc->wfd_new);
        pthread_mutex_unlock(&nc->mu);
        close_fd(old);
        if (done)
            break;
        if (!want) {
            weft_recv(nc->wkick, NULL);
            continue;
        }
        natsConnection_ProcessWriteEvent(nc->lc);
        kick(nc->drained);
        pthread_mutex_lock(&nc->mu);
        int fd = nc->writing ? nc->wfd : -1;
        pthread_mutex_unlock(&nc->mu);
        if (fd >= 0)
            weft_wait_fd(fd, WEFT_WRITABLE, WEFT_FOREVER);
    }
    io_end(nc, &nc->wfd);
}

static natsStatus on_detach(void *data);

static natsStatus on_attach(void **data, void *loop, natsConnection *lc,
                            natsSock sock) {
    weft_nats *nc = loop;
    int rfd = fcntl((int)sock, F_DUPFD_CLOEXEC, 0);
    int wfd = fcntl((int)sock, F_DUPFD_CLOEXEC, 0);
    if (rfd < 0 || wfd < 0) {
        close_fd(rfd);
        close_fd(wfd);
        return NATS_SYS_ERROR;
    }
    pthread_mutex_lock(&nc->mu);
    nc->lc = lc;
    /* ones the goroutines never took: that socket is gone already */
    close_fd(nc->rfd_new);
    close_fd(nc->wfd_new);
    nc->rfd_new = rfd;
    nc->wfd_new = wfd;
    nc->reading = true;
    bool start = !nc->started;
    nc->started = true;
    pthread_mutex_unlock(&nc->mu);
    *data = nc;
    kick(nc->rkick);
    kick(nc->wkick);
    if (!start)
        return NATS_OK;
    weft_wg_add(&nc->io, 2);
    int failed = (weft_go(reader, nc) != 0) + (weft_go(writer, nc) != 0);
    if (!failed)
        return NATS_OK;
    /* libnats fails the connect; the one that started ends at once */
    weft_wg_add(&nc->io, -failed);
    on_detach(nc);
    return NATS_NO_MEMORY;
}

/* The goroutines wait on descriptors of their own (dup'ed at attach), so
 * libnats closing its own never races their waits; shutting the socket
 * down wakes them, and tells the server, as closing it would have. */
static natsStatus on_read(void *data, bool add) {
    weft_nats *nc = data;
    pthread_mutex_lock(&nc->mu);
    nc->reading = add;
    if (!add) {
        int fds[] = {nc->rfd, nc->rfd_new, nc->wfd, nc->wfd_new};
        for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
            if (fds[i] >= 0)
                shutdown(fds[i], SHUT_RDWR);
    }
    pthread_mutex_unlock(&nc->mu);
    kick(nc->rkick);
    return NATS_OK;
}

static natsStatus on_write(void *data, bool add) {
    weft_nats *nc = data;
    pthread_mutex_lock(&nc->mu);
    nc->writing = add;
    pthread_mutex_unlock(&nc->mu);
    if (add)
        kick(nc->wkick);
    return NATS_OK;
}

static natsStatus on_detach(void *data) {
    weft_nats *nc = data;
    pthread_mutex_lock(&nc->mu);
    nc->detached = true;
    nc->reading = nc->writing = false;
    for (weft__nats_watch *w = nc->watches; w; w = w->next) {
        weft_close(w->chan); /* -EPIPE if closed already: fine */
        kick(w->kick);
    }
    pthread_mutex_unlock(&nc->mu);
    kick(nc->rkick);
    kick(nc->wkick);
    return NATS_OK;
}

natsStatus weft__nats_loop_opts(natsOptions *no, weft_nats *nc) {
    return natsOptions_SetEventLoop(no, nc, on_attach, on_read, on_write,
                                    on_detach);
}

int weft__nats_loop_init(weft_nats *nc) {
    nc->rfd = nc->wfd = nc->rfd_new = nc->wfd_new = -1;
    if (pthread_mutex_init(&nc->mu, NULL))
        return -ENOMEM;
    nc->rkick = weft_chan_make(0, 1);
    nc->wkick = weft_chan_make(0, 1);
    nc->drained = weft_chan_make(0, 1);
    if (!nc->rkick || !nc->wkick || !nc->drained)
        return -ENOMEM;
    return 0;
}

void weft__nats_loop_free(weft_nats *nc) {
    /* left only when a goroutine failed to start (see on_attach) */
    close_fd(nc->rfd_new);
    close_fd(nc->wfd_new);
    free(nc->idle);
    weft_chan_free(nc->rkick);
    weft_chan_free(nc->wkick);
    weft_chan_free(nc->drained);
    pthread_mutex_destroy(&nc->mu);
}

void weft__nats_loop_wait(weft_nats *nc) {
    weft_wg_wait(&nc->io);
    weft_wg_wait(&nc->subs);
}

int weft__nats_loop_bound(weft_nats *nc, int max, weft_ctx *ctx) {
    while (natsConnection_Buffered(nc->conn) > max) {
        weft_case cs[2] = {
            {.chan = nc->drained, .op = WEFT_RECV},
            {.chan = ctx ? weft_ctx_done(ctx) : NULL, .op = WEFT_RECV},
        };
        /* the timeout: a write that drained the buffer may have happened
         * before our look, its kick taken by an earlier wait */
        if (weft_select(cs, 2, WEFT_MS(10)) == 1)
            return weft_ctx_err(ctx);
    }
    return 0;
}

void weft__nats_watch_add(weft_nats *nc, weft__nats_watch *w) {
    pthread_mutex_lock(&nc->mu);
    if (nc->detached) {
        weft_close(w->chan);
    } else {
        w->prev = NULL;
        w->next = nc->watches;
        if (w->next)
            w->next->prev = w;
        nc->watches = w;
    }
    pthread_mutex_unlock(&nc->mu);
}

void weft__nats_watch_del(weft_nats *nc, weft__nats_watch *w) {
    pthread_mutex_lock(&nc->mu);
    if (w->prev)
        w->prev->next = w->next;
    else if (nc->watches == w)
        nc->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    pthread_mutex_unlock(&nc->mu);
    while (atomic_load(&w->pins)) /* the reader is looking at it: briefly */
        weft_yield();
}
