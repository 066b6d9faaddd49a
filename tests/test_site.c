/* SPDX-License-Identifier: MIT */
/*
 * Call sites of the channel operations and weft_select in weft_dump: the
 * macros hand __FILE__ and __LINE__ to the weft__*_at forms, and only a
 * call that waits keeps them.  Every form shows its own line while it
 * waits (untimed, timed, select with few cases and with more than fit on
 * the stack), and a call that did not wait leaves nothing behind for a
 * later wait through the function itself, which shows "?".
 */
#include "check.h"

#include <stdatomic.h>

#define NBIG 9 /* more cases than select.c keeps on the stack */

/* Only senders wait on gate_s, only receivers on gate_r, until closed. */
static weft_chan *gate_s, *gate_r;
static weft_chan *roomy;     /* buffered: a send there does not wait */
static weft_chan *big[NBIG]; /* the cases of the large select */
static weft_wg ready;        /* counts goroutines about to block */
static weft_wg done;         /* counts goroutines past their wait */

enum { SEND_LINE = __LINE__ + 4 };
static void sender(void *arg) {
    (void)arg;
    weft_wg_done(&ready);
    weft_send(gate_s, NULL);
    weft_wg_done(&done);
}

enum { RECV_TIMEOUT_LINE = __LINE__ + 4 };
static void recv_timed(void *arg) {
    (void)arg;
    weft_wg_done(&ready);
    weft_recv_timeout(gate_r, NULL, WEFT_SEC(60));
    weft_wg_done(&done);
}

enum { SEND_TIMEOUT_LINE = __LINE__ + 4 };
static void send_timed(void *arg) {
    (void)arg;
    weft_wg_done(&ready);
    weft_send_timeout(gate_s, NULL, WEFT_SEC(60));
    weft_wg_done(&done);
}

enum { SELECT_LINE = __LINE__ + 6 };
static void selecter(void *arg) {
    (void)arg;
    weft_case cs[2] = {{.chan = gate_r, .op = WEFT_RECV},
                       {.chan = gate_s, .op = WEFT_SEND}};
    weft_wg_done(&ready);
    weft_select(cs, 2, WEFT_FOREVER);
    weft_wg_done(&done);
}

enum { SELECT_BIG_LINE = __LINE__ + 7 };
static void selecter_big(void *arg) {
    (void)arg;
    weft_case cs[NBIG];
    for (int i = 0; i < NBIG; i++)
        cs[i] = (weft_case){.chan = big[i], .op = WEFT_RECV};
    weft_wg_done(&ready);
    weft_select(cs, NBIG, WEFT_FOREVER);
    weft_wg_done(&done);
}

/* The send completes at once; the receive waits through the function, not
 * the macro, so it has no site of its own. */
static void stale(void *arg) {
    (void)arg;
    int v = 1;
    CHECK(weft_send(roomy, &v) == 0);
    weft_wg_done(&ready);
    (weft_recv)(gate_r, NULL);
    weft_wg_done(&done);
}

static void spawn_named(weft_fn fn, const char *name) {
    weft_goopts o = {.name = name};
    CHECK(weft_go_with(fn, NULL, &o) == 0);
}

/* The dump's line for the goroutine name waits on what (a timed wait adds
 * the time left) at line of this file, or at "?" for line 0. */
static void expect(const char *dump, const char *name, const char *what,
                   int line) {
    char head[128], site[128];
    snprintf(head, sizeof head, "[waiting] %s: %s", name, what);
    if (line)
        snprintf(site, sizeof site, " (%s:%d)", __FILE__, line);
    else
        snprintf(site, sizeof site, " (?)");
    const char *at = strstr(dump, head);
    const char *end = at ? strchr(at, '\n') : NULL;
    size_t n = strlen(site);
    if (!end || (size_t)(end - at) < n || memcmp(end - n, site, n) != 0) {
        fprintf(stderr, "missing: %s ...%s\n", head, site);
        exit(1);
    }
}

int main(void) {
    TEST_BEGIN(60);
    gate_s = weft_chan_make(0, 0);
    gate_r = weft_chan_make(0, 0);
    roomy = weft_chan_make(sizeof(int), 1);
    CHECK(gate_s && gate_r && roomy);
    for (int i = 0; i < NBIG; i++)
        CHECK((big[i] = weft_chan_make(0, 0)));
    weft_wg_add(&ready, 6);
    weft_wg_add(&done, 6);
    spawn_named(sender, "sender");
    spawn_named(recv_timed, "recv-timed");
    spawn_named(send_timed, "send-timed");
    spawn_named(selecter, "selecter");
    spawn_named(selecter_big, "selecter-big");
    spawn_named(stale, "stale");
    weft_wg_wait(&ready);

    char *d;
    for (;;) { /* from wg_done to parked */
        d = test_dump();
        if (test_count(d, "[waiting] ") >= 6)
            break;
        weft_sleep(WEFT_MS(5));
    }
    printf("%s", d);
    char what[64];
    snprintf(what, sizeof what, "chan send %p", (void *)gate_s);
    expect(d, "sender", what, SEND_LINE);
    expect(d, "send-timed", what, SEND_TIMEOUT_LINE);
    snprintf(what, sizeof what, "chan receive %p", (void *)gate_r);
    expect(d, "recv-timed", what, RECV_TIMEOUT_LINE);
    expect(d, "stale", what, 0);
    expect(d, "selecter", "select", SELECT_LINE);
    expect(d, "selecter-big", "select", SELECT_BIG_LINE);

    weft_close(gate_s);
    weft_close(gate_r);
    for (int i = 0; i < NBIG; i++)
        weft_close(big[i]);
    weft_wg_wait(&done); /* nobody touches a channel any more */
    for (int i = 0; i < NBIG; i++)
        weft_chan_free(big[i]);
    weft_chan_free(gate_s);
    weft_chan_free(gate_r);
    weft_chan_free(roomy);
    TEST_OK();
    return 0;
}
