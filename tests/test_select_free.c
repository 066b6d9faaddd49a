/* SPDX-License-Identifier: MIT */
/*
 * The lifetime rule for a sender in weft_select: once its partner's
 * receive has returned, the partner may free the channel, and the select
 * must not touch it again (issue 13, item 1).  One goroutine receives a
 * fresh unbuffered channel from a mailbox and selects a send on it (plus a
 * case without a channel); the other makes the channel, mails it, yields
 * so that the select parks first, receives, scribbles on the channel's
 * first word (its lock, as reused memory would) and frees it.  Under ASan
 * a relock is a heap-use-after-free; elsewhere it spins on the scribbled
 * lock until the alarm.  The same for a select naming the channel in two
 * cases (send and receive), whose second node the receiver must unlink.
 * Runs with one and two workers, each in a child process.
 */
#include "child.h"

#include <stdbool.h>

enum { ROUNDS = 2000 };

static weft_chan *mailbox;
static weft_wg wg;

static void selector(void *arg) {
    bool twice = arg != NULL;
    for (int i = 0; i < ROUNDS; i++) {
        weft_chan *c;
        CHECK_EQ(weft_recv(mailbox, &c), 0);
        int v = i, got = -1;
        weft_case cs[3] = {
            {.chan = NULL, .op = WEFT_RECV},
            {.chan = c, .op = WEFT_SEND, .elem = &v},
            {.chan = c, .op = WEFT_RECV, .elem = &got},
        };
        CHECK_EQ(weft_select(cs, twice ? 3 : 2, WEFT_FOREVER), 1);
        CHECK_EQ(cs[1].err, 0);
    }
    weft_wg_done(&wg);
}

static void freer(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        weft_chan *c = weft_chan_make(sizeof(int), 0);
        CHECK(c);
        CHECK_EQ(weft_send(mailbox, &c), 0);
        for (int y = 0; y < 3; y++)
            weft_yield();
        int v = -1;
        CHECK_EQ(weft_recv(c, &v), 0);
        CHECK_EQ(v, i);
        memset(c, 0xa5, sizeof(unsigned)); /* as if reused at once */
        weft_chan_free(c);
    }
    weft_wg_done(&wg);
}

static int run(bool twice) {
    alarm(60 * (unsigned)test_scale()); /* not inherited from the parent */
    mailbox = weft_chan_make(sizeof(weft_chan *), 0);
    CHECK(mailbox);
    weft_wg_add(&wg, 2);
    CHECK_EQ(weft_go(selector, twice ? &wg : NULL), 0);
    CHECK_EQ(weft_go(freer, NULL), 0);
    weft_wg_wait(&wg);
    weft_chan_free(mailbox);
    return 0;
}

static int one_case(void) {
    return run(false);
}
static int two_cases(void) {
    return run(true);
}

int main(void) {
    TEST_BEGIN(120);
    static const char *const envs[][2] = {{"WEFT_PROCS=1", NULL},
                                          {"WEFT_PROCS=2", NULL}};
    static child c;
    for (int e = 0; e < 2; e++) {
        child_run(one_case, envs[e], &c);
        CHILD_CHECK(&c, child_exit_code(&c) == 0);
        child_run(two_cases, envs[e], &c);
        CHILD_CHECK(&c, child_exit_code(&c) == 0);
    }
    TEST_OK();
    return 0;
}
