/* SPDX-License-Identifier: MIT */
/*
 * JetStream publishing: at-least-once from channel to stream.
 *
 * Each value becomes a libnats message carrying a Nats-Msg-Id header
 * ("<random prefix>-<sequence>"), published with js_PublishMsgAsync.  The
 * server stores it and acks; libnats calls on_ack on its own thread, which
 * hands the outcome to the publishing goroutine over the acks channel
 * (msg NULL: stored; else the message back, to resend).  Every resend
 * keeps the message id, so the stream drops a copy it already stored.
 * One failure is not retried: "no responders" before any value was
 * stored means no stream captures the subject (or JetStream is off).
 *
 * Invariants, all owned by the publishing goroutine:
 *   inflight  messages libnats owns, each of which will yield exactly one
 *             on_ack call, unless taken back with
 *             js_PublishAsyncGetPendingList (which then owns them again);
 *   retry[]   messages we own that must be sent again at retry_at;
 *   inflight + nretry <= max, so the acks channel (cap max) never makes
 *             on_ack wait, and no new value is read while the window is
 *             full (the channel's senders feel the backpressure).
 * A lost ack would hold its slot forever: when no ack has arrived for
 * ack_wait, every pending message is taken back and resent.  The call
 * returns only when inflight is 0, so on_ack never outlives the channel.
 */
#include "nats_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#define RETRY_PAUSE WEFT_MS(100)

typedef struct ack {
    natsMsg *msg; /* NULL: stored; else ours again, to resend */
    natsStatus err;
} ack;

typedef struct jspub {
    jsCtx *js;
    const char *subject;
    weft_chan *acks; /* ack */
    uint64_t stored;
    natsMsg **retry;
    int nretry;
    int64_t retry_at;
    int inflight, max;
    int64_t ack_wait;
    char id_prefix[20];
    uint64_t seq;
} jspub;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                   void *closure) {
    jspub *p = closure;
    (void)js;
    ack a = {NULL, NATS_OK};
    if (pa || !pae)
        natsMsg_Destroy(msg);
    else
        a = (ack){msg, pae->Err};
    weft_send(p->acks, &a);
}

static void add_retry(jspub *p, natsMsg *m) {
    if (p->nretry == 0)
        p->retry_at = weft_now() + RETRY_PAUSE;
    p->retry[p->nretry++] = m;
}

/* Hand m to libnats; on a passing failure it joins the retry list. */
static int send_msg(jspub *p, natsMsg *m) {
    natsStatus s = js_PublishMsgAsync(p->js, &m, NULL);
    if (s == NATS_OK) {
        p->inflight++;
        return 0;
    }
    int r = weft__nats_err(s);
    if (r == -ENOTCONN || r == -EMSGSIZE || r == -ENOMEM) {
        natsMsg_Destroy(m);
        return r;
    }
    add_retry(p, m);
    return 0;
}

static int send_value(jspub *p, const weft__nats_src *src) {
    char id[48];
    snprintf(id, sizeof id, "%s-%" PRIu64, p->id_prefix, ++p->seq);
    natsMsg *m = NULL;
    natsStatus s =
        natsMsg_Create(&m, p->subject, NULL, src->data, (int)src->len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return weft__nats_err(s);
    }
    return send_msg(p, m);
}

static int resend_all(jspub *p) {
    int n = p->nretry, r = 0;
    p->nretry = 0;
    for (int i = 0; i < n; i++) {
        if (r == 0)
            r = send_msg(p, p->retry[i]);
        else
            natsMsg_Destroy(p->retry[i]);
    }
    return r;
}

/* Take every unacked message back from libnats (to resend or drop).
 * libnats crashes when asked before its first async publish, hence the
 * inflight guard. */
static void take_back(jspub *p) {
    natsMsgList l = {0};
    if (p->inflight == 0 || js_PublishAsyncGetPendingList(&l, p->js) != NATS_OK)
        return;
    for (int i = 0; i < l.Count; i++) {
        add_retry(p, l.Msgs[i]);
        l.Msgs[i] = NULL;
    }
    p->inflight -= l.Count;
    natsMsgList_Destroy(&l);
}

static int on_acked(jspub *p, ack a) {
    p->inflight--;
    if (!a.msg) {
        p->stored++;
        return 0;
    }
    add_retry(p, a.msg);
    return a.err == NATS_NO_RESPONDERS && p->stored == 0 ? -EHOSTUNREACH : 0;
}

/* Leaving early: nothing may stay in libnats's hands (see above). */
static void abandon(jspub *p) {
    take_back(p);
    while (p->inflight > 0) {
        ack a;
        weft_recv(p->acks, &a);
        on_acked(p, a);
    }
    for (int i = 0; i < p->nretry; i++)
        natsMsg_Destroy(p->retry[i]);
    p->nretry = 0;
}

static int64_t wait_for(const jspub *p) {
    if (p->nretry) {
        int64_t d = p->retry_at - weft_now();
        return d > 0 ? d : 0;
    }
    return p->inflight ? p->ack_wait : WEFT_FOREVER;
}

static int run(jspub *p, weft__nats_src *src) {
    bool open = true;
    ack acked;
    for (;;) {
        if (!open && p->inflight == 0 && p->nretry == 0)
            return 0;
        if (src->ctx && weft_ctx_err(src->ctx))
            return weft_ctx_err(src->ctx);
        if (p->nretry && weft_now() >= p->retry_at) {
            int r = resend_all(p);
            if (r)
                return r;
            continue;
        }
        bool room = open && p->inflight + p->nretry < p->max;
        weft_case cs[3] = {
            {.chan = room ? src->chan : NULL,
             .op = WEFT_RECV,
             .elem = src->elem},
            {.chan = p->acks, .op = WEFT_RECV, .elem = &acked},
            {.chan = src->ctx ? weft_ctx_done(src->ctx) : NULL,
             .op = WEFT_RECV},
        };
        int i = weft_select(cs, 3, wait_for(p));
        if (i == -ETIMEDOUT && p->nretry == 0) {
            take_back(p);
        } else if (i == 0 && cs[0].err) {
            open = false;
        } else if (i == 0) {
            int r = weft__nats_src_wire(src);
            if (r == 0)
                r = send_value(p, src);
            if (r)
                return r;
        } else if (i == 1) {
            int r = on_acked(p, acked);
            if (r)
                return r;
        }
    }
}

static void id_prefix(char *out, size_t n) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != sizeof x)
        x = (uint64_t)weft_now() ^ ((uint64_t)getpid() << 32);
    snprintf(out, n, "%016" PRIx64, x);
}

int weft__nats_publish_js(weft_nats *nc, const char *subject,
                          weft__nats_src *src, const weft_nats_pubopts *o) {
    jspub p = {.subject = subject,
               .max = o->max_inflight > 0 ? o->max_inflight : 256,
               .ack_wait = o->ack_wait > 0 ? o->ack_wait : WEFT_SEC(2)};
    id_prefix(p.id_prefix, sizeof p.id_prefix);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &p;
    jo.PublishAsync.MaxPending = 2 * p.max; /* we stay below: never stalls */
    p.acks = weft_chan_make(sizeof(ack), (size_t)p.max);
    p.retry = calloc((size_t)p.max, sizeof *p.retry);
    int r = p.acks && p.retry ? 0 : -ENOMEM;
    if (r == 0)
        r = weft__nats_err(natsConnection_JetStream(&p.js, nc->conn, &jo));
    if (r == 0) {
        r = run(&p, src);
        abandon(&p);
    }
    jsCtx_Destroy(p.js);
    weft_chan_free(p.acks);
    free(p.retry);
    return r;
}
