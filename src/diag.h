/* SPDX-License-Identifier: MIT */
/*
 * Layer 8, the diagnostics (debug.c, deadlock.c, trace.c): weft_dump and the
 * signal handlers, the leak report, the deadlock check and the trace.  They
 * read every layer below and are hooked into them (weft__worker_init,
 * weft__idle_hook: sched.h) by the runtime, which also calls their set-up
 * and flush by name.  The trace's recorder,
 * which every layer calls, has its own header below them (trace.h).
 */
#ifndef WEFT_DIAG_H
#define WEFT_DIAG_H

#include "netpoll.h"
#include "sched.h"
#include "stack.h"
#include "sys.h"
#include "timer.h"
#include "trace.h"
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

/* ---- deadlock detection (deadlock.c) ------------------------------------- */

/* The idle hook the diagnostics install unless WEFT_DEADLOCK=0. */
extern const weft__idle_ops weft__deadlock_ops;

#endif
