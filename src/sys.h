/* SPDX-License-Identifier: MIT */
/*
 * Layer 1, system primitives: what every other layer uses and that depends
 * on nothing of weft but the public header.
 *
 * Owns: the build's sanitizer and branch-hint macros, fatal errors and
 * error names (sys/err.c), the spin lock, the futex, the full fence and
 * the monotonic clock (sys/os.c), and the timeout-to-deadline rule every
 * blocking call shares.
 */
#ifndef WEFT_SYS_H
#define WEFT_SYS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* The library's own calls must not overwrite the call site a user's call
 * recorded (see weft__site in weft.h). */
#define WEFT_NO_SITE
#include "weft.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif

#define WEFT__NOINLINE __attribute__((noinline))
#define WEFT__LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define WEFT__CACHELINE 64

/* ---- fatal errors -------------------------------------------------------- */

/* Print "weft: fatal: <what> (goroutine <id>)" and abort. */
_Noreturn void weft__fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* The running goroutine's id for that line: the scheduler sets it when it
 * starts (sys sits below the scheduler and cannot ask it by name). */
extern uint64_t (*weft__fatal_id)(void);

/* ---- spin lock (short critical sections only) ---------------------------- */

typedef struct weft__lock {
    atomic_uint v;
} weft__lock;

void weft__lock_slow(weft__lock *l);

static inline void weft__lock_acquire(weft__lock *l) {
    unsigned zero = 0;
    if (WEFT__LIKELY(atomic_compare_exchange_weak_explicit(
            &l->v, &zero, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    weft__lock_slow(l);
}

static inline void weft__lock_release(weft__lock *l) {
    atomic_store_explicit(&l->v, 0, memory_order_release);
}

static inline void weft__cpu_relax(void) {
#if defined(__x86_64__)
    __asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

/* A full (StoreLoad) fence.  GCC's ThreadSanitizer rejects
 * atomic_thread_fence; there a seq_cst read-modify-write stands in, which
 * is also a full fence on the hardware. */
#ifdef WEFT_TSAN
extern atomic_uint weft__fence_word;
#define weft__fence()                                                          \
    atomic_fetch_add_explicit(&weft__fence_word, 0, memory_order_seq_cst)
#else
#define weft__fence() atomic_thread_fence(memory_order_seq_cst)
#endif

/* Sleep while *addr == val (spurious returns possible); timeout in ns or -1.
 * Returns -ETIMEDOUT when the timeout passed. */
int weft__futex_wait(atomic_uint *addr, unsigned val, int64_t timeout_ns);
void weft__futex_wake(atomic_uint *addr, int n);

/* pthread_create for every thread weft runs: the thread starts with every
 * asynchronous signal blocked (see signal.c).  0 or an errno value. */
int weft__thread_start(pthread_t *t, const pthread_attr_t *attr,
                       void *(*fn)(void *), void *arg);
/* That mask: every signal blocked but those that must reach a particular
 * thread (faults, SIGPROF). */
void weft__thread_mask(sigset_t *s);

/* Unlock callback for weft__block: releases the weft__lock arg. */
void weft__unlock_cb(void *lock);

/* ---- timeouts ------------------------------------------------------------ *
 *
 * Every timeout and deadline argument goes through these, so that each
 * blocking call reads WEFT_FOREVER, a negative value and a sum beyond the
 * clock the same way (weft.h's conventions). */

/* A timeout (or absolute deadline) as the API reads it: WEFT_FOREVER stays
 * (none), any other negative value counts as 0 (do not wait). */
static inline int64_t weft__timeout(int64_t ns) {
    return ns < 0 && ns != WEFT_FOREVER ? 0 : ns;
}

/* The one place a deadline is computed: from + ns, where ns < 0 counts as
 * 0 and a sum beyond the clock's range saturates at INT64_MAX, a deadline
 * that never comes (still a deadline: not -1, "none").  from >= 0. */
static inline int64_t weft__deadline_at(int64_t from, int64_t ns) {
    if (ns < 0)
        ns = 0;
    return ns > INT64_MAX - from ? INT64_MAX : from + ns;
}

/* Convert a relative timeout (WEFT_FOREVER, 0, > 0; other negatives = 0) to
 * an absolute deadline on weft_now()'s clock (-1 = never). */
static inline int64_t weft__deadline(int64_t timeout_ns) {
    if (timeout_ns == WEFT_FOREVER)
        return -1;
    return weft__deadline_at(weft_now(), timeout_ns);
}

#endif
