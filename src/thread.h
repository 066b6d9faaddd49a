/* SPDX-License-Identifier: MIT */
/*
 * Layer 3, the threads that run goroutines (Go's M): one OS thread, its g0
 * (the scheduler's context on the thread's native stack), the goroutine
 * it runs, the after-hook a switch leaves, its PRNG and its futex word.
 * What a worker owns (run queues, caches) is its P (proc.h).  An M runs
 * one P at a time; one whose P was retired (see proc.h) goes on running its
 * goroutine on its own thread, gives the P up when that goroutine next
 * switches, and waits as a spare until the monitor gives it another P.
 * thread.c starts an M with the scheduler's loop passed in, so it never
 * names sched.c.
 */
#ifndef WEFT_THREAD_H
#define WEFT_THREAD_H

#include "arch/arch.h"
#include "sys.h"

#include <pthread.h>

struct weft__g;
struct weft__p;
typedef struct weft__m weft__m;

struct weft__m {
    /* hot: read and written on every switch */
    _Alignas(WEFT__CACHELINE) struct weft__p *p; /* NULL while a spare */
    _Atomic(struct weft__g *) cur;        /* NULL on g0; the monitor reads it */
    void (*after)(weft__m *m, void *arg); /* see sched.c's run_hook */
    void *after_arg;
    uint64_t rng;
    /* cold */
    _Alignas(WEFT__CACHELINE) weft__regs g0;
    atomic_uint sleep_word; /* 1 = woken (weft__m_wake) */
    int id;
    atomic_int tid; /* its thread's kernel id (the monitor reads it) */
    bool spare;     /* on the spare list (under the scheduler's M lock) */
    bool joined;    /* no thread to join: joined, detached, or not started */
    weft__m *spare_next;
    void (*loop)(weft__m *m);
    pthread_t thread;
    void *tsan_fiber; /* g0's fiber */
    void *stack_lo;   /* the native stack, for ASan's fiber switches */
    size_t stack_size;
};

/* The M running the caller, NULL on a plain thread.  Not inlined and
 * never cached: a goroutine can resume on another M after any switch. */
weft__m *weft__m_self(void);
/* The running goroutine, NULL on a plain thread or on g0. */
struct weft__g *weft__curg(void);

/* First thing on each M's thread, set before the first M starts: the
 * diagnostics' per-thread set-up, installed by the runtime, so that this
 * layer does not call the layers above it by name. */
extern void (*weft__worker_init)(int wid);

/* A new M numbered id, not started; NULL if out of memory. */
weft__m *weft__m_new(int id);
/* Start m's thread running loop(m); 0 or a positive errno. */
int weft__m_start(weft__m *m, void (*loop)(weft__m *m));
/* m's futex word: weft__m_arm, then weft__m_sleep returns once some
 * weft__m_wake has run since the arm (the idle list's protocol). */
static inline void weft__m_arm(weft__m *m) {
    atomic_store_explicit(&m->sleep_word, 0, memory_order_relaxed);
}

static inline void weft__m_wake(weft__m *m) {
    atomic_store_explicit(&m->sleep_word, 1, memory_order_release);
    weft__futex_wake(&m->sleep_word, 1);
}

static inline void weft__m_sleep(weft__m *m) {
    while (!atomic_load_explicit(&m->sleep_word, memory_order_acquire))
        weft__futex_wait(&m->sleep_word, 0, -1);
}

/* weft__m_sleep for at most ns: false if no wake came by then. */
bool weft__m_sleep_for(weft__m *m, int64_t ns);

/* Wait for m's thread to end (its loop returned); once, and not for a
 * detached one (m->joined). */
void weft__m_join(weft__m *m);
/* In a forked child: the caller's thread is no longer an M. */
void weft__m_forget_self(void);

#endif
