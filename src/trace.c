/* SPDX-License-Identifier: MIT */
/*
 * WEFT_TRACE=path: a Chrome trace-event JSON file of what the scheduler did
 * (open it in https://ui.perfetto.dev or chrome://tracing).
 *
 * Recording.  Each of weft's threads (an M, by its id, and the monitor)
 * appends to its own buffer, found through a thread-local pointer, without
 * any lock.  An M's buffer is made the first time a thread of that id
 * starts, in a slot of a fixed array that never moves, so threads starting
 * while others record need no more than tr.lock to fill their slot.  Plain
 * threads (spawning or waking goroutines from main, say) share one buffer
 * under a spin lock.
 * A buffer is a list of chunks that never move; after writing an event the
 * writer publishes the chunk's new length with a release store, so the
 * file can be written at exit while workers still run: the writer of the
 * file reads only published events.  Buffers live until the process ends
 * and keep every event since the first start, so the file written at
 * weft_shutdown and the one rewritten at exit both hold the whole run.
 * Past MAX_EVENTS a buffer drops events and counts them.
 *
 * Events.  Per M (track "M<id>", tid = the M id): an "X" slice for each
 * stretch a goroutine ran, named after it; instants for spawn, block (with
 * reason and object), wake, steal (from which worker), park (worker idle)
 * and the thread's own hand-off steps ("P lost", "spare", "M new", "M
 * exit").  On the monitor's track: "handoff" (which P, from which M to
 * which, and the goroutine that held the old one).
 * Goroutine names are recorded once, at spawn, and looked up when the file
 * is written.
 *
 * Cost when off: each hook (in sched.c, waiter.c and the inline unpark of
 * every waker) is one predictable branch on a flag.
 */
#include "trace.h"
#include "sched.h"
#include "sys.h"
#include "waiter.h"

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK_EVENTS 4096
#define MAX_EVENTS ((size_t)1 << 20)
#define MAX_THREAD_NAMES 64
#define MAX_MS 1024        /* M ids with a buffer of their own */
#define MONITOR_TID MAX_MS /* the monitor's track, beside the Ms' */

enum {
    EV_RUN,
    EV_NAME,
    EV_SPAWN,
    EV_BLOCK,
    EV_WAKE,
    EV_STEAL,
    EV_PARK,
    EV_HANDOFF,
    EV_M,
};

typedef struct event {
    int64_t ts; /* ns since the trace started */
    uint64_t g;
    int32_t kind;
    int32_t tid; /* plain threads: the OS thread id */
    union {
        struct {
            int64_t dur;
            const char *why;
            const void *obj;
            int victim;
            int p, from_m, to_m; /* a handoff */
        } x;
        char name[32];
    } u;
} event;

typedef struct chunk {
    _Atomic(struct chunk *) next;
    atomic_size_t n; /* published events */
    event ev[CHUNK_EVENTS];
} chunk;

typedef struct tbuf {
    _Atomic(chunk *) head;
    chunk *tail;
    size_t total;
    atomic_size_t dropped;
    int64_t run_start; /* the running goroutine's slice */
} tbuf;

atomic_bool weft__trace_on;

static struct {
    char *path;
    int64_t t0;
    weft__lock lock; /* making an M's buffer, the threads buffer, writing */
    _Atomic(tbuf *) ms[MAX_MS];
    tbuf monitor;
    tbuf threads;
    bool forked; /* a fork's child: the file and the buffers are the parent's */
} tr;

static __thread tbuf *tls_buf;

/* ---- recording ----------------------------------------------------------- */

static event *ev_new(tbuf *b) {
    if (b->total >= MAX_EVENTS) {
        atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
        return NULL;
    }
    chunk *c = b->tail;
    if (!c ||
        atomic_load_explicit(&c->n, memory_order_relaxed) == CHUNK_EVENTS) {
        chunk *nc = calloc(1, sizeof *nc);
        if (!nc) {
            atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
            return NULL;
        }
        if (c)
            atomic_store_explicit(&c->next, nc, memory_order_release);
        else
            atomic_store_explicit(&b->head, nc, memory_order_release);
        b->tail = c = nc;
    }
    event *e = &c->ev[atomic_load_explicit(&c->n, memory_order_relaxed)];
    memset(e, 0, sizeof *e);
    return e;
}

static void ev_publish(tbuf *b) {
    b->total++;
    atomic_fetch_add_explicit(&b->tail->n, 1, memory_order_release);
}

/* Append an event of kind about g, filled in by fill (may be NULL). */
static void record(int kind, uint64_t g, void (*fill)(event *, const void *),
                   const void *arg) {
    tbuf *b = tls_buf;
    bool shared = !b;
    if (shared) {
        b = &tr.threads;
        weft__lock_acquire(&tr.lock);
    }
    event *e = ev_new(b);
    if (e) {
        e->ts = weft_now() - tr.t0;
        e->g = g;
        e->kind = kind;
        e->tid = shared ? (int32_t)syscall(SYS_gettid) : 0;
        if (fill)
            fill(e, arg);
        ev_publish(b);
    }
    if (shared)
        weft__lock_release(&tr.lock);
}

static void fill_name(event *e, const void *arg) {
    snprintf(e->u.name, sizeof e->u.name, "%s", (const char *)arg);
}

void weft__trace_spawn(const weft__g *g) {
    record(EV_SPAWN, g->id, NULL, NULL);
    if (g->name[0])
        record(EV_NAME, g->id, fill_name, g->name);
}

/* A thread without a buffer of its own (an M id past MAX_MS, or no memory
 * for it) records on the shared one, without run slices: it has nowhere to
 * keep a slice's start. */
void weft__trace_run(const weft__g *g) {
    (void)g;
    if (tls_buf)
        tls_buf->run_start = weft_now() - tr.t0;
}

static void fill_run(event *e, const void *arg) {
    (void)arg;
    e->ts = tls_buf->run_start;
    e->u.x.dur = weft_now() - tr.t0 - e->ts;
}

void weft__trace_stop(const weft__g *g) {
    if (tls_buf)
        record(EV_RUN, g->id, fill_run, 0);
    else
        atomic_fetch_add_explicit(&tr.threads.dropped, 1, memory_order_relaxed);
}

static void fill_block(event *e, const void *arg) {
    const weft__park *p = arg;
    e->u.x.why = p->why;
    e->u.x.obj = p->obj;
}

void weft__trace_block(const weft__park *p) {
    record(EV_BLOCK, p->g->id, fill_block, p);
}

void weft__trace_wake(const weft__g *g) {
    record(EV_WAKE, g->id, NULL, 0);
}

static void fill_steal(event *e, const void *arg) {
    e->u.x.victim = *(const int *)arg;
}

void weft__trace_steal(int victim) {
    record(EV_STEAL, 0, fill_steal, &victim);
}

void weft__trace_idle(void) {
    record(EV_PARK, 0, NULL, 0);
}

typedef struct handoff {
    int p, from_m, to_m;
} handoff;

static void fill_handoff(event *e, const void *arg) {
    const handoff *h = arg;
    e->u.x.p = h->p;
    e->u.x.from_m = h->from_m;
    e->u.x.to_m = h->to_m;
}

void weft__trace_handoff(int p, int from_m, int to_m, uint64_t g) {
    if (weft__tracing())
        record(EV_HANDOFF, g, fill_handoff, &(handoff){p, from_m, to_m});
}

static void fill_m(event *e, const void *arg) {
    e->u.x.why = arg;
}

void weft__trace_m(const char *what) {
    if (weft__tracing())
        record(EV_M, 0, fill_m, what);
}

/* ---- setup --------------------------------------------------------------- */

/* M id's buffer, made on first use; NULL without memory for it.  A slot
 * is written once, under tr.lock, and never moves or changes after. */
static tbuf *m_buf(int id) {
    tbuf *b = atomic_load_explicit(&tr.ms[id], memory_order_acquire);
    if (b)
        return b;
    weft__lock_acquire(&tr.lock);
    b = atomic_load_explicit(&tr.ms[id], memory_order_relaxed);
    if (!b && (b = calloc(1, sizeof *b)))
        atomic_store_explicit(&tr.ms[id], b, memory_order_release);
    weft__lock_release(&tr.lock);
    return b;
}

/* The buffers of the first nprocs Ms are made here, so that tracing is off
 * from the start rather than short of them; later Ms make theirs as they
 * start (weft__trace_thread). */
void weft__trace_init(int nprocs) {
    const char *path = getenv("WEFT_TRACE");
    if (tr.forked || (!tr.path && (!path || !*path)))
        return;
    weft__lock_acquire(&tr.lock);
    if (!tr.path) {
        tr.path = strdup(path);
        tr.t0 = weft_now();
    }
    bool ok = tr.path;
    weft__lock_release(&tr.lock);
    for (int i = 0; ok && i < nprocs && i < MAX_MS; i++)
        ok = m_buf(i);
    atomic_store(&weft__trace_on, ok);
}

/* The child of a fork traces nothing: its file would overwrite the
 * parent's, with the parent's events in it (and tr.lock may be held by a
 * thread the child does not have). */
void weft__trace_atfork_child(void) {
    tr.forked = true;
    tls_buf = NULL;
    atomic_store(&weft__trace_on, false);
}

void weft__trace_thread(int wid) {
    if (weft__tracing())
        tls_buf = wid == -1                  ? &tr.monitor
                  : wid >= 0 && wid < MAX_MS ? m_buf(wid)
                                             : NULL;
}

/* ---- the file ------------------------------------------------------------ */

typedef struct gname {
    uint64_t g;
    const char *name;
} gname;

typedef struct writer {
    FILE *f;
    int pid;
    gname *names;
    size_t nnames;
    int tids[MAX_THREAD_NAMES];
    int ntids;
} writer;

/* Call fn on every published event of b. */
static void each_event(tbuf *b, void (*fn)(writer *, const event *, int),
                       writer *w, int tid) {
    for (chunk *c = atomic_load_explicit(&b->head, memory_order_acquire); c;
         c = atomic_load_explicit(&c->next, memory_order_acquire)) {
        size_t n = atomic_load_explicit(&c->n, memory_order_acquire);
        for (size_t i = 0; i < n; i++)
            fn(w, &c->ev[i], tid);
    }
}

static void collect_name(writer *w, const event *e, int tid) {
    (void)tid;
    if (e->kind != EV_NAME)
        return;
    gname *n = realloc(w->names, (w->nnames + 1) * sizeof *n);
    if (!n)
        return;
    w->names = n;
    w->names[w->nnames++] = (gname){e->g, e->u.name};
}

static int gname_cmp(const void *a, const void *b) {
    const gname *x = a, *y = b;
    return x->g < y->g ? -1 : x->g > y->g;
}

static const char *name_of(const writer *w, uint64_t g) {
    gname key = {.g = g};
    if (!w->nnames) /* names is NULL then, which bsearch must not get */
        return NULL;
    const gname *n = bsearch(&key, w->names, w->nnames, sizeof key, gname_cmp);
    return n ? n->name : NULL;
}

/* Goroutine names come from users: escape them for JSON. */
static void put_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void put_head(writer *w, const char *name, const char *ph, int64_t ts,
                     int tid) {
    fputs(",\n{\"name\":", w->f);
    put_json_str(w->f, name);
    fprintf(w->f, ",\"ph\":\"%s\",\"ts\":%lld.%03lld,\"pid\":%d,\"tid\":%d", ph,
            (long long)(ts / 1000), (long long)(ts % 1000), w->pid, tid);
    if (ph[0] == 'i')
        fputs(",\"s\":\"t\"", w->f);
}

static void note_tid(writer *w, int tid) {
    for (int i = 0; i < w->ntids; i++)
        if (w->tids[i] == tid)
            return;
    if (w->ntids < MAX_THREAD_NAMES)
        w->tids[w->ntids++] = tid;
}

static void put_event(writer *w, const event *e, int tid) {
    static const char *const names[] = {
        [EV_SPAWN] = "spawn", [EV_BLOCK] = "block", [EV_WAKE] = "wake",
        [EV_STEAL] = "steal", [EV_PARK] = "park",   [EV_HANDOFF] = "handoff",
    };
    if (e->kind == EV_NAME)
        return;
    if (tid < 0) {
        tid = e->tid;
        note_tid(w, tid);
    }
    if (e->kind == EV_RUN) {
        const char *n = name_of(w, e->g);
        char buf[64];
        snprintf(buf, sizeof buf, "g%llu%s%s", (unsigned long long)e->g,
                 n ? " " : "", n ? n : "");
        put_head(w, buf, "X", e->ts, tid);
        fprintf(w->f, ",\"dur\":%lld.%03lld", (long long)(e->u.x.dur / 1000),
                (long long)(e->u.x.dur % 1000));
    } else {
        put_head(w, e->kind == EV_M ? e->u.x.why : names[e->kind], "i", e->ts,
                 tid);
    }
    if (e->kind == EV_STEAL) {
        fprintf(w->f, ",\"args\":{\"from\":%d", e->u.x.victim);
    } else if (e->kind == EV_HANDOFF) {
        fprintf(w->f, ",\"args\":{\"p\":%d,\"from\":%d,\"to\":%d,\"g\":%llu",
                e->u.x.p, e->u.x.from_m, e->u.x.to_m, (unsigned long long)e->g);
    } else if (e->kind == EV_PARK || e->kind == EV_M) {
        fputs(",\"args\":{", w->f);
    } else {
        fprintf(w->f, ",\"args\":{\"g\":%llu", (unsigned long long)e->g);
    }
    if (e->kind == EV_BLOCK) {
        const char *why = e->u.x.why ? e->u.x.why : "?";
        fputs(",\"reason\":", w->f);
        put_json_str(w->f, why);
        /* as in the dump; a sleep or a select waits on no one object */
        if (weft__why_is_fd(why))
            fprintf(w->f, ",\"fd\":%d", (int)(intptr_t)e->u.x.obj);
        else if (e->u.x.obj)
            fprintf(w->f, ",\"obj\":\"%p\"", e->u.x.obj);
    }
    fputs("}}", w->f);
}

static void put_thread_name(writer *w, int tid, const char *name,
                            size_t dropped) {
    put_head(w, "thread_name", "M", 0, tid);
    fputs(",\"args\":{\"name\":", w->f);
    put_json_str(w->f, name);
    fprintf(w->f, ",\"dropped_events\":%zu}}", dropped);
}

/* One track: its name, then its events. */
static void put_track(writer *w, tbuf *b, int tid, const char *name) {
    put_thread_name(w, tid, name, atomic_load(&b->dropped));
    each_event(b, put_event, w, tid);
}

/* M id's buffer or NULL, for the file's writer: it holds tr.lock, under
 * which every slot is filled. */
static tbuf *m_slot(int id) {
    return atomic_load_explicit(&tr.ms[id], memory_order_relaxed);
}

static void write_file(FILE *f) {
    writer w = {.f = f, .pid = (int)getpid()};
    char name[32];
    for (int i = 0; i < MAX_MS; i++)
        if (m_slot(i))
            each_event(m_slot(i), collect_name, &w, i);
    each_event(&tr.threads, collect_name, &w, -1);
    if (w.nnames)
        qsort(w.names, w.nnames, sizeof *w.names, gname_cmp);
    fprintf(f,
            "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n"
            "{\"name\":\"process_name\",\"ph\":\"M\",\"ts\":0,\"pid\":%d,"
            "\"tid\":0,\"args\":{\"name\":\"weft\"}}",
            w.pid);
    for (int i = 0; i < MAX_MS; i++) {
        if (!m_slot(i))
            continue;
        snprintf(name, sizeof name, "M%d", i);
        put_track(&w, m_slot(i), i, name);
    }
    if (atomic_load(&tr.monitor.head))
        put_track(&w, &tr.monitor, MONITOR_TID, "monitor");
    each_event(&tr.threads, put_event, &w, -1);
    for (int i = 0; i < w.ntids; i++) {
        snprintf(name, sizeof name, "thread %d", w.tids[i]);
        put_thread_name(&w, w.tids[i], name, atomic_load(&tr.threads.dropped));
    }
    fputs("\n]}\n", f);
    free(w.names);
}

void weft__trace_flush(void) {
    if (!weft__tracing())
        return;
    weft__lock_acquire(&tr.lock);
    FILE *f = fopen(tr.path, "w");
    if (f) {
        write_file(f);
        if (fclose(f) != 0)
            f = NULL;
    }
    weft__lock_release(&tr.lock);
    if (!f)
        fprintf(stderr, "weft: cannot write trace %s\n", tr.path);
}
