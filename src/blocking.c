/* SPDX-License-Identifier: MIT */
/*
 * weft_blocking: a pool of helper threads for calls that block in the
 * kernel (file I/O, getaddrinfo), so they never hold a worker.
 *
 * A job lives on the caller's stack: fn, arg and the park the caller
 * blocks on.  Jobs wait in a FIFO under pool.mu; idle helpers sleep on
 * pool.cv.  Helpers are started lazily: MIN_HELPERS with the first job,
 * then one more whenever queued jobs outnumber idle helpers, up to
 * MAX_HELPERS; beyond that jobs wait their turn.  Helpers live until
 * weft_shutdown (the pool joins the runtime as a weft__subsystem with the
 * first call), which lets them drain the queue and joins them.
 *
 * The caller holds the job's own lock from before it queues the job until
 * it has parked (weft__block's unlock callback), and the helper takes that
 * lock to claim the park: so the helper sees the park as weft__block left
 * it.  A helper touches the job for the last time in weft__unpark.
 *
 * A call made from a helper (fn calling weft_blocking) runs inline: the
 * helper may block already, and queueing it could wait for ever, every
 * helper holding an outer call that waits for an inner one.
 */
#include "runtime.h"
#include "sys.h"
#include "waiter.h"

#include <pthread.h>

#define MIN_HELPERS 4
#define MAX_HELPERS 64

typedef struct job {
    weft_fn fn;
    void *arg;
    weft__lock lock; /* held by the caller until it is parked */
    weft__park park;
    struct job *next;
} job;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    size_t queued; /* jobs in the queue */
    size_t idle;   /* helpers waiting on cv */
    int nthreads;
    bool stopping;
    pthread_t threads[MAX_HELPERS];
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static __thread bool tls_helper;

static pthread_once_t joined = PTHREAD_ONCE_INIT;
static void join_runtime(void);

static job *pop_locked(void) {
    job *j = pool.head;
    pool.head = j->next;
    if (!pool.head)
        pool.tail = NULL;
    pool.queued--;
    return j;
}

static void *helper_main(void *unused) {
    (void)unused;
    tls_helper = true;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.head && !pool.stopping) {
            pool.idle++;
            weft__pool_idle(true); /* waiting for work: one of weft's own */
            pthread_cond_wait(&pool.cv, &pool.mu);
            weft__pool_idle(false);
            pool.idle--;
        }
        if (!pool.head)
            break; /* stopping, and the queue is drained */
        job *j = pop_locked();
        pthread_mutex_unlock(&pool.mu);
        j->fn(j->arg);
        atomic_fetch_sub_explicit(&weft__blocking_calls, 1,
                                  memory_order_release);
        weft__lock_acquire(&j->lock);
        bool won = weft__claim(&j->park); /* always: nobody else claims */
        weft__unlock_unpark(&j->lock, won ? &j->park : NULL);
        pthread_mutex_lock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Queue j and start a helper if no idle one will take it.  Fails only when
 * no helper exists and none can be started. */
static int enqueue_locked(job *j) {
    j->next = NULL;
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pool.queued++;
    int want = pool.nthreads < MIN_HELPERS ? MIN_HELPERS
               : pool.queued > pool.idle   ? pool.nthreads + 1
                                           : pool.nthreads;
    while (pool.nthreads < want && pool.nthreads < MAX_HELPERS &&
           weft__thread_start(&pool.threads[pool.nthreads], NULL, helper_main,
                              NULL) == 0)
        pool.nthreads++;
    if (pool.nthreads == 0) {
        pool.head = pool.tail = NULL;
        pool.queued = 0;
        return -ENOMEM;
    }
    pthread_cond_signal(&pool.cv);
    return 0;
}

int weft_blocking(weft_fn fn, void *arg) {
    if (!fn)
        return -EINVAL;
    if (tls_helper) {
        fn(arg);
        return 0;
    }
    weft__ensure();
    pthread_once(&joined, join_runtime);
    job j = {.fn = fn, .arg = arg};
    weft__park_init(&j.park, "blocking call", arg);
    weft__lock_acquire(&j.lock);
    atomic_fetch_add_explicit(&weft__blocking_calls, 1, memory_order_relaxed);
    pthread_mutex_lock(&pool.mu);
    int e = enqueue_locked(&j);
    pthread_mutex_unlock(&pool.mu);
    if (e < 0) {
        atomic_fetch_sub_explicit(&weft__blocking_calls, 1,
                                  memory_order_relaxed);
        return e;
    }
    weft__block(&j.park, -1, weft__unlock_cb, &j.lock);
    return 0;
}

/* fork(): pool.mu is held across the fork; the child has no helper (and
 * the caller is one no longer), so the queue, whose jobs belong to the
 * parent's goroutines, is dropped. */
static void pool_atfork(int phase) {
    if (phase == 0) {
        pthread_mutex_lock(&pool.mu);
        return;
    }
    if (phase == 2) {
        pool.head = pool.tail = NULL;
        pool.queued = pool.idle = 0;
        pool.nthreads = 0;
        pool.stopping = false;
        atomic_store(&weft__blocking_calls, 0);
        pthread_cond_init(&pool.cv, NULL);
        tls_helper = false;
    }
    pthread_mutex_unlock(&pool.mu);
}

static size_t pool_busy(void) {
    return weft__blocking_pending();
}

/* Stop and join the helper threads (weft_shutdown).  A no-op when called
 * from a helper itself. */
static void pool_release(void) {
    if (tls_helper)
        return; /* a helper cannot join itself; the pool stays */
    pthread_mutex_lock(&pool.mu);
    pool.stopping = true;
    pthread_cond_broadcast(&pool.cv);
    while (pool.nthreads > 0) {
        pthread_t t = pool.threads[--pool.nthreads];
        pthread_mutex_unlock(&pool.mu);
        pthread_join(t, NULL);
        pthread_mutex_lock(&pool.mu);
    }
    pool.stopping = false;
    pthread_mutex_unlock(&pool.mu);
}

static weft__subsystem pool_sub = {
    .busy = pool_busy, .release = pool_release, .atfork = pool_atfork};

static void join_runtime(void) {
    weft__runtime_join(&pool_sub);
}
