/* SPDX-License-Identifier: MIT */
/*
 * A goroutine that overflows its stack is reported by name and id, from
 * the guard-page SIGSEGV handler on the worker's alternate signal stack,
 * and the process aborts: "weft: fatal: goroutine N stack overflow in
 * <name>", then SIGABRT - not a bare SIGSEGV.
 *
 * A frame far larger than the guard (issue 13, item 10), writing only its
 * lowest bytes, must hit the guard too: built with -fstack-clash-protection,
 * as weft builds everything and tells users to, it touches each page on the
 * way down instead of jumping into the neighbouring stack (a bare SIGSEGV
 * before).  Neighbours live on both sides, so a jump would land in a live
 * stack.
 *
 * Registered with the label nosan: the sanitizers install their own SIGSEGV
 * handler and report the overflow themselves.
 */
#include "child.h"

static volatile int stop_at = -1; /* never reached: the recursion is endless */

static int dive(int depth) {
    volatile char frame[512];
    frame[0] = (char)depth;
    if (depth == stop_at)
        return frame[0];
    return dive(depth + 1) + frame[0];
}

static void diver(void *arg) {
    (void)arg;
    dive(0);
}

static int overflow(void) {
    weft_goopts o = {.name = "deep-diver"};
    weft_go_with(diver, NULL, &o);
    weft_sleep(WEFT_SEC(10));
    return 0;
}

enum { FRAME = 270600 };
static volatile int sink;

static void big_frame(void *arg) {
    (void)arg;
    volatile char a[FRAME];
    a[0] = 1; /* only the lowest bytes */
    a[1] = 2;
    sink = a[0] + a[1];
}

static void neighbour(void *arg) {
    (void)arg;
    weft_sleep(WEFT_SEC(10));
}

static int big(void) {
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_go(neighbour, NULL), 0);
    weft_sleep(WEFT_MS(20));
    weft_goopts o = {.name = "big-frame"};
    CHECK_EQ(weft_go_with(big_frame, NULL, &o), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_go(neighbour, NULL), 0);
    weft_sleep(WEFT_SEC(10));
    return 0;
}

static void expect_overflow(int (*fn)(void), const char *msg) {
    static child c;
    child_run(fn, NULL, &c);
    CHILD_CHECK(&c, child_signal(&c) == SIGABRT);
    CHILD_CHECK(&c, strstr(c.out, msg));
}

int main(void) {
    TEST_BEGIN(30);
    expect_overflow(overflow,
                    "weft: fatal: goroutine 1 stack overflow in deep-diver\n");
    expect_overflow(big,
                    "weft: fatal: goroutine 5 stack overflow in big-frame\n");
    TEST_OK();
    return 0;
}
