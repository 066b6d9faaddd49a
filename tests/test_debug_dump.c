/* SPDX-License-Identifier: MIT */
/*
 * weft_dump, SIGQUIT and leak reports: the line format, the call sites the
 * public macros record (and "?" for a call that bypasses them), a running
 * goroutine's time on its thread, plain threads listed as "thread <tid>",
 * leaks reported by weft_shutdown and by WEFT_LEAKCHECK=1 at exit.
 */
#include "child.h"

#include <pthread.h>
#include <stdatomic.h>

static weft_chan *gate; /* closed to release everybody */
static weft_mutex held;
static weft_wg ready;   /* counts goroutines about to block */
static atomic_int spin; /* the running goroutine spins while 1 */

enum { RECV_LINE = __LINE__ + 4 };
static void recv_gate(void *arg) {
    (void)arg;
    weft_wg_done(&ready);
    weft_recv(gate, NULL);
}

/* The same call through the function itself, not the macro. */
static void recv_gate_nosite(void *arg) {
    (void)arg;
    int (*fn)(weft_chan *, void *) = weft_recv; /* &weft_recv works */
    weft_wg_done(&ready);
    fn(gate, NULL);
}

enum { LOCK_LINE = __LINE__ + 4 };
static void lock_held(void *arg) {
    (void)arg;
    weft_wg_done(&ready);
    weft_mutex_lock(&held);
    weft_mutex_unlock(&held);
}

static void sleeper(void *arg) {
    (void)arg;
    weft_wg_done(&ready);
    weft_sleep(WEFT_SEC(30) * test_scale());
}

static void spinner(void *arg) {
    (void)arg;
    atomic_store(&spin, 2);
    while (atomic_load(&spin) == 2)
        ;
}

enum { HOG_LINE = __LINE__ + 3 };
static int spawn_hog(void) {
    weft_goopts o = {.name = "hog"};
    return weft_go_with(spinner, NULL, &o);
}

static void *thread_recv(void *arg) {
    (void)arg;
    (weft_recv)(gate, NULL);
    return NULL;
}

/* Wait until the dump shows n lines containing what. */
static char *dump_until(const char *what, int n) {
    for (;;) {
        char *d = test_dump();
        if (test_count(d, what) >= n)
            return d;
        weft_sleep(WEFT_MS(5));
    }
}

/* The running hog's line: "on its thread <seconds>s (<spawn site>)", with
 * the time as %.3f and the site of the weft_go_with call that started it;
 * ", P handed off" before the site once the monitor has given the hog's
 * worker slot to another thread (other goroutines were waiting). */
static void check_hog(const char *dump) {
    const char *line = strstr(dump, "[running] hog: on its thread ");
    CHECK(line);
    line += strlen("[running] hog: on its thread ");
    unsigned s, ms;
    int dot = 0, end = 0;
    CHECK(sscanf(line, "%u.%n%3u%n", &s, &dot, &ms, &end) == 2);
    CHECK(end - dot == 3 && line[end] == 's');
    line += end + 1;
    if (strncmp(line, ", P handed off", 14) == 0)
        line += 14;
    char want[160];
    snprintf(want, sizeof want, " (%s:%d)\n", __FILE__, HOG_LINE);
    CHECK(strncmp(line, want, strlen(want)) == 0);
}

/* Every line must read "<kind> <id> [<state>] <name>: <what> (<where>)". */
static void check_format(const char *dump) {
    const char *line = dump;
    while (*line) {
        const char *end = strchr(line, '\n');
        CHECK(end);
        char kind[16], state[16], name[64];
        unsigned long long id;
        int at = 0;
        CHECK(sscanf(line, "%15s %llu [%15[a-z]] %63[^:]: %n", kind, &id, state,
                     name, &at) == 4);
        CHECK(strcmp(kind, "goroutine") == 0 || strcmp(kind, "thread") == 0);
        CHECK(at > 0 && end[-1] == ')' && memchr(line + at, '(', end - line));
        line = end + 1;
    }
}

static void dump_format(void) {
    gate = weft_chan_make(0, 0);
    weft_mutex_lock(&held);
    weft_wg_add(&ready, 4);
    weft_goopts named = {.name = "gate-keeper"};
    CHECK(weft_go_with(recv_gate, NULL, &named) == 0);
    CHECK(weft_go(recv_gate_nosite, NULL) == 0);
    CHECK(weft_go(lock_held, NULL) == 0);
    CHECK(weft_go(sleeper, NULL) == 0);
    CHECK(spawn_hog() == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_recv, NULL) == 0);
    weft_wg_wait(&ready);
    while (atomic_load(&spin) != 2)
        weft_yield();

    char *d = dump_until("[waiting]", 5);
    printf("%s", d);
    check_format(d);
    char want[160];
    snprintf(want, sizeof want,
             "[waiting] gate-keeper: chan receive %p (%s:%d)\n", (void *)gate,
             __FILE__, RECV_LINE);
    CHECK(strstr(d, want));
    snprintf(want, sizeof want, "[waiting] -: chan receive %p (?)\n",
             (void *)gate);
    CHECK(test_count(d, want) == 1);
    snprintf(want, sizeof want, "[waiting] -: mutex %p (%s:%d)\n",
             (void *)&held, __FILE__, LOCK_LINE);
    CHECK(strstr(d, want));
    CHECK(strstr(d, "[waiting] -: sleep, "));
    CHECK(strstr(d, "s left (" __FILE__ ":"));
    CHECK(test_count(d, "[running]") >= 1);
    check_hog(d);
    CHECK(test_count(d, "\nthread ") == 1);
    snprintf(want, sizeof want, ": chan receive %p (?)\n", (void *)gate);
    CHECK(strstr(strstr(d, "\nthread "), want));

    atomic_store(&spin, 0);
    weft_close(gate);
    weft_mutex_unlock(&held);
    pthread_join(t, NULL);
}

/* A call through a macro that did not block: its site stays behind, in
 * this frame, below the caller's. */
__attribute__((noinline)) static void leave_site(weft_chan *c) {
    CHECK(weft_send(c, NULL) == 0);
}

/* A spawn through the function itself, after leave_site: the site left
 * below this frame is not the spawn's, and the dump shows "?". */
static void spawn_nosite(void) {
    weft_chan *c = weft_chan_make(0, 1);
    leave_site(c);
    int (*go)(weft_fn, void *, const weft_goopts *) = weft_go_with;
    weft_goopts o = {.name = "nosite"};
    CHECK(go(spinner, NULL, &o) == 0);
    while (atomic_load(&spin) != 2)
        weft_yield();
    char *d = dump_until("[running] nosite: on its thread ", 1);
    printf("%s", d);
    const char *line = strstr(d, "[running] nosite: ");
    CHECK(strncmp(strchr(line, '('), "(?)\n", 4) == 0);
    atomic_store(&spin, 0);
    weft_chan_free(c);
}

/* A spawn site on a line past the 16 bits the g keeps of it: the dump
 * names the file alone, not a wrong line. */
static void spawn_far(void) {
    weft_goopts o = {.name = "far"};
    int r;
#line 70000
    r = weft_go_with(spinner, NULL, &o);
#line 189
    CHECK(r == 0);
    while (atomic_load(&spin) != 2)
        weft_yield();
    char *d = dump_until("[running] far: on its thread ", 1);
    printf("%s", d);
    const char *line = strstr(d, "[running] far: ");
    char want[160];
    snprintf(want, sizeof want, "(%s)\n", __FILE__);
    CHECK(strncmp(strchr(line, '('), want, strlen(want)) == 0);
    atomic_store(&spin, 0);
}

/* ---- children
 * ---------------------------------------------------------------- */

static void block_two(void) {
    gate = weft_chan_make(0, 0);
    weft_wg_add(&ready, 2);
    weft_go(recv_gate, NULL);
    weft_go(recv_gate, NULL);
    weft_wg_wait(&ready);
    weft_sleep(WEFT_MS(50)); /* from wg_done to parked */
}

static int sigquit(void) {
    block_two();
    kill(getpid(), SIGQUIT);
    fprintf(stderr, "still running\n");
    return 0;
}

static int shutdown_leak(void) {
    block_two();
    if (weft_shutdown() != -EBUSY)
        return 4;
    return weft_goroutines() == 2 ? 0 : 3;
}

static int exit_leak(void) {
    block_two();
    return 0;
}

static int clean_shutdown(void) {
    weft_go(spinner, NULL);
    while (atomic_load(&spin) != 2)
        weft_yield();
    atomic_store(&spin, 0);
    while (weft_goroutines())
        weft_yield();
    return weft_shutdown() == 0 ? 0 : 4;
}

static const char *const quiet[] = {"ASAN_OPTIONS=detect_leaks=0",
                                    "WEFT_DEADLOCK=0", NULL};
static const char *const leakcheck[] = {"ASAN_OPTIONS=detect_leaks=0",
                                        "WEFT_LEAKCHECK=1", NULL};

static child c;

static void leak_lines(const char *where) {
    const char *p = strstr(c.out, "weft: leak: 2 goroutines still blocked\n");
    CHILD_CHECK(&c, p);
    char want[64];
    snprintf(want, sizeof want, "(%s:%d)\n", where, RECV_LINE);
    CHILD_CHECK(&c, test_count(p, want) == 2);
    CHILD_CHECK(&c, test_count(p, "[waiting] -: chan receive 0x") == 2);
}

int main(void) {
    TEST_BEGIN(60);

    child_run(sigquit, quiet, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    CHILD_CHECK(&c, test_count(c.out, "[waiting] -: chan receive 0x") == 2);
    CHILD_CHECK(&c, strstr(c.out, "still running\n"));

    child_run(shutdown_leak, quiet, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    leak_lines(__FILE__);

    child_run(exit_leak, leakcheck, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    leak_lines(__FILE__);

    child_run(exit_leak, quiet, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0 && !strstr(c.out, "leak"));

    child_run(clean_shutdown, leakcheck, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0 && !strstr(c.out, "leak"));

    dump_format();
    spawn_nosite();
    spawn_far();
    TEST_OK();
    return 0;
}
