/* SPDX-License-Identifier: MIT */
/*
 * The operating system's primitives every layer uses: the futex, the spin
 * lock's contended path, the fence word ThreadSanitizer needs, the
 * monotonic clock, and the creation of weft's own threads with the signal
 * mask signal.c explains.
 */
#include "../sys.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef WEFT_TSAN
atomic_uint weft__fence_word;
#endif

int weft__futex_wait(atomic_uint *addr, unsigned val, int64_t timeout_ns) {
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tp = &ts;
    }
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
    if (r < 0 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0;
}

void weft__futex_wake(atomic_uint *addr, int n) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Test-and-test-and-set with exponential backoff: waiters that all poll
 * the line at once only bounce it between cores and delay the holder. */
void weft__lock_slow(weft__lock *l) {
    unsigned backoff = 1;
    for (unsigned spins = 0;; spins++) {
        unsigned zero = 0;
        if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(
                &l->v, &zero, 1, memory_order_acquire, memory_order_relaxed))
            return;
        if (spins < 64) {
            for (unsigned i = 0; i < backoff; i++)
                weft__cpu_relax();
            if (backoff < 64)
                backoff <<= 1;
        } else {
            sched_yield(); /* the holder may have been preempted */
        }
    }
}

void weft__unlock_cb(void *lock) {
    weft__lock_release(lock);
}

int64_t weft_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the mask of weft's own threads ------------------------------------- */

/* Every signal blocked but those that must reach a particular thread. */
void weft__thread_mask(sigset_t *s) {
    static const int keep[] = {SIGSEGV, SIGBUS, SIGFPE,  SIGILL,
                               SIGTRAP, SIGSYS, SIGPROF, SIGQUIT};
    sigfillset(s);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        sigdelset(s, keep[i]);
}

int weft__thread_start(pthread_t *t, const pthread_attr_t *attr,
                       void *(*fn)(void *), void *arg) {
    sigset_t mask, old;
    weft__thread_mask(&mask);
    /* the new thread inherits the creator's mask: set it around the call */
    pthread_sigmask(SIG_SETMASK, &mask, &old);
    int e = pthread_create(t, attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}
