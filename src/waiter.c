/* SPDX-License-Identifier: MIT */
/*
 * The waiter: how anything in weft blocks and is woken, for goroutines and
 * plain threads alike.  The protocol (park, claim, unpark, block, and the
 * lifetime rule that lets a woken party free the object at once) is
 * described at the top of waiter.h; this file implements it, plus the
 * out-of-line parts of the wait queues' helpers.  The parts on every
 * channel operation's path (park_init, claim, unpark, the queue
 * operations) are inline in waiter.h.
 *
 * A goroutine parks by leaving the CPU through the scheduler
 * (weft__leave); its unlock callback runs only once its stack is no longer
 * in use.  A plain thread sleeps on the futex word in its park.  A deadline
 * is a timer for a goroutine, a futex timeout for a thread; either way the
 * side that times out must win the claim, so a value is never both
 * delivered and timed out.  When the timer heap cannot grow, the goroutine
 * claims its own park at once and weft__block returns -ENOMEM: the caller
 * cleans up as after a timeout, and nothing was delivered.
 */
#include "waiter.h"
#include "sched.h"
#include "sys.h"
#include "timer.h"

#include <sys/syscall.h>
#include <unistd.h>

static void deadline_fire(weft__timer *t, int64_t now) {
    weft__park *p = t->arg;
    (void)now;
    if (weft__claim(p)) {
        p->timedout = true;
        weft__unpark(p);
    }
}

/* Runs once the parking goroutine has switched out (on g0 or on the
 * goroutine that runs next: see weft__leave).  Everything is
 * read from p first: as soon as the status says WAITING, a timer may resume
 * the goroutine elsewhere, and it can return and pop p off its stack. */
void weft__parked_after(weft__worker *w, void *arg) {
    weft__park *p = arg;
    (void)w;
    void (*unlock)(void *) = p->unlock;
    void *ua = p->unlock_arg;
    atomic_store_explicit(&p->g->status, WEFT__G_WAITING, memory_order_release);
    if (unlock)
        unlock(ua);
}

static int block_thread(weft__park *p, int64_t deadline) {
    weft__thread_blocked(p, true);
    for (;;) {
        if (atomic_load_explicit(&p->futex, memory_order_acquire))
            break;
        int64_t wait = -1;
        if (deadline >= 0) {
            wait = deadline - weft_now();
            if (wait <= 0) {
                if (weft__claim(p)) {
                    p->timedout = true;
                    break;
                }
                deadline = -1; /* a waker won: its unpark is on the way */
                continue;
            }
        }
        weft__futex_wait(&p->futex, 0, wait);
    }
    weft__thread_blocked(p, false);
    return p->timedout ? -ETIMEDOUT : 0;
}

int weft__block_slow(weft__park *p, int64_t deadline, void (*unlock)(void *),
                     void *arg) {
    if (!p->g) {
        if (unlock)
            unlock(arg);
        return block_thread(p, deadline);
    }
    p->timer.idx = -1;
    atomic_store_explicit(&p->timer.running, 0, memory_order_relaxed);
    p->timer.fn = deadline_fire;
    p->timer.arg = p;
    p->timer.period = 0;
    if (WEFT__UNLIKELY(weft__timer_add(&p->timer, deadline) < 0)) {
        /* no timer: waiting would be untimed, so give up now, as a
         * timeout does; the caller's lock is still held, so no waker
         * can have claimed p */
        if (weft__claim(p)) {
            p->timedout = true;
            if (unlock)
                unlock(arg);
            return -ENOMEM;
        }
        weft__park_leave(p); /* a waker won: its unpark is on the way */
        return 0;
    }
    weft__park_leave(p);
    weft__timer_del(&p->timer);
    return p->timedout ? -ETIMEDOUT : 0;
}

/* ---- wait queues -------------------------------------------------------- */

size_t weft__wq_claim(weft__wq *q, size_t max, weft__wnode **list) {
    size_t k = 0;
    weft__wnode *n;
    while (k < max && (n = weft__wq_take(q))) {
        n->next = *list;
        *list = n;
        k++;
    }
    return k;
}

void weft__unlock_unpark_list(weft__lock *l, weft__wnode *list) {
    weft__lock_release(l);
    while (list) {
        weft__wnode *n = list;
        list = n->next; /* read first: n lives on the woken party's stack */
        weft__unpark(n->park);
    }
}

void weft__wq_wake_all(weft__wq *q, weft__lock *l) {
    weft__wnode *list = NULL;
    weft__wq_claim(q, SIZE_MAX, &list);
    weft__unlock_unpark_list(l, list);
}

/* ---- call sites and the registry of blocked plain threads ----------------
 *
 * Plain threads blocked in weft are kept on a list (their parks are linked
 * through tnext/tprev) so the dump can show them and the deadlock check
 * (deadlock.c) can count them.  reg.gen changes, under reg.lock, whenever a
 * thread joins or leaves the list or a weft_blocking pool thread goes idle
 * or busy: the deadlock check compares it before and after its snapshot.
 *
 * Call sites: the macros of the channel operations and weft_select pass
 * the site as two more arguments (weft__send_at etc.), which only a call
 * that waits stores in its park (weft__park_init_at).  The other public
 * macros call weft__site(file, line) right before a blocking call; it
 * lands in a thread-local slot together with the caller's frame address.
 * weft__park_init (through weft__park_diag_init) moves it into the park
 * only when that park lies just below the recorded frame on the same
 * stack, so a site left behind by a call that did not block, on another
 * goroutine that ran on this thread, is never shown.
 */

/* How far below the weft__site frame the park of the same call may lie. */
#define SITE_REACH (16 * 1024)

static struct {
    weft__lock lock;
    weft__park *threads;
    uint64_t gen;
    int pool_idle;
} reg;

/* blocking.c's, here so that the deadlock check reading it does not link
 * against blocking.c, which calls weft__ensure (runtime.c, which names the
 * diagnostics: a cycle). */
atomic_size_t weft__blocking_calls;

typedef struct site {
    const char *file;
    int line;
    const char *frame;
} site;

static __thread site tls_site __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) void weft__site(const char *file, int line) {
    tls_site.file = file;
    tls_site.line = line;
    tls_site.frame = __builtin_frame_address(0);
}

void weft__park_diag_init(weft__park *p) {
    const char *at = (const char *)p;
    if (tls_site.file && at < tls_site.frame &&
        tls_site.frame - at < SITE_REACH) {
        p->site_file = tls_site.file;
        p->site_line = tls_site.line;
    }
    tls_site.file = NULL;
}

void weft__thread_blocked(weft__park *p, bool on) {
    weft__lock_acquire(&reg.lock);
    if (on) {
        p->tid = (int)syscall(SYS_gettid);
        p->tprev = NULL;
        p->tnext = reg.threads;
        if (reg.threads)
            reg.threads->tprev = p;
        reg.threads = p;
    } else {
        if (p->tprev)
            p->tprev->tnext = p->tnext;
        else
            reg.threads = p->tnext;
        if (p->tnext)
            p->tnext->tprev = p->tprev;
    }
    reg.gen++;
    weft__lock_release(&reg.lock);
}

void weft__pool_idle(bool on) {
    weft__lock_acquire(&reg.lock);
    reg.pool_idle += on ? 1 : -1;
    reg.gen++;
    weft__lock_release(&reg.lock);
}

void weft__threads_atfork(int phase) {
    if (phase == 0) {
        weft__lock_acquire(&reg.lock);
        return;
    }
    if (phase == 2) {
        reg.threads = NULL; /* the parent's blocked threads */
        reg.pool_idle = 0;
        reg.gen++;
    }
    weft__lock_release(&reg.lock);
}

uint64_t weft__threads_gen(void) {
    weft__lock_acquire(&reg.lock);
    uint64_t g = reg.gen;
    weft__lock_release(&reg.lock);
    return g;
}

int weft__threads_asleep(void) {
    int n = 0;
    weft__lock_acquire(&reg.lock);
    for (weft__park *p = reg.threads; p && n >= 0; p = p->tnext) {
        bool for_good =
            p->tdeadline < 0 &&
            !atomic_load_explicit(&p->claimed, memory_order_acquire);
        n = for_good ? n + 1 : -1;
    }
    if (n >= 0)
        n += reg.pool_idle;
    weft__lock_release(&reg.lock);
    return n;
}

/* A signal may have interrupted the holder of reg.lock on this very
 * thread: the handler gives up on the thread list rather than hang, and
 * says so.  (The goroutine walk takes no lock at all: weft__foreach_g.) */
static bool reg_lock_bounded(void) {
    for (int i = 0; i < 1000000; i++) {
        unsigned zero = 0;
        if (atomic_compare_exchange_weak_explicit(&reg.lock.v, &zero, 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
        weft__cpu_relax();
    }
    return false;
}

bool weft__threads_walk(void (*fn)(const weft__park *p, void *arg), void *arg,
                        bool bounded) {
    if (!bounded)
        weft__lock_acquire(&reg.lock);
    else if (!reg_lock_bounded())
        return false;
    for (weft__park *p = reg.threads; p; p = p->tnext)
        fn(p, arg);
    weft__lock_release(&reg.lock);
    return true;
}
