/* SPDX-License-Identifier: MIT */
/*
 * With a single worker (procs = 1), goroutines blocked on descriptors -
 * blocking ones included: a socket, a pipe, a listening socket - must not
 * hold that worker: other goroutines keep running, and the blocked ones
 * wake when their descriptors become ready.
 */
#include "check.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

static atomic_int blocked_done;

struct blocked {
    int fd;
    int kind; /* 0 read, 1 accept */
    weft_wg *wg;
};

static void blocked_main(void *arg) {
    struct blocked *b = arg;
    if (b->kind == 0) {
        char c;
        CHECK_EQ(weft_read(b->fd, &c, 1), 1);
        CHECK_EQ(c, 'w');
    } else {
        int c = weft_accept(b->fd, NULL, NULL);
        CHECK(c >= 0);
        close(c);
    }
    atomic_fetch_add(&blocked_done, 1);
    weft_wg_done(b->wg);
}

static void busy_main(void *arg) {
    volatile uint64_t x = 0;
    for (int i = 0; i < 1000; i++) {
        for (int j = 0; j < 1000; j++)
            x += (uint64_t)j;
        weft_yield();
    }
    weft_sleep(WEFT_MS(5));
    weft_wg_done(arg);
}

int main(void) {
    TEST_BEGIN(60);
    weft_config cfg = {.procs = 1};
    CHECK_EQ(weft_init(&cfg), 0);
    CHECK_EQ(weft_procs(), 1);

    int sv[2], p[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); /* blocking */
    CHECK_EQ(pipe(p), 0);                                 /* blocking */
    int l = socket(AF_INET, SOCK_STREAM, 0);              /* blocking */
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(l, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    CHECK_EQ(getsockname(l, (struct sockaddr *)&addr, &len), 0);
    CHECK_EQ(listen(l, 16), 0);

    weft_wg blocked_wg = {0}, busy_wg = {0};
    struct blocked bs[3] = {
        {sv[0], 0, &blocked_wg}, {p[0], 0, &blocked_wg}, {l, 1, &blocked_wg}};
    weft_wg_add(&blocked_wg, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_go(blocked_main, &bs[i]), 0);
    weft_wg_add(&busy_wg, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_go(busy_main, &busy_wg), 0);
    weft_wg_wait(&busy_wg); /* finished although three goroutines block */
    CHECK_EQ(atomic_load(&blocked_done), 0);

    CHECK_EQ(write(sv[1], "w", 1), 1);
    CHECK_EQ(write(p[1], "w", 1), 1);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(weft_connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
    weft_wg_wait(&blocked_wg);
    CHECK_EQ(atomic_load(&blocked_done), 3);
    close(c);
    close(l);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    TEST_OK();
    return 0;
}
