/* SPDX-License-Identifier: MIT */
/* Shared by test_dial and test_dial6: a one-shot echo server goroutine and
 * the client's round trip through it. */
#ifndef WEFT_TEST_DIAL_H
#define WEFT_TEST_DIAL_H

#include "check.h"

/* Accept one connection on listener arg, echo one byte back, close. */
static void echo_once(void *arg) {
    int l = (int)(intptr_t)arg;
    int c = weft_accept(l, NULL, NULL);
    CHECK(c >= 0);
    char b;
    CHECK_EQ(weft_read(c, &b, 1), 1);
    CHECK_EQ(weft_write(c, &b, 1), 1);
    close(c);
}

/* One byte to echo_once and back on connected fd. */
static void roundtrip(int fd, char what) {
    char b = what;
    CHECK_EQ(weft_write(fd, &b, 1), 1);
    b = 0;
    CHECK_EQ(weft_read(fd, &b, 1), 1);
    CHECK_EQ(b, what);
}

#endif
