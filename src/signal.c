/* SPDX-License-Identifier: MIT */
/*
 * Signals as channels (Go's os/signal), and the signal mask of every thread
 * weft creates.
 *
 * Runtime threads.  Workers, weft_blocking helpers and the dispatcher below
 * are created through weft__thread_start (sys/os.c), which gives them a mask
 * with every asynchronous signal blocked.  So a signal sent to the process is
 * taken by one of the program's own threads (main, or threads it made) or
 * by the dispatcher, never by a thread running goroutines: a program that
 * blocks SIGTERM in its threads to sigwait() for it, say, no longer loses
 * it to a worker whatever the order of its calls.  Faults (SIGSEGV for a
 * stack overflow, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) must reach the
 * thread that caused them, SIGPROF must reach the thread that is running
 * for a profiler to sample goroutines, and SIGQUIT is the runtime's own
 * (the dump, debug.c), whose handler may run on any thread: a burst of
 * them must not all land on one program thread and starve it.  Those stay
 * unblocked.
 *
 * Delivery.  weft_signal_notify installs on_signal for each signal asked
 * for.  The handler only bumps the signal's pending counter (a lock-free
 * atomic) and writes the eventfd: both async-signal-safe.  The dispatcher,
 * a plain thread, reads the eventfd, swaps the counters to zero and
 * try-sends the signal number to every channel registered for it (a full
 * channel drops it, as in Go), or cancels the registered context.  It
 * keeps exactly the wanted signals unblocked (its mask is recomputed after
 * every wake), so a receiver exists even when every thread of the program
 * blocks them.  It exits when the last registration goes, so that a
 * process no longer asking for signals can again be reported deadlocked.
 *
 * Registrations live in a list under sg.mu, which the dispatcher holds
 * while it delivers: when weft_signal_stop returns, nothing more is sent.
 * want[s] counts the registrations of s; the disposition s had before the
 * first one is saved and put back when the count drops to zero.
 *
 * Signal contexts.  A weft_signal_ctx registration holds the context the
 * caller got and a child of it (watch) of its own, which keeps the
 * context's memory alive after the caller frees it and tells, by its err,
 * when the context ended; an after-function on watch wakes the dispatcher
 * then, which prunes the registration.
 */
#include "chan.h"
#include "runtime.h"
#include "sys.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifdef WEFT_TSAN
#define TSAN_WAKE_MS 20
#else
#define TSAN_WAKE_MS -1
#endif

/* ---- registrations ------------------------------------------------------- */

typedef struct reg {
    weft_chan *chan;   /* notified, or NULL for a signal context */
    weft_ctx *ctx;     /* cancelled on the first signal */
    weft_ctx *watch;   /* child of ctx: ends when ctx does */
    weft_after *woken; /* wakes the dispatcher when watch ends */
    sigset_t set;
    struct reg *next;
} reg;

static struct {
    pthread_mutex_t mu;
    reg *regs;
    int want[NSIG];
    struct sigaction saved[NSIG];
    bool running; /* a dispatcher thread is alive */
} sg = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Written before the first handler is installed; closed only in a forked
 * child (signal_atfork), once the handlers are gone. */
static int sg_evfd = -1;
static atomic_uint pending[NSIG];

static void on_signal(int sig) {
    int saved = errno;
    atomic_fetch_add_explicit(&pending[sig], 1, memory_order_relaxed);
    uint64_t one = 1;
    ssize_t r = write(sg_evfd, &one, sizeof one);
    (void)r; /* the counter cannot overflow before the dispatcher reads */
    errno = saved;
}

static void kick(void) {
    uint64_t one = 1;
    ssize_t r = write(sg_evfd, &one, sizeof one);
    (void)r;
}

static void kick_fn(void *unused) {
    (void)unused;
    kick();
}

static void want_add(int s) {
    if (sg.want[s]++)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    sigaction(s, &sa, &sg.saved[s]);
}

static void want_drop(int s) {
    if (--sg.want[s] == 0)
        sigaction(s, &sg.saved[s], NULL);
}

/* Unlink *pp and give its signals back. */
static void reg_remove(reg **pp) {
    reg *r = *pp;
    *pp = r->next;
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&r->set, s))
            want_drop(s);
    if (r->woken)
        weft_ctx_after_stop(r->woken);
    weft_ctx_free(r->watch);
    free(r);
}

/* Drop the signal contexts that have ended. */
static void prune_locked(void) {
    for (reg **pp = &sg.regs; *pp;)
        if ((*pp)->watch && weft_ctx_err((*pp)->watch))
            reg_remove(pp);
        else
            pp = &(*pp)->next;
}

/* Send what is pending to the registrations; called with sg.mu held. */
static void deliver_locked(void) {
    for (int s = 1; s < NSIG; s++) {
        unsigned n =
            atomic_exchange_explicit(&pending[s], 0, memory_order_relaxed);
        for (reg *r = sg.regs; n && r; r = r->next) {
            if (!sigismember(&r->set, s))
                continue;
            if (r->ctx) {
                weft_ctx_cancel(r->ctx);
                continue;
            }
            for (unsigned i = 0; i < n; i++)
                if (weft_try_send(r->chan, &s) != 0)
                    break; /* full (or closed): dropped, as in Go */
        }
    }
}

static void *dispatch_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&sg.mu);
    for (;;) {
        prune_locked();
        deliver_locked();
        prune_locked(); /* the contexts a signal just ended */
        if (!sg.regs)
            break;
        sigset_t mask;
        weft__thread_mask(&mask);
        for (int s = 1; s < NSIG; s++)
            if (sg.want[s])
                sigdelset(&mask, s);
        pthread_sigmask(SIG_SETMASK, &mask, NULL);
        pthread_mutex_unlock(&sg.mu);
        /* ThreadSanitizer defers a signal's handler to the thread's next
         * intercepted call, which a thread asleep in the kernel never
         * makes: under it, wake up now and then to let handlers run */
        struct pollfd pfd = {.fd = sg_evfd, .events = POLLIN};
        if (poll(&pfd, 1, TSAN_WAKE_MS) > 0) {
            uint64_t v;
            ssize_t r = read(sg_evfd, &v, sizeof v);
            (void)r; /* a signal or a kick */
        }
        pthread_mutex_lock(&sg.mu);
    }
    sg.running = false;
    pthread_mutex_unlock(&sg.mu);
    return NULL;
}

/* With sg.mu held: wake the dispatcher, or start one.  A dispatcher that
 * has decided to exit did so under sg.mu, so running is exact here. */
static int dispatcher_locked(void) {
    if (sg.running) {
        kick();
        return 0;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int e = weft__thread_start(&t, &attr, dispatch_main, NULL);
    pthread_attr_destroy(&attr);
    if (e)
        return -e;
    sg.running = true;
    return 0;
}

/* Signals a channel may receive: not the faults (they belong to the thread
 * that caused them), not what cannot be caught, not glibc's own. */
static bool notifiable(int s) {
    switch (s) {
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGTRAP:
    case SIGSYS:
    case SIGKILL:
    case SIGSTOP:
        return false;
    }
    return s > 0 && s < NSIG && (s < 32 || (s >= SIGRTMIN && s <= SIGRTMAX));
}

static int set_from(const int *sigs, size_t n, sigset_t *set) {
    if (!sigs || n == 0)
        return -EINVAL;
    sigemptyset(set);
    for (size_t i = 0; i < n; i++) {
        if (!notifiable(sigs[i]))
            return -EINVAL;
        sigaddset(set, sigs[i]);
    }
    return 0;
}

/* fork(): sg.mu is held across it, taken before the runtime's locks (the
 * dispatcher starts goroutines while it holds sg.mu): the handler is
 * registered after the runtime's (fork_once below), and pthread_atfork
 * runs prepare handlers in the reverse order, the others in order.  The child
 * has no dispatcher, and its registrations name the parent's channels and
 * contexts, so it starts with none: the signals they caught get their old
 * dispositions back (a SIGTERM must not be swallowed with nobody to read
 * it), and the eventfd, shared with the parent, gives way to one of the
 * child's own at its first registration. */
static void signal_atfork(int phase) {
    if (phase == 0) {
        pthread_mutex_lock(&sg.mu);
        return;
    }
    if (phase == 2) {
        for (int s = 1; s < NSIG; s++) {
            if (sg.want[s])
                sigaction(s, &sg.saved[s], NULL);
            sg.want[s] = 0;
            atomic_store_explicit(&pending[s], 0, memory_order_relaxed);
        }
        while (sg.regs) {
            reg *r = sg.regs;
            sg.regs = r->next;
            free(r);
        }
        sg.running = false;
        if (sg_evfd >= 0)
            close(sg_evfd);
        sg_evfd = -1;
    }
    pthread_mutex_unlock(&sg.mu);
}

static void fork_prepare(void) {
    signal_atfork(0);
}
static void fork_parent(void) {
    signal_atfork(1);
}
static void fork_child(void) {
    signal_atfork(2);
}
static void fork_register(void) {
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Add set to c's registration (a new one for a context, or when c has
 * none yet). */
static int reg_add(weft_chan *c, weft_ctx *ctx, weft_ctx *watch,
                   const sigset_t *set) {
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    weft__ensure(); /* the runtime's fork handlers come first */
    pthread_once(&fork_once, fork_register);
    pthread_mutex_lock(&sg.mu);
    if (sg_evfd < 0) {
        sg_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (sg_evfd < 0) {
            pthread_mutex_unlock(&sg.mu);
            return -ENOMEM;
        }
    }
    prune_locked();
    reg *r = NULL;
    for (reg *x = sg.regs; c && x && !r; x = x->next)
        if (x->chan == c)
            r = x;
    bool fresh = !r;
    if (fresh && !(r = calloc(1, sizeof *r))) {
        pthread_mutex_unlock(&sg.mu);
        return -ENOMEM;
    }
    if (fresh) {
        *r = (reg){.chan = c, .ctx = ctx, .watch = watch};
        sigemptyset(&r->set);
        if (watch && !(r->woken = weft_ctx_after_func(watch, kick_fn, NULL))) {
            free(r);
            pthread_mutex_unlock(&sg.mu);
            return -ENOMEM;
        }
    }
    for (int s = 1; s < NSIG; s++)
        if (sigismember(set, s) && !sigismember(&r->set, s)) {
            sigaddset(&r->set, s);
            want_add(s);
        }
    if (fresh) {
        r->next = sg.regs;
        sg.regs = r;
    }
    int e = dispatcher_locked();
    if (e < 0 && fresh) {
        r->watch = NULL; /* the caller frees it */
        reg_remove(&sg.regs);
    }
    pthread_mutex_unlock(&sg.mu);
    return e;
}

/* ---- public calls ------------------------------------------------------- */

int weft_signal_notify(weft_chan *c, const int *signals, size_t n) {
    sigset_t set;
    if (!c || c->elem_size != sizeof(int))
        return -EINVAL;
    int e = set_from(signals, n, &set);
    return e < 0 ? e : reg_add(c, NULL, NULL, &set);
}

int weft_signal_stop(weft_chan *c) {
    if (!c)
        return -EINVAL;
    pthread_mutex_lock(&sg.mu);
    bool found = false;
    for (reg **pp = &sg.regs; *pp;)
        if ((*pp)->chan == c) {
            reg_remove(pp);
            found = true;
        } else {
            pp = &(*pp)->next;
        }
    prune_locked();
    if (found && sg.running)
        kick(); /* re-block the signals, or exit */
    pthread_mutex_unlock(&sg.mu);
    return 0;
}

weft_ctx *weft_signal_ctx(weft_ctx *parent, const int *signals, size_t n) {
    sigset_t set;
    int e = set_from(signals, n, &set);
    if (e < 0 || !parent) {
        errno = EINVAL;
        return NULL;
    }
    weft_ctx *ctx = weft_ctx_with_cancel(parent);
    weft_ctx *watch = ctx ? weft_ctx_with_cancel(ctx) : NULL;
    e = watch ? reg_add(NULL, ctx, watch, &set) : -ENOMEM;
    if (e < 0) {
        weft_ctx_free(watch);
        weft_ctx_free(ctx);
        errno = -e;
        return NULL;
    }
    return ctx;
}
