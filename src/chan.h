/* SPDX-License-Identifier: MIT */
/*
 * Layer 6, channel internals (chan.c), shared with select.c and time.c: the
 * channel struct, the operations under its lock that select composes, and
 * the close that a channel's owner uses before freeing it.  Built on the
 * waiter (waiter.h); the public channel API is in weft.h.
 */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include "sys.h"
#include "waiter.h"

/* Invariants, all under lock: live (still claimable) receivers wait only
 * while the buffer is empty, live senders only while it is full (always,
 * when cap is 0); nobody waits on a closed channel.  Queues may also hold
 * stale nodes of selects that already fired elsewhere or timed out: every
 * waker skips a node whose park it cannot claim. */
struct weft_chan {
    weft__lock lock;
    bool closed; /* written under lock by atomic store: see
                    weft__chan_ready_hint */
    size_t elem_size;
    size_t cap;
    size_t head;  /* ring slot of the oldest buffered value */
    size_t count; /* values buffered; written like closed */
    weft__wq sendq, recvq;
    _Alignas(16) unsigned char buf[]; /* cap * elem_size bytes */
};

/* With c->lock held, complete a send (recv) now if that needs no waiting:
 * 0, -EPIPE (closed), or -EAGAIN (it would block; nothing changed).  *wake
 * is set to a park to weft__unpark after releasing the lock, or NULL. */
int weft__chan_send_locked(weft_chan *c, const void *elem, weft__park **wake);
int weft__chan_recv_locked(weft_chan *c, void *out, weft__park **wake);

/* Close c before its owner frees it while goroutines may wait on it
 * (weft_timer_stop).  Waiters wake with -EPIPE and, as after any wake,
 * never touch c again; a waiter that claimed its own park (timed out, or a
 * select that fired elsewhere) still relocks c to unlink its node, so this
 * returns once no node is left: then nothing refers to c. */
void weft__chan_close_drain(weft_chan *c);

/* With c->lock held, just after claiming the select that owns won (a node
 * on c): unlink the select's other nodes on c (select.c). */
void weft__select_claimed(weft_chan *c, weft__wnode *won);

/* Without the lock: false only if, an instant ago, a send (send true) or
 * receive on c would have had to wait.  A true may be stale; so may a
 * false, which is why a caller that must be sure takes the lock. */
static inline bool weft__chan_ready_hint(weft_chan *c, bool send) {
    if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED))
        return true;
    size_t n = __atomic_load_n(&c->count, __ATOMIC_RELAXED);
    if (send)
        return n < c->cap || weft__wq_maybe_waiting(&c->recvq);
    return n > 0 || weft__wq_maybe_waiting(&c->sendq);
}

#endif
