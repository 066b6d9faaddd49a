/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the files of the NATS bridge (libweft_nats).
 *
 *   conn.c     connection: connect with retries, close, flush, errors.
 *   loop.c     the socket, read and written by goroutines (libnats's
 *              external event loop interface) instead of libnats threads.
 *   source.c   the publishing side's reading of a weft channel.
 *   pub.c      core NATS publishing (at-most-once).
 *   jspub.c    JetStream publishing: async acks, resends, dedup ids.
 *   js.c       JetStream set-up: streams, durable consumers.
 *   sub.c      subscriptions: the libnats delivery thread feeds a channel.
 *
 * Only the public weft API is used: libnats threads are plain threads to
 * weft, and weft lets any thread use a channel.
 */
#ifndef WEFT_NATS_INTERNAL_H
#define WEFT_NATS_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "weft_nats.h"

#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* A core subscription as the connection's reader sees it (loop.c): a
 * goroutine drains sub, a libnats synchronous subscription, into chan and
 * parks on kick (cap 1) once it found nothing with idle set. */
typedef struct weft__nats_watch {
    struct weft__nats_watch *prev, *next;
    natsSubscription *sub;
    weft_chan *chan;
    weft_chan *kick;
    atomic_bool idle;
    atomic_int pins; /* the reader is looking at it (outside the lock) */
} weft__nats_watch;

struct weft_nats {
    natsConnection *conn;
    jsCtx *js;          /* JetStream set-up and subscriptions */
    size_t max_payload; /* the server's, read at connect */
    atomic_uint_fast64_t reconnects;
    /* loop.c: the socket as libnats hands it over (attach, read and write
     * interest, detach), under mu; the callbacks run on any thread. */
    pthread_mutex_t mu;
    natsConnection *lc;   /* = conn, known from the first attach on */
    int rfd, wfd;         /* the reader's, the writer's dup of the socket */
    int rfd_new, wfd_new; /* dups of a newer socket, not taken yet */
    bool reading, writing, detached, started;
    weft_chan *rkick, *wkick;  /* cap 1: wake the reader, the writer */
    weft_chan *drained;        /* cap 1: the writer wrote (publish waits) */
    weft_wg io;                /* the reader and writer goroutines */
    weft__nats_watch *watches; /* core subscriptions, under mu */
    weft__nats_watch **idle;   /* the reader's scratch: idle ones */
    size_t idle_cap;
    weft_wg subs; /* their goroutines */
};

/* Set up nc's loop state (before connecting) and free it (after the
 * connection is destroyed). */
int weft__nats_loop_init(weft_nats *nc);
void weft__nats_loop_free(weft_nats *nc);
/* Hand libnats the loop callbacks: nc's socket is then served by a reader
 * and a writer goroutine. */
natsStatus weft__nats_loop_opts(natsOptions *no, weft_nats *nc);
/* After natsConnection_Close: wait until the loop's goroutines and every
 * core subscription's goroutine have finished with nc. */
void weft__nats_loop_wait(weft_nats *nc);
/* Wait while more than max bytes are buffered for the socket, so a
 * publisher that never parks cannot grow libnats's buffer without bound:
 * 0, or ctx's error (ctx NULL: none). */
int weft__nats_loop_bound(weft_nats *nc, int max, weft_ctx *ctx);
/* Add w to the subscriptions the reader wakes, or take it off.  Watching
 * after nc closed closes w->chan at once. */
void weft__nats_watch_add(weft_nats *nc, weft__nats_watch *w);
void weft__nats_watch_del(weft_nats *nc, weft__nats_watch *w);

/* natsStatus -> 0 or a negative errno (see weft_nats.h). */
int weft__nats_err(natsStatus s);

/* Run fn(arg), which blocks on the network, through weft_blocking: on a
 * helper thread while the calling goroutine parks. */
void weft__nats_offload(weft_fn fn, void *arg);

/* Wait ns, or until ctx (NULL: none) is cancelled: 0, or ctx's error. */
int weft__nats_pause(weft_ctx *ctx, int64_t ns);

/* The publishing side of a channel: receives elements and gives their
 * wire form (the element itself, or what encode wrote). */
typedef struct weft__nats_src {
    weft_chan *chan;
    weft_ctx *ctx;
    size_t elem_size;
    size_t max_payload;
    weft_nats_encode encode;
    void *codec_arg;
    void *elem;       /* the element last received */
    void *wire;       /* encode's output buffer, max_payload bytes */
    const void *data; /* the wire form of elem, after weft__nats_src_wire */
    size_t len;
} weft__nats_src;

int weft__nats_src_init(weft__nats_src *s, weft_nats *nc, weft_chan *c,
                        const weft_nats_pubopts *o);
void weft__nats_src_free(weft__nats_src *s);
/* Wire form of the element in s->elem: 0 or -EMSGSIZE / encode's error. */
int weft__nats_src_wire(weft__nats_src *s);
/* Receive the next element and its wire form: 0, -EPIPE (closed and
 * drained), ctx's error, or weft__nats_src_wire's. */
int weft__nats_src_next(weft__nats_src *s);

/* JetStream publishing (jspub.c), called by weft_nats_publish. */
int weft__nats_publish_js(weft_nats *nc, const char *subject,
                          weft__nats_src *src, const weft_nats_pubopts *o);

/* Create or join the durable push consumer o->durable on o->stream and
 * subscribe to it with manual acks (js.c). */
int weft__nats_js_subscribe(weft_nats *nc, const char *subject,
                            const weft_nats_subopts *o, natsMsgHandler cb,
                            void *closure, natsSubscription **out);

#endif
