/* SPDX-License-Identifier: MIT */
/*
 * weft_nats - weft channels that cross hosts through NATS.
 *
 * An optional module (libweft_nats, built when libnats is found) bridging
 * weft channels to NATS subjects: a goroutine sends on a channel in one
 * process, a goroutine receives on a channel in another.  The core library
 * does not depend on it.  Link: -lweft_nats -lweft -lnats -lpthread.
 *
 * Values travel as their elem_size bytes (plain data with the same layout
 * on both ends: no pointers, same endianness and padding), or through a
 * user-supplied encode/decode pair.
 *
 * Delivery guarantees
 *   - Core NATS is at-most-once.  A subscription's channel is fed by a
 *     goroutine of the bridge, which the connection's reader goroutine
 *     wakes when messages arrive (libnats's socket is served by weft's
 *     netpoller, not by libnats threads).  When the channel is full the
 *     feeder waits up to full_wait (default 1 s) for room, then drops the
 *     value and counts it; meanwhile new messages queue inside libnats up
 *     to pending_msgs / pending_bytes, beyond which libnats drops them
 *     (also counted).  What
 *     the network loses (server restart, messages published before a
 *     subscriber re-subscribed) is invisible here: number values if you
 *     need to know.
 *   - JetStream (a durable consumer) is at-least-once: a value is
 *     acknowledged only after a goroutine received it from the channel
 *     (the channel is unbuffered, so the send completes only then), or, in
 *     manual mode, when the receiver calls weft_nats_ack().  A consumer that
 *     dies is redelivered everything it had not acknowledged, after
 *     ack_wait.  Publishing through JetStream resends every value the
 *     server did not acknowledge, with a message id the server uses to
 *     drop duplicates.
 *
 * Blocking calls (connect, close, flush, JetStream set-up) run libnats's
 * blocking work on a helper thread and park the calling goroutine; from a
 * plain thread they block it.  Errors are negative errno values, as in
 * weft: -EINVAL, -ENOMEM, -ECONNREFUSED (no server), -ETIMEDOUT,
 * -ECANCELED, -ENOTCONN (connection closed for good), -EMSGSIZE (value
 * larger than the server's max_payload), -ENOENT (no such stream), -EIO.
 */
#ifndef WEFT_NATS_H
#define WEFT_NATS_H

#include "weft.h"

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_nats weft_nats;
typedef struct weft_nats_sub weft_nats_sub;

/* ------------------------------------------------------------------------ */
/* Connection                                                               */

typedef struct weft_nats_opts {
    int64_t timeout;        /* keep retrying the first connect this long;
                               0 = one attempt, WEFT_FOREVER = no limit */
    weft_ctx *ctx;          /* stop retrying when cancelled (NULL: none) */
    const char *name;       /* client name shown by the server, or NULL */
    int max_reconnect;      /* after losing the server: attempts, 0 = no
                               limit (default), -1 = never reconnect */
    int64_t reconnect_wait; /* between reconnect attempts; 0 = 250 ms */
    int reconnect_buf;      /* bytes of publishes held while reconnecting;
                               0 = 8 MiB */
    int send_asap;          /* 1: write each publish to the socket at once
                               (latency); 0: libnats's flusher thread
                               batches writes (throughput), which can delay
                               a lone value by about a millisecond */
} weft_nats_opts;

/* Connect to url ("nats://host:port", several comma-separated).  Retry
 * policy: attempts 50 ms apart, doubling up to 1 s, until timeout_ns has
 * passed (0 = one attempt); then -ECONNREFUSED if nothing answered. */
WEFT_API int weft_nats_connect(const char *url, int64_t timeout_ns,
                               weft_nats **out);

/* weft_nats_connect with options (NULL = defaults, one attempt).  A
 * cancelled ctx returns its error (-ECANCELED or -ETIMEDOUT). */
WEFT_API int weft_nats_connect_with(const char *url, const weft_nats_opts *opts,
                                    weft_nats **out);

/* Flush what was published, close and free nc (NULL is fine).  Every
 * subscription's channel is closed; free them with weft_nats_sub_free. */
WEFT_API void weft_nats_close(weft_nats *nc);

/* Wait until the server has processed everything published so far:
 * 0, -ETIMEDOUT, -ENOTCONN. */
WEFT_API int weft_nats_flush(weft_nats *nc, int64_t timeout_ns);

/* How many times nc reconnected after losing its server. */
WEFT_API uint64_t weft_nats_reconnects(weft_nats *nc);

/* Largest value (bytes) the server accepts: its max_payload. */
WEFT_API size_t weft_nats_max_payload(weft_nats *nc);

/* ------------------------------------------------------------------------ */
/* Codecs (optional): bytes on the wire <-> channel elements                */

/* Write the wire form of elem into buf (cap bytes = the server's
 * max_payload): its length, or a negative errno (-EMSGSIZE if too big). */
typedef ssize_t (*weft_nats_encode)(const void *elem, void *buf, size_t cap,
                                    void *arg);

/* Fill elem (elem_size bytes) from len bytes of data: 0, or a negative
 * errno, which drops the message and counts it as bad. */
typedef int (*weft_nats_decode)(const void *data, size_t len, void *elem,
                                void *arg);

/* ------------------------------------------------------------------------ */
/* Publishing                                                               */

typedef struct weft_nats_pubopts {
    size_t elem_size;        /* bytes per channel element (required) */
    weft_nats_encode encode; /* NULL: send the element's bytes as they are */
    void *codec_arg;         /* passed to encode */
    weft_ctx *ctx;           /* stop when cancelled (NULL: none) */
    int jetstream;           /* 1: publish through JetStream, with acks */
    int max_inflight;        /* JetStream: unacknowledged at once; 0 = 256 */
    int64_t ack_wait;        /* JetStream: resend after no ack for this
                                long; 0 = 2 s */
} weft_nats_pubopts;

/* Receive every value from c and publish it to subject until c is closed
 * and drained (then flush, or wait for every JetStream ack, and return 0)
 * or opts->ctx is cancelled (its error).  A blocking call: run it in a
 * goroutine (weft_go, weft_group_go) to publish in the background.  While
 * reconnecting it waits and retries; -ENOTCONN when the connection closed
 * for good, -EMSGSIZE for a value over max_payload (checked at once when
 * there is no encoder, before receiving anything).  JetStream: values the
 * server did not ack are resent until stored; -EHOSTUNREACH if the first
 * value finds no stream for subject.  opts->elem_size must be c's. */
WEFT_API int weft_nats_publish(weft_nats *nc, const char *subject, weft_chan *c,
                               const weft_nats_pubopts *opts);

/* Publish one value of len bytes to subject (core NATS, at-most-once):
 * 0, -EMSGSIZE, -ENOTCONN, -ENOBUFS (reconnect buffer full). */
WEFT_API int weft_nats_send(weft_nats *nc, const char *subject,
                            const void *data, size_t len);

/* Create the JetStream stream name (file storage) capturing subject, or
 * accept an existing one: 0, -EHOSTUNREACH (JetStream not enabled), or
 * another error. */
WEFT_API int weft_nats_stream(weft_nats *nc, const char *name,
                              const char *subject);

/* ------------------------------------------------------------------------ */
/* Subscribing                                                              */

/* Channel element of a manual_ack subscription.  data stays valid until
 * weft_nats_ack or weft_nats_nak; every message needs exactly one. */
typedef struct weft_nats_msg {
    const void *data;
    size_t len;
    void *msg_;     /* private: the libnats message */
    int jetstream_; /* private */
} weft_nats_msg;

typedef struct weft_nats_subopts {
    size_t elem_size;        /* channel element size; a message of another
                                size (after decode: that fails) is dropped
                                and counted.  manual_ack: 0 = any size */
    size_t cap;              /* channel capacity (JetStream without
                                manual_ack: always 0, unbuffered) */
    const char *queue;       /* queue group: each value to one member */
    weft_nats_decode decode; /* NULL: the message bytes are the element */
    void *codec_arg;         /* passed to decode */
    int64_t full_wait;       /* core: how long the feeder waits for room
                                before dropping; 0 = 1 s, WEFT_FOREVER =
                                never drop, 1 = drop at once */
    int pending_msgs;        /* libnats queue in front of the channel;
                                0 = 1,048,576 messages */
    int pending_bytes;       /* 0 = 512 MiB */
    int manual_ack;          /* 1: the channel carries weft_nats_msg */
    const char *durable;     /* non-NULL: JetStream durable consumer */
    const char *stream;      /* JetStream: the stream (required) */
    int64_t ack_wait;        /* JetStream: redeliver after; 0 = 30 s */
    int max_ack_pending;     /* JetStream: unacked at once; 0 = 1024 */
} weft_nats_subopts;

/* Subscribe to subject: values arrive on weft_nats_sub_chan(*out).  With
 * durable set, a JetStream push consumer of that name on opts->stream is
 * created or joined (same queue = one group across processes). */
WEFT_API int weft_nats_subscribe(weft_nats *nc, const char *subject,
                                 const weft_nats_subopts *opts,
                                 weft_nats_sub **out);

/* The subscription's channel: elem_size elements (weft_nats_msg with
 * manual_ack).  Closed by weft_nats_sub_close or when nc closes. */
WEFT_API weft_chan *weft_nats_sub_chan(weft_nats_sub *s);

/* Stop delivery and close the channel: buffered values can still be
 * received, then -EPIPE.  Idempotent.  A JetStream durable survives. */
WEFT_API void weft_nats_sub_close(weft_nats_sub *s);

/* Close s if needed, wait for its feeder to finish, release any
 * weft_nats_msg still buffered (nak) and free s and its channel.  Nobody
 * may use the channel any more. */
WEFT_API void weft_nats_sub_free(weft_nats_sub *s);

typedef struct weft_nats_sub_stats {
    uint64_t delivered; /* values that entered the channel */
    uint64_t dropped;   /* full + bad + lib */
    uint64_t full;      /* dropped: channel still full after full_wait */
    uint64_t bad;       /* dropped: wrong size, or decode failed */
    uint64_t lib;       /* dropped by libnats: pending limits exceeded */
} weft_nats_sub_stats;

/* Counters of s (a snapshot). */
WEFT_API void weft_nats_sub_stats_get(weft_nats_sub *s,
                                      weft_nats_sub_stats *out);

/* Values lost on this side: the dropped counter above. */
WEFT_API uint64_t weft_nats_sub_dropped(weft_nats_sub *s);

/* manual_ack: done with m.  JetStream: acknowledge it (it will not be
 * redelivered).  Core: just release.  0 or a negative errno. */
WEFT_API int weft_nats_ack(weft_nats_msg *m);

/* manual_ack: give m back.  JetStream: redeliver it now (to any member).
 * Core: release (the value is dropped). */
WEFT_API int weft_nats_nak(weft_nats_msg *m);

#ifdef __cplusplus
}
#endif
#endif
