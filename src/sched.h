/* SPDX-License-Identifier: MIT */
/*
 * Layer 3, the scheduler (sched.c): goroutines (weft__g and its states),
 * the workers that run them, their run queues, ready and leave, and the
 * hooks through which the layers above watch it (weft__worker_init,
 * weft__idle_hook).  The waiter (waiter.h) is its one client for blocking.
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include "arch/arch.h"
#include "stack.h"
#include "sys.h"

/* ---- goroutines and workers --------------------------------------------- */

enum {
    WEFT__G_RUNNABLE = 1,
    WEFT__G_RUNNING,
    WEFT__G_WAITING,
    WEFT__G_DEAD,
};

typedef struct weft__park weft__park;
typedef struct weft__worker weft__worker;

/* Two cache lines.  The first holds what a spawn writes and a run, a park
 * or an exit touches; it moves between the spawning and the running core
 * once each way.  The second is for the global queue's single list, the
 * loose free list, names and TSan: a free g keeps its name empty, so a
 * spawn need not touch it (see g_alloc). */
typedef struct weft__g {
    _Alignas(WEFT__CACHELINE) weft__regs ctx;
    weft__stack *stack; /* NULL until the goroutine first runs */
    size_t stack_size;
    weft_fn fn;
    void *arg;
    uint64_t id;
    _Atomic(weft__park *) park; /* blocked on, for weft_dump; NULL if free */
    atomic_int status;          /* WEFT__G_*, 0 while the struct is free */
    bool named;                 /* name is set: it must be cleared when freed */
    _Alignas(WEFT__CACHELINE) struct weft__g *link; /* see the comment above */
    void *tsan_fiber;
    char name[32];
} weft__g;

/* The worker running the caller, NULL on a plain thread.  Not inlined and
 * never cached: a goroutine can resume on another worker after any switch. */
weft__worker *weft__self(void);
/* The running goroutine, NULL on a plain thread. */
weft__g *weft__curg(void);

/* The scheduler's part of start-up and shutdown, in runtime.c's order.
 * weft__sched_config reads cfg and the environment and returns the number
 * of workers; weft__sched_start starts them (0, -ENOMEM, -EAGAIN);
 * weft__sched_stop stops and joins them and frees the scheduler's memory.
 * For fork: weft__sched_atfork takes (0) or releases (1, 2) the
 * scheduler's locks, and in the child weft__sched_forget drops what
 * belonged to the parent's workers. */
int weft__sched_config(const weft_config *cfg);
int weft__sched_start(void);
void weft__sched_stop(void);
void weft__sched_atfork(int phase);
void weft__sched_forget(void);
/* Number of workers, without starting the runtime. */
int weft__nprocs(void);
/* First thing on each worker's thread, set before weft__sched_start: the
 * diagnostics' per-thread set-up, installed by the runtime, so that the
 * scheduler does not call the layers above it by name. */
extern void (*weft__worker_init)(int wid);
/* What the poller does when it would sleep without a deadline: sleep at
 * most period, then call check() if that sleep passed undisturbed (the
 * deadlock detector; NULL: sleep until woken).  check may exit. */
typedef struct weft__idle_ops {
    int64_t period;
    void (*check)(void);
} weft__idle_ops;
extern _Atomic(const weft__idle_ops *) weft__idle_hook;
/* weft_go_with after its checks and weft__ensure: make and ready the g. */
int weft__go(weft_fn fn, void *arg, const weft_goopts *opts);

/* Make g runnable (from anywhere).  A goroutine woken by a goroutine goes to
 * the waker's "run next" slot. */
void weft__ready(weft__g *g);

/* Switch the running goroutine g out (the waiter's way to block).  after(w,
 * arg) runs once g's stack is no longer in use, on the context that runs
 * next on that worker; it must publish g's new state. */
void weft__leave(weft__g *g, void (*after)(weft__worker *, void *), void *arg);

/* A random 32-bit number from the calling worker's (or thread's) PRNG;
 * seeded from WEFT_SEED when that is set. */
uint32_t weft__rand(void);

#endif
