/* SPDX-License-Identifier: MIT */
/*
 * Time for programs: weft_sleep, and the public weft_timer (a channel fed
 * by an entry of the timer heap).  Built on the waiter and the channels,
 * like any other blocking call.
 */
#include "chan.h"
#include "runtime.h"
#include "sys.h"
#include "timer.h"
#include "waiter.h"

int weft_sleep(int64_t ns) {
    if (ns <= 0)
        return 0;
    weft__ensure();
    weft__park p;
    weft__park_init(&p, "sleep", NULL);
    /* -ETIMEDOUT is the normal end of a sleep */
    return weft__block(&p, weft__deadline(ns), NULL, NULL) == -ENOMEM ? -ENOMEM
                                                                      : 0;
}

/* ---- weft_timer: a timer that sends on a channel ------------------------- */

struct weft_timer {
    weft__timer t;
    weft_chan *c;
    bool fired; /* a one-shot ran (under the timer's running flag) */
};

static void timer_tick(weft__timer *t, int64_t now) {
    struct weft_timer *wt = t->arg;
    int64_t at = weft_now();
    (void)now;
    weft_try_send(wt->c, &at); /* full: the tick is dropped, as in Go */
    wt->fired = true;
}

weft_timer *weft_timer_start(int64_t delay_ns, int64_t period_ns) {
    if (period_ns < 0) {
        errno = EINVAL;
        return NULL;
    }
    weft__ensure();
    struct weft_timer *wt = calloc(1, sizeof *wt);
    if (!wt) {
        errno = ENOMEM;
        return NULL;
    }
    wt->c = weft_chan_make(sizeof(int64_t), 1);
    if (!wt->c) {
        free(wt);
        errno = ENOMEM;
        return NULL;
    }
    wt->t.fn = timer_tick;
    wt->t.arg = wt;
    wt->t.period = period_ns;
    wt->t.idx = -1;
    if (weft__timer_add(&wt->t, weft__deadline_at(weft_now(), delay_ns)) < 0) {
        weft_chan_free(wt->c);
        free(wt);
        errno = ENOMEM;
        return NULL;
    }
    return wt;
}

weft_chan *weft_timer_chan(weft_timer *t) {
    return t ? t->c : NULL;
}

int weft_timer_stop(weft_timer *t) {
    if (!t)
        return -EINVAL;
    bool periodic = t->t.period > 0;
    bool queued = weft__timer_del(&t->t);
    int r = !periodic && queued && !t->fired;
    weft__chan_close_drain(t->c);
    weft_chan_free(t->c);
    free(t);
    return r;
}
