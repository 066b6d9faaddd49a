/*
 * Diagnostics: fatal errors, error names, weft_dump, and the signal
 * handlers (SIGQUIT prints the dump; SIGSEGV in a guard page is reported as
 * a stack overflow).
 *
 * Plain threads blocked in weft are kept on a list (their parks are linked
 * through tnext/tprev) so the dump can show them.
 */
#include "weft_internal.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct {
    weft__lock lock;
    weft__park *threads;
    atomic_int nthreads;
} dbg;

_Noreturn void weft__fatal(const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "weft: fatal: %s (goroutine %llu)\n", msg,
            (unsigned long long)weft_id());
    fflush(stderr);
    abort();
}

const char *weft_strerror(int err) {
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case EINVAL:
        return "invalid argument";
    case ENOMEM:
        return "out of memory";
    case EPIPE:
        return "channel closed";
    case EAGAIN:
        return "would block";
    case ETIMEDOUT:
        return "timed out";
    case ECANCELED:
        return "canceled";
    case EBUSY:
        return "busy";
    case EALREADY:
        return "already initialised";
    default:
        return strerror(err);
    }
}

__attribute__((noinline)) int weft_errno(void) {
    __asm__ volatile("" ::: "memory");
    return errno;
}

void weft__thread_blocked(weft__park *p, bool on) {
    weft__lock_acquire(&dbg.lock);
    if (on) {
        p->tid = (int)syscall(SYS_gettid);
        p->tprev = NULL;
        p->tnext = dbg.threads;
        if (dbg.threads)
            dbg.threads->tprev = p;
        dbg.threads = p;
        atomic_fetch_add(&dbg.nthreads, 1);
    } else {
        if (p->tprev)
            p->tprev->tnext = p->tnext;
        else
            dbg.threads = p->tnext;
        if (p->tnext)
            p->tnext->tprev = p->tprev;
        atomic_fetch_sub(&dbg.nthreads, 1);
    }
    weft__lock_release(&dbg.lock);
}

static const char *state_name(const weft__g *g) {
    switch (atomic_load(&g->status)) {
    case WEFT__G_RUNNABLE:
        return "runnable";
    case WEFT__G_RUNNING:
        return "running";
    case WEFT__G_WAITING:
        return g->park || !g->stack ? "waiting" : "runnable";
    default:
        return "dead";
    }
}

static void dump_g(weft__g *g, void *arg) {
    FILE *out = arg;
    weft__park *p = g->park;
    fprintf(out, "goroutine %llu [%s] %s: %s %p\n", (unsigned long long)g->id,
            state_name(g), g->name[0] ? g->name : "-",
            p && p->why ? p->why : "-", p ? p->obj : NULL);
}

void weft_dump(FILE *out) {
    if (!out)
        out = stderr;
    weft__foreach_g(dump_g, out);
    weft__lock_acquire(&dbg.lock);
    for (weft__park *p = dbg.threads; p; p = p->tnext)
        fprintf(out, "thread %d [waiting]: %s %p\n", p->tid,
                p->why ? p->why : "-", p->obj);
    weft__lock_release(&dbg.lock);
    fflush(out);
}

/* ---- signals ------------------------------------------------------------- */

static void on_sigquit(int sig) {
    (void)sig;
    weft_dump(stderr);
}

static void on_sigsegv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    weft__g *g = weft__curg();
    if (g && g->stack && weft__stack_guard_hit(g->stack, si->si_addr)) {
        char msg[128];
        int n = snprintf(msg, sizeof msg,
                         "weft: fatal: goroutine %llu stack overflow%s%s\n",
                         (unsigned long long)g->id, g->name[0] ? " in " : "",
                         g->name);
        if (n > 0 && write(2, msg, (size_t)n) < 0)
            n = 0;
        abort();
    }
    /* not ours: let the default action happen */
    signal(sig, SIG_DFL);
    raise(sig);
}

void weft__signals_init(void) {
    static atomic_bool done;
    if (atomic_exchange(&done, true))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    struct sigaction old;
    sigaction(SIGQUIT, NULL, &old);
    if (old.sa_handler == SIG_DFL) {
        sa.sa_handler = on_sigquit;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGQUIT, &sa, NULL);
    }
    sigaction(SIGSEGV, NULL, &old);
    if (old.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigsegv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigaction(SIGSEGV, &sa, NULL);
    }
}

void weft__signals_thread_init(void) {
    static __thread char altstack[32 * 1024];
    stack_t old;
    /* keep an alternate stack somebody else (a sanitizer) installed */
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return;
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
}
