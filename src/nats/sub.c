/* SPDX-License-Identifier: MIT */
/*
 * A subscription: each message becomes a value sent into the weft channel
 * (the value is copied once, from libnats's message into the channel's
 * slot, or decoded into scratch first).
 *
 * Who feeds the channel:
 *   core          a goroutine of ours draining a libnats synchronous
 *                 subscription (NextMsg without waiting), woken by the
 *                 connection's reader goroutine (loop.c) when it parked
 *                 idle: no libnats delivery thread, no thread wake-up.
 *   JetStream     libnats's delivery thread for the subscription, a plain
 *                 thread using the channel (acks, redelivery and flow
 *                 control are libnats's business there).
 *
 * Who waits, and how long (see weft_nats.h for the user-facing rules):
 *   core, auto    weft_send_timeout(full_wait), then drop and count;
 *                 meanwhile libnats queues new messages up to the pending
 *                 limits, as it does in front of a delivery thread;
 *   JetStream     weft_send without limit: the server bounds what is in
 *                 flight (max_ack_pending) and redelivers what is not
 *                 acked, so waiting loses nothing.  Without manual_ack the
 *                 channel is unbuffered, so the send returns only once a
 *                 receiver has the value: that is when we ack.
 *   manual_ack    the element is an envelope owning the libnats message;
 *                 the receiver acks (or naks) it.
 *
 * Lifetime: closing the channel (weft_nats_sub_close) unblocks a waiting
 * feeder (its send fails: the value is dropped, or nak'ed).  The core
 * goroutine ends when libnats says the subscription is closed (by us, or
 * by the connection closing, which also closes the channel: see loop.c);
 * the JetStream delivery thread calls on_complete once the subscription is
 * closed and the last on_msg has returned.  Either closes the channel and
 * then `done`; weft_nats_sub_free waits for `done`, so nothing touches s
 * after it is freed.
 */
#include "nats_internal.h"

#include <stdlib.h>
#include <string.h>

struct weft_nats_sub {
    natsSubscription *sub;
    weft_nats *nc;
    weft__nats_watch watch; /* core: what the reader goroutine wakes */
    weft_chan *chan;
    weft_chan *done; /* signal channel, closed by on_complete */
    size_t elem_size;
    bool jetstream, manual;
    int64_t full_wait;
    weft_nats_decode decode;
    void *codec_arg;
    atomic_bool closing;
    atomic_uint_fast64_t delivered, full, bad;
    atomic_int_fast64_t lib_at_close;     /* libnats forgets it once closed */
    _Alignas(16) unsigned char scratch[]; /* decode's output (delivery
                                             thread only) */
};

/* One feeder per subscription (its goroutine, or libnats's delivery
 * thread, which never runs one subscription's callbacks concurrently), so
 * each counter has a single writer: no locked add needed. */
static void count(atomic_uint_fast64_t *c) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static int deliver(weft_nats_sub *s, const void *v) {
    int r = s->jetstream || s->full_wait == WEFT_FOREVER
                ? weft_send(s->chan, v)
                : weft_send_timeout(s->chan, v, s->full_wait);
    if (r == 0)
        count(&s->delivered);
    else if (r == -ETIMEDOUT)
        count(&s->full);
    return r;
}

/* A message we will not deliver: JetStream must not send it again. */
static void reject(weft_nats_sub *s, natsMsg *msg) {
    count(&s->bad);
    if (s->jetstream)
        natsMsg_Term(msg, NULL);
    natsMsg_Destroy(msg);
}

static void on_msg_manual(weft_nats_sub *s, natsMsg *msg, const void *data,
                          size_t len) {
    if (s->elem_size && len != s->elem_size) {
        reject(s, msg);
        return;
    }
    weft_nats_msg m = {
        .data = data, .len = len, .msg_ = msg, .jetstream_ = s->jetstream};
    if (deliver(s, &m) != 0)
        weft_nats_nak(&m);
}

static void on_msg(natsConnection *conn, natsSubscription *sub, natsMsg *msg,
                   void *closure) {
    weft_nats_sub *s = closure;
    const void *data = natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    (void)conn, (void)sub;
    if (s->manual) {
        on_msg_manual(s, msg, data, len);
        return;
    }
    const void *v = data;
    if (s->decode) {
        if (s->decode(data, len, s->scratch, s->codec_arg) != 0) {
            reject(s, msg);
            return;
        }
        v = s->scratch;
    } else if (len != s->elem_size) {
        reject(s, msg);
        return;
    }
    int r = deliver(s, v);
    if (s->jetstream)
        r == 0 ? natsMsg_Ack(msg, NULL) : natsMsg_Nak(msg, NULL);
    natsMsg_Destroy(msg);
}

static void on_complete(void *closure) {
    weft_nats_sub *s = closure;
    weft_close(s->chan); /* -EPIPE if weft_nats_sub_close did it: fine */
    weft_close(s->done);
}

/* The feeder of a core subscription.  It parks only after a look with
 * watch.idle set found nothing (see wake_watches in loop.c). */
static void feed(void *arg) {
    weft_nats_sub *s = arg;
    weft_nats *nc = s->nc;
    bool idle = false;
    for (;;) {
        natsMsg *m = NULL;
        natsStatus st = natsSubscription_NextMsg(&m, s->sub, 0);
        if (st == NATS_OK) {
            on_msg(NULL, s->sub, m, s);
            continue;
        }
        if (st == NATS_SLOW_CONSUMER) /* libnats counted the drops */
            continue;
        if (st != NATS_TIMEOUT) /* unsubscribed, or the connection closed */
            break;
        if (!idle) {
            atomic_store(&s->watch.idle, true);
            idle = true;
            continue;
        }
        weft_recv(s->watch.kick, NULL);
        idle = false;
    }
    weft__nats_watch_del(nc, &s->watch);
    on_complete(s);
    weft_wg_done(&nc->subs); /* last: nc may be freed once all are done */
}

static int check(weft_nats *nc, const char *subject,
                 const weft_nats_subopts *o) {
    if (!nc || !subject || !*subject || !o)
        return -EINVAL;
    if (!o->manual_ack && !o->elem_size)
        return -EINVAL;
    if (!o->decode && o->elem_size > nc->max_payload)
        return -EMSGSIZE;
    if (o->durable && (!o->stream || !*o->stream))
        return -EINVAL;
    return 0;
}

static void sub_del(weft_nats_sub *s) {
    weft_chan_free(s->chan);
    weft_chan_free(s->done);
    weft_chan_free(s->watch.kick);
    free(s);
}

static weft_nats_sub *sub_new(const weft_nats_subopts *o) {
    bool js = o->durable != NULL;
    weft_nats_sub *s = calloc(1, sizeof *s + (o->decode ? o->elem_size : 0));
    if (!s)
        return NULL;
    s->elem_size = o->elem_size;
    s->jetstream = js;
    s->manual = o->manual_ack != 0;
    s->full_wait = o->full_wait ? o->full_wait : WEFT_SEC(1);
    s->decode = o->decode;
    s->codec_arg = o->codec_arg;
    size_t esz = s->manual ? sizeof(weft_nats_msg) : o->elem_size;
    s->chan = weft_chan_make(esz, js && !s->manual ? 0 : o->cap);
    s->done = weft_chan_make(0, 0);
    s->watch.chan = s->chan;
    s->watch.kick = js ? NULL : weft_chan_make(0, 1);
    if (!s->chan || !s->done || (!js && !s->watch.kick)) {
        sub_del(s);
        return NULL;
    }
    return s;
}

static void limits(natsSubscription *sub, const weft_nats_subopts *o) {
    natsSubscription_SetPendingLimits(
        sub, o->pending_msgs > 0 ? o->pending_msgs : 1 << 20,
        o->pending_bytes > 0 ? o->pending_bytes : 512 << 20);
}

static int start_js(weft_nats *nc, const char *subject,
                    const weft_nats_subopts *o, weft_nats_sub *s) {
    int r = weft__nats_js_subscribe(nc, subject, o, on_msg, s, &s->sub);
    if (r)
        return r;
    /* Closed already (the connection went away in between): no callback
     * will come, so complete now. */
    if (natsSubscription_SetOnCompleteCB(s->sub, on_complete, s) != NATS_OK)
        on_complete(s);
    limits(s->sub, o);
    return 0;
}

static int start(weft_nats *nc, const char *subject, const weft_nats_subopts *o,
                 weft_nats_sub *s) {
    if (s->jetstream)
        return start_js(nc, subject, o, s);
    natsStatus st =
        o->queue ? natsConnection_QueueSubscribeSync(&s->sub, nc->conn, subject,
                                                     o->queue)
                 : natsConnection_SubscribeSync(&s->sub, nc->conn, subject);
    if (st != NATS_OK)
        return weft__nats_err(st);
    limits(s->sub, o);
    s->nc = nc;
    s->watch.sub = s->sub;
    weft_wg_add(&nc->subs, 1);
    weft__nats_watch_add(nc, &s->watch);
    if (weft_go(feed, s)) {
        weft__nats_watch_del(nc, &s->watch);
        weft_wg_done(&nc->subs);
        natsSubscription_Destroy(s->sub);
        return -ENOMEM;
    }
    return 0;
}

int weft_nats_subscribe(weft_nats *nc, const char *subject,
                        const weft_nats_subopts *o, weft_nats_sub **out) {
    int r = check(nc, subject, o);
    if (r)
        return r;
    weft_nats_sub *s = sub_new(o);
    if (!s)
        return -ENOMEM;
    r = start(nc, subject, o, s);
    if (r) {
        /* no subscription exists, so no feeder can hold s */
        sub_del(s);
        return r;
    }
    *out = s;
    return 0;
}

weft_chan *weft_nats_sub_chan(weft_nats_sub *s) {
    return s ? s->chan : NULL;
}

void weft_nats_sub_close(weft_nats_sub *s) {
    if (!s || atomic_exchange(&s->closing, true))
        return;
    int64_t lib = 0;
    if (natsSubscription_GetDropped(s->sub, &lib) == NATS_OK)
        atomic_store(&s->lib_at_close, lib);
    natsSubscription_Unsubscribe(s->sub); /* fails once nc closed: fine */
    weft_close(s->chan);
    if (s->watch.kick)
        (void)weft_try_send(s->watch.kick, NULL); /* the feeder: look again */
}

void weft_nats_sub_free(weft_nats_sub *s) {
    if (!s)
        return;
    weft_nats_sub_close(s);
    weft_recv(s->done, NULL); /* -EPIPE once on_complete has run */
    if (s->manual) {
        weft_nats_msg m;
        while (weft_try_recv(s->chan, &m) == 0)
            weft_nats_nak(&m);
    }
    natsSubscription_Destroy(s->sub);
    sub_del(s);
}

void weft_nats_sub_stats_get(weft_nats_sub *s, weft_nats_sub_stats *out) {
    int64_t lib = 0;
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    if (natsSubscription_GetDropped(s->sub, &lib) != NATS_OK || lib < 0)
        lib = atomic_load(&s->lib_at_close);
    out->delivered = atomic_load(&s->delivered);
    out->full = atomic_load(&s->full);
    out->bad = atomic_load(&s->bad);
    out->lib = (uint64_t)lib;
    out->dropped = out->full + out->bad + out->lib;
}

uint64_t weft_nats_sub_dropped(weft_nats_sub *s) {
    weft_nats_sub_stats st;
    weft_nats_sub_stats_get(s, &st);
    return st.dropped;
}

static int release(weft_nats_msg *m, bool ack) {
    natsMsg *msg = m ? m->msg_ : NULL;
    if (!msg)
        return -EINVAL;
    natsStatus s = NATS_OK;
    if (m->jetstream_)
        s = ack ? natsMsg_Ack(msg, NULL) : natsMsg_Nak(msg, NULL);
    natsMsg_Destroy(msg);
    m->msg_ = NULL;
    return weft__nats_err(s);
}

int weft_nats_ack(weft_nats_msg *m) {
    return release(m, true);
}

int weft_nats_nak(weft_nats_msg *m) {
    return release(m, false);
}
