/* SPDX-License-Identifier: MIT */
/*
 * Core NATS publishing: each value received from the channel goes to
 * natsConnection_Publish, which copies it into libnats's write buffer; the
 * connection's writer goroutine (loop.c) sends it, when libnats's flusher
 * thread asks (or at once with send_asap).  The call runs on the caller's
 * goroutine and holds libnats's connection lock briefly.  With the socket
 * in weft's hands libnats never writes in place, so its buffer would grow
 * without bound under a publisher that never parks: every CHECK_EVERY
 * values we wait while more than BUFFERED_MAX bytes are in it.
 *
 * While libnats reconnects, publishes fill its reconnect buffer; when that
 * is full the value is retried with a growing pause rather than dropped.
 */
#include "nats_internal.h"

#define FLUSH_AT_END WEFT_SEC(10)
#define CHECK_EVERY 64
#define BUFFERED_MAX (256 << 10)

static int publish_one(weft_nats *nc, const char *subject, const void *data,
                       size_t len, weft_ctx *ctx) {
    int64_t pause = WEFT_MS(1);
    for (;;) {
        natsStatus s =
            natsConnection_Publish(nc->conn, subject, data, (int)len);
        if (s != NATS_INSUFFICIENT_BUFFER)
            return weft__nats_err(s);
        int r = weft__nats_pause(ctx, pause);
        if (r)
            return r;
        pause = pause * 2 > WEFT_MS(100) ? WEFT_MS(100) : pause * 2;
    }
}

int weft_nats_send(weft_nats *nc, const char *subject, const void *data,
                   size_t len) {
    if (!nc || !subject || (!data && len))
        return -EINVAL;
    if (len > nc->max_payload)
        return -EMSGSIZE;
    return weft__nats_err(
        natsConnection_Publish(nc->conn, subject, data, (int)len));
}

static int publish_core(weft_nats *nc, const char *subject,
                        weft__nats_src *src) {
    int r;
    for (unsigned n = 1; (r = weft__nats_src_next(src)) == 0; n++) {
        r = publish_one(nc, subject, src->data, src->len, src->ctx);
        if (r)
            return r;
        if (n % CHECK_EVERY == 0 &&
            (r = weft__nats_loop_bound(nc, BUFFERED_MAX, src->ctx)))
            return r;
    }
    if (r != -EPIPE)
        return r;
    return weft_nats_flush(nc, FLUSH_AT_END);
}

int weft_nats_publish(weft_nats *nc, const char *subject, weft_chan *c,
                      const weft_nats_pubopts *o) {
    if (!nc || !subject || !*subject || !c || !o || !o->elem_size)
        return -EINVAL;
    if (!o->encode && o->elem_size > nc->max_payload)
        return -EMSGSIZE;
    weft__nats_src src;
    int r = weft__nats_src_init(&src, nc, c, o);
    if (r)
        return r;
    r = o->jetstream ? weft__nats_publish_js(nc, subject, &src, o)
                     : publish_core(nc, subject, &src);
    weft__nats_src_free(&src);
    return r;
}
