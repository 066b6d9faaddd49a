/* SPDX-License-Identifier: MIT */
/*
 * JetStream set-up: streams and durable push consumers.
 *
 * The durable consumer is created here (js_AddConsumer) and the
 * subscription only binds to it.  That matters: libnats deletes a consumer
 * that its own js_Subscribe created as soon as the subscription is
 * unsubscribed, durable or not, which would throw away what a restarting
 * consumer must find.  Its deliver subject is derived from the stream and
 * durable names, so every process of a queue group computes the same one;
 * whoever comes first creates the consumer, the others find it.
 *
 * Every call here is a request/reply round trip to the server, so it runs
 * through weft__nats_offload.
 */
#include "nats_internal.h"

#include <stdio.h>
#include <string.h>

static int js_err(natsStatus s, jsErrCode jerr) {
    if (jerr == JSStreamNotFoundErr)
        return -ENOENT;
    return weft__nats_err(s);
}

typedef struct stream_job {
    jsCtx *js;
    const char *name, *subject;
    int r;
} stream_job;

static bool stream_has(jsCtx *js, const char *name, const char *subject) {
    jsStreamInfo *si = NULL;
    bool found = false;
    if (js_GetStreamInfo(&si, js, name, NULL, NULL) != NATS_OK)
        return false;
    for (int i = 0; i < si->Config->SubjectsLen; i++)
        found = found || strcmp(si->Config->Subjects[i], subject) == 0;
    jsStreamInfo_Destroy(si);
    return found;
}

static void stream_fn(void *arg) {
    stream_job *j = arg;
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = j->name;
    cfg.Subjects = &j->subject;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(NULL, j->js, &cfg, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr)
        j->r = stream_has(j->js, j->name, j->subject) ? 0 : -EEXIST;
    else
        j->r = js_err(s, jerr);
}

int weft_nats_stream(weft_nats *nc, const char *name, const char *subject) {
    if (!nc || !name || !*name || !subject || !*subject)
        return -EINVAL;
    stream_job j = {.js = nc->js, .name = name, .subject = subject};
    weft__nats_offload(stream_fn, &j);
    return j.r;
}

typedef struct sub_job {
    jsCtx *js;
    const char *subject;
    const weft_nats_subopts *o;
    natsMsgHandler cb;
    void *closure;
    natsSubscription *sub;
    int r;
} sub_job;

static int add_consumer(sub_job *j) {
    const weft_nats_subopts *o = j->o;
    char deliver[256];
    int n = snprintf(deliver, sizeof deliver, "_WEFT.deliver.%s.%s", o->stream,
                     o->durable);
    if (n < 0 || (size_t)n >= sizeof deliver)
        return -EINVAL;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = o->durable;
    cc.DeliverSubject = deliver;
    cc.DeliverGroup = o->queue;
    cc.FilterSubject = j->subject;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = o->ack_wait > 0 ? o->ack_wait : WEFT_SEC(30);
    cc.MaxAckPending = o->max_ack_pending > 0 ? o->max_ack_pending : 1024;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(NULL, j->js, o->stream, &cc, NULL, &jerr);
    if (s != NATS_OK &&
        (jerr == JSConsumerNameExistErr || jerr == JSConsumerExistingActiveErr))
        return 0; /* another member made it: bind to theirs */
    return js_err(s, jerr);
}

static void sub_fn(void *arg) {
    sub_job *j = arg;
    j->r = add_consumer(j);
    if (j->r)
        return;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = j->o->stream;
    so.Consumer = j->o->durable;
    so.Queue = j->o->queue;
    so.ManualAck = true;
    jsErrCode jerr = 0;
    natsStatus s = js_Subscribe(&j->sub, j->js, j->subject, j->cb, j->closure,
                                NULL, &so, &jerr);
    j->r = js_err(s, jerr);
}

int weft__nats_js_subscribe(weft_nats *nc, const char *subject,
                            const weft_nats_subopts *o, natsMsgHandler cb,
                            void *closure, natsSubscription **out) {
    if (!o->stream || !*o->stream || !*o->durable)
        return -EINVAL;
    sub_job j = {
        .js = nc->js, .subject = subject, .o = o, .cb = cb, .closure = closure};
    weft__nats_offload(sub_fn, &j);
    *out = j.sub;
    return j.r;
}
