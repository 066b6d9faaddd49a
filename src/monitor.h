/* SPDX-License-Identifier: MIT */
/*
 * Layer 3, the monitor (Go's sysmon, monitor.c): one thread that watches
 * the Ps so that no goroutine stalls the others by holding its thread.
 * What it may do to a P, and what the scheduler (sched.c) does for it, is
 * declared here; runtime.c starts and stops it.  Nothing in sched.c calls
 * the monitor: it wakes it through weft__sched_mon_sleep's word.
 */
#ifndef WEFT_MONITOR_H
#define WEFT_MONITOR_H

#include "proc.h"
#include "sched.h"

/* Tunables, in one place. */
/* A P whose goroutine has not switched for this long, while goroutines
 * wait that no idle P will take, is handed off. */
#define WEFT__HANDOFF_NS WEFT_MS(2)
/* The monitor's look cadence: LOOK_MIN while a P sleeps beside a running
 * one (goroutines queued behind a busy one are rescued within one or two
 * looks) or right after it acted, doubling up to LOOK_MAX while every P
 * runs undisturbed; no looks while every P sleeps (but see the sweep). */
#define WEFT__LOOK_MIN WEFT_US(500)
#define WEFT__LOOK_MAX WEFT_MS(10)
/* The sweep's period (weft__netpoll_sweep): a wait on a registration that
 * went stale behind weft's back is served within two of them. */
#define WEFT__SWEEP_NS WEFT_MS(50)
/* Default of WEFT_MAXTHREADS: the threads that run goroutines, the procs
 * ones included, at most. */
#define WEFT__MAX_THREADS 256

/* runtime.c's: start the monitor thread after the scheduler (0 or
 * -EAGAIN), stop it before the scheduler stops, forget it in a forked
 * child.  WEFT_HOGWARN is read at start. */
int weft__monitor_start(void);
void weft__monitor_stop(void);
void weft__monitor_forget(void);
/* Threads the monitor runs (0 or 1), for the deadlock detector's count. */
int weft__monitor_threads(void);

/* ---- what the scheduler does for the monitor (sched.c) ---------------- */

/* The Ps made so far (a P is never freed while the runtime runs). */
int weft__sched_nps(void);
weft__p *weft__sched_p(int i);
bool weft__sched_seeded(void);
/* p sleeps: on the idle list, or as the poller in epoll. */
bool weft__sched_p_asleep(weft__p *p);
/* Some P sleeps, so queued goroutines and timers have a taker. */
bool weft__sched_watched(void);
/* Move p's queued goroutines to the global queue and wake a worker for
 * them; how many. */
size_t weft__sched_rescue(weft__p *p);
/* Peek the epoll set of every slot whose P has neither polled it since
 * the previous call nor sleeps in it (its goroutines keep it from its
 * descriptors): their goroutines go to the global queue. */
void weft__sched_poll_unwatched(void);
/* Wake an idle worker to look for work (unless one is looking already). */
void weft__sched_wakep(void);
/* Retire p (its goroutine holds the thread) and give a free P to a spare
 * or new M: 0, -EAGAIN at WEFT_MAXTHREADS, -ENOMEM, or -errno of
 * pthread_create. */
int weft__sched_handoff(weft__p *p);
/* Sleep ns; idle: only while every P sleeps and none is held, at most ns
 * (-1: no limit). */
void weft__sched_mon_sleep(int64_t ns, bool idle);
/* End the monitor's sleep now (at shutdown). */
void weft__sched_mon_wake(void);
/* M threads alive: the procs ones, the handed-off ones, spares; and the
 * most there may be (WEFT_MAXTHREADS). */
int weft__sched_threads(void);
int weft__sched_threads_max(void);

#endif
