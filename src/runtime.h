/* SPDX-License-Identifier: MIT */
/*
 * Layer 9, the runtime's life (runtime.c): start-up, shutdown and fork, in
 * the one order every layer below follows.  Only the public entry points
 * (channels, select, time, descriptor calls, goroutines, sync, ctx,
 * weft_blocking) call weft__ensure; nothing the runtime itself names does.
 */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include "sys.h"

enum { WEFT__RT_STOPPED, WEFT__RT_RUNNING };
extern atomic_int weft__rt_state;
void weft__ensure_slow(void);

/* Start the runtime if it is not running.  Inline: one load on every
 * entry point's path while it runs. */
static inline void weft__ensure(void) {
    if (WEFT__UNLIKELY(
            atomic_load_explicit(&weft__rt_state, memory_order_acquire) !=
            WEFT__RT_RUNNING))
        weft__ensure_slow();
}

/* A part above the scheduler that keeps threads or calls of its own (the
 * weft_blocking pool): the runtime asks it before a shutdown, releases it
 * during one and takes its lock across a fork, in the order of the file
 * comment of runtime.c. */
typedef struct weft__subsystem {
    size_t (*busy)(void);      /* calls in progress: weft_shutdown refuses */
    void (*release)(void);     /* after the timers, before the netpoller */
    void (*atfork)(int phase); /* 0 before, 1 parent, 2 child */
    struct weft__subsystem *next;
} weft__subsystem;

/* Add s for good (once per process; s is static). */
void weft__runtime_join(weft__subsystem *s);

#endif
