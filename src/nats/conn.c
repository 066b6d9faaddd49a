/* SPDX-License-Identifier: MIT */
/*
 * A weft_nats is one libnats connection plus a JetStream context.
 *
 * Connecting retries in the caller (the goroutine parks between attempts,
 * cancellable through a context) while each attempt, which blocks on the
 * network, runs off the worker threads.  Only "no server answered" is
 * retried: a bad URL or a refused handshake will not get better.
 *
 * After the first connect libnats owns reconnection: when the reader
 * goroutine (loop.c) hits the loss, libnats reconnects on a thread of its
 * own, hands the new socket back to the loop and re-subscribes; publishes
 * meanwhile go to its reconnect buffer.  We only count the reconnects
 * (libnats calls back on its own thread).
 */
#include "nats_internal.h"

#include <stdlib.h>

#define BACKOFF_FIRST WEFT_MS(50)
#define BACKOFF_MAX WEFT_SEC(1)
#define ATTEMPT_MAX WEFT_SEC(2) /* one attempt's own timeout, at most */
#define CLOSE_FLUSH_MS 1000

int weft__nats_err(natsStatus s) {
    switch (s) {
    case NATS_OK:
        return 0;
    case NATS_NO_MEMORY:
        return -ENOMEM;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_QUEUE_NAME:
    case NATS_INVALID_TIMEOUT:
    case NATS_ADDRESS_MISSING:
    case NATS_INVALID_SUBSCRIPTION:
    case NATS_ILLEGAL_STATE:
        return -EINVAL;
    case NATS_NO_SERVER:
        return -ECONNREFUSED;
    case NATS_TIMEOUT:
        return -ETIMEDOUT;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
        return -ENOTCONN;
    case NATS_MAX_PAYLOAD:
        return -EMSGSIZE;
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_SLOW_CONSUMER:
        return -ENOBUFS;
    case NATS_NOT_FOUND:
        return -ENOENT;
    case NATS_NO_RESPONDERS:
        return -EHOSTUNREACH;
    case NATS_NOT_PERMITTED:
    case NATS_CONNECTION_AUTH_FAILED:
        return -EACCES;
    default:
        return -EIO;
    }
}

void weft__nats_offload(weft_fn fn, void *arg) {
    if (weft_blocking(fn, arg) != 0)
        fn(arg); /* no helper thread to be had: block this thread instead */
}

int weft__nats_pause(weft_ctx *ctx, int64_t ns) {
    weft_case c = {.chan = ctx ? weft_ctx_done(ctx) : NULL, .op = WEFT_RECV};
    if (weft_select(&c, 1, ns) == 0)
        return weft_ctx_err(ctx);
    return 0;
}

static void on_reconnected(natsConnection *conn, void *closure) {
    weft_nats *nc = closure;
    (void)conn;
    atomic_fetch_add(&nc->reconnects, 1);
}

static natsStatus set_options(natsOptions *no, const char *url,
                              const weft_nats_opts *o, weft_nats *nc) {
    bool reconnect = o->max_reconnect >= 0;
    int64_t wait = o->reconnect_wait > 0 ? o->reconnect_wait : WEFT_MS(250);
    int buf = o->reconnect_buf > 0 ? o->reconnect_buf : 8 << 20;
    natsStatus s = natsOptions_SetURL(no, url);
    if (s == NATS_OK && o->name)
        s = natsOptions_SetName(no, o->name);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(no, reconnect);
    if (s == NATS_OK && reconnect) /* libnats: -1 = no limit */
        s = natsOptions_SetMaxReconnect(
            no, o->max_reconnect == 0 ? -1 : o->max_reconnect);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, wait / WEFT_MS(1));
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(no, buf);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(no, o->send_asap != 0);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(no, on_reconnected, nc);
    if (s == NATS_OK)
        s = weft__nats_loop_opts(no, nc);
    return s;
}

typedef struct attempt {
    natsOptions *opts;
    natsConnection *conn;
    natsStatus s;
} attempt;

static void attempt_fn(void *arg) {
    attempt *a = arg;
    a->s = natsConnection_Connect(&a->conn, a->opts);
}

/* Attempts until one connects, fails for good, or time runs out; then the
 * last attempt's error. */
static int connect_loop(natsOptions *no, const weft_nats_opts *o,
                        natsConnection **out) {
    int64_t deadline = o->timeout < 0 ? -1 : weft_now() + o->timeout;
    int64_t backoff = BACKOFF_FIRST;
    for (;;) {
        if (o->ctx && weft_ctx_err(o->ctx))
            return weft_ctx_err(o->ctx);
        int64_t left = deadline < 0 ? ATTEMPT_MAX : deadline - weft_now();
        int64_t per = left < WEFT_MS(10)   ? WEFT_MS(10)
                      : left > ATTEMPT_MAX ? ATTEMPT_MAX
                                           : left;
        natsOptions_SetTimeout(no, per / WEFT_MS(1));
        attempt a = {.opts = no};
        weft__nats_offload(attempt_fn, &a);
        if (a.s == NATS_OK) {
            *out = a.conn;
            return 0;
        }
        if (a.s != NATS_NO_SERVER && a.s != NATS_TIMEOUT)
            return weft__nats_err(a.s);
        left = deadline < 0 ? backoff : deadline - weft_now();
        if (left <= 0)
            return weft__nats_err(a.s);
        int r = weft__nats_pause(o->ctx, left < backoff ? left : backoff);
        if (r)
            return r;
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
}

int weft_nats_connect_with(const char *url, const weft_nats_opts *opts,
                           weft_nats **out) {
    static const weft_nats_opts defaults;
    const weft_nats_opts *o = opts ? opts : &defaults;
    if (!url || !*url || !out)
        return -EINVAL;
    weft_nats *nc = calloc(1, sizeof *nc);
    if (!nc)
        return -ENOMEM;
    if (weft__nats_loop_init(nc)) {
        weft__nats_loop_free(nc);
        free(nc);
        return -ENOMEM;
    }
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    if (s == NATS_OK)
        s = set_options(no, url, o, nc);
    int r = weft__nats_err(s);
    if (r == 0)
        r = connect_loop(no, o, &nc->conn);
    natsOptions_Destroy(no);
    if (r == 0)
        r = weft__nats_err(natsConnection_JetStream(&nc->js, nc->conn, NULL));
    if (r) {
        weft_nats_close(nc);
        return r;
    }
    nc->max_payload = (size_t)natsConnection_GetMaxPayload(nc->conn);
    *out = nc;
    return 0;
}

int weft_nats_connect(const char *url, int64_t timeout_ns, weft_nats **out) {
    weft_nats_opts o = {.timeout = timeout_ns};
    return weft_nats_connect_with(url, &o, out);
}

/* Close, then wait for the goroutines serving the socket and the core
 * subscriptions (detach has told them to stop), then free: none of them
 * may touch the connection after natsConnection_Destroy. */
static void close_fn(void *arg) {
    weft_nats *nc = arg;
    jsCtx_Destroy(nc->js);
    if (!nc->conn)
        return;
    if (natsConnection_Status(nc->conn) == NATS_CONN_STATUS_CONNECTED)
        natsConnection_FlushTimeout(nc->conn, CLOSE_FLUSH_MS);
    natsConnection_Close(nc->conn);
    weft__nats_loop_wait(nc);
    natsConnection_Destroy(nc->conn);
}

void weft_nats_close(weft_nats *nc) {
    if (!nc)
        return;
    weft__nats_offload(close_fn, nc);
    weft__nats_loop_free(nc);
    free(nc);
}

typedef struct flush_job {
    natsConnection *conn;
    int64_t ms;
    natsStatus s;
} flush_job;

static void flush_fn(void *arg) {
    flush_job *f = arg;
    f->s = natsConnection_FlushTimeout(f->conn, f->ms);
}

int weft_nats_flush(weft_nats *nc, int64_t timeout_ns) {
    if (!nc)
        return -EINVAL;
    int64_t ms = timeout_ns < 0 ? INT32_MAX : timeout_ns / WEFT_MS(1);
    flush_job f = {.conn = nc->conn, .ms = ms > 0 ? ms : 1};
    weft__nats_offload(flush_fn, &f);
    return weft__nats_err(f.s);
}

uint64_t weft_nats_reconnects(weft_nats *nc) {
    return nc ? atomic_load(&nc->reconnects) : 0;
}

size_t weft_nats_max_payload(weft_nats *nc) {
    return nc ? nc->max_payload : 0;
}
