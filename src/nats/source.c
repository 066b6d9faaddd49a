/* SPDX-License-Identifier: MIT */
/*
 * The publishing side of a bridge reads a weft channel: a receive that
 * also stops on a context, and the value's wire form.
 *
 * Without an encoder the wire form is the element itself (no copy beyond
 * the channel's own); with one, encode writes into a buffer of the
 * server's max_payload, so any value the server could take fits.
 */
#include "nats_internal.h"

#include <stdlib.h>

int weft__nats_src_init(weft__nats_src *s, weft_nats *nc, weft_chan *c,
                        const weft_nats_pubopts *o) {
    *s = (weft__nats_src){.chan = c,
                          .ctx = o->ctx,
                          .elem_size = o->elem_size,
                          .max_payload = nc->max_payload,
                          .encode = o->encode,
                          .codec_arg = o->codec_arg};
    s->elem = malloc(o->elem_size);
    if (o->encode)
        s->wire = malloc(nc->max_payload);
    if (!s->elem || (o->encode && !s->wire)) {
        weft__nats_src_free(s);
        return -ENOMEM;
    }
    return 0;
}

void weft__nats_src_free(weft__nats_src *s) {
    free(s->elem);
    free(s->wire);
    s->elem = s->wire = NULL;
}

int weft__nats_src_wire(weft__nats_src *s) {
    if (!s->encode) {
        s->data = s->elem;
        s->len = s->elem_size;
        return 0;
    }
    ssize_t n = s->encode(s->elem, s->wire, s->max_payload, s->codec_arg);
    if (n < 0)
        return (int)n;
    if ((size_t)n > s->max_payload)
        return -EMSGSIZE;
    s->data = s->wire;
    s->len = (size_t)n;
    return 0;
}

/* Without a context this is a plain receive.  With one, a value waiting
 * in the channel is taken without a select, and the context is checked on
 * every value, so a busy channel cannot hide a cancel. */
int weft__nats_src_next(weft__nats_src *s) {
    int r = s->ctx ? weft_ctx_err(s->ctx) : 0;
    if (r)
        return r;
    r = s->ctx ? weft_try_recv(s->chan, s->elem) : weft_recv(s->chan, s->elem);
    if (r == -EAGAIN) {
        weft_case cs[2] = {
            {.chan = s->chan, .op = WEFT_RECV, .elem = s->elem},
            {.chan = s->ctx ? weft_ctx_done(s->ctx) : NULL, .op = WEFT_RECV},
        };
        int i = weft_select(cs, 2, WEFT_FOREVER);
        r = i == 1 ? weft_ctx_err(s->ctx) : cs[0].err;
    }
    return r ? r : weft__nats_src_wire(s);
}
