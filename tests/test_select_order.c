/* SPDX-License-Identifier: MIT */
/*
 * weft_select's lock order: cases whose channels come in ascending address
 * order (taken as they are) and in any other order, with NULL channels and
 * a channel named twice (sorted into a copy), small and above the stack
 * arrays' size.  For each layout and each case, a partner makes exactly
 * that case ready while the select waits: the select must report that
 * case (or another on the same channel), move the value, touch no other
 * case, and leave no node behind on any queue; a timed-out select must
 * leave none either.  Then the draw among ready cases: uniform over the
 * ready ones wherever they sit among the others.
 */
#include "check.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define SENTINEL 0x5a5a5a5au
#define UNTOUCHED 12345
#define NCH 6
#define MAXC 12

static weft_chan *ch[NCH];   /* ascending addresses */
static atomic_uint received; /* by a receiving partner */

static int by_addr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (weft_chan *const *)a;
    uintptr_t y = (uintptr_t) * (weft_chan *const *)b;
    return (x > y) - (x < y);
}

/* A layout: per case the channel's index in ch (-1: NULL) and whether the
 * case sends. */
struct layout {
    int n;
    int chan[MAXC];
    bool send[MAXC];
};

static const struct layout layouts[] = {
    {4, {0, 1, 2, 3}, {0}},
    {4, {3, 2, 1, 0}, {0}},
    {5, {2, -1, 0, -1, 4}, {0, 0, 1, 0, 0}},
    {5, {1, 3, 1, 0, 5}, {0, 1, 0, 0, 1}},
    {3, {2, 2, 4}, {1, 0, 0}}, /* one channel both ways */
    {12,
     {5, 4, -1, 3, 2, 1, 0, 5, -1, 0, 3, 1},
     {0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0}},
    {10, {0, 1, 2, 3, 4, 5, 0, 1, 2, 3}, {0}},
};

struct partner {
    weft_chan *c;
    bool send; /* the partner's side: the case's opposite */
    unsigned v;
};

/* Copies *arg first: the select may return as soon as it is served. */
static void partner(void *arg) {
    struct partner p = *(struct partner *)arg;
    weft_sleep(WEFT_MS(1));
    if (p.send) {
        CHECK_EQ(weft_send(p.c, &p.v), 0);
    } else {
        unsigned got = SENTINEL;
        CHECK_EQ(weft_recv(p.c, &got), 0);
        atomic_store(&received, got);
    }
}

/* No select node may be left on a queue: a stale receiver would take this
 * send (or a stale sender feed this receive) into a dead frame. */
static void check_no_waiters(void) {
    for (int i = 0; i < NCH; i++) {
        unsigned x = 1;
        CHECK_EQ(weft_try_send(ch[i], &x), -EAGAIN);
        CHECK_EQ(weft_try_recv(ch[i], &x), -EAGAIN);
    }
}

static void build(const struct layout *l, weft_case *cs, unsigned *slot) {
    for (int i = 0; i < l->n; i++) {
        slot[i] = l->send[i] ? 1000u + (unsigned)i : SENTINEL;
        cs[i] = (weft_case){.chan = l->chan[i] < 0 ? NULL : ch[l->chan[i]],
                            .op = l->send[i] ? WEFT_SEND : WEFT_RECV,
                            .elem = &slot[i],
                            .err = UNTOUCHED};
    }
}

static void test_layout(const struct layout *l) {
    weft_case cs[MAXC];
    unsigned slot[MAXC];
    for (int t = 0; t < l->n; t++) {
        if (l->chan[t] < 0)
            continue;
        build(l, cs, slot);
        struct partner p = {ch[l->chan[t]], !l->send[t], 7u + (unsigned)t};
        atomic_store(&received, SENTINEL);
        CHECK_EQ(weft_go(partner, &p), 0);
        int k = weft_select(cs, (size_t)l->n, WEFT_FOREVER);
        CHECK(k >= 0 && k < l->n);
        /* the partner's channel and direction, maybe another case's */
        CHECK_EQ(l->chan[k], l->chan[t]);
        CHECK_EQ(l->send[k], l->send[t]);
        CHECK_EQ(cs[k].err, 0);
        if (!l->send[k])
            CHECK_EQ(slot[k], p.v);
        for (int i = 0; i < l->n; i++) {
            if (i == k)
                continue;
            CHECK_EQ(cs[i].err, UNTOUCHED);
            if (!l->send[i])
                CHECK_EQ(slot[i], SENTINEL);
        }
        if (l->send[k]) {
            while (atomic_load(&received) == SENTINEL)
                weft_yield();
            CHECK_EQ(atomic_load(&received), 1000u + (unsigned)k);
        }
        weft_sleep(WEFT_MS(1)); /* the partner has returned */
        check_no_waiters();
    }
    build(l, cs, slot);
    CHECK_EQ(weft_select(cs, (size_t)l->n, WEFT_MS(2)), -ETIMEDOUT);
    CHECK_EQ(weft_select(cs, (size_t)l->n, 0), -ETIMEDOUT);
    for (int i = 0; i < l->n; i++)
        CHECK_EQ(cs[i].err, UNTOUCHED);
    check_no_waiters();
}

/* Ready cases spread among never-ready ones (NULL, an empty channel):
 * each ready one fires about as often as the others. */
static void test_uniform(void) {
    enum { ROUNDS = 12000 };
    weft_chan *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = weft_chan_make(0, 1);
        CHECK(b[i]);
        CHECK_EQ(weft_send(b[i], NULL), 0);
    }
    weft_case cs[6] = {
        {.chan = b[2], .op = WEFT_RECV},  {.chan = NULL, .op = WEFT_RECV},
        {.chan = ch[0], .op = WEFT_RECV}, {.chan = b[0], .op = WEFT_RECV},
        {.chan = ch[1], .op = WEFT_RECV}, {.chan = b[1], .op = WEFT_RECV},
    };
    int hits[6] = {0};
    for (int i = 0; i < ROUNDS; i++) {
        int k = weft_select(cs, 6, WEFT_FOREVER);
        CHECK(k == 0 || k == 3 || k == 5);
        hits[k]++;
        CHECK_EQ(weft_send(cs[k].chan, NULL), 0);
    }
    static const int ready[3] = {0, 3, 5};
    for (int i = 0; i < 3; i++)
        CHECK(hits[ready[i]] > ROUNDS / 3 - ROUNDS / 20 &&
              hits[ready[i]] < ROUNDS / 3 + ROUNDS / 20);
    for (int i = 0; i < 3; i++)
        weft_chan_free(b[i]);
}

static void suite(void *arg) {
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        test_layout(&layouts[i]);
    test_uniform();
    weft_wg_done(arg);
}

int main(void) {
    TEST_BEGIN(120);
    for (int i = 0; i < NCH; i++) {
        ch[i] = weft_chan_make(sizeof(unsigned), 0);
        CHECK(ch[i]);
    }
    qsort(ch, NCH, sizeof ch[0], by_addr);
    weft_wg wg = {0};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(suite, &wg), 0);
    weft_wg_wait(&wg);
    for (int i = 0; i < NCH; i++)
        weft_chan_free(ch[i]);
    TEST_OK();
    return 0;
}
