/* SPDX-License-Identifier: MIT */
/*
 * A frame far larger than the guard below a goroutine's stack, writing
 * only its lowest bytes, must still hit the guard (issue 13, item 10):
 * built with -fstack-clash-protection, as weft builds everything it
 * compiles and tells users to, the frame touches each page on the way
 * down.  Without that it jumped a one-page guard into the neighbouring
 * stack and died with a bare SIGSEGV.  Neighbours are kept alive on both
 * sides so that a jump would land in a live stack.  Label nosan, like
 * test_stack_overflow: the sanitizers handle SIGSEGV themselves.
 */
#include "child.h"

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

static int overflow(void) {
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

int main(void) {
    TEST_BEGIN(30);
    static child c;
    child_run(overflow, NULL, &c);
    CHILD_CHECK(&c, child_signal(&c) == SIGABRT);
    CHILD_CHECK(&c, strstr(c.out, "weft: fatal: goroutine 5 stack overflow in "
                                  "big-frame\n"));
    TEST_OK();
    return 0;
}
