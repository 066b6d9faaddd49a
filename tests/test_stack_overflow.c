/* SPDX-License-Identifier: MIT */
/*
 * A goroutine that overflows its stack is reported by name and id, from
 * the guard-page SIGSEGV handler on the worker's alternate signal stack,
 * and the process aborts: "weft: fatal: goroutine N stack overflow in
 * <name>", then SIGABRT - not a bare SIGSEGV.
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

int main(void) {
    TEST_BEGIN(30);
    static child c;
    child_run(overflow, NULL, &c);
    CHILD_CHECK(&c, child_signal(&c) == SIGABRT);
    CHILD_CHECK(&c, strstr(c.out, "weft: fatal: goroutine 1 stack overflow in "
                                  "deep-diver\n"));
    TEST_OK();
    return 0;
}
