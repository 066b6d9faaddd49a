/*
 * Diagnostics: call sites, weft_dump, leak reports, and the signal handlers (SIGQUIT prints the dump; SIGSEGV in a
 * guard page is reported as a stack overflow).
 *
 * Plain threads blocked in weft are kept on a list (their parks are linked
 * through tnext/tprev) so the dump can show them and the deadlock check
 * (deadlock.c) can count them.  reg.gen changes, under reg.lock, whenever a
 * thread joins or leaves the list or a weft_blocking pool thread goes idle
 * or busy: the deadlock check compares it before and after its snapshot.
 *
 * Call sites: the public macros call weft__site(file, line) right before a
 * blocking call; it lands in a thread-local slot together with the
 * caller's frame address.  weft__park_init (through weft__park_diag_init)
 * moves it into the park only when that park lies just below the recorded
 * frame on the same stack, so a site left behind by a call that did not
 * block, on another goroutine that ran on this thread, is never shown.
 */
#include "weft_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* How far below the weft__site frame the park of the same call may lie. */
#define SITE_REACH (16 * 1024)
#define DUMP_LINE 400

static struct {
    weft__lock lock;
    weft__park *threads;
    uint64_t gen;
    int pool_idle;
    bool leakcheck;
    atomic_bool deadlock_reported; /* then exit reports no leaks */
    pthread_key_t altstack_key;
} reg;

typedef struct site {
    const char *file;
    int line;
    const char *frame;
} site;

static __thread site tls_site __attribute__((tls_model("initial-exec")));

/* ---- call sites ---------------------------------------------------------- */

__attribute__((noinline)) void weft__site(const char *file, int line) {
    tls_site.file = file;
    tls_site.line = line;
    tls_site.frame = __builtin_frame_address(0);
}

void weft__park_diag_init(weft__park *p) {
    const char *at = (const char *)p;
    p->site_file = NULL;
    p->site_line = 0;
    p->tdeadline = -1;
    if (tls_site.file && at < tls_site.frame &&
        tls_site.frame - at < SITE_REACH) {
        p->site_file = tls_site.file;
        p->site_line = tls_site.line;
    }
    tls_site.file = NULL;
}

/* ---- the registry of blocked plain threads ------------------------------- */

void weft__thread_blocked(weft__park *p, bool on) {
    if (on)
        weft__ensure(); /* someone must be there to notice a deadlock */
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
                    const weft__park *p) {
    char what[160], where[160];
    what_of(what, sizeof what, p);
    if (p && p->site_file)
        snprintf(where, sizeof where, "%s:%d", p->site_file, p->site_line);
    else
        snprintf(where, sizeof where, "?");
    snprintf(buf, n, "%s %llu [%s] %s: %s (%s)\n", kind, id, state,
             name && name[0] ? name : "-", what, where);
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
        return atomic_load_explicit(&((weft__g *)g)->park,
                                    memory_order_relaxed)
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
    line_of(line, sizeof line, "goroutine", (unsigned long long)g->id,
            p ? "waiting" : state_of(g), g->name, p);
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

static void dump_threads(const sink *out) {
    char line[DUMP_LINE], name[32];
    if (out->f) {
        weft__lock_acquire(&reg.lock);
    } else if (!reg_lock_bounded()) {
        sink_put(out, "weft: dump incomplete: the thread list is busy\n");
        return;
    }
    for (weft__park *p = reg.threads; p; p = p->tnext) {
        thread_name(p->tid, name, sizeof name);
        line_of(line, sizeof line, "thread", (unsigned long long)p->tid,
                "waiting", name, p);
        sink_put(out, line);
    }
    weft__lock_release(&reg.lock);
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

void weft__leaks_report(void) {
    dump_ctx d = {.only_blocked = true};
    weft__diag_walk(dump_g, &d);
    if (d.n == 0)
        return;
    sink s = {.f = stderr};
    fprintf(stderr, "weft: leak: %zu goroutine%s still blocked\n", d.n,
            d.n == 1 ? "" : "s");
    d.out = &s;
    d.n = 0;
    weft__diag_walk(dump_g, &d);
    fflush(stderr);
}

void weft__deadlock_report(void) {
    if (atomic_exchange(&reg.deadlock_reported, true))
        return;
    fputs("weft: fatal: all goroutines are asleep - deadlock!\n\n", stderr);
    weft_dump(stderr);
}

static void at_exit(void) {
    atomic_store(&weft__deadlock_on, false);
    if (reg.leakcheck && !atomic_load(&reg.deadlock_reported) &&
        weft_goroutines())
        weft__leaks_report();
    weft__trace_flush();
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
        atomic_store(&weft__deadlock_on, !env_is("WEFT_DEADLOCK", "0"));
        reg.leakcheck = env_is("WEFT_LEAKCHECK", "1");
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
