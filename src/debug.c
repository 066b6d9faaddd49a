/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics: weft_dump, leak reports, and the signal handlers (SIGQUIT
 * prints the dump; SIGSEGV in a guard page is reported as a stack
 * overflow).  The call sites and the list of blocked plain threads that the
 * dump shows belong to the waiter (waiter.c).
 */
#include "diag.h"
#include "sched.h"
#include "stack.h"
#include "sys.h"
#include "trace.h"
#include "waiter.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DUMP_LINE 400

/* WEFT_LEAKCHECK=1 reports leaks at exit; =exit also exits with status 3 */
enum { LEAK_REPORT = 1, LEAK_EXIT = 2, LEAK_EXIT_STATUS = 3 };

static struct {
    int leakcheck; /* 0, LEAK_REPORT or LEAK_EXIT: WEFT_LEAKCHECK */
    atomic_bool deadlock_reported; /* then exit reports no leaks */
    pthread_key_t altstack_key;
} reg;

/* ---- dump lines ---------------------------------------------------------- */

/* Where lines go: a stdio stream, or (in a signal handler) a descriptor. */
typedef struct sink {
    FILE *f;
    int fd;
} sink;

static void sink_put(const sink *o, const char *s) {
    if (o->f) {
        fputs(s, o->f);
        return;
    }
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(o->fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* "<why>[ <obj>][, <t>s left]": descriptor waits carry the fd as obj. */
static void what_of(char *buf, size_t n, const weft__park *p) {
    if (!p) {
        snprintf(buf, n, "-");
        return;
    }
    const char *why = p->why ? p->why : "blocked";
    int k;
    if (!p->obj)
        k = snprintf(buf, n, "%s", why);
    else if (weft__why_is_fd(why))
        k = snprintf(buf, n, "%s %d", why, (int)(intptr_t)p->obj);
    else
        k = snprintf(buf, n, "%s %p", why, p->obj);
    if (p->tdeadline >= 0 && k > 0 && (size_t)k < n) {
        int64_t left = p->tdeadline - weft_now();
        snprintf(buf + k, n - (size_t)k, ", %.3fs left",
                 left > 0 ? (double)left / 1e9 : 0.0);
    }
}

static void line_of(char *buf, size_t n, const char *kind,
                    unsigned long long id, const char *state, const char *name,
                    const char *what, const char *file, int line) {
    char where[160];
    if (file && line)
        snprintf(where, sizeof where, "%s:%d", file, line);
    else if (file) /* a spawn site's line past WEFT__SPAWN_LINE_MAX */
        snprintf(where, sizeof where, "%s", file);
    else
        snprintf(where, sizeof where, "?");
    snprintf(buf, n, "%s %llu [%s] %s: %s (%s)\n", kind, id, state,
             name && name[0] ? name : "-", what, where);
}

/* A line about p's waiter: what it waits on, at the site of its call. */
static void park_line(char *buf, size_t n, const char *kind,
                      unsigned long long id, const char *state,
                      const char *name, const weft__park *p) {
    char what[160];
    what_of(what, sizeof what, p);
    line_of(buf, n, kind, id, state, name, what, p ? p->site_file : NULL,
            p ? p->site_line : 0);
}

const weft__park *weft__g_blocked_on(const weft__g *g) {
    if (atomic_load_explicit(&g->status, memory_order_acquire) !=
        WEFT__G_WAITING)
        return NULL;
    const weft__park *p =
        atomic_load_explicit(&((weft__g *)g)->park, memory_order_acquire);
    if (!p || atomic_load_explicit(&p->claimed, memory_order_acquire))
        return NULL;
    return p;
}

static const char *state_of(const weft__g *g) {
    switch (atomic_load_explicit(&g->status, memory_order_acquire)) {
    case WEFT__G_RUNNING:
        return "running";
    case WEFT__G_WAITING:
        return atomic_load_explicit(&((weft__g *)g)->park, memory_order_relaxed)
                   ? "waiting"
                   : "runnable";
    default:
        return "runnable";
    }
}

/* Walk every goroutine for diagnostics.  The walk reads other goroutines'
 * state without stopping them: a goroutine may wake and write its park
 * while the walk reads it (the deadlock check then throws its snapshot
 * away; a dump line may be stale).  Those reads are hidden from
 * ThreadSanitizer; its view of the atomics and locks stays intact. */
#ifdef WEFT_TSAN
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#endif

void weft__diag_walk(void (*fn)(weft__g *g, void *arg), void *arg) {
#ifdef WEFT_TSAN
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
#endif
    weft__foreach_g(fn, arg);
#ifdef WEFT_TSAN
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
}

typedef struct dump_ctx {
    const sink *out;
    bool only_blocked;
    size_t n;
} dump_ctx;

static void dump_g(weft__g *g, void *arg) {
    dump_ctx *d = arg;
    const weft__park *p = weft__g_blocked_on(g);
    if (d->only_blocked && !p)
        return;
    d->n++;
    if (!d->out)
        return;
    char line[DUMP_LINE];
    unsigned long long id = (unsigned long long)g->id;
    bool handed = false;
    int64_t held = p ? -1 : weft__g_held_ns(g, &handed);
    if (held >= 0) {
        /* a running goroutine waits on nothing: how long it has kept its
         * thread, and where it was started */
        char what[64];
        snprintf(what, sizeof what, "on its thread %.3fs%s", (double)held / 1e9,
                 handed ? ", P handed off" : "");
        line_of(line, sizeof line, "goroutine", id, "running", g->name, what,
                g->spawn_file, g->spawn_line);
    } else {
        park_line(line, sizeof line, "goroutine", id,
                  p ? "waiting" : state_of(g), g->name, p);
    }
    sink_put(d->out, line);
}

/* The kernel's name of thread tid (async-signal-safe). */
static void thread_name(int tid, char *buf, size_t n) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    buf[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t r = read(fd, buf, n - 1);
    close(fd);
    buf[r > 0 ? r : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
}

static void dump_thread(const weft__park *p, void *arg) {
    const sink *out = arg;
    char line[DUMP_LINE], name[32];
    thread_name(p->tid, name, sizeof name);
    park_line(line, sizeof line, "thread", (unsigned long long)p->tid,
              "waiting", name, p);
    sink_put(out, line);
}

static void dump_threads(const sink *out) {
    if (!weft__threads_walk(dump_thread, (void *)out, !out->f))
        sink_put(out, "weft: dump incomplete: the thread list is busy\n");
}

static void dump_to(const sink *out) {
    dump_ctx d = {.out = out};
    weft__diag_walk(dump_g, &d);
    dump_threads(out);
}

void weft_dump(FILE *out) {
    sink s = {.f = out ? out : stderr};
    dump_to(&s);
    fflush(s.f);
}

/* ---- leaks and fatal reports --------------------------------------------- */

size_t weft__leaks_report(void) {
    dump_ctx d = {.only_blocked = true};
    weft__diag_walk(dump_g, &d);
    if (d.n == 0)
        return 0;
    size_t n = d.n;
    sink s = {.f = stderr};
    fprintf(stderr, "weft: leak: %zu goroutine%s still blocked\n", d.n,
            d.n == 1 ? "" : "s");
    d.out = &s;
    d.n = 0;
    weft__diag_walk(dump_g, &d);
    fflush(stderr);
    return n;
}

void weft__deadlock_report(void) {
    if (atomic_exchange(&reg.deadlock_reported, true))
        return;
    fputs("weft: fatal: all goroutines are asleep - deadlock!\n\n", stderr);
    weft_dump(stderr);
}

static void at_exit(void) {
    atomic_store(&weft__idle_hook, NULL);
    size_t leaks = 0;
    if (reg.leakcheck && !atomic_load(&reg.deadlock_reported) &&
        weft_goroutines())
        leaks = weft__leaks_report();
    weft__trace_flush();
    if (leaks && reg.leakcheck == LEAK_EXIT) {
        /* exit() from an atexit handler is undefined: flush what exit
         * would, then leave with the status docs/debugging.md promises */
        fflush(NULL);
        _exit(LEAK_EXIT_STATUS);
    }
}

/* ---- signals ------------------------------------------------------------- */

static void on_sigquit(int sig) {
    (void)sig;
    int saved = errno;
    sink s = {.fd = 2};
    dump_to(&s);
    errno = saved;
}

static void on_sigsegv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    weft__g *g = weft__curg();
    if (g && g->stack && weft__stack_guard_hit(g->stack, si->si_addr)) {
        char msg[128];
        int n = snprintf(
            msg, sizeof msg, "weft: fatal: goroutine %llu stack overflow%s%s\n",
            (unsigned long long)g->id, g->name[0] ? " in " : "", g->name);
        if (n > 0 && write(2, msg, (size_t)n) < 0)
            n = 0;
        abort();
    }
    /* not ours: let the default action happen */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Install a handler for sig unless the program (or a sanitizer) has one. */
static void handle(int sig, void (*h)(int),
                   void (*sa_h)(int, siginfo_t *, void *)) {
    struct sigaction sa, old;
    sigaction(sig, NULL, &old);
    if (old.sa_handler != SIG_DFL)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    if (sa_h) {
        sa.sa_sigaction = sa_h;
        sa.sa_flags |= SA_SIGINFO;
    } else {
        sa.sa_handler = h;
    }
    sigaction(sig, &sa, NULL);
}

#define ALTSTACK_SIZE (32 * 1024)

/* The altstack is mapped, not malloc'd: a worker that never exits would
 * otherwise show up as a leak under valgrind. */
static void altstack_free(void *mem) {
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(mem, ALTSTACK_SIZE);
}

static bool env_is(const char *name, const char *val) {
    const char *v = getenv(name);
    return v && strcmp(v, val) == 0;
}

void weft__diag_init(int nprocs) {
    static atomic_bool once;
    if (!atomic_exchange(&once, true)) {
        handle(SIGQUIT, on_sigquit, NULL);
        handle(SIGSEGV, NULL, on_sigsegv);
        pthread_key_create(&reg.altstack_key, altstack_free);
        if (!env_is("WEFT_DEADLOCK", "0"))
            atomic_store(&weft__idle_hook, &weft__deadlock_ops);
        reg.leakcheck = env_is("WEFT_LEAKCHECK", "1")      ? LEAK_REPORT
                        : env_is("WEFT_LEAKCHECK", "exit") ? LEAK_EXIT
                                                           : 0;
        atexit(at_exit);
    }
    weft__trace_init(nprocs);
}

void weft__diag_worker_init(int wid) {
    stack_t old;
    /* keep an alternate stack somebody else (a sanitizer) installed */
    if (sigaltstack(NULL, &old) != 0 || (old.ss_flags & SS_DISABLE)) {
        void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE};
        if (mem != MAP_FAILED && sigaltstack(&ss, NULL) == 0)
            pthread_setspecific(reg.altstack_key, mem);
        else if (mem != MAP_FAILED)
            munmap(mem, ALTSTACK_SIZE);
    }
    weft__trace_thread(wid);
}
