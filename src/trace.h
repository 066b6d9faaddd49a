/* SPDX-License-Identifier: MIT */
/*
 * The event recorder (trace.c, WEFT_TRACE): the scheduler's events (spawn,
 * run, stop, steal, idle), the waiter's (block, wake) and the hand-offs of
 * Ps between threads, written to per-thread buffers and flushed as one
 * file.  trace.c names nothing but
 * sys, so every layer from the scheduler up may call it by name without a
 * cycle: it is a sink, beside sys, not a layer above the scheduler.  Each
 * call sits behind WEFT__UNLIKELY(weft__tracing()): one relaxed load of a
 * flag that never changes once the runtime runs.  The hand-off recorders
 * test that flag themselves: their callers are off the hot path.
 */
#ifndef WEFT_TRACE_H
#define WEFT_TRACE_H

#include "sys.h"

typedef struct weft__g weft__g;
typedef struct weft__park weft__park;

extern atomic_bool weft__trace_on;
static inline bool weft__tracing(void) {
    return atomic_load_explicit(&weft__trace_on, memory_order_relaxed);
}

void weft__trace_spawn(const weft__g *g);
void weft__trace_run(const weft__g *g);  /* a worker switches to g */
void weft__trace_stop(const weft__g *g); /* ... and back from it */
void weft__trace_steal(int victim);
void weft__trace_idle(void); /* a worker goes idle */
void weft__trace_block(const weft__park *p);
void weft__trace_wake(const weft__g *g);
/* The monitor gave P p, held by M from_m whose goroutine g kept it too
 * long, to M to_m: a "handoff" instant on the caller's (the monitor's)
 * track. */
void weft__trace_handoff(int p, int from_m, int to_m, uint64_t g);
/* A step of the calling thread's own, as an instant on its track: "P lost"
 * (its goroutine re-entered weft and found its P gone), "spare", "M new",
 * "M exit".  what must outlive the process's trace (a string literal). */
void weft__trace_m(const char *what);

/* Start-up (weft__diag_init), a thread's buffer (weft__diag_worker_init),
 * the file at weft_shutdown and at exit, and a fork's child (tracing off).
 * weft__trace_thread(wid) gives the calling thread the buffer of M wid
 * (0 <= wid < 1024, made on first use; one thread at a time per id), or
 * with wid -1 the monitor's; any other wid records on the plain threads'
 * shared buffer, without run slices. */
void weft__trace_init(int nprocs);
void weft__trace_thread(int wid);
void weft__trace_flush(void);
void weft__trace_atfork_child(void);

#endif
