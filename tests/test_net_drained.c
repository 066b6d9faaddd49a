/* SPDX-License-Identifier: MIT */
/*
 * The drained hint (src/netpoll.c): after a short read of a stream socket
 * the next weft_read parks without trying read(2) first.  These are the
 * cases where a short read does not mean "nothing more to read until the
 * next event", each of which would hang on a hint taken too far:
 *   - the peer's end of stream came together with the last data, so the
 *     event that reported both is spent when the short read returns;
 *   - a datagram or record socket, where one read returns one message and
 *     more may be queued already;
 *   - the number closed and reused for a record socket after a short read
 *     of the old stream socket left the hint behind.
 * And the case the hint is for: data written after a short read still
 * wakes the reader.
 */
#include "check.h"

#include <sys/socket.h>

#define WAIT WEFT_SEC(5) /* a read that should succeed fails after this */

struct reader {
    int fd;
    char buf[64];
    ssize_t got[4];
    int reads;
};

/* Reads r->reads times into buf (each with a bound); records each result. */
static void reader_main(void *arg) {
    struct reader *r = arg;
    for (int i = 0; i < r->reads; i++)
        r->got[i] = weft_read_timeout(r->fd, r->buf, sizeof r->buf, WAIT);
}

struct run {
    struct reader *r;
    weft_wg wg;
};

static void run_main(void *arg) {
    struct run *x = arg;
    reader_main(x->r);
    weft_wg_done(&x->wg);
}

/* Start a reader goroutine on fd that reads n times. */
static void start(struct run *x, struct reader *r, int fd, int n) {
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->reads = n;
    x->r = r;
    x->wg = (weft_wg){0};
    weft_wg_add(&x->wg, 1);
    CHECK_EQ(weft_go(run_main, x), 0);
}

/* Data and end of stream in one go, while the reader is parked: the first
 * read returns the data (short), the second must see the end (0). */
static void test_eof_with_data(void) {
    for (int round = 0; round < 20; round++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct reader r;
        struct run x;
        start(&x, &r, sv[0], 2);
        weft_sleep(WEFT_MS(2)); /* usually lets the reader park first */
        CHECK_EQ(write(sv[1], "abc", 3), 3);
        close(sv[1]);
        weft_wg_wait(&x.wg);
        CHECK_EQ(r.got[0], 3);
        CHECK_EQ(r.got[1], 0);
        close(sv[0]);
    }
}

/* Two messages queued on a record socket before the reader wakes: each
 * read returns one (short), and the second must not wait for an event. */
static void test_records(int type) {
    for (int round = 0; round < 20; round++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, type, 0, sv), 0);
        struct reader r;
        struct run x;
        start(&x, &r, sv[0], 2);
        weft_sleep(WEFT_MS(2));
        CHECK_EQ(send(sv[1], "a", 1, 0), 1);
        CHECK_EQ(send(sv[1], "b", 1, 0), 1);
        weft_wg_wait(&x.wg);
        CHECK_EQ(r.got[0], 1);
        CHECK_EQ(r.got[1], 1);
        close(sv[0]);
        close(sv[1]);
    }
}

/* A short read of a stream socket leaves the hint; its number is then
 * reused for a record socket with two messages queued before any wait. */
static void test_reuse_as_records(void) {
    int reused = 0;
    for (int round = 0; round < 20; round++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct reader r;
        struct run x;
        start(&x, &r, sv[0], 1);
        weft_sleep(WEFT_MS(2));
        CHECK_EQ(write(sv[1], "x", 1), 1);
        weft_wg_wait(&x.wg);
        CHECK_EQ(r.got[0], 1);
        int old = sv[0];
        close(sv[0]);
        close(sv[1]);
        CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        reused += sv[0] == old;
        CHECK_EQ(send(sv[1], "a", 1, 0), 1);
        CHECK_EQ(send(sv[1], "b", 1, 0), 1);
        start(&x, &r, sv[0], 2);
        weft_wg_wait(&x.wg);
        CHECK_EQ(r.got[0], 1);
        CHECK_EQ(r.got[1], 1);
        close(sv[0]);
        close(sv[1]);
    }
    CHECK(reused > 0);
}

/* What the hint is for: after short reads, data written later still
 * wakes the reader parked on the hint. */
struct stream_reader {
    int fd;
    size_t total;
    ssize_t err;
    weft_wg wg;
};

static void stream_main(void *arg) {
    struct stream_reader *s = arg;
    char buf[64];
    while (s->total < 8) {
        ssize_t n = weft_read_timeout(s->fd, buf, sizeof buf, WAIT);
        if (n <= 0) {
            s->err = n;
            break;
        }
        s->total += (size_t)n;
    }
    weft_wg_done(&s->wg);
}

static void test_later_data(void) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct stream_reader s = {.fd = sv[0]};
    weft_wg_add(&s.wg, 1);
    CHECK_EQ(weft_go(stream_main, &s), 0);
    for (int i = 0; i < 4; i++) {
        weft_sleep(WEFT_MS(2));
        CHECK_EQ(write(sv[1], "yz", 2), 2);
    }
    weft_wg_wait(&s.wg);
    CHECK_EQ(s.err, 0);
    CHECK_EQ(s.total, 8);
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    TEST_BEGIN(120);
    test_eof_with_data();
    test_records(SOCK_SEQPACKET);
    test_records(SOCK_DGRAM);
    test_reuse_as_records();
    test_later_data();
    TEST_OK();
    return 0;
}
