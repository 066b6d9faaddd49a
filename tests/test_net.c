/* SPDX-License-Identifier: MIT */
/*
 * Network calls from goroutines and plain threads: socketpair ping-pong,
 * weft_wait_fd readiness and timeouts, a loopback TCP echo server with many
 * concurrent client goroutines, refused connections, peer resets, writes to
 * a closed peer (no SIGPIPE), pipes, descriptor numbers reused after
 * close (by weft's own sockets' numbers too), and the end of a stream
 * read right after its data.  Loopback only.
 */
#include "check.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define RUN_GO(fn, arg)                                                        \
    do {                                                                       \
        weft_wg wg_ = {0};                                                     \
        struct gocall gc_ = {fn, arg, &wg_};                                   \
        weft_wg_add(&wg_, 1);                                                  \
        CHECK_EQ(weft_go(gocall_main, &gc_), 0);                               \
        weft_wg_wait(&wg_);                                                    \
    } while (0)

struct gocall {
    void (*fn)(void *);
    void *arg;
    weft_wg *wg;
};

static void gocall_main(void *p) {
    struct gocall *gc = p;
    gc->fn(gc->arg);
    weft_wg_done(gc->wg);
}

/* ---- helpers ------------------------------------------------------------ */

static int listener(struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    CHECK_EQ(listen(fd, 4096), 0);
    return fd;
}

static int tcp_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    return fd;
}

/* A connected loopback TCP pair: *a from connect, *b from accept. */
static void tcp_pair(int *a, int *b) {
    struct sockaddr_in addr;
    int l = listener(&addr);
    *a = tcp_socket();
    CHECK_EQ(weft_connect(*a, (struct sockaddr *)&addr, sizeof addr), 0);
    *b = weft_accept(l, NULL, NULL);
    CHECK(*b >= 0);
    close(l);
}

static void raise_nofile(void) {
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static int nofile(void) {
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur > 1 << 20 ? 1 << 20 : (int)rl.rlim_cur;
}

/* ---- socketpair ping-pong ----------------------------------------------- */

#define PINGS 2000

struct pp {
    int fd;
    bool first;
};

static void pinger(void *arg) {
    struct pp *p = arg;
    uint64_t v = 0;
    if (p->first)
        CHECK_EQ(weft_write(p->fd, &v, sizeof v), sizeof v);
    for (;;) {
        CHECK_EQ(weft_read(p->fd, &v, sizeof v), sizeof v);
        if (v >= PINGS)
            break;
        v++;
        CHECK_EQ(weft_write(p->fd, &v, sizeof v), sizeof v);
        if (v >= PINGS)
            break;
    }
}

static void test_pingpong(void) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); /* blocking */
    weft_wg wg = {0};
    struct pp a = {sv[0], true}, b = {sv[1], false};
    struct gocall ga = {pinger, &a, &wg}, gb = {pinger, &b, &wg};
    weft_wg_add(&wg, 2);
    CHECK_EQ(weft_go(gocall_main, &ga), 0);
    CHECK_EQ(weft_go(gocall_main, &gb), 0);
    weft_wg_wait(&wg);
    close(sv[0]);
    close(sv[1]);
}

/* Large transfer: partial writes and a full socket buffer. */
struct bulk {
    int fd;
    size_t n;
};

static void bulk_writer(void *arg) {
    struct bulk *b = arg;
    char *buf = malloc(b->n);
    for (size_t i = 0; i < b->n; i++)
        buf[i] = (char)(i * 7);
    CHECK_EQ(weft_write(b->fd, buf, b->n), b->n);
    free(buf);
    close(b->fd);
}

static void test_bulk(void) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct bulk b = {sv[0], (size_t)4 << 20};
    weft_wg wg = {0};
    struct gocall g = {bulk_writer, &b, &wg};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(gocall_main, &g), 0);
    char buf[65536];
    size_t got = 0;
    for (;;) { /* this plain thread reads */
        ssize_t r = weft_read(sv[1], buf, sizeof buf);
        CHECK(r >= 0);
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            CHECK_EQ((unsigned char)buf[i], (unsigned char)((got + i) * 7));
        got += (size_t)r;
    }
    CHECK_EQ(got, b.n);
    weft_wg_wait(&wg);
    close(sv[1]);
}

/* ---- weft_wait_fd ------------------------------------------------------- */

static void late_writer(void *arg) {
    weft_sleep(WEFT_MS(20));
    CHECK_EQ(weft_write(*(int *)arg, "x", 1), 1);
}

static void wait_fd_checks(void *unused) {
    (void)unused;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(weft_wait_fd(sv[0], 0, 0), -EINVAL);
    CHECK_EQ(weft_wait_fd(-1, WEFT_READABLE, 0), -EBADF);
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_WRITABLE, 0), WEFT_WRITABLE);
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE, 0), -ETIMEDOUT);
    int64_t t0 = weft_now();
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE, WEFT_MS(50)), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= WEFT_MS(45));
    weft_wg wg = {0};
    struct gocall g = {late_writer, &sv[1], &wg};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(gocall_main, &g), 0);
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE, WEFT_FOREVER), WEFT_READABLE);
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE | WEFT_WRITABLE, WEFT_SEC(5)),
             WEFT_READABLE | WEFT_WRITABLE);
    weft_wg_wait(&wg);
    char c;
    CHECK_EQ(weft_read(sv[0], &c, 1), 1);
    /* both directions, no deadline: a pipe's read end only becomes
     * readable (its nodes sit on both queues of the record) */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    weft_wg_add(&wg, 1);
    struct gocall g2 = {late_writer, &p[1], &wg};
    CHECK_EQ(weft_go(gocall_main, &g2), 0);
    CHECK_EQ(weft_wait_fd(p[0], WEFT_READABLE | WEFT_WRITABLE, WEFT_FOREVER),
             WEFT_READABLE);
    weft_wg_wait(&wg);
    close(p[0]);
    close(p[1]);
    /* a hang-up counts as every requested event */
    close(sv[1]);
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE, WEFT_SEC(5)), WEFT_READABLE);
    CHECK_EQ(weft_read(sv[0], &c, 1), 0);
    close(sv[0]);
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE, 0), -EBADF);
}

static void test_wait_fd(void) {
    RUN_GO(wait_fd_checks, NULL);
    wait_fd_checks(NULL); /* the same from a plain thread */
}

/* ---- loopback echo server with many clients ----------------------------- */

struct echo_srv {
    int lfd;
    int n; /* connections to accept */
    weft_wg *wg;
};

static void echo_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t r = weft_read(fd, buf, sizeof buf);
        CHECK(r >= 0);
        if (r == 0)
            break;
        CHECK_EQ(weft_write(fd, buf, (size_t)r), r);
    }
    close(fd);
}

static void echo_accept(void *arg) {
    struct echo_srv *s = arg;
    for (int i = 0; i < s->n; i++) {
        int c = weft_accept(s->lfd, NULL, NULL);
        CHECK(c >= 0);
        CHECK(fcntl(c, F_GETFL) & O_NONBLOCK);
        CHECK(fcntl(c, F_GETFD) & FD_CLOEXEC);
        CHECK_EQ(weft_go(echo_conn, (void *)(intptr_t)c), 0);
    }
}

struct echo_client {
    struct sockaddr_in addr;
    int id;
    weft_wg *wg;
    atomic_int *ok;
};

static void echo_client_main(void *arg) {
    struct echo_client *c = arg;
    size_t len = (size_t)(c->id % 7 + 1) * 300;
    unsigned char out[2100], in[2100];
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(c->id * 31 + i);
    int fd = tcp_socket();
    CHECK_EQ(weft_connect(fd, (struct sockaddr *)&c->addr, sizeof c->addr), 0);
    for (size_t off = 0; off < len; off += 100) /* in pieces */
        CHECK_EQ(weft_write(fd, out + off, 100), 100);
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    for (;;) {
        ssize_t r =
            weft_read_timeout(fd, in + got, sizeof in - got, WEFT_SEC(60));
        CHECK(r >= 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    CHECK_EQ(got, len);
    CHECK(memcmp(in, out, len) == 0);
    close(fd);
    atomic_fetch_add(c->ok, 1);
    weft_wg_done(c->wg);
}

static void test_echo_many(void) {
    raise_nofile();
    int n = 1000;
    int room = (nofile() - 64) / 2; /* client and server end per connection */
    if (n > room)
        n = room;
    CHECK(n >= 10);
    struct echo_srv s = {.n = n};
    struct sockaddr_in addr;
    s.lfd = listener(&addr);
    weft_wg wg = {0};
    atomic_int ok = 0;
    CHECK_EQ(weft_go(echo_accept, &s), 0);
    struct echo_client *cs = calloc((size_t)n, sizeof *cs);
    weft_wg_add(&wg, n);
    for (int i = 0; i < n; i++) {
        cs[i] = (struct echo_client){addr, i, &wg, &ok};
        CHECK_EQ(weft_go(echo_client_main, &cs[i]), 0);
    }
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&ok), n);
    free(cs);
    close(s.lfd);
    printf("echo: %d concurrent clients ok\n", n);
}

/* ---- errors: refused, reset, closed peer -------------------------------- */

static void refused(void *unused) {
    (void)unused;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int probe = tcp_socket(); /* a port that was free a moment ago */
    CHECK_EQ(bind(probe, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    CHECK_EQ(getsockname(probe, (struct sockaddr *)&addr, &len), 0);
    close(probe);
    int fd = tcp_socket();
    CHECK_EQ(weft_connect(fd, (struct sockaddr *)&addr, sizeof addr),
             -ECONNREFUSED);
    close(fd);
    fd = tcp_socket();
    CHECK_EQ(weft_connect_timeout(fd, (struct sockaddr *)&addr, sizeof addr,
                                  WEFT_SEC(5)),
             -ECONNREFUSED);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0); /* flags restored */
    close(fd);
}

static void test_refused(void) {
    RUN_GO(refused, NULL);
    refused(NULL);
}

struct reset_reader {
    int fd;
    ssize_t r;
};

static void reset_read(void *arg) {
    struct reset_reader *rr = arg;
    char buf[16];
    rr->r = weft_read(rr->fd, buf, sizeof buf);
}

static void test_reset(void) {
    int a, b;
    tcp_pair(&a, &b);
    struct reset_reader rr = {a, 1};
    weft_wg wg = {0};
    struct gocall g = {reset_read, &rr, &wg};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(gocall_main, &g), 0);
    weft_sleep(WEFT_MS(20)); /* let the reader park (not required) */
    struct linger lg = {1, 0};
    CHECK_EQ(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(b); /* sends RST */
    weft_wg_wait(&wg);
    CHECK_EQ(rr.r, -ECONNRESET);
    CHECK_EQ(weft_write(a, "x", 1), -EPIPE);
    close(a);
}

static void closed_peer(void *unused) {
    (void)unused;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    CHECK_EQ(weft_write(sv[0], "hello", 5), -EPIPE);
    close(sv[0]);

    int p[2];
    CHECK_EQ(pipe(p), 0);
    close(p[0]);
    CHECK_EQ(weft_write(p[1], "hello", 5), -EPIPE);
    close(p[1]);

    int a, b;
    tcp_pair(&a, &b);
    close(b); /* FIN; the first write draws an RST, a later one fails */
    static char chunk[65536];
    ssize_t r;
    for (int i = 0; i < 1000; i++)
        if ((r = weft_write(a, chunk, sizeof chunk)) < 0)
            break;
    CHECK(r == -EPIPE || r == -ECONNRESET);
    close(a);
}

static void test_closed_peer(void) {
    RUN_GO(closed_peer, NULL);
    closed_peer(NULL);
}

/* ---- pipes and plain threads -------------------------------------------- */

struct pipe_xfer {
    int fd;
    size_t n;
};

static void pipe_reader(void *arg) {
    struct pipe_xfer *x = arg;
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t r = weft_read(x->fd, buf, sizeof buf);
        CHECK(r >= 0);
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            CHECK_EQ((unsigned char)buf[i], (unsigned char)(got + i));
        got += (size_t)r;
    }
    x->n = got;
}

static void *thread_writer(void *arg) {
    struct pipe_xfer *x = arg;
    char buf[1000];
    for (size_t off = 0; off < x->n; off += sizeof buf) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (char)(off + i);
        CHECK_EQ(weft_write(x->fd, buf, sizeof buf), sizeof buf);
    }
    close(x->fd);
    return NULL;
}

/* A blocking pipe: a plain thread writes, a goroutine reads. */
static void test_pipe_thread_to_goroutine(void) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct pipe_xfer w = {p[1], 1000 * 1000}, r = {p[0], 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_writer, &w), 0);
    RUN_GO(pipe_reader, &r);
    pthread_join(t, NULL);
    CHECK_EQ(r.n, w.n);
    close(p[0]);
}

static void *thread_echo(void *arg) {
    int fd = *(int *)arg;
    char buf[256];
    ssize_t r;
    while ((r = weft_read(fd, buf, sizeof buf)) > 0)
        CHECK_EQ(weft_write(fd, buf, (size_t)r), r);
    CHECK_EQ(r, 0);
    return NULL;
}

/* Two plain threads talk over a blocking socketpair. */
static void test_plain_threads(void) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_echo, &sv[1]), 0);
    char buf[64];
    CHECK_EQ(weft_read_timeout(sv[0], buf, sizeof buf, WEFT_MS(10)),
             -ETIMEDOUT);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(buf, sizeof buf, "message %d", i);
        CHECK_EQ(weft_write(sv[0], buf, (size_t)n), n);
        char in[64];
        size_t got = 0;
        while (got < (size_t)n) {
            ssize_t r = weft_read(sv[0], in + got, sizeof in - got);
            CHECK(r > 0);
            got += (size_t)r;
        }
        CHECK(memcmp(in, buf, (size_t)n) == 0);
    }
    shutdown(sv[0], SHUT_WR);
    pthread_join(t, NULL);
    CHECK_EQ(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0); /* sockets untouched */
    close(sv[0]);
    close(sv[1]);
}

/* ---- descriptor numbers reused after close ------------------------------ */

struct reuse {
    int fd;
    char c;
};

static void reuse_reader(void *arg) {
    struct reuse *r = arg;
    CHECK_EQ(weft_read_timeout(r->fd, &r->c, 1, WEFT_SEC(10)), 1);
}

/* A goroutine parks on fd (registering it), then the number is closed and
 * handed to a new socket or pipe, which must still wake its reader. */
static void reuse_round(int rfd, int wfd, int *first_rfd, int *reused) {
    if (*first_rfd < 0)
        *first_rfd = rfd;
    else if (rfd == *first_rfd)
        (*reused)++;
    struct reuse r = {rfd, 0};
    weft_wg wg = {0};
    struct gocall g = {reuse_reader, &r, &wg};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(gocall_main, &g), 0);
    weft_sleep(WEFT_MS(2)); /* usually lets the reader park first */
    CHECK_EQ(write(wfd, "k", 1), 1);
    weft_wg_wait(&wg);
    CHECK_EQ(r.c, 'k');
    close(rfd);
    close(wfd);
}

static void test_reuse(void) {
    int first = -1, reused = 0;
    for (int i = 0; i < 40; i++) {
        int fds[2];
        if (i % 2)
            CHECK_EQ(pipe(fds), 0);
        else
            CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        reuse_round(fds[0], fds[1], &first, &reused);
    }
    CHECK(reused > 0);
}

/* ---- registrations: sockets weft made, the drained hint ----------------- */

/* Data and the end of the stream arrive before weft_accept: the first read
 * takes the data, short, and the next says 0 at once, without waiting for
 * an event that came before it. */
static void queued_end(void *unused) {
    (void)unused;
    struct sockaddr_in addr;
    int l = listener(&addr);
    for (int i = 0; i < 50; i++) {
        int c = tcp_socket();
        CHECK_EQ(connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
        CHECK_EQ(write(c, "hello", 5), 5);
        CHECK_EQ(shutdown(c, SHUT_WR), 0);
        if (i % 2)
            weft_sleep(WEFT_MS(2)); /* the end has reached the server side */
        int s = weft_accept(l, NULL, NULL);
        CHECK(s >= 0);
        char buf[64];
        size_t got = 0;
        ssize_t r;
        while ((r = weft_read_timeout(s, buf + got, sizeof buf - got,
                                      WEFT_SEC(10))) > 0)
            got += (size_t)r;
        CHECK_EQ(r, 0);
        CHECK_EQ(got, 5);
        close(s);
        close(c);
    }
    close(l);
}

static void test_queued_end(void) {
    RUN_GO(queued_end, NULL);
}

/* Datagrams read short with more queued: the drained hint is for TCP only,
 * so the second read returns the second datagram at once. */
static void queued_datagrams(void *unused) {
    (void)unused;
    int a = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int b = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(a >= 0 && b >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(b, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    CHECK_EQ(getsockname(b, (struct sockaddr *)&addr, &len), 0);
    CHECK_EQ(connect(a, (struct sockaddr *)&addr, sizeof addr), 0);
    /* a number no earlier test used: its record knows nothing yet */
    int fresh = fcntl(b, F_DUPFD_CLOEXEC, 900);
    CHECK(fresh >= 900);
    close(b);
    b = fresh;
    char buf[64];
    for (int round = 0; round < 20; round++) {
        CHECK_EQ(weft_write(a, "one", 3), 3);
        CHECK_EQ(weft_write(a, "two", 3), 3);
        if (round % 2)
            weft_sleep(WEFT_MS(5)); /* the poller has seen both arrive */
        int64_t t0 = weft_now();
        CHECK_EQ(weft_read_timeout(b, buf, sizeof buf, WEFT_SEC(10)), 3);
        CHECK(memcmp(buf, "one", 3) == 0);
        CHECK_EQ(weft_read_timeout(b, buf, sizeof buf, WEFT_SEC(10)), 3);
        CHECK(memcmp(buf, "two", 3) == 0);
        CHECK(weft_now() - t0 < WEFT_SEC(5));
    }
    close(a);
    close(b);
}

static void test_queued_datagrams(void) {
    RUN_GO(queued_datagrams, NULL);
}

struct stale {
    int fd;
    int64_t took;
};

static void stale_reader(void *arg) {
    struct stale *st = arg;
    char c;
    int64_t t0 = weft_now();
    CHECK_EQ(weft_read_timeout(st->fd, &c, 1, WEFT_SEC(10)), 1);
    CHECK_EQ(c, 'x');
    st->took = weft_now() - t0;
}

/* A socket weft accepted, closed with close(2), and its number taken by a
 * socket weft did not make: a goroutine that waits on the new one wakes
 * when it has data, although weft registered the old one only (the
 * monitor's sweep finds out). */
static void test_stale_registration(void) {
    int a, b;
    tcp_pair(&a, &b);
    close(b);
    int sp[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    CHECK(sp[0] == b || sp[1] == b); /* the lowest free numbers */
    struct stale st = {b, 0};
    weft_wg wg = {0};
    struct gocall g = {stale_reader, &st, &wg};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(gocall_main, &g), 0);
    weft_sleep(WEFT_MS(10)); /* the reader parks first, usually */
    CHECK_EQ(write(sp[0] == b ? sp[1] : sp[0], "x", 1), 1);
    weft_wg_wait(&wg);
    printf("stale registration: read after %.1f ms\n", (double)st.took / 1e6);
    close(sp[0]);
    close(sp[1]);
    close(a);
}

int main(void) {
    TEST_BEGIN(120);
    test_pingpong();
    test_bulk();
    test_wait_fd();
    test_refused();
    test_reset();
    test_closed_peer();
    test_pipe_thread_to_goroutine();
    test_plain_threads();
    test_reuse();
    test_queued_end();
    test_queued_datagrams();
    test_stale_registration();
    test_echo_many();
    TEST_OK();
    return 0;
}
