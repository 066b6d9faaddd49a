/* SPDX-License-Identifier: MIT */
/*
 * Layer 4, the timer heap (timer.c): one heap for the process, run by
 * whichever worker finds timers due.  Park deadlines, weft_sleep, the
 * public weft_timer and ctx deadlines are all entries of it.
 */
#ifndef WEFT_TIMER_H
#define WEFT_TIMER_H

#include "sys.h"

typedef struct weft__timer weft__timer;
typedef void (*weft__timer_fn)(weft__timer *t, int64_t now);

struct weft__timer {
    int64_t when;   /* deadline on weft_now()'s clock */
    int64_t period; /* > 0: re-armed at when + period after each run */
    weft__timer_fn fn;
    void *arg;
    int32_t idx;        /* heap slot, -1 when not queued */
    atomic_int running; /* fn executing now: its epoch (timer.c), else 0 */
};

/* Queue t to run fn at when.  t must not be queued already. */
int weft__timer_add(weft__timer *t, int64_t when);
/* Dequeue t; true if it was still queued.  Waits while t->fn runs, so after
 * it returns t may be freed (do not call it from t->fn). */
bool weft__timer_del(weft__timer *t);
/* Run the due timers; returns the next deadline, or -1 if none. */
int64_t weft__timers_run(int64_t now);
/* Deadline of the earliest timer, or -1. */
int64_t weft__timers_next(void);
size_t weft__timers_pending(void);
void weft__timers_release(void);
/* fork(): 0 before (lock the heap), 1 in the parent (unlock), 2 in the
 * child (forget the parent's timers, unlock). */
void weft__timers_atfork(int phase);

/* Called by weft__timer_add, outside the heap's lock, when the new timer is
 * the earliest: the scheduler installs it so that an idle worker sleeping
 * towards a later deadline wakes up.  NULL until the scheduler starts. */
typedef void (*weft__timer_hook)(int64_t when);
extern _Atomic(weft__timer_hook) weft__timer_earliest;

#endif
