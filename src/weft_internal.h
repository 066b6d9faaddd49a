/* SPDX-License-Identifier: MIT */
/*
 * weft internal interfaces of layers 3 to 8 (docs/design.md, "Layers"):
 * the scheduler, the waiter, channels, the poller's and the diagnostics'
 * entry points.  Layers 0-2 have their own headers (arch/arch.h, sys.h,
 * stack.h), as do the timer heap (timer.h), the netpoller's wait records
 * (netpoll.h) and the runtime's life (runtime.h).
 *
 * Blocking, the one mechanism everything shares (the "waiter"):
 *
 *   A blocked call owns a weft__park on its stack.  Wait queues of channels
 *   and sync objects hold weft__wnode entries pointing at it (select puts
 *   one node per case on several queues, all sharing one park).  A waker
 *   must win weft__claim(p) before it touches the waiter's data: exactly
 *   one party (a waker, or the deadline timer) claims a park.  The winner
 *   writes its results (p->err, p->fired, copied elements), releases the
 *   object's lock, then calls weft__unpark(p) as its very last access to
 *   the object - so the woken party may free the object at once.
 *
 *   weft__block() publishes nothing itself.  The caller enqueues its nodes
 *   while holding the object's lock and passes an unlock callback; for a
 *   goroutine that callback runs on the worker's g0 *after* the goroutine
 *   has switched out, so no waker (who needs the lock) can unpark a
 *   goroutine that is still running.  (weft__ready also waits for a
 *   goroutine whose status still says RUNNING, which covers wakers that need
 *   no lock, such as the deadline timer.)  A plain thread runs the callback and
 *   then sleeps on a futex.  After a timeout the caller must take the lock
 *   again and remove its nodes (a waker that lost the claim race leaves
 *   them alone).
 */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include "arch/arch.h"
#include "stack.h"
#include "sys.h"
#include "timer.h"

#include "sched.h" /* goroutines and workers */

/* ---- the waiter --------------------------------------------------------- */

struct weft__park {
    weft__g *g;          /* NULL: a plain thread sleeping on futex */
    atomic_uint claimed; /* 0 until one party claims it */
    atomic_uint futex;   /* plain threads: becomes 1 on unpark */
    int err;             /* result for the woken party */
    int fired;           /* select: index of the case that completed */
    bool timedout;
    bool multi;      /* on several queues (select): set before blocking */
    bool solo;       /* one node and no deadline: set by weft__block */
    const char *why; /* for weft_dump: "chan receive", "mutex", ... */
    const void *obj;
    weft__timer timer;      /* deadline, goroutines only */
    void (*unlock)(void *); /* weft__block's callback, run on g0 */
    void *unlock_arg;
    weft__park *tnext, *tprev; /* blocked plain threads, for weft_dump */
    int tid;
    int site_line; /* the user's call site (weft__site), or 0 */
    const char *site_file;
    int64_t tdeadline; /* weft__block's deadline, -1 = none (diagnostics) */
};

typedef struct weft__wnode weft__wnode;
struct weft__wnode {
    weft__wnode *next, *prev;
    weft__park *park;
    void *elem; /* channel element source/destination */
    int idx;    /* select case index */
    int64_t since;
};

typedef struct weft__wq {
    weft__wnode *head, *tail;
} weft__wq;

/* Intrusive FIFO of waiters; the owning object's lock protects it.  On
 * every channel operation's path, hence inline.  head is also read without
 * the lock (weft__wq_maybe_waiting), so it is written with atomic stores:
 * plain moves on every target, but a race detector sees no data race. */
static inline void weft__wq_set_head(weft__wq *q, weft__wnode *n) {
    __atomic_store_n(&q->head, n, __ATOMIC_RELAXED);
}

/* Without the lock: a hint that may be stale by the time it returns. */
static inline bool weft__wq_maybe_waiting(weft__wq *q) {
    return __atomic_load_n(&q->head, __ATOMIC_RELAXED) != NULL;
}

static inline void weft__wq_push(weft__wq *q, weft__wnode *n) {
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        weft__wq_set_head(q, n);
    q->tail = n;
}

static inline void weft__wq_push_front(weft__wq *q, weft__wnode *n) {
    n->prev = NULL;
    n->next = q->head;
    if (q->head)
        q->head->prev = n;
    else
        q->tail = n;
    weft__wq_set_head(q, n);
}

static inline void weft__wq_remove(weft__wq *q, weft__wnode *n) {
    if (!n->prev && q->head != n)
        return; /* not queued: a waker popped it already */
    if (n->prev)
        n->prev->next = n->next;
    else
        weft__wq_set_head(q, n->next);
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->next = n->prev = NULL;
}

static inline weft__wnode *weft__wq_pop(weft__wq *q) {
    weft__wnode *n = q->head;
    if (n)
        weft__wq_remove(q, n);
    return n;
}

/* With the owning object's lock held: pop waiters of q, claiming their
 * parks, until max are claimed or q is empty; the claimed ones are pushed
 * onto *list (linked through next).  Returns how many.  Nodes whose claim
 * fails (a select that fired elsewhere, a deadline) are popped too, so
 * their owner's weft__wq_remove finds them gone. */
size_t weft__wq_claim(weft__wq *q, size_t max, weft__wnode **list);

/* After releasing the lock: unpark every waiter on list. */
void weft__wq_unpark(weft__wnode *list);

/* Claim every waiter of q, release l (held by the caller), unpark them. */
void weft__wq_wake_all(weft__wq *q, weft__lock *l);

/* Bind p to the caller (goroutine or thread) before enqueueing it. */
static inline void weft__park_init(weft__park *p, const char *why,
                                   const void *obj);

/* Atomically take the right to wake p; true for exactly one caller. */
static inline bool weft__claim(weft__park *p) {
    if (p->solo) {
        /* one node, no deadline: whoever popped the node (under the
         * object's lock) is the only possible claimer, no race to settle */
        atomic_store_explicit(&p->claimed, 1, memory_order_relaxed);
        return true;
    }
    unsigned zero = 0;
    return atomic_compare_exchange_strong_explicit(
        &p->claimed, &zero, 1, memory_order_acq_rel, memory_order_relaxed);
}

/* Wake the owner of a claimed p.  The last access the waker makes to p. */
static inline void weft__unpark(weft__park *p);

/* Block until p is claimed and unparked, or until deadline (absolute, -1 =
 * never) passes and this call claims p itself.  unlock(arg) runs once the
 * caller cannot miss an unpark.  Returns 0, or, having claimed p itself
 * (p->timedout), -ETIMEDOUT or -ENOMEM (no memory for the deadline's timer:
 * the call did not wait).  After either the caller must unlink its nodes. */
int weft__block(weft__park *p, int64_t deadline, void (*unlock)(void *),
                void *arg);

/* A counting semaphore on the waiter: zero-initialised is count 0. */
typedef struct weft__sema {
    weft__lock lock;
    uint32_t count;
    weft__wq q;
} weft__sema;

void weft__sema_acquire(weft__sema *s, const char *why, const void *obj);
void weft__sema_release(weft__sema *s, uint32_t n);

/* ---- channels (chan.c; select.c shares the internals) ----------------- */

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

/* ---- the netpoller (netpoll.c): the scheduler's poll, fdio.c's connect -- */

/* Wait for descriptor events or until deadline (-1 = until woken) and ready
 * the goroutines whose descriptors are ready.  Returns how many. */
int weft__netpoll(int64_t deadline);
/* Wake a worker waiting in weft__netpoll. */
void weft__netpoll_break(void);
int weft__netpoll_init(void);
void weft__netpoll_release(void);
/* Descriptor waits in progress (keeps the deadlock detector quiet). */
size_t weft__netpoll_waiting(void);

/* weft_connect with a deadline (-1: none) and a context (NULL: none), for
 * the dialler (dial.c). */
int weft__connect(int fd, const struct sockaddr *addr, socklen_t len,
                  int64_t deadline, weft_ctx *ctx);

/* ---- context hooks (ctx.c) ---------------------------------------------- */

/* A callback run once, on the canceller and outside every lock, when the
 * cancel node it is linked on ends.  Linked by weft__ctx_hook_add. */
typedef struct weft__ctx_hook weft__ctx_hook;
struct weft__ctx_hook {
    void (*fn)(weft__ctx_hook *h, int err);
    weft__ctx_hook *next, *prev; /* under owner's lock while linked */
    weft_ctx *owner;             /* c's nearest cancel node, or NULL */
    bool linked;
};

/* Link h to c: 0, or c's error when c has ended already (h is then not
 * linked).  A context that can never end links nothing and returns 0. */
int weft__ctx_hook_add(weft_ctx *c, weft__ctx_hook *h);
/* Unlink h: true if it was still linked (fn will never run); false when
 * the canceller has taken it (fn runs now or has run). */
bool weft__ctx_hook_del(weft__ctx_hook *h);

/* A wait that ends with its context: when the context ends, park is
 * claimed and unparked (for a park not yet claimed), or, with park NULL,
 * the eventfd efd is written (a plain thread's poll(2)).  Begin only
 * when the caller will block on park for sure (a claim wakes the park's
 * goroutine): 0, or the context's error, having linked nothing.  End
 * after the wait: 0, or the context's error if it ended meanwhile; it
 * waits out a hook still running, so w may then go. */
typedef struct weft__ctx_wait {
    weft__ctx_hook hook;
    weft__park *park;
    int efd;
    int err;
    atomic_uint done; /* the hook's last store */
} weft__ctx_wait;

int weft__ctx_wait_begin(weft__ctx_wait *w, weft_ctx *c, weft__park *p,
                         int efd);
int weft__ctx_wait_end(weft__ctx_wait *w);

/* ---- weft_blocking helper pool (blocking.c) ----------------------------- */

/* weft_blocking calls in progress, queued or running (keeps the deadlock
 * detector quiet).  blocking.c counts them; the counter sits with the
 * waiter's registry of threads (waiter.c), which the detector reads. */
extern atomic_size_t weft__blocking_calls;
static inline size_t weft__blocking_pending(void) {
    return atomic_load_explicit(&weft__blocking_calls, memory_order_acquire);
}

/* ---- diagnostics (debug.c, deadlock.c, trace.c) ------------------------- */

/* A plain thread starts (on) or stops (off) blocking on p. */
void weft__thread_blocked(weft__park *p, bool on);
/* Runtime start: signal handlers, WEFT_DEADLOCK / WEFT_LEAKCHECK /
 * WEFT_TRACE, exit hooks.  nprocs workers are about to start. */
void weft__diag_init(int nprocs);
/* First thing on worker wid's thread: alternate signal stack, trace buffer. */
void weft__diag_worker_init(int wid);
/* From weft__park_init: record the call site weft__site left for p and
 * reset p's diagnostic fields. */
void weft__park_diag_init(weft__park *p);
/* A descriptor wait ("fd read", "fd write": netpoll.c) carries its fd, not
 * an address, as the park's obj: how the dump and the trace show it. */
static inline bool weft__why_is_fd(const char *why) {
    return why[0] == 'f' && why[1] == 'd' && why[2] == ' ';
}
/* weft_shutdown found goroutines alive: report the blocked ones as leaks;
 * how many it reported. */
size_t weft__leaks_report(void);
/* For deadlock.c: the thread registry's generation (see debug.c), and how
 * many threads sleep in weft for good (blocked plain threads whose park is
 * unclaimed and has no deadline, plus idle pool threads); -1 if a listed
 * thread has a deadline or is being woken. */
uint64_t weft__threads_gen(void);
int weft__threads_asleep(void);
/* Call fn for every blocked plain thread's park, under the registry's
 * lock; with bounded (a signal handler, which may have interrupted the
 * holder), false instead of waiting long for it. */
bool weft__threads_walk(void (*fn)(const weft__park *p, void *arg), void *arg,
                        bool bounded);
/* weft__foreach_g for diagnostics: racy reads of goroutines that may be
 * running, hidden from ThreadSanitizer (see debug.c). */
void weft__diag_walk(void (*fn)(weft__g *g, void *arg), void *arg);
/* The park g sleeps on: NULL unless g is parked on an unclaimed park. */
const weft__park *weft__g_blocked_on(const weft__g *g);
/* Print the deadlock message and the dump (once per process). */
void weft__deadlock_report(void);

/* Deadlock detection (deadlock.c): the idle hook the diagnostics install
 * unless WEFT_DEADLOCK=0. */
extern const weft__idle_ops weft__deadlock_ops;
/* A weft_blocking pool thread starts (on) or stops (off) waiting for work:
 * while it waits it is one of weft's own threads, not a user thread. */
void weft__pool_idle(bool on);

/* Tracing (trace.c).  Every hook sits behind WEFT__UNLIKELY(weft__tracing()):
 * one relaxed load of a flag that never changes once the runtime runs. */
extern atomic_bool weft__trace_on;
static inline bool weft__tracing(void) {
    return atomic_load_explicit(&weft__trace_on, memory_order_relaxed);
}
void weft__trace_spawn(const weft__g *g);
void weft__trace_run(const weft__g *g);  /* a worker switches to g */
void weft__trace_stop(const weft__g *g); /* ... and back from it */
void weft__trace_block(const weft__park *p);
void weft__trace_wake(const weft__g *g);
void weft__trace_steal(int victim);
void weft__trace_park(void); /* a worker goes idle */
/* Write the WEFT_TRACE file (weft_shutdown; also at exit). */
void weft__trace_flush(void);
/* From weft__diag_init / weft__diag_worker_init. */
void weft__trace_init(int nprocs);
void weft__trace_thread(int wid);
void weft__trace_atfork_child(void); /* the child of a fork: tracing off */

/* ---- the waiter's hot paths ---------------------------------------------- */

/* Inline, on every channel operation's path; declared with the waiter above
 * and defined here, once everything they call is declared. */

static inline void weft__park_init(weft__park *p, const char *why,
                                   const void *obj) {
    p->g = weft__curg();
    atomic_store_explicit(&p->claimed, 0, memory_order_relaxed);
    atomic_store_explicit(&p->futex, 0, memory_order_relaxed);
    p->err = 0;
    p->fired = -1;
    p->timedout = false;
    p->multi = false;
    p->solo = false;
    p->why = why;
    p->obj = obj;
    p->timer.idx = -1;
    atomic_store_explicit(&p->timer.running, 0, memory_order_relaxed);
    weft__park_diag_init(p);
}

static inline void weft__unpark(weft__park *p) {
    weft__g *g = p->g;
    if (g) {
        if (WEFT__UNLIKELY(weft__tracing()))
            weft__trace_wake(g);
        weft__ready(g);
        return;
    }
    atomic_store_explicit(&p->futex, 1, memory_order_release);
    weft__futex_wake(&p->futex, 1);
}

#endif
