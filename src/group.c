/* SPDX-License-Identifier: MIT */
/*
 * Groups: structured concurrency, as Go's errgroup.
 *
 * A group owns a cancel context derived from its parent (tasks receive it),
 * a WaitGroup counting tasks, the first failure, and a slot counter for the
 * optional limit.
 *
 * Tasks and lifetime.  weft_group_go adds to the WaitGroup *before* it waits
 * for a slot, so weft_group_wait cannot return while a start is in
 * progress.  A task's goroutine records its result, gives its slot back and
 * calls weft_wg_done as its very last access to the group; wait frees the
 * group right after weft_wg_wait returns (sync.c allows that), so nothing
 * the group started outlives wait.
 *
 * First failure.  err goes from 0 to the first non-zero result by a single
 * compare-and-swap; only that winner cancels the context.
 *
 * Slots: a counter plus a wait queue rather than a buffered channel, so
 * that a non-blocking attempt (-EAGAIN) and a limit changed at run time are
 * both simple.  `running` counts tasks holding a slot; a waiter is handed
 * its slot by whoever frees one (running is incremented on its behalf before
 * it is woken), so a newcomer cannot take it first and the limit holds
 * exactly.  Raising the limit wakes as many waiters as it frees slots.
 *
 * NULL arguments: weft_group_go/try_go/wait return -EINVAL for a NULL group
 * or task, weft_group_ctx(NULL) returns NULL (errno EINVAL),
 * weft_group_limit(NULL, n) does nothing.
 */
#include "runtime.h"
#include "sys.h"
#include "waiter.h"

struct weft_group {
    weft_ctx *ctx;
    weft_wg wg;
    atomic_int err;
    weft__lock lock; /* guards limit, running and q */
    int limit;       /* <= 0: no limit */
    int running;     /* tasks holding a slot */
    weft__wq q;      /* weft_group_go callers waiting for a slot */
};

typedef struct task {
    weft_group *g;
    weft_task fn;
    void *arg;
} task;

/* ---- slots --------------------------------------------------------------- */

static bool slot_free(const weft_group *g) {
    return g->limit <= 0 || g->running < g->limit;
}

/* With g->lock held: hand free slots to waiters, release the lock, then wake
 * them. */
static void slots_grant(weft_group *g) {
    weft__wnode *woken = NULL;
    size_t free_slots = SIZE_MAX;
    if (g->limit > 0)
        free_slots = slot_free(g) ? (size_t)(g->limit - g->running) : 0;
    g->running += (int)weft__wq_claim(&g->q, free_slots, &woken);
    weft__unlock_unpark_list(&g->lock, woken);
}

/* Take a slot: 0, or -EAGAIN when none is free and wait is false. */
static int slot_take(weft_group *g, bool wait) {
    weft__lock_acquire(&g->lock);
    if (slot_free(g)) {
        g->running++;
        weft__lock_release(&g->lock);
        return 0;
    }
    if (!wait) {
        weft__lock_release(&g->lock);
        return -EAGAIN;
    }
    weft__ensure(); /* someone must be there to notice a deadlock */
    weft__waiter w;
    weft__waiter_init(&w, "group slot", g, NULL);
    weft__wq_wait(&g->q, &g->lock, &w, -1);
    return 0; /* slots_grant counted us in running */
}

static void slot_give(weft_group *g) {
    weft__lock_acquire(&g->lock);
    g->running--;
    slots_grant(g);
}

void weft_group_limit(weft_group *g, int n) {
    if (!g)
        return;
    weft__lock_acquire(&g->lock);
    g->limit = n;
    slots_grant(g);
}

/* ---- tasks --------------------------------------------------------------- */

static void task_main(void *arg) {
    task t = *(task *)arg;
    free(arg);
    weft_group *g = t.g;
    int r = t.fn(g->ctx, t.arg);
    int zero = 0;
    if (r && atomic_compare_exchange_strong(&g->err, &zero, r))
        weft_ctx_cancel(g->ctx);
    slot_give(g);
    weft_wg_done(&g->wg); /* last access to g */
}

/* Start fn in a goroutine holding a slot; gives the slot back on failure. */
static int spawn(weft_group *g, weft_task fn, void *arg) {
    task *t = malloc(sizeof *t);
    int r = -ENOMEM;
    if (t) {
        *t = (task){.g = g, .fn = fn, .arg = arg};
        r = weft_go_with(task_main, t, &(weft_goopts){.name = "group task"});
        if (r)
            free(t);
    }
    if (r)
        slot_give(g);
    return r;
}

static int group_start(weft_group *g, weft_task fn, void *arg, bool wait) {
    if (!g || !fn)
        return -EINVAL;
    weft_wg_add(&g->wg, 1);
    int r = slot_take(g, wait);
    if (!r)
        r = spawn(g, fn, arg);
    if (r)
        weft_wg_done(&g->wg);
    return r;
}

int weft_group_go(weft_group *g, weft_task fn, void *arg) {
    return group_start(g, fn, arg, true);
}

int weft_group_try_go(weft_group *g, weft_task fn, void *arg) {
    return group_start(g, fn, arg, false);
}

/* ---- the group ----------------------------------------------------------- */

weft_group *weft_group_make(weft_ctx *parent) {
    weft_group *g = calloc(1, sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    g->ctx = weft_ctx_with_cancel(parent ? parent : weft_ctx_background());
    if (!g->ctx) {
        int e = errno;
        free(g);
        errno = e;
        return NULL;
    }
    return g;
}

weft_ctx *weft_group_ctx(weft_group *g) {
    if (!g)
        errno = EINVAL;
    return g ? g->ctx : NULL;
}

int weft_group_wait(weft_group *g) {
    if (!g)
        return -EINVAL;
    weft_wg_wait(&g->wg);
    weft_ctx_free(g->ctx);
    int r = atomic_load(&g->err);
    free(g);
    return r;
}
