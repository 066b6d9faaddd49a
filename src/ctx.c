/* SPDX-License-Identifier: MIT */
/*
 * Contexts: a tree of cancellation scopes, as Go's context package.
 *
 * Kinds.  Background is one static node (never cancelled, never freed).
 * A cancel node (weft_ctx_with_cancel/deadline/timeout) owns an error, a
 * done channel and a list of the cancel nodes below it.  A value node only
 * carries key -> value; its done and err are those of its nearest cancel
 * ancestor, which every node caches in `canc` (itself for a cancel node,
 * NULL when only background and value nodes lie above).
 *
 * Tree and references.  Every node holds a reference on its parent, so the
 * chain above a live node stays valid (values are looked up through it);
 * the creator holds one more, dropped by weft_ctx_free.  A cancel node sits
 * in the children list of parent->canc (its "owner") from creation until it
 * is cancelled: cancelling unlinks it, and since weft_ctx_free cancels
 * before it drops the creator's reference, a node whose count reaches zero
 * is in no list.  The last release frees the node and drops the reference
 * on its parent, and so on up.
 *
 * Cancellation.  err goes from 0 to its final value once, under the node's
 * lock; that winner detaches the children (taking a temporary reference on
 * each, so a concurrent free cannot release one under us), closes done
 * outside the lock, unlinks the node from its owner and stops its timer.
 * The detached children are cancelled with the same err through a work
 * list threaded through their sibling links (no recursion, any depth).
 * As in Go, a cancel or free returns only when the whole subtree has
 * ended, even where another canceller got to a node first: such nodes it
 * waits for (settled: set by a node's canceller once its subtree is done;
 * the wait is short, cancelling never blocks).  A timer's callback does
 * not wait, so that deleting a timer can wait for its callback.
 * At most one node lock is held at a time (the timer heap's lock may be
 * taken inside it, never the reverse), so there is no lock order between
 * nodes to get wrong.  The sibling links and `linked` belong to the owner's
 * lock while linked, and to the canceller that detached the node after.
 *
 * done is made eagerly with the node: creation can report ENOMEM, and
 * weft_ctx_done never fails or allocates.  err is also an atomic, read
 * without the lock; it is stored before done is closed, so whoever sees
 * done closed sees err set.
 *
 * Deadlines.  A node whose deadline is earlier than its parent's arms a
 * weft__timer that cancels it with -ETIMEDOUT (a later deadline needs no
 * timer: the ancestor's fires first and propagates -ETIMEDOUT).  The
 * callback runs on a worker without holding a reference, which is safe
 * because weft_ctx_free deletes the timer (waiting out a running callback)
 * before it drops the creator's reference: while a callback runs, the
 * count cannot reach zero, so no node is ever freed inside its own
 * callback.  Cancelling the node deletes the timer early, except from
 * within that timer's callback (timer deletion would wait for itself).
 * weft_ctx_with_deadline(p, WEFT_FOREVER) has no deadline; any other
 * deadline not after weft_now() cancels the new node at once.  A timeout
 * becomes a deadline as every other wait's does (weft__deadline): one
 * beyond the clock's range is INT64_MAX, a deadline that never comes, with
 * its timer queued like a channel's or a sleep's.
 *
 * Hooks.  A cancel node also keeps a list of weft__ctx_hook, callbacks
 * for whoever must hear of the end at once: a descriptor wait, a sleep, an
 * after-function.  The canceller detaches the list under the lock, along
 * with the children, and runs each hook once after releasing it, so a hook
 * may take any lock but the node's.  A hook's owner unlinks it with
 * weft__ctx_hook_del; once the canceller has detached it, the owner must
 * wait for (or not care about) the run in progress: weft__ctx_wait does
 * the first, an after-function's references the second.
 *
 * After-functions.  weft_ctx_after_func links a heap hook that starts fn
 * in a goroutine.  The handle holds a reference on the cancel node it is
 * linked on, so weft_ctx_after_stop can take that node's lock whenever it
 * comes, even after weft_ctx_free; whoever of the stop and the canceller
 * takes the hook off the list first decides whether fn runs.
 *
 * NULL: the constructors fail with EINVAL, weft_ctx_err returns -EINVAL,
 * weft_ctx_done and weft_ctx_value return NULL, cancel and free do nothing.
 */
#include "runtime.h"
#include "sync.h"
#include "sys.h"
#include "timer.h"
#include "waiter.h"

#include <sched.h>
#include <unistd.h>

enum { K_BACKGROUND, K_CANCEL, K_VALUE };

struct weft_ctx {
    atomic_int refs;
    int kind;
    weft_ctx *parent;
    weft_ctx *canc;   /* nearest cancel node, self included; NULL if none */
    int64_t deadline; /* effective deadline, -1 for none */
    const void *key;  /* value nodes */
    void *value;
    /* cancel nodes only */
    weft__lock lock;
    atomic_int err;        /* written under lock, read anywhere */
    weft_chan *done;       /* closed by the canceller that set err */
    weft_ctx *children;    /* cancel nodes linked here, under lock */
    weft_ctx *next, *prev; /* siblings, or the canceller's work list */
    bool linked;           /* in parent->canc->children */
    atomic_bool settled;   /* its canceller is done with it (see above) */
    bool timed;            /* timer armed (under lock; final once err is set) */
    weft__timer timer;
    weft__ctx_hook *hooks; /* run by the canceller, see "Hooks" */
};

static weft_ctx background = {.kind = K_BACKGROUND, .deadline = -1};

weft_ctx *weft_ctx_background(void) {
    return &background;
}

/* ---- references ---------------------------------------------------------- */

static void ctx_ref(weft_ctx *c) {
    if (c != &background)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* Drop one reference; the last one frees c and releases its parent, up the
 * chain as far as counts reach zero. */
static void ctx_unref(weft_ctx *c) {
    while (c && c != &background) {
        if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
            return;
        weft_ctx *parent = c->parent;
        weft_chan_free(c->done);
        free(c);
        c = parent;
    }
}

/* ---- the children list (under the owner's lock) -------------------------- */

static void list_push(weft_ctx **head, weft_ctx *c) {
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void list_remove(weft_ctx **head, weft_ctx *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

/* Link c below its owner unless the owner is cancelled already; returns the
 * owner's err (0 when linked or when there is no owner). */
static int attach(weft_ctx *c) {
    weft_ctx *owner = c->parent->canc;
    if (!owner)
        return 0;
    weft__lock_acquire(&owner->lock);
    int err = atomic_load_explicit(&owner->err, memory_order_relaxed);
    if (!err) {
        list_push(&owner->children, c);
        c->linked = true;
    }
    weft__lock_release(&owner->lock);
    return err;
}

static void detach(weft_ctx *c) {
    weft_ctx *owner = c->parent->canc;
    if (!owner)
        return;
    weft__lock_acquire(&owner->lock);
    if (c->linked) {
        list_remove(&owner->children, c);
        c->linked = false;
    }
    weft__lock_release(&owner->lock);
}

/* ---- hooks (under the node's lock) --------------------------------------- */

/* Detach every hook of c; from here on weft__ctx_hook_del reports them
 * taken. */
static weft__ctx_hook *hooks_take(weft_ctx *c) {
    weft__ctx_hook *hooks = c->hooks;
    c->hooks = NULL;
    for (weft__ctx_hook *h = hooks; h; h = h->next)
        h->linked = false;
    return hooks;
}

/* Outside every lock.  next is read first: fn may free its hook. */
static void hooks_run(weft__ctx_hook *h, int err) {
    while (h) {
        weft__ctx_hook *next = h->next;
        h->fn(h, err);
        h = next;
    }
}

/* ---- cancellation -------------------------------------------------------- */

/* Cancel c alone with err if nobody did yet (*won).  Its children move,
 * each with a temporary reference, onto the work list, which is
 * returned. */
static weft_ctx *cancel_one(weft_ctx *c, int err, weft_ctx *firing,
                            weft_ctx *work, bool *won) {
    weft__lock_acquire(&c->lock);
    *won = !atomic_load_explicit(&c->err, memory_order_relaxed);
    if (!*won) {
        weft__lock_release(&c->lock);
        return work;
    }
    atomic_store_explicit(&c->err, err, memory_order_release);
    bool timed = c->timed;
    weft_ctx *kids = c->children;
    c->children = NULL;
    weft__ctx_hook *hooks = hooks_take(c);
    while (kids) {
        weft_ctx *k = kids;
        kids = k->next;
        ctx_ref(k);
        k->linked = false;
        k->next = work;
        work = k;
    }
    weft__lock_release(&c->lock);
    weft_close(c->done);
    hooks_run(hooks, err);
    detach(c);
    if (timed && c != firing)
        weft__timer_del(&c->timer);
    return work;
}

static void settle_wait(weft_ctx *c) {
    for (int spins = 0;
         !atomic_load_explicit(&c->settled, memory_order_acquire); spins++)
        if (spins < 100)
            weft__cpu_relax();
        else
            sched_yield();
}

/* Drop the work list's references on a list threaded through next,
 * marking each node settled first if this canceller cancelled it. */
static void release_list(weft_ctx *k, bool settle) {
    while (k) {
        weft_ctx *next = k->next;
        if (settle)
            atomic_store_explicit(&k->settled, true, memory_order_release);
        ctx_unref(k);
        k = next;
    }
}

/* Cancel c and every descendant with err.  firing: the node whose timer
 * callback is running us, or NULL. */
static void cancel_tree(weft_ctx *c, int err, weft_ctx *firing) {
    bool won, mine = false;
    weft_ctx *work = cancel_one(c, err, firing, NULL, &mine);
    /* the nodes taken off the work list, threaded through next: those
     * cancelled here, and those another canceller got to first */
    weft_ctx *ours = NULL, *theirs = NULL;
    while (work) {
        weft_ctx *k = work;
        work = cancel_one(k, err, firing, k->next, &won);
        weft_ctx **list = won ? &ours : &theirs;
        k->next = *list;
        *list = k;
    }
    for (weft_ctx *k = theirs; k && !firing; k = k->next)
        settle_wait(k);
    if (!mine && !firing)
        settle_wait(c);
    release_list(ours, true);
    release_list(theirs, false);
    if (mine)
        atomic_store_explicit(&c->settled, true, memory_order_release);
}

static void deadline_fire(weft__timer *t, int64_t now) {
    weft_ctx *c = t->arg;
    (void)now;
    cancel_tree(c, -ETIMEDOUT, c);
}

void weft_ctx_cancel(weft_ctx *c) {
    if (c && c->kind == K_CANCEL) {
        /* whoever sees the cancel (done closed, a hook run: a read_ctx
         * returning) may free c while this call is still in it */
        ctx_ref(c);
        cancel_tree(c, -ECANCELED, NULL);
        ctx_unref(c);
    }
}

void weft_ctx_free(weft_ctx *c) {
    if (!c || c == &background)
        return;
    if (c->kind == K_CANCEL) {
        cancel_tree(c, -ECANCELED, NULL);
        if (c->timed)
            weft__timer_del(&c->timer); /* see "Deadlines" above */
    }
    ctx_unref(c);
}

/* ---- creation ------------------------------------------------------------ */

static weft_ctx *ctx_new(weft_ctx *parent, int kind) {
    if (!parent) {
        errno = EINVAL;
        return NULL;
    }
    weft_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->kind = kind;
    c->parent = parent;
    ctx_ref(parent);
    c->canc = parent->canc;
    c->deadline = parent->deadline;
    c->timer.idx = -1;
    return c;
}

/* Arm c's timer for when unless c is cancelled already (both under c's
 * lock, so a canceller either sees the timer or c never gets one).
 * 0, -ETIMEDOUT (when has passed), -ENOMEM. */
static int arm(weft_ctx *c, int64_t when) {
    if (when <= weft_now())
        return -ETIMEDOUT;
    int r = 0;
    weft__lock_acquire(&c->lock);
    if (!atomic_load_explicit(&c->err, memory_order_relaxed)) {
        c->timer.fn = deadline_fire;
        c->timer.arg = c;
        r = weft__timer_add(&c->timer, when);
        c->timed = r == 0;
    }
    weft__lock_release(&c->lock);
    return r;
}

/* A cancel node below parent; deadline -1 for none. */
static weft_ctx *cancel_node(weft_ctx *parent, int64_t deadline) {
    weft__ensure();
    weft_ctx *c = ctx_new(parent, K_CANCEL);
    if (!c)
        return NULL;
    c->canc = c;
    c->done = weft_chan_make(0, 0);
    if (!c->done) {
        ctx_unref(c);
        errno = ENOMEM;
        return NULL;
    }
    bool own = deadline >= 0 && (c->deadline < 0 || deadline < c->deadline);
    if (own)
        c->deadline = deadline;
    int err = attach(c);
    if (!err && own)
        err = arm(c, deadline);
    if (err == -ENOMEM) {
        weft_ctx_free(c);
        errno = ENOMEM;
        return NULL;
    }
    if (err)
        cancel_tree(c, err, NULL);
    return c;
}

weft_ctx *weft_ctx_with_cancel(weft_ctx *parent) {
    return cancel_node(parent, -1);
}

weft_ctx *weft_ctx_with_deadline(weft_ctx *parent, int64_t deadline) {
    return cancel_node(parent, weft__timeout(deadline));
}

weft_ctx *weft_ctx_with_timeout(weft_ctx *parent, int64_t timeout_ns) {
    return cancel_node(parent, weft__deadline(timeout_ns));
}

weft_ctx *weft_ctx_with_value(weft_ctx *parent, const void *key, void *value) {
    weft_ctx *c = ctx_new(parent, K_VALUE);
    if (c) {
        c->key = key;
        c->value = value;
    }
    return c;
}

/* ---- queries ------------------------------------------------------------- */

void *weft_ctx_value(weft_ctx *c, const void *key) {
    for (; c; c = c->parent)
        if (c->kind == K_VALUE && c->key == key)
            return c->value;
    return NULL;
}

weft_chan *weft_ctx_done(weft_ctx *c) {
    return c && c->canc ? c->canc->done : NULL;
}

int weft_ctx_err(weft_ctx *c) {
    if (!c)
        return -EINVAL;
    return c->canc ? atomic_load_explicit(&c->canc->err, memory_order_acquire)
                   : 0;
}

int weft_ctx_deadline(weft_ctx *c, int64_t *deadline) {
    if (!c)
        return -EINVAL;
    if (deadline)
        *deadline = c->deadline;
    return c->deadline >= 0;
}

/* ---- hooks --------------------------------------------------------------- */

int weft__ctx_hook_add(weft_ctx *c, weft__ctx_hook *h) {
    weft_ctx *o = c->canc;
    h->owner = o;
    h->linked = false;
    if (!o)
        return 0;
    weft__lock_acquire(&o->lock);
    int err = atomic_load_explicit(&o->err, memory_order_relaxed);
    if (!err) {
        h->prev = NULL;
        h->next = o->hooks;
        if (o->hooks)
            o->hooks->prev = h;
        o->hooks = h;
        h->linked = true;
    }
    weft__lock_release(&o->lock);
    return err;
}

bool weft__ctx_hook_del(weft__ctx_hook *h) {
    weft_ctx *o = h->owner;
    if (!o)
        return true;
    weft__lock_acquire(&o->lock);
    bool was = h->linked;
    if (was) {
        if (h->prev)
            h->prev->next = h->next;
        else
            o->hooks = h->next;
        if (h->next)
            h->next->prev = h->prev;
        h->linked = false;
    }
    weft__lock_release(&o->lock);
    return was;
}

/* ---- waits that end with the context ------------------------------------- */

/* done is the last access: weft__ctx_wait_end waits for it before the
 * waiter's stack, which holds w, may go.  The hook may fire while the
 * waiter is still inside weft__block: weft__claim reads only p->solo,
 * which weft__block leaves alone on a multi park. */
static void wait_fire(weft__ctx_hook *h, int err) {
    weft__ctx_wait *w = (weft__ctx_wait *)h;
    w->err = err;
    if (w->park) {
        if (weft__claim(w->park))
            weft__unpark(w->park);
    } else {
        uint64_t one = 1;
        ssize_t r = write(w->efd, &one, sizeof one);
        (void)r; /* EAGAIN: the counter is non-zero, the poll wakes anyway */
    }
    atomic_store_explicit(&w->done, 1, memory_order_release);
}

int weft__ctx_wait_begin(weft__ctx_wait *w, weft_ctx *c, weft__park *p,
                         int efd) {
    w->hook.fn = wait_fire;
    w->park = p;
    w->efd = efd;
    w->err = 0;
    atomic_store_explicit(&w->done, 0, memory_order_relaxed);
    if (p)
        p->multi = true; /* the hook races every other waker for the claim */
    return weft__ctx_hook_add(c, &w->hook);
}

int weft__ctx_wait_end(weft__ctx_wait *w) {
    if (weft__ctx_hook_del(&w->hook))
        return 0;
    /* the canceller took the hook and runs it now or ran it: it never
     * blocks in between, so this wait is short */
    for (int spins = 0; !atomic_load_explicit(&w->done, memory_order_acquire);
         spins++)
        if (spins < 100)
            weft__cpu_relax();
        else
            sched_yield();
    return w->err;
}

int weft_sleep_ctx(weft_ctx *c, int64_t ns) {
    if (!c)
        return -EINVAL;
    int err = weft_ctx_err(c);
    if (err || ns <= 0)
        return err;
    weft__ensure();
    weft__park p;
    weft__park_init(&p, "sleep", NULL);
    weft__ctx_wait w;
    err = weft__ctx_wait_begin(&w, c, &p, -1);
    if (err)
        return err;
    weft__block(&p, weft__deadline(ns), NULL, NULL);
    return weft__ctx_wait_end(&w);
}

/* ---- after-functions ----------------------------------------------------- */

/* Two references: the caller's (dropped by weft_ctx_after_stop) and the
 * pending run's (dropped when fn returns, or by a stop that unlinked the
 * hook first).  hook.owner carries a reference of its own until the
 * handle goes, so a stop can always take the owner's lock. */
struct weft_after {
    weft__ctx_hook hook;
    weft_fn fn;
    void *arg;
    atomic_int refs;
};

static void after_unref(weft_after *a) {
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    ctx_unref(a->hook.owner);
    free(a);
}

static void after_run(void *arg) {
    weft_after *a = arg;
    a->fn(a->arg);
    after_unref(a);
}

static int after_go(weft_after *a) {
    static const weft_goopts opts = {.name = "ctx after func"};
    return weft_go_with(after_run, a, &opts);
}

/* On the canceller, outside every lock.  Without memory for a goroutine
 * fn still runs: on the canceller, which is better than never. */
static void after_fire(weft__ctx_hook *h, int err) {
    weft_after *a = (weft_after *)h;
    (void)err;
    if (after_go(a) != 0)
        after_run(a);
}

weft_after *weft_ctx_after_func(weft_ctx *c, weft_fn fn, void *arg) {
    if (!c || !fn) {
        errno = EINVAL;
        return NULL;
    }
    weft__ensure();
    weft_after *a = calloc(1, sizeof *a);
    if (!a) {
        errno = ENOMEM;
        return NULL;
    }
    a->hook.fn = after_fire;
    a->fn = fn;
    a->arg = arg;
    atomic_init(&a->refs, 2);
    if (c->canc)
        ctx_ref(c->canc);
    if (weft__ctx_hook_add(c, &a->hook) && after_go(a) != 0) {
        ctx_unref(a->hook.owner);
        free(a);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

int weft_ctx_after_stop(weft_after *a) {
    if (!a)
        return -EINVAL;
    bool stopped = weft__ctx_hook_del(&a->hook);
    if (stopped)
        after_unref(a);
    after_unref(a);
    return stopped;
}
