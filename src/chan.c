/* SPDX-License-Identifier: MIT */
/*
 * Channels, after Go's hchan.
 *
 * One allocation holds struct weft_chan (chan.h) followed by the
 * ring buffer.  One spin lock per channel guards everything in it; each
 * operation takes it once.  Values move by one memcpy: a sender that finds
 * a waiting receiver copies straight into the receiver's destination, a
 * receiver that finds a waiting sender copies straight out of the sender's
 * memory (through the buffer when it is full: the head value goes out, the
 * sender's value goes into the slot that freed, keeping FIFO order).
 *
 * Blocking: the caller puts a weft__wnode naming its memory (elem) on
 * sendq/recvq and blocks on its weft__park.  A waker claims the park,
 * copies, writes park->err/fired, releases the lock and only then unparks:
 * the woken side may free the channel at once, so after a successful wake
 * it never touches the channel again.  Only a waiter that claimed its own
 * park (timed out, or its deadline could not be armed: no waker holds its
 * node) relocks to unlink its node.
 */
#include "chan.h"
#include "runtime.h"
#include "sys.h"
#include "waiter.h"

#include <string.h>

/* The constant sizes let the compiler emit plain loads and stores. */
static inline void elem_copy(void *dst, const void *src, size_t size) {
    switch (size) {
    case 0:
        return; /* signal channel: src and dst may be NULL */
    case 4:
        memcpy(dst, src, 4);
        return;
    case 8:
        memcpy(dst, src, 8);
        return;
    case 16:
        memcpy(dst, src, 16);
        return;
    default:
        memcpy(dst, src, size);
    }
}

static inline unsigned char *slot(weft_chan *c, size_t i) {
    return c->buf + i * c->elem_size;
}

/* count and closed are read without the lock by weft__chan_ready_hint. */
static inline void set_count(weft_chan *c, size_t n) {
    __atomic_store_n(&c->count, n, __ATOMIC_RELAXED);
}

/* n's park was just claimed.  A select we claim will not touch c again,
 * so its other nodes here must go now (multi parks on channel queues are
 * always selects'). */
static inline weft__wnode *claimed(weft_chan *c, weft__wnode *n) {
    if (n && n->park->multi)
        weft__select_claimed(c, n);
    return n;
}

/* Tell the claimed waiter of n its result; returns the park to unpark. */
static inline weft__park *hand_over(weft__wnode *n, int err) {
    n->park->err = err;
    n->park->fired = n->idx;
    return n->park;
}

/* The end of an operation that took n off a queue of c (weft__wq_take):
 * hand_over, then claimed.  That comes last, once the value is copied, so
 * that little is live across its call. */
static inline weft__park *deliver(weft_chan *c, weft__wnode *n) {
    weft__park *p = hand_over(n, 0);
    claimed(c, n);
    return p;
}

/* weft__chan_send_locked and _recv_locked (chan.h), inline into this file's
 * operations: there the compiler folds the result tests into the caller's
 * branches and the *wake store into a register. */
static inline __attribute__((always_inline)) int
send_locked(weft_chan *c, const void *elem, weft__park **wake) {
    *wake = NULL;
    if (WEFT__UNLIKELY(c->closed))
        return -EPIPE;
    weft__wnode *r = weft__wq_take(&c->recvq);
    if (r) {
        if (r->elem)
            elem_copy(r->elem, elem, c->elem_size);
        *wake = deliver(c, r);
        return 0;
    }
    if (c->count < c->cap) {
        size_t tail = c->head + c->count;
        if (tail >= c->cap)
            tail -= c->cap;
        elem_copy(slot(c, tail), elem, c->elem_size);
        set_count(c, c->count + 1);
        return 0;
    }
    return -EAGAIN;
}

static inline __attribute__((always_inline)) int
recv_locked(weft_chan *c, void *out, weft__park **wake) {
    *wake = NULL;
    weft__wnode *s;
    if (c->count > 0) {
        unsigned char *h = slot(c, c->head);
        if (out)
            elem_copy(out, h, c->elem_size);
        /* a live sender waits only on a full buffer: h becomes the tail */
        s = weft__wq_take(&c->sendq);
        if (s)
            elem_copy(h, s->elem, c->elem_size);
        else
            set_count(c, c->count - 1);
        if (++c->head == c->cap)
            c->head = 0;
        if (s)
            *wake = deliver(c, s);
        return 0;
    }
    s = weft__wq_take(&c->sendq);
    if (s) {
        if (out)
            elem_copy(out, s->elem, c->elem_size);
        *wake = deliver(c, s);
        return 0;
    }
    return c->closed ? -EPIPE : -EAGAIN;
}

int weft__chan_send_locked(weft_chan *c, const void *elem, weft__park **wake) {
    return send_locked(c, elem, wake);
}

int weft__chan_recv_locked(weft_chan *c, void *out, weft__park **wake) {
    return recv_locked(c, out, wake);
}

/* Called with c->lock held; returns with it released.  file and line: the
 * call site for weft_dump, or NULL, 0. */
static inline __attribute__((always_inline)) int
block_on(weft_chan *c, weft__wq *q, void *elem, const char *why,
         int64_t timeout_ns, const char *file, int line) {
    weft__waiter w;
    weft__waiter_init_at(&w, why, c, elem, file, line);
    int r = weft__wq_wait(q, &c->lock, &w, weft__deadline(timeout_ns));
    return r < 0 ? r : w.park.err;
}

/* block_on out of line, the waiter's frame off the fast path; the
 * untimed one, every weft_send/weft_recv that waits, without the deadline
 * and timeout code. */
static WEFT__NOINLINE int block_forever(weft_chan *c, weft__wq *q, void *elem,
                                        const char *why, const char *file,
                                        int line) {
    return block_on(c, q, elem, why, WEFT_FOREVER, file, line);
}

static WEFT__NOINLINE int block_timed(weft_chan *c, weft__wq *q, void *elem,
                                      const char *why, int64_t timeout_ns,
                                      const char *file, int line) {
    return block_on(c, q, elem, why, timeout_ns, file, line);
}

/* One send (send true) or receive.  timeout_ns: WEFT_FOREVER, > 0, or 0 =
 * return nowait_err instead of blocking.  file, line: the call site (or
 * NULL, 0), used only if the call waits.  Inlined into each public wrapper
 * with constant arguments, so each gets a straight-line fast path. */
static inline __attribute__((always_inline)) int
chan_op(weft_chan *c, bool send, void *elem, int64_t timeout_ns, int nowait_err,
        const char *file, int line) {
    weft__park *wake;
    weft__lock_acquire(&c->lock);
    int r = send ? send_locked(c, elem, &wake) : recv_locked(c, elem, &wake);
    if (r == -EAGAIN) {
        if (timeout_ns == 0) {
            weft__lock_release(&c->lock);
            return nowait_err;
        }
        weft__wq *q = send ? &c->sendq : &c->recvq;
        const char *why = send ? "chan send" : "chan receive";
        if (timeout_ns == WEFT_FOREVER)
            return block_forever(c, q, elem, why, file, line);
        return block_timed(c, q, elem, why, timeout_ns, file, line);
    }
    weft__unlock_unpark(&c->lock, wake);
    return r;
}

static inline __attribute__((always_inline)) int
chan_send(weft_chan *c, const void *elem, int64_t timeout_ns, int nowait_err,
          const char *file, int line) {
    if (WEFT__UNLIKELY(!c || (!elem && c->elem_size)))
        return -EINVAL;
    return chan_op(c, true, (void *)elem, timeout_ns, nowait_err, file, line);
}

static inline __attribute__((always_inline)) int
chan_recv(weft_chan *c, void *out, int64_t timeout_ns, int nowait_err,
          const char *file, int line) {
    if (WEFT__UNLIKELY(!c))
        return -EINVAL;
    return chan_op(c, false, out, timeout_ns, nowait_err, file, line);
}

/* The weft__*_at forms are what the macros of weft.h call; the functions
 * themselves are the same operation without a call site. */
int weft__send_at(weft_chan *c, const void *elem, const char *file, int line) {
    return chan_send(c, elem, WEFT_FOREVER, 0, file, line);
}

int weft__recv_at(weft_chan *c, void *out, const char *file, int line) {
    return chan_recv(c, out, WEFT_FOREVER, 0, file, line);
}

int weft__send_timeout_at(weft_chan *c, const void *elem, int64_t timeout_ns,
                          const char *file, int line) {
    return chan_send(c, elem, weft__timeout(timeout_ns), -ETIMEDOUT, file,
                     line);
}

int weft__recv_timeout_at(weft_chan *c, void *out, int64_t timeout_ns,
                          const char *file, int line) {
    return chan_recv(c, out, weft__timeout(timeout_ns), -ETIMEDOUT, file, line);
}

int weft_send(weft_chan *c, const void *elem) {
    return weft__send_at(c, elem, NULL, 0);
}

int weft_recv(weft_chan *c, void *out) {
    return weft__recv_at(c, out, NULL, 0);
}

int weft_try_send(weft_chan *c, const void *elem) {
    return chan_send(c, elem, 0, -EAGAIN, NULL, 0);
}

int weft_try_recv(weft_chan *c, void *out) {
    return chan_recv(c, out, 0, -EAGAIN, NULL, 0);
}

int weft_send_timeout(weft_chan *c, const void *elem, int64_t timeout_ns) {
    return weft__send_timeout_at(c, elem, timeout_ns, NULL, 0);
}

int weft_recv_timeout(weft_chan *c, void *out, int64_t timeout_ns) {
    return weft__recv_timeout_at(c, out, timeout_ns, NULL, 0);
}

int weft_close(weft_chan *c) {
    if (!c)
        return -EINVAL;
    weft__lock_acquire(&c->lock);
    if (c->closed) {
        weft__lock_release(&c->lock);
        return -EPIPE;
    }
    __atomic_store_n(&c->closed, true, __ATOMIC_RELAXED);
    weft__wnode *list = NULL;
    weft__wq_claim(&c->sendq, SIZE_MAX, &list);
    weft__wq_claim(&c->recvq, SIZE_MAX, &list);
    for (weft__wnode *n = list; n; n = n->next)
        hand_over(n, -EPIPE);
    weft__unlock_unpark_list(&c->lock, list);
    return 0;
}

/* Claim the first waiter of q whose park is still claimable; the others
 * stay queued for their owners, who will relock c to unlink them. */
static weft__wnode *claim_live(weft_chan *c, weft__wq *q) {
    for (weft__wnode *n = q->head; n; n = n->next)
        if (weft__claim(n->park)) {
            weft__wq_remove(q, n);
            return claimed(c, n);
        }
    return NULL;
}

void weft__chan_close_drain(weft_chan *c) {
    weft__lock_acquire(&c->lock);
    __atomic_store_n(&c->closed, true, __ATOMIC_RELAXED);
    for (;;) {
        weft__wnode *list = NULL, *n;
        while ((n = claim_live(c, &c->recvq)) ||
               (n = claim_live(c, &c->sendq))) {
            hand_over(n, -EPIPE);
            n->next = list;
            list = n;
        }
        bool empty = !c->recvq.head && !c->sendq.head;
        weft__unlock_unpark_list(&c->lock, list);
        if (empty)
            return;
        weft_yield(); /* an owner on this worker may have to run first */
        weft__lock_acquire(&c->lock);
    }
}

weft_chan *weft_chan_make(size_t elem_size, size_t cap) {
    if (elem_size && cap > (SIZE_MAX - sizeof(weft_chan)) / elem_size) {
        errno = ENOMEM;
        return NULL;
    }
    weft__ensure();
    weft_chan *c = malloc(sizeof *c + elem_size * cap);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    *c = (weft_chan){.elem_size = elem_size, .cap = cap};
    return c;
}

void weft_chan_free(weft_chan *c) {
    free(c);
}

size_t weft_chan_len(const weft_chan *c) {
    if (!c)
        return 0;
    weft_chan *m = (weft_chan *)c; /* the lock is the only thing written */
    weft__lock_acquire(&m->lock);
    size_t n = m->count;
    weft__lock_release(&m->lock);
    return n;
}

size_t weft_chan_cap(const weft_chan *c) {
    return c ? c->cap : 0;
}

/* ---- size-checked forms ------------------------------------------------ */

/* The size is checked before anything is taken or copied, so a mismatch
 * changes nothing; then it is the raw form's operation. */
static int sized_op(weft_chan *c, bool send, void *elem, size_t size,
                    int64_t timeout_ns, int nowait_err) {
    if (!c)
        return -EINVAL;
    if (size != c->elem_size)
        return -EMSGSIZE;
    return send ? chan_send(c, elem, timeout_ns, nowait_err, NULL, 0)
                : chan_recv(c, elem, timeout_ns, nowait_err, NULL, 0);
}

int weft_send_sized(weft_chan *c, const void *elem, size_t size) {
    return sized_op(c, true, (void *)elem, size, WEFT_FOREVER, 0);
}
int weft_recv_sized(weft_chan *c, void *out, size_t size) {
    return sized_op(c, false, out, size, WEFT_FOREVER, 0);
}
int weft_try_send_sized(weft_chan *c, const void *elem, size_t size) {
    return sized_op(c, true, (void *)elem, size, 0, -EAGAIN);
}
int weft_try_recv_sized(weft_chan *c, void *out, size_t size) {
    return sized_op(c, false, out, size, 0, -EAGAIN);
}
int weft_send_timeout_sized(weft_chan *c, const void *elem, size_t size,
                            int64_t timeout_ns) {
    return sized_op(c, true, (void *)elem, size, weft__timeout(timeout_ns),
                    -ETIMEDOUT);
}
int weft_recv_timeout_sized(weft_chan *c, void *out, size_t size,
                            int64_t timeout_ns) {
    return sized_op(c, false, out, size, weft__timeout(timeout_ns), -ETIMEDOUT);
}
