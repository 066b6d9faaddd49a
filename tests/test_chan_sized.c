/* SPDX-License-Identifier: MIT */
/*
 * The size-checked channel forms: a mismatch returns -EMSGSIZE and leaves
 * the channel and the caller's memory as they were; a match behaves as the
 * raw call.
 */
#include "check.h"

#include <stdint.h>

/* Sending a char on a long long channel used to deliver the char's byte
 * plus whatever followed it on the stack. */
static void test_send_mismatch(void) {
    weft_chan *c = weft_chan_make(sizeof(long long), 2);
    CHECK(c);
    char ch = 7;
    CHECK_EQ(WEFT_SEND(c, ch), -EMSGSIZE);
    CHECK_EQ(WEFT_TRY_SEND(c, ch), -EMSGSIZE);
    CHECK_EQ(WEFT_SEND_TIMEOUT(c, ch, 1000), -EMSGSIZE);
    CHECK_EQ(weft_send_sized(c, &ch, 1), -EMSGSIZE);
    /* an int literal is not a long long */
    CHECK_EQ(WEFT_SEND(c, 42), -EMSGSIZE);
    CHECK_EQ(weft_chan_len(c), 0);

    CHECK_EQ(WEFT_SEND(c, 42LL), 0);
    long long v = -1;
    CHECK_EQ(WEFT_RECV(c, &v), 0);
    CHECK_EQ(v, 42);
    weft_chan_free(c);
}

/* Receiving an int into a char buffer used to overwrite the bytes after
 * it. */
static void test_recv_mismatch(void) {
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    CHECK(c);
    int x = 0x11223344;
    CHECK_EQ(WEFT_SEND(c, x), 0);
    unsigned char buf[8];
    memset(buf, 0xa5, sizeof buf);
    CHECK_EQ(WEFT_RECV(c, &buf[0]), -EMSGSIZE);
    CHECK_EQ(WEFT_TRY_RECV(c, &buf[0]), -EMSGSIZE);
    CHECK_EQ(WEFT_RECV_TIMEOUT(c, &buf[0], 1000), -EMSGSIZE);
    for (size_t i = 0; i < sizeof buf; i++)
        CHECK_EQ(buf[i], 0xa5);
    CHECK_EQ(weft_chan_len(c), 1); /* still there for a right-sized receive */

    int y = 0;
    CHECK_EQ(WEFT_TRY_RECV(c, &y), 0);
    CHECK_EQ(y, x);
    CHECK_EQ(WEFT_TRY_RECV(c, &y), -EAGAIN);
    CHECK_EQ(WEFT_RECV_TIMEOUT(c, &y, 1000000), -ETIMEDOUT);
    weft_chan_free(c);
}

/* The right size passes through to the raw call, errors included. */
static void test_match_passes_through(void) {
    weft_chan *c = weft_chan_make(sizeof(double), 0);
    CHECK(c);
    double d = 1.5;
    CHECK_EQ(WEFT_TRY_SEND(c, d), -EAGAIN); /* unbuffered, no receiver */
    CHECK_EQ(WEFT_SEND_TIMEOUT(c, d, 1000000), -ETIMEDOUT);
    CHECK_EQ(weft_close(c), 0);
    CHECK_EQ(WEFT_SEND(c, d), -EPIPE);
    CHECK_EQ(WEFT_RECV(c, &d), -EPIPE);
    /* a mismatch is reported before the closed state */
    float f;
    CHECK_EQ(WEFT_RECV(c, &f), -EMSGSIZE);
    weft_chan_free(c);

    CHECK_EQ(weft_send_sized(NULL, &d, sizeof d), -EINVAL);
    CHECK_EQ(weft_recv_sized(NULL, &d, sizeof d), -EINVAL);

    weft_chan *sig = weft_chan_make(0, 1); /* signal-only: size 0 */
    CHECK(sig);
    CHECK_EQ(weft_send_sized(sig, NULL, 0), 0);
    CHECK_EQ(weft_recv_sized(sig, &d, 1), -EMSGSIZE);
    CHECK_EQ(weft_recv_sized(sig, NULL, 0), 0);
    weft_chan_free(sig);
}

typedef struct point {
    int x, y;
} point;

static void producer(void *arg) {
    weft_chan *c = arg;
    for (int i = 0; i < 100; i++)
        CHECK_EQ(WEFT_SEND(c, ((point){i, -i})), 0);
    weft_close(c);
}

/* Structs through an unbuffered channel between goroutines. */
static void test_struct_between_goroutines(void) {
    weft_chan *c = weft_chan_make(sizeof(point), 0);
    CHECK(c);
    CHECK_EQ(weft_go(producer, c), 0);
    point p;
    int n = 0;
    while (WEFT_RECV(c, &p) == 0) {
        CHECK_EQ(p.x, n);
        CHECK_EQ(p.y, -n);
        n++;
    }
    CHECK_EQ(n, 100);
    weft_chan_free(c);
}

/* The names fit every call that returns them: -EPIPE also comes from a
 * socket write, -EMSGSIZE from a size mismatch. */
static void test_strerror(void) {
    CHECK(strstr(weft_strerror(-EPIPE), "broken pipe"));
    CHECK(strstr(weft_strerror(-EPIPE), "closed channel"));
    CHECK(strstr(weft_strerror(-EMSGSIZE), "size mismatch"));
}

int main(void) {
    TEST_BEGIN(60);
    test_strerror();
    test_send_mismatch();
    test_recv_mismatch();
    test_match_passes_through();
    test_struct_between_goroutines();
    TEST_OK();
    return 0;
}
