/* SPDX-License-Identifier: MIT */
/*
 * WEFT_TRACE: the file written at exit, and at weft_shutdown, is valid JSON
 * (checked by the strict parser below, not by pattern matching) in the
 * Chrome trace-event format: a traceEvents array whose every event has
 * name, ph, ts, pid and tid.  The counts match the program: one spawn per
 * goroutine, a run slice for each, the blocks with their reason, wakes, a
 * track "M<id>" per thread that ran goroutines.  The hand-off events
 * (issue 15): the recorders themselves, called as the monitor and a thread
 * that lost its P call them, and a program whose only way to finish in time
 * is a hand-off, whose trace must then show one.
 */
#include "child.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define GOROUTINES 24
#define ROUNDS 3

/* ---- the traced program ------------------------------------------------- */

static weft_chan *ping;
static weft_wg done;

static void ponger(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++)
        weft_recv(ping, NULL);
    weft_wg_done(&done);
}

static void pinger(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++)
        weft_send(ping, NULL);
    weft_wg_done(&done);
}

static void traced(void) {
    ping = weft_chan_make(0, 0);
    weft_wg_add(&done, GOROUTINES);
    for (int i = 0; i < GOROUTINES / 2; i++) {
        weft_goopts o = {.name = "pon\"g\\er"}; /* escaping in the file */
        weft_go_with(ponger, NULL, &o);
        weft_go(pinger, NULL);
    }
    weft_wg_wait(&done);
    while (weft_goroutines())
        weft_yield();
}

static int at_exit(void) {
    traced();
    return 0;
}

/* The recorders of trace.h, called here as their callers (the monitor, a
 * thread whose P was handed off) will: the static library resolves them. */
void weft__trace_thread(int wid);
void weft__trace_handoff(int p, int from_m, int to_m, uint64_t g);
void weft__trace_m(const char *what);

enum { HANDOFF_P = 3, HANDOFF_FROM = 5, HANDOFF_TO = 9, HANDOFF_G = 77 };

static void lost_p(void *arg) {
    (void)arg;
    weft__trace_m("P lost");
    weft_wg_done(&done);
}

static void *monitor(void *arg) {
    (void)arg;
    weft__trace_thread(-1);
    weft__trace_handoff(HANDOFF_P, HANDOFF_FROM, HANDOFF_TO, HANDOFF_G);
    return NULL;
}

static int recorders(void) {
    weft_wg_add(&done, 1);
    weft_go(lost_p, NULL);
    weft_wg_wait(&done);
    pthread_t t;
    if (pthread_create(&t, NULL, monitor, NULL) != 0)
        return 5;
    pthread_join(t, NULL);
    return 0;
}

/* One worker, held by a goroutine spinning in C until a goroutine it
 * spawned (queued behind it) sets a flag: only a hand-off of the worker's
 * P to another thread lets the setter run while the spinner spins.  Exit code
 * 0: the flag was seen (so a hand-off happened), 10: it was not within the
 * bound (no hand-off: the setter ran after the spinner gave up). */
static atomic_int flag;
static bool seen; /* by the spinner, while it spun */

static void setter(void *arg) {
    (void)arg;
    atomic_store(&flag, 1);
    weft_wg_done(&done);
}

static void spinner(void *arg) {
    (void)arg;
    weft_go(setter, NULL);
    int64_t until = weft_now() + WEFT_MS(500) * test_scale();
    while (!(seen = atomic_load(&flag)) && weft_now() < until)
        ;
    weft_wg_done(&done);
}

static int held_worker(void) {
    weft_wg_add(&done, 2);
    weft_go(spinner, NULL);
    weft_wg_wait(&done);
    return seen ? 0 : 10;
}

static int at_shutdown(void) {
    traced();
    if (weft_shutdown() != 0)
        return 4;
    const char *path = getenv("WEFT_TRACE");
    if (rename(path, getenv("TRACE_MOVE_TO")) != 0)
        return 3;
    /* a second run after the restart: the exit file holds both */
    traced();
    return 0;
}

/* ---- a strict JSON parser that counts trace events ----------------------- */

typedef struct counts {
    int events, spawn, run, block, chan_block, wake, park, meta, named;
    int m_tracks, monitor_tracks, handoff, handoff_args, p_lost;
    bool bad;
} counts;

typedef struct parser {
    const char *p;
    counts *n;
} parser;

static bool value(parser *ps);

static void ws(parser *ps) {
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

static bool lit(parser *ps, char c) {
    ws(ps);
    if (*ps->p != c)
        return false;
    ps->p++;
    return true;
}

/* A string, unescaped into out (n bytes; may be NULL). */
static bool string(parser *ps, char *out, size_t n) {
    size_t k = 0;
    if (!lit(ps, '"'))
        return false;
    for (;;) {
        char c = *ps->p++;
        if (c == '"')
            break;
        if ((unsigned char)c < 0x20)
            return false;
        if (c == '\\') {
            c = *ps->p++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++)
                    if (!isxdigit((unsigned char)*ps->p++))
                        return false;
                c = '?';
            } else if (!strchr("\"\\/bfnrt", c)) {
                return false;
            }
        }
        if (out && k + 1 < n)
            out[k++] = c;
    }
    if (out)
        out[k] = 0;
    return true;
}

static bool number(parser *ps, double *out) {
    ws(ps);
    char *end;
    double d = strtod(ps->p, &end);
    if (out)
        *out = d;
    if (end == ps->p || !(isdigit((unsigned char)*ps->p) || *ps->p == '-'))
        return false;
    ps->p = end;
    return true;
}

/* Members of an object after "{"; fn sees each key before its value is
 * parsed and may parse the value itself (returning 1) or leave it (0). */
static bool members(parser *ps, int (*fn)(parser *, const char *, void *),
                    void *arg) {
    if (lit(ps, '}'))
        return true;
    do {
        char key[64];
        if (!string(ps, key, sizeof key) || !lit(ps, ':'))
            return false;
        int r = fn ? fn(ps, key, arg) : 0;
        if (r < 0 || (r == 0 && !value(ps)))
            return false;
    } while (lit(ps, ','));
    return lit(ps, '}');
}

static bool value(parser *ps) {
    ws(ps);
    if (lit(ps, '{'))
        return members(ps, NULL, NULL);
    if (lit(ps, '[')) {
        if (lit(ps, ']'))
            return true;
        do
            if (!value(ps))
                return false;
        while (lit(ps, ','));
        return lit(ps, ']');
    }
    if (*ps->p == '"')
        return string(ps, NULL, 0);
    for (const char *w = "true\0false\0null\0"; *w; w += strlen(w) + 1)
        if (strncmp(ps->p, w, strlen(w)) == 0) {
            ps->p += strlen(w);
            return true;
        }
    return number(ps, NULL);
}

typedef struct event {
    char name[64], ph[8], reason[32], track[32];
    double p, from, to, g; /* a handoff's args */
    unsigned have;         /* bits: name ph ts pid tid */
} event;

static int arg_member(parser *ps, const char *key, void *arg) {
    event *e = arg;
    if (strcmp(key, "reason") == 0)
        return string(ps, e->reason, sizeof e->reason) ? 1 : -1;
    if (strcmp(key, "name") == 0) /* a thread_name's */
        return string(ps, e->track, sizeof e->track) ? 1 : -1;
    static const char *const nums[] = {"p", "from", "to", "g"};
    double *const to[] = {&e->p, &e->from, &e->to, &e->g};
    for (unsigned i = 0; i < 4; i++)
        if (strcmp(key, nums[i]) == 0)
            return number(ps, to[i]) ? 1 : -1;
    return 0;
}

static int event_member(parser *ps, const char *key, void *arg) {
    event *e = arg;
    static const char *const keys[] = {"name", "ph", "ts", "pid", "tid"};
    for (unsigned i = 0; i < 5; i++)
        if (strcmp(key, keys[i]) == 0)
            e->have |= 1u << i;
    if (strcmp(key, "name") == 0)
        return string(ps, e->name, sizeof e->name) ? 1 : -1;
    if (strcmp(key, "ph") == 0)
        return string(ps, e->ph, sizeof e->ph) ? 1 : -1;
    if (strcmp(key, "ts") == 0 || strcmp(key, "pid") == 0 ||
        strcmp(key, "tid") == 0 || strcmp(key, "dur") == 0)
        return number(ps, NULL) ? 1 : -1;
    if (strcmp(key, "args") == 0)
        return lit(ps, '{') && members(ps, arg_member, e) ? 1 : -1;
    return 0;
}

static void tally(counts *n, const event *e) {
    n->events++;
    n->bad |= e->have != 0x1f;
    if (strcmp(e->ph, "M") == 0) {
        n->meta++;
        n->m_tracks +=
            e->track[0] == 'M' && isdigit((unsigned char)e->track[1]);
        n->monitor_tracks += strcmp(e->track, "monitor") == 0;
    } else if (strcmp(e->ph, "X") == 0) {
        n->run++;
        n->named += strstr(e->name, " pon\"g\\er") != NULL;
    } else if (strcmp(e->ph, "i") != 0)
        n->bad = true;
    else if (strcmp(e->name, "spawn") == 0)
        n->spawn++;
    else if (strcmp(e->name, "block") == 0) {
        n->block++;
        n->chan_block += strncmp(e->reason, "chan ", 5) == 0;
    } else if (strcmp(e->name, "wake") == 0)
        n->wake++;
    else if (strcmp(e->name, "park") == 0)
        n->park++;
    else if (strcmp(e->name, "handoff") == 0) {
        n->handoff++;
        n->handoff_args += e->p == HANDOFF_P && e->from == HANDOFF_FROM &&
                           e->to == HANDOFF_TO && e->g == HANDOFF_G;
    } else if (strcmp(e->name, "P lost") == 0)
        n->p_lost++;
}

static int top_member(parser *ps, const char *key, void *arg) {
    (void)arg;
    if (strcmp(key, "traceEvents") != 0)
        return 0;
    if (!lit(ps, '['))
        return -1;
    if (lit(ps, ']'))
        return 1;
    do {
        event e = {0};
        if (!lit(ps, '{') || !members(ps, event_member, &e))
            return -1;
        tally(ps->n, &e);
    } while (lit(ps, ','));
    return lit(ps, ']') ? 1 : -1;
}

static counts parse_file(const char *path) {
    static char buf[1 << 24];
    counts n = {0};
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    CHECK(len < sizeof buf - 1);
    buf[len] = 0;
    parser ps = {buf, &n};
    bool ok = lit(&ps, '{') && members(&ps, top_member, NULL);
    ws(&ps);
    if (!ok || *ps.p) {
        fprintf(stderr, "%s: invalid JSON at byte %zu: %.40s\n", path,
                (size_t)(ps.p - buf), ps.p);
        CHECK(!"valid JSON");
    }
    return n;
}

static void check_counts(const char *path, int runs) {
    counts n = parse_file(path);
    printf("%s: %d events: %d spawn, %d run, %d block (%d chan), %d wake, "
           "%d park, %d metadata\n",
           path, n.events, n.spawn, n.run, n.block, n.chan_block, n.wake,
           n.park, n.meta);
    CHECK(!n.bad);
    CHECK_EQ(n.spawn, runs * GOROUTINES);
    /* goroutines block only on the channel, and each block ends in one
     * wake (an unpark) and one more slice of running */
    CHECK(n.block > 0);
    CHECK_EQ(n.chan_block, n.block);
    CHECK_EQ(n.wake, n.block);
    CHECK_EQ(n.run, runs * GOROUTINES + n.block);
    CHECK(n.named >= runs * GOROUTINES / 2);
    CHECK(n.meta >= 2);
    CHECK(n.m_tracks >= 1);
    /* no hand-off is asserted either way: on a loaded machine the OS may
     * keep a worker's thread off its CPU for longer than the monitor's
     * threshold, and the monitor then hands its P off */
}

int main(void) {
    TEST_BEGIN(60);
    static child c;
    char path[64], env[96], moved[64], move_env[96];
    snprintf(path, sizeof path, "/tmp/weft-trace-%d.json", (int)getpid());
    snprintf(moved, sizeof moved, "/tmp/weft-trace-%d-1.json", (int)getpid());
    snprintf(env, sizeof env, "WEFT_TRACE=%s", path);
    snprintf(move_env, sizeof move_env, "TRACE_MOVE_TO=%s", moved);
    const char *const vars[] = {env, move_env, NULL};

    child_run(at_exit, vars, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    check_counts(path, 1);

    child_run(at_shutdown, vars, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    check_counts(moved, 1);
    check_counts(path, 2);
    unlink(moved);

    child_run(recorders, vars, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    counts n = parse_file(path);
    CHECK(!n.bad);
    CHECK(n.handoff >= 1); /* a real one may come too (see check_counts) */
    CHECK_EQ(n.handoff_args, 1);
    CHECK_EQ(n.monitor_tracks, 1);
    CHECK(n.p_lost >= 1);
    CHECK(n.m_tracks >= 1);

    const char *const one[] = {env, "WEFT_PROCS=1", NULL};
    child_run(held_worker, one, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    n = parse_file(path);
    CHECK(!n.bad);
    CHECK(n.handoff >= 1);
    CHECK_EQ(n.monitor_tracks, 1);
    /* no "P lost" is asserted: the process may exit before the spinner's
     * thread, once it returns, gives the retired P up */
    unlink(path);
    TEST_OK();
    return 0;
}
