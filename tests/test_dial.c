/* SPDX-License-Identifier: MIT */
/*
 * weft_dial / weft_dial_ctx / weft_listen and the address read-back, over
 * loopback only: by name and by literal address, refused, timed out
 * (a listener that never accepts, its backlog full), a name that does not
 * resolve, bad syntax, a context cancelled mid-dial (goroutine and plain
 * thread), TCP, UDP and unix sockets.  IPv6 is in test_dial6.
 */
#include "dial.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>

static int port_of(int fd) {
    int p = weft_local_port(fd);
    CHECK(p > 0 && p <= 65535);
    return p;
}

static void check_flags(int fd) {
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void test_listen_any_dial_by_name(void) {
    int l = weft_listen("tcp", ":0");
    CHECK(l >= 0);
    check_flags(l);
    int port = port_of(l);
    char addr[64], want[64];
    CHECK(weft_local_addr(l, addr, sizeof addr) > 0);
    snprintf(want, sizeof want, "[::]:%d", port);
    char want4[64];
    snprintf(want4, sizeof want4, "0.0.0.0:%d", port);
    CHECK(strcmp(addr, want) == 0 || strcmp(addr, want4) == 0);

    /* by name, by literal v4, and with no host (the local system) */
    const char *hosts[] = {"localhost", "127.0.0.1", ""};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(weft_go(echo_once, (void *)(intptr_t)l), 0);
        snprintf(addr, sizeof addr, "%s:%d", hosts[i], port);
        int fd = weft_dial("tcp", addr, WEFT_SEC(20));
        CHECK(fd >= 0);
        check_flags(fd);
        roundtrip(fd, 'q');
        close(fd);
    }

    /* "tcp4" with a literal host, read back exactly */
    int l4 = weft_listen("tcp4", "127.0.0.1:0");
    CHECK(l4 >= 0);
    snprintf(want, sizeof want, "127.0.0.1:%d", port_of(l4));
    CHECK_EQ(weft_local_addr(l4, addr, sizeof addr), strlen(want));
    CHECK(strcmp(addr, want) == 0);
    CHECK_EQ(weft_go(echo_once, (void *)(intptr_t)l4), 0);
    int fd = weft_dial("tcp4", want, WEFT_FOREVER);
    CHECK(fd >= 0);
    CHECK(weft_remote_addr(fd, addr, sizeof addr) > 0);
    CHECK(strcmp(addr, want) == 0);
    /* a buffer one byte short */
    CHECK_EQ(weft_local_addr(l4, addr, strlen(want)), -ENOSPC);
    CHECK_EQ(addr[0], '\0');
    CHECK_EQ(weft_local_addr(l4, NULL, 0), -EINVAL);
    roundtrip(fd, 'q');
    close(fd);
    /* the port is taken now */
    CHECK_EQ(weft_listen("tcp4", want), -EADDRINUSE);
    close(l4);
    close(l);
}

/* A free port nobody listens on. */
static int dead_port(void) {
    int l = weft_listen("tcp4", "127.0.0.1:0");
    CHECK(l >= 0);
    int p = port_of(l);
    close(l);
    return p;
}

static void test_errors(void) {
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", dead_port());
    CHECK_EQ(weft_dial("tcp", addr, WEFT_SEC(20)), -ECONNREFUSED);
    CHECK_EQ(weft_dial("tcp4", addr, WEFT_SEC(20)), -ECONNREFUSED);

    /* .invalid never resolves (RFC 6761); offline, the resolver may only
     * be able to say "try again" */
    int e = weft_dial("tcp", "nosuch.invalid:80", WEFT_SEC(60));
    CHECK(e == -ENXIO || e == -EAGAIN);
    e = weft_listen("tcp", "nosuch.invalid:0");
    CHECK(e == -ENXIO || e == -EAGAIN);

    const char *bad[] = {"127.0.0.1",  "127.0.0.1:",
                         "::1:80",     "[::1:80",
                         "[::1]80",    "a]:80",
                         "",           "1.2.3.4:65536",
                         "1.2.3.4:-1", "127.0.0.1:nosuchservice"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(weft_dial("tcp", bad[i], WEFT_SEC(20)), -EINVAL);
        CHECK_EQ(weft_listen("tcp", bad[i]), -EINVAL);
    }
    CHECK_EQ(weft_dial("sctp", "127.0.0.1:1", 0), -EINVAL);
    CHECK_EQ(weft_dial(NULL, "127.0.0.1:1", 0), -EINVAL);
    CHECK_EQ(weft_dial("tcp", NULL, 0), -EINVAL);
    CHECK_EQ(weft_listen("tcp", NULL), -EINVAL);
    CHECK_EQ(weft_dial_ctx(NULL, "tcp", addr), -EINVAL);
    CHECK_EQ(weft_local_port(-1), -EBADF);

    /* a service name for the port: a connected UDP socket sends nothing */
    int u = weft_dial("udp4", "127.0.0.1:domain", WEFT_SEC(20));
    CHECK(u >= 0);
    CHECK(weft_remote_addr(u, addr, sizeof addr) > 0);
    CHECK(strcmp(addr, "127.0.0.1:53") == 0);
    close(u);
}

/* ---- a listener that never accepts: connects hang ------------------------ */

static int full_listener(int *port, int *held, int *nheld) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    CHECK_EQ(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    CHECK_EQ(listen(l, 0), 0);
    *port = ntohs(sa.sin_port);
    /* fill the backlog until a connect stays pending */
    *nheld = 0;
    for (int i = 0; i < 64; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int e = weft_connect_timeout(s, (struct sockaddr *)&sa, sizeof sa,
                                     WEFT_MS(300));
        held[(*nheld)++] = s;
        if (e == -ETIMEDOUT)
            return l;
        CHECK_EQ(e, 0);
    }
    CHECK(!"the backlog never filled");
    return -1;
}

typedef struct later {
    weft_ctx *ctx;
    int64_t delay;
    weft_wg wg;
} later;

static void cancel_later_g(void *p) {
    later *l = p;
    weft_sleep(l->delay);
    weft_ctx_cancel(l->ctx);
    weft_wg_done(&l->wg);
}

typedef struct dialer {
    const char *addr;
    int res;
    weft_wg wg;
} dialer;

static void dial_cancelled(const char *addr) {
    later l = {.ctx = weft_ctx_with_cancel(weft_ctx_background()),
               .delay = WEFT_MS(50)};
    weft_wg_add(&l.wg, 1);
    CHECK_EQ(weft_go(cancel_later_g, &l), 0);
    int64_t t0 = weft_now();
    CHECK_EQ(weft_dial_ctx(l.ctx, "tcp", addr), -ECANCELED);
    CHECK(weft_now() - t0 >= WEFT_MS(40));
    weft_wg_wait(&l.wg);
    /* ended already: at once */
    CHECK_EQ(weft_dial_ctx(l.ctx, "tcp", addr), -ECANCELED);
    weft_ctx_free(l.ctx);

    weft_ctx *c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(100));
    t0 = weft_now();
    CHECK_EQ(weft_dial_ctx(c, "tcp", addr), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= WEFT_MS(90));
    weft_ctx_free(c);
}

static void dial_cancelled_g(void *p) {
    dialer *d = p;
    dial_cancelled(d->addr);
    weft_wg_done(&d->wg);
}

static void test_timeouts(void) {
    int port, held[64], nheld;
    int l = full_listener(&port, held, &nheld);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);

    int64_t t0 = weft_now();
    CHECK_EQ(weft_dial("tcp", addr, WEFT_MS(200)), -ETIMEDOUT);
    int64_t took = weft_now() - t0;
    CHECK(took >= WEFT_MS(190) && took < WEFT_SEC(10));
    CHECK_EQ(weft_dial("tcp", addr, 0), -ETIMEDOUT);

    dial_cancelled(addr); /* a plain thread */
    dialer d = {.addr = addr};
    weft_wg_add(&d.wg, 1);
    CHECK_EQ(weft_go(dial_cancelled_g, &d), 0);
    weft_wg_wait(&d.wg);

    /* a lookup by name is cut short too (it may finish first: then the
     * connect is) */
    snprintf(addr, sizeof addr, "localhost:%d", port);
    weft_ctx *c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(100));
    CHECK_EQ(weft_dial_ctx(c, "tcp4", addr), -ETIMEDOUT);
    weft_ctx_free(c);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    close(l);
}

/* ---- UDP and unix -------------------------------------------------------- */

static void test_udp(void) {
    int l = weft_listen("udp4", "127.0.0.1:0");
    CHECK(l >= 0);
    check_flags(l);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port_of(l));
    int u = weft_dial("udp", addr, WEFT_SEC(20));
    CHECK(u >= 0);
    CHECK_EQ(weft_write(u, "ping", 4), 4);
    char b[8];
    CHECK_EQ(weft_read(l, b, sizeof b), 4);
    CHECK(memcmp(b, "ping", 4) == 0);
    close(u);
    close(l);
}

static void test_unix(void) {
    char dir[] = "/tmp/weft-dial-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/sock", dir);
    int l = weft_listen("unix", path);
    CHECK(l >= 0);
    check_flags(l);
    char addr[128];
    CHECK_EQ(weft_local_addr(l, addr, sizeof addr), strlen(path));
    CHECK(strcmp(addr, path) == 0);
    CHECK_EQ(weft_local_port(l), -EAFNOSUPPORT);
    CHECK_EQ(weft_listen("unix", path), -EADDRINUSE);
    CHECK_EQ(weft_go(echo_once, (void *)(intptr_t)l), 0);
    int fd = weft_dial("unix", path, WEFT_SEC(20));
    CHECK(fd >= 0);
    check_flags(fd);
    CHECK_EQ(weft_local_addr(fd, addr, sizeof addr), 0); /* unnamed */
    CHECK(weft_remote_addr(fd, addr, sizeof addr) > 0);
    CHECK(strcmp(addr, path) == 0);
    roundtrip(fd, 'q');
    close(fd);
    close(l);
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(weft_dial("unix", path, WEFT_SEC(20)), -ENOENT);
    CHECK_EQ(rmdir(dir), 0);

    /* the abstract namespace */
    snprintf(path, sizeof path, "@weft-test-dial-%d", (int)getpid());
    l = weft_listen("unix", path);
    CHECK(l >= 0);
    CHECK_EQ(weft_local_addr(l, addr, sizeof addr), strlen(path));
    CHECK(strcmp(addr, path) == 0);
    CHECK_EQ(weft_go(echo_once, (void *)(intptr_t)l), 0);
    fd = weft_dial("unix", path, WEFT_SEC(20));
    CHECK(fd >= 0);
    roundtrip(fd, 'q');
    close(fd);
    close(l);

    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    CHECK_EQ(weft_dial("unix", longp, 0), -ENAMETOOLONG);
    CHECK_EQ(weft_listen("unix", ""), -EINVAL);
}

int main(void) {
    TEST_BEGIN(120);
    test_listen_any_dial_by_name();
    test_errors();
    test_timeouts();
    test_udp();
    test_unix();
    TEST_OK();
    return 0;
}
