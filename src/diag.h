/* SPDX-License-Identifier: MIT */
/*
 * Layer 8, the diagnostics (debug.c, deadlock.c, trace.c): weft_dump and the
 * signal handlers, the leak report, the deadlock check and the trace.  They
 * read every layer below and are hooked into them (weft__worker_init,
 * weft__idle_hook: sched.h) by the runtime, which also calls their set-up
 * and flush by name.  Nothing below calls them by name but the scheduler's
 * and the waiter's trace events.
 */
#ifndef WEFT_DIAG_H
#define WEFT_DIAG_H

#include "netpoll.h"
#include "sched.h"
#include "stack.h"
#include "sys.h"
#include "timer.h"
#include "waiter.h"

/* ---- dump, leaks, signals (debug.c) -------------------------------------- */

/* Runtime start: signal handlers, WEFT_DEADLOCK / WEFT_LEAKCHECK /
 * WEFT_TRACE, exit hooks.  nprocs workers are about to start. */
void weft__diag_init(int nprocs);
/* First thing on worker wid's thread: alternate signal stack, trace buffer. */
void weft__diag_worker_init(int wid);
/* weft_shutdown found goroutines alive: report the blocked ones as leaks;
 * how many it reported. */
size_t weft__leaks_report(void);
/* weft__foreach_g for diagnostics: racy reads of goroutines that may be
 * running, hidden from ThreadSanitizer (see debug.c). */
void weft__diag_walk(void (*fn)(weft__g *g, void *arg), void *arg);
/* The park g sleeps on: NULL unless g is parked on an unclaimed park. */
const weft__park *weft__g_blocked_on(const weft__g *g);
/* Print the deadlock message and the dump (once per process). */
void weft__deadlock_report(void);

/* ---- what the diagnostics read of the scheduler (sched.c) ---------------- */

/* Call fn for every live goroutine (a racy snapshot, for diagnostics). */
void weft__foreach_g(void (*fn)(weft__g *g, void *arg), void *arg);
/* For the deadlock check: true when every worker but the caller sleeps on
 * the idle list; *epoch changes whenever any worker schedules. */
bool weft__sched_quiet(uint64_t *epoch);

/* ---- deadlock detection (deadlock.c) ------------------------------------- */

/* The idle hook the diagnostics install unless WEFT_DEADLOCK=0. */
extern const weft__idle_ops weft__deadlock_ops;

/* ---- tracing (trace.c) ----------------------------------------------------
 *
 * The scheduler's events; the waiter's two (block, wake) and the flag are
 * declared with the waiter (waiter.h). */

void weft__trace_spawn(const weft__g *g);
void weft__trace_run(const weft__g *g);  /* a worker switches to g */
void weft__trace_stop(const weft__g *g); /* ... and back from it */
void weft__trace_steal(int victim);
void weft__trace_park(void); /* a worker goes idle */
/* Write the WEFT_TRACE file (weft_shutdown; also at exit). */
void weft__trace_flush(void);
/* From weft__diag_init / weft__diag_worker_init. */
void weft__trace_init(int nprocs);
void weft__trace_thread(int wid);
void weft__trace_atfork_child(void); /* the child of a fork: tracing off */

#endif
