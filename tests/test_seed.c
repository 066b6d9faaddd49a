/* SPDX-License-Identifier: MIT */
/*
 * WEFT_SEED: a run under a seed is one interleaving, the same every time;
 * other seeds give other interleavings.
 *
 * The child's goroutines append their letter to a log at every step: yield
 * points, an unbuffered hand-off, a mutex, a select between two ready
 * channels.  The parent compares the logs of two runs with the same seed,
 * for several seeds, and counts distinct logs over 20 seeds.
 */
#include "child.h"

#include <stdbool.h>

#define WORKERS 6
#define STEPS 5

static char log_buf[WORKERS * STEPS * 4 + 8];
static size_t log_len;
static weft_mutex mu;
static weft_chan *pass;         /* unbuffered: a token goes round */
static weft_chan *left, *right; /* both always ready for select */
static weft_wg done;

static void note(char c) {
    log_buf[log_len++] = c;
}

static void worker(void *arg) {
    char me = (char)('a' + (int)(intptr_t)arg);
    for (int i = 0; i < STEPS; i++) {
        note(me);
        weft_yield();
        weft_mutex_lock(&mu);
        note(me);
        weft_mutex_unlock(&mu);
        weft_case cs[2] = {{.chan = left, .op = WEFT_RECV},
                           {.chan = right, .op = WEFT_RECV}};
        note(weft_select(cs, 2, WEFT_FOREVER) == 0 ? '<' : '>');
    }
    weft_wg_done(&done);
}

/* Keeps the token moving so that receivers of pass interleave too. */
static void relay(void *arg) {
    (void)arg;
    int v;
    while (weft_recv(pass, &v) == 0)
        note((char)('0' + v));
    weft_wg_done(&done);
}

static void root(void *arg) {
    (void)arg;
    left = weft_chan_make(0, WORKERS * STEPS);
    right = weft_chan_make(0, WORKERS * STEPS);
    for (int i = 0; i < WORKERS * STEPS; i++) {
        weft_send(left, NULL);
        weft_send(right, NULL);
    }
    pass = weft_chan_make(sizeof(int), 0);
    weft_wg_add(&done, WORKERS + 1);
    weft_go(relay, NULL);
    for (int i = 0; i < WORKERS; i++)
        weft_go(worker, (void *)(intptr_t)i);
    for (int v = 0; v < 3; v++)
        weft_send(pass, &v);
    weft_close(pass);
}

static void wg_done_root(void *arg) {
    root(arg);
    weft_wg_done(&done);
}

static int run(void) {
    weft_wg_add(&done, 1);
    weft_go(wg_done_root, NULL);
    weft_wg_wait(&done);
    printf("log=%s\n", log_buf);
    return 0;
}

static void log_of(unsigned seed, char *out, size_t n) {
    static child c;
    char env[32];
    snprintf(env, sizeof env, "WEFT_SEED=%u", seed);
    const char *const vars[] = {env, NULL};
    child_run(run, vars, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    const char *l = strstr(c.out, "log=");
    CHILD_CHECK(&c, l);
    snprintf(out, n, "%s", l + 4);
}

int main(void) {
    TEST_BEGIN(120);
    static char logs[20][sizeof log_buf + 8];
    int distinct = 0;
    for (unsigned s = 1; s <= 20; s++) {
        log_of(s, logs[s - 1], sizeof logs[0]);
        bool seen = false;
        for (unsigned t = 1; t < s; t++)
            seen |= strcmp(logs[t - 1], logs[s - 1]) == 0;
        distinct += !seen;
    }
    for (unsigned s = 1; s <= 5; s++) {
        char again[sizeof logs[0]];
        log_of(s, again, sizeof again);
        if (strcmp(again, logs[s - 1]) != 0) {
            fprintf(stderr, "seed %u:\n  %s  %s", s, logs[s - 1], again);
            CHECK(!"same seed, different interleaving");
        }
    }
    printf("%d distinct interleavings over 20 seeds\n", distinct);
    CHECK(distinct >= 2);
    TEST_OK();
    return 0;
}
