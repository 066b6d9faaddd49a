/*
 * Internals shared by the files of the NATS bridge (libweft_nats).
 *
 *   conn.c     connection: connect with retries, close, flush, errors.
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
#include <stdatomic.h>
#include <stdbool.h>

struct weft_nats {
    natsConnection *conn;
    jsCtx *js;          /* JetStream set-up and subscriptions */
    size_t max_payload; /* the server's, read at connect */
    atomic_uint_fast64_t reconnects;
};

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
