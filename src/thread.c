/* SPDX-License-Identifier: MIT */
/*
 * The threads that run goroutines (Go's M): creation, the thread-local
 * slot, and what each thread sets up before it runs the scheduler's loop.
 */
#include "thread.h"

#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

static __thread weft__m *tls_m;

void (*weft__worker_init)(int wid);

/* The empty asm makes the functions opaque to the optimiser: they are
 * never treated as pure, so every call really reads the current thread's
 * slot. */
WEFT__NOINLINE weft__m *weft__m_self(void) {
    __asm__ volatile("" ::: "memory");
    return tls_m;
}

WEFT__NOINLINE struct weft__g *weft__curg(void) {
    __asm__ volatile("" ::: "memory");
    weft__m *m = tls_m;
    return m ? atomic_load_explicit(&m->cur, memory_order_relaxed) : NULL;
}

weft__m *weft__m_new(int id) {
    weft__m *m =
        aligned_alloc(WEFT__CACHELINE, (sizeof *m + WEFT__CACHELINE - 1) &
                                           ~(size_t)(WEFT__CACHELINE - 1));
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->id = id;
    return m;
}

static void *m_main(void *arg) {
    weft__m *m = arg;
    tls_m = m;
    atomic_store_explicit(&m->tid, (int)syscall(SYS_gettid),
                          memory_order_relaxed);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &m->stack_lo, &m->stack_size);
        pthread_attr_destroy(&attr);
    }
#ifdef WEFT_TSAN
    m->tsan_fiber = __tsan_get_current_fiber();
#endif
    if (weft__worker_init)
        weft__worker_init(m->id);
    /* the poller's epoll timeout is the timer heap's deadline: do not let
     * the kernel's default 50 us of slack blur it */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    m->loop(m);
    return NULL;
}

int weft__m_start(weft__m *m, void (*loop)(weft__m *m)) {
    m->loop = loop;
    return weft__thread_start(&m->thread, NULL, m_main, m);
}

bool weft__m_sleep_for(weft__m *m, int64_t ns) {
    int64_t until = weft_now() + ns;
    while (!atomic_load_explicit(&m->sleep_word, memory_order_acquire)) {
        int64_t left = until - weft_now();
        if (left <= 0)
            return false;
        weft__futex_wait(&m->sleep_word, 0, left);
    }
    return true;
}

void weft__m_join(weft__m *m) {
    pthread_join(m->thread, NULL);
}

void weft__m_forget_self(void) {
    tls_m = NULL;
}
