/* SPDX-License-Identifier: MIT */
/*
 * Context variants of the blocking calls, weft_ctx_deadline and
 * after-functions.  Each blocking case runs twice: in a goroutine (parked
 * on the netpoller) and on the main thread (blocked in poll(2)); the
 * cancel always comes from somewhere else.  After a call cut short, the
 * data it did not take must still be there.
 */
#include "check.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

/* Run fn(arg) in a goroutine (on_thread false) or right here, and wait. */
typedef struct runner {
    weft_fn fn;
    void *arg;
    weft_wg wg;
} runner;

static void run_g(void *p) {
    runner *r = p;
    r->fn(r->arg);
    weft_wg_done(&r->wg);
}

static void run(weft_fn fn, void *arg, bool on_thread) {
    if (on_thread) {
        CHECK(weft_id() == 0);
        fn(arg);
        return;
    }
    runner *r = calloc(1, sizeof *r);
    CHECK(r);
    r->fn = fn;
    r->arg = arg;
    weft_wg_add(&r->wg, 1);
    CHECK_EQ(weft_go(run_g, r), 0);
    weft_wg_wait(&r->wg);
    free(r);
}

/* Cancel ctx after delay, from a goroutine. */
typedef struct later {
    weft_ctx *ctx;
    int64_t delay;
} later;

static void cancel_later_g(void *p) {
    later *l = p;
    weft_sleep(l->delay);
    weft_ctx_cancel(l->ctx);
    free(l);
}

static void cancel_later(weft_ctx *ctx, int64_t delay) {
    later *l = malloc(sizeof *l);
    CHECK(l);
    l->ctx = ctx;
    l->delay = delay;
    CHECK_EQ(weft_go(cancel_later_g, l), 0);
}

static void pair(int sv[2]) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* ---- weft_ctx_deadline --------------------------------------------------- */

static void test_deadline(void) {
    int64_t d = 0;
    CHECK_EQ(weft_ctx_deadline(NULL, &d), -EINVAL);
    CHECK_EQ(weft_ctx_deadline(weft_ctx_background(), &d), 0);
    CHECK_EQ(d, WEFT_FOREVER);
    CHECK_EQ(weft_ctx_deadline(weft_ctx_background(), NULL), 0);

    weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
    CHECK_EQ(weft_ctx_deadline(c, &d), 0);
    CHECK_EQ(d, WEFT_FOREVER);

    int64_t before = weft_now();
    weft_ctx *t = weft_ctx_with_timeout(c, WEFT_SEC(10));
    int64_t after = weft_now();
    CHECK_EQ(weft_ctx_deadline(t, &d), 1);
    CHECK(d >= before + WEFT_SEC(10) && d <= after + WEFT_SEC(10));

    /* children inherit the nearest deadline; a later one does not win */
    int64_t td = d;
    weft_ctx *v = weft_ctx_with_value(t, "k", NULL);
    CHECK_EQ(weft_ctx_deadline(v, &d), 1);
    CHECK_EQ(d, td);
    weft_ctx *later_dl = weft_ctx_with_deadline(v, td + WEFT_SEC(5));
    CHECK_EQ(weft_ctx_deadline(later_dl, &d), 1);
    CHECK_EQ(d, td);
    weft_ctx *sooner = weft_ctx_with_deadline(v, td - WEFT_SEC(5));
    CHECK_EQ(weft_ctx_deadline(sooner, &d), 1);
    CHECK_EQ(d, td - WEFT_SEC(5));
    weft_ctx *forever = weft_ctx_with_deadline(c, WEFT_FOREVER);
    CHECK_EQ(weft_ctx_deadline(forever, &d), 0);

    weft_ctx_free(forever);
    weft_ctx_free(sooner);
    weft_ctx_free(later_dl);
    weft_ctx_free(v);
    weft_ctx_free(t);
    weft_ctx_free(c);
}

/* ---- reads --------------------------------------------------------------- */

static void read_cancelled(void *arg) {
    (void)arg;
    int sv[2];
    pair(sv);
    char b[8];
    weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
    cancel_later(c, WEFT_MS(50));
    int64_t t0 = weft_now();
    CHECK_EQ(weft_read_ctx(c, sv[0], b, sizeof b), -ECANCELED);
    CHECK(weft_now() - t0 >= WEFT_MS(40));
    /* ended: fails at once, even with data waiting */
    CHECK_EQ(weft_write(sv[1], "hi", 2), 2);
    CHECK_EQ(weft_read_ctx(c, sv[0], b, sizeof b), -ECANCELED);
    /* nothing was taken */
    CHECK_EQ(weft_read(sv[0], b, sizeof b), 2);
    CHECK(memcmp(b, "hi", 2) == 0);
    weft_ctx_free(c);

    /* a deadline */
    c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(60));
    t0 = weft_now();
    CHECK_EQ(weft_read_ctx(c, sv[0], b, sizeof b), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= WEFT_MS(50));
    weft_ctx_free(c);

    /* data wins while ctx lives; background works as "no context" */
    CHECK_EQ(weft_write(sv[1], "x", 1), 1);
    CHECK_EQ(weft_read_ctx(weft_ctx_background(), sv[0], b, sizeof b), 1);
    CHECK_EQ(weft_read_ctx(NULL, sv[0], b, sizeof b), -EINVAL);
    close(sv[0]);
    close(sv[1]);
}

/* A pipe is not a socket: the plain read(2) path. */
static void read_pipe_cancelled(void *arg) {
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    char b[4];
    weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
    cancel_later(c, WEFT_MS(30));
    CHECK_EQ(weft_read_ctx(c, p[0], b, sizeof b), -ECANCELED);
    weft_ctx_free(c);
    close(p[0]);
    close(p[1]);
}

/* ---- writes: the partial-write rule -------------------------------------- */

static void write_partial(void *arg) {
    (void)arg;
    int sv[2];
    pair(sv);
    size_t n = 8u << 20; /* far more than a socket buffer holds */
    char *buf = calloc(1, n);
    CHECK(buf);
    weft_ctx *c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(80));
    ssize_t w = weft_write_ctx(c, sv[0], buf, n);
    CHECK(w > 0 && (size_t)w < n);
    CHECK_EQ(weft_write_ctx(c, sv[0], buf, n), -ETIMEDOUT);
    weft_ctx_free(c);
    /* exactly the reported bytes arrived */
    shutdown(sv[0], SHUT_WR);
    size_t got = 0;
    ssize_t r;
    while ((r = weft_read(sv[1], buf, n)) > 0)
        got += (size_t)r;
    CHECK_EQ(r, 0);
    CHECK_EQ(got, w);

    /* nothing written at all: the error */
    c = weft_ctx_with_cancel(weft_ctx_background());
    weft_ctx_cancel(c);
    CHECK_EQ(weft_write_ctx(c, sv[1], "x", 1), -ECANCELED);
    weft_ctx_free(c);
    /* and a write that fits is n */
    c = weft_ctx_with_cancel(weft_ctx_background());
    CHECK_EQ(weft_write_ctx(c, sv[1], "abc", 3), 3);
    weft_ctx_free(c);
    free(buf);
    close(sv[0]);
    close(sv[1]);
}

/* ---- accept, connect, wait_fd, sleep ------------------------------------- */

static int listener(struct sockaddr_in *sa) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(l, (struct sockaddr *)sa, sizeof *sa), 0);
    socklen_t sl = sizeof *sa;
    CHECK_EQ(getsockname(l, (struct sockaddr *)sa, &sl), 0);
    CHECK_EQ(listen(l, 16), 0);
    return l;
}

static void accept_cancelled(void *arg) {
    (void)arg;
    struct sockaddr_in sa;
    int l = listener(&sa);
    weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
    cancel_later(c, WEFT_MS(30));
    CHECK_EQ(weft_accept_ctx(c, l, NULL, NULL), -ECANCELED);
    weft_ctx_free(c);

    /* connect_ctx succeeds; the connection waits for the next accept */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_SEC(10));
    CHECK_EQ(weft_connect_ctx(c, s, (struct sockaddr *)&sa, sizeof sa), 0);
    int a = weft_accept_ctx(c, l, NULL, NULL);
    CHECK(a >= 0);
    CHECK(fcntl(a, F_GETFD) & FD_CLOEXEC);
    weft_ctx_free(c);

    /* an ended context fails before connecting */
    int s2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c = weft_ctx_with_cancel(weft_ctx_background());
    weft_ctx_cancel(c);
    CHECK_EQ(weft_connect_ctx(c, s2, (struct sockaddr *)&sa, sizeof sa),
             -ECANCELED);
    CHECK_EQ(weft_accept_ctx(c, l, NULL, NULL), -ECANCELED);
    weft_ctx_free(c);
    close(s2);
    close(a);
    close(s);
    close(l);
}

static void wait_fd_cancelled(void *arg) {
    (void)arg;
    int sv[2];
    pair(sv);
    weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
    CHECK_EQ(weft_wait_fd_ctx(c, sv[0], 0), -EINVAL);
    CHECK_EQ(weft_wait_fd_ctx(c, -1, WEFT_READABLE), -EBADF);
    CHECK_EQ(weft_wait_fd_ctx(c, sv[0], WEFT_WRITABLE), WEFT_WRITABLE);
    cancel_later(c, WEFT_MS(30));
    CHECK_EQ(weft_wait_fd_ctx(c, sv[0], WEFT_READABLE), -ECANCELED);
    weft_ctx_free(c);
    c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(30));
    CHECK_EQ(weft_wait_fd_ctx(c, sv[0], WEFT_READABLE), -ETIMEDOUT);
    weft_ctx_free(c);
    close(sv[0]);
    close(sv[1]);
}

static void sleep_cancelled(void *arg) {
    (void)arg;
    weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
    CHECK_EQ(weft_sleep_ctx(NULL, 1), -EINVAL);
    int64_t t0 = weft_now();
    CHECK_EQ(weft_sleep_ctx(c, WEFT_MS(20)), 0);
    CHECK(weft_now() - t0 >= WEFT_MS(20));
    CHECK_EQ(weft_sleep_ctx(c, 0), 0);
    cancel_later(c, WEFT_MS(30));
    t0 = weft_now();
    CHECK_EQ(weft_sleep_ctx(c, WEFT_SEC(60)), -ECANCELED);
    CHECK(weft_now() - t0 < WEFT_SEC(30));
    CHECK_EQ(weft_sleep_ctx(c, 0), -ECANCELED);
    weft_ctx_free(c);
    c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(30));
    CHECK_EQ(weft_sleep_ctx(c, WEFT_SEC(60)), -ETIMEDOUT);
    weft_ctx_free(c);
}

/* ---- regular files ------------------------------------------------------- */

/* Regular files are always ready and keep their flags (they used to get
 * O_NONBLOCK behind the caller's back); a pipe gets it, as documented. */
static void regular_file(void *arg) {
    (void)arg;
    char path[] = "/tmp/weft-ctx-io-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ(unlink(path), 0);
    int fl = fcntl(fd, F_GETFL);
    CHECK(!(fl & O_NONBLOCK));
    CHECK_EQ(weft_write(fd, "abcdef", 6), 6);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    char b[8];
    CHECK_EQ(weft_read(fd, b, 3), 3);
    weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
    CHECK_EQ(weft_read_ctx(c, fd, b + 3, 5), 3);
    CHECK(memcmp(b, "abcdef", 6) == 0);
    CHECK_EQ(weft_read_ctx(c, fd, b, 5), 0); /* EOF */
    CHECK_EQ(weft_wait_fd(fd, WEFT_READABLE | WEFT_WRITABLE, 0),
             WEFT_READABLE | WEFT_WRITABLE);
    CHECK_EQ(weft_wait_fd_ctx(c, fd, WEFT_READABLE), WEFT_READABLE);
    weft_ctx_free(c);
    CHECK_EQ(fcntl(fd, F_GETFL), fl);
    close(fd);

    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(weft_write(p[1], "x", 1), 1);
    CHECK(fcntl(p[1], F_GETFL) & O_NONBLOCK);
    close(p[0]);
    close(p[1]);
}

/* ---- cancel racing data, many rounds ------------------------------------- */

typedef struct racer {
    weft_ctx *ctx;
    int fd;
    int64_t yields;
    weft_wg *wg;
} racer;

static void cancel_g(void *p) {
    racer *r = p;
    for (int64_t k = 0; k < r->yields; k++)
        weft_yield();
    weft_ctx_cancel(r->ctx);
    weft_wg_done(r->wg);
}

static void write_g(void *p) {
    racer *r = p;
    for (int64_t k = 0; k < r->yields; k++)
        weft_yield();
    CHECK_EQ(weft_write(r->fd, "z", 1), 1);
    weft_wg_done(r->wg);
}

/* 0 to 3 yields, spread by round (sleeps this short would mostly measure
 * timer latency) */
static int64_t jitter(int i) {
    return ((unsigned)i * 2654435761u) >> 30;
}

static void race_rounds(void *arg) {
    (void)arg;
    int rounds = 2000 / test_scale();
    for (int i = 0; i < rounds; i++) {
        int sv[2];
        pair(sv);
        weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
        weft_wg wg = {0};
        weft_wg_add(&wg, 2);
        racer rc = {c, -1, jitter(i), &wg};
        racer rw = {NULL, sv[1], jitter(i + 1), &wg};
        CHECK_EQ(weft_go(cancel_g, &rc), 0);
        CHECK_EQ(weft_go(write_g, &rw), 0);
        char b[2];
        ssize_t r = weft_read_ctx(c, sv[0], b, sizeof b);
        CHECK(r == 1 || r == -ECANCELED);
        if (r == -ECANCELED) /* the byte is still there */
            CHECK_EQ(weft_read(sv[0], b, sizeof b), 1);
        CHECK_EQ(b[0], 'z');
        weft_wg_wait(&wg);
        weft_ctx_free(c);
        close(sv[0]);
        close(sv[1]);
    }
}

/* ---- after-functions ----------------------------------------------------- */

typedef struct after_arg {
    atomic_int ran;
    atomic_ullong gid;
    weft_chan *ch;
} after_arg;

static void after_fn(void *p) {
    after_arg *a = p;
    atomic_store(&a->gid, weft_id());
    atomic_fetch_add(&a->ran, 1);
    if (a->ch)
        CHECK_EQ(weft_send(a->ch, NULL), 0);
}

static void test_after_basic(void) {
    CHECK(weft_ctx_after_func(NULL, after_fn, NULL) == NULL);
    CHECK(weft_ctx_after_func(weft_ctx_background(), NULL, NULL) == NULL);
    CHECK_EQ(weft_ctx_after_stop(NULL), -EINVAL);

    /* runs once, in a goroutine, when cancelled; stop afterwards says 0 */
    after_arg a = {.ch = weft_chan_make(0, 1)};
    weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
    weft_after *h = weft_ctx_after_func(c, after_fn, &a);
    CHECK(h);
    weft_sleep(WEFT_MS(10));
    CHECK_EQ(atomic_load(&a.ran), 0);
    weft_ctx_cancel(c);
    CHECK_EQ(weft_recv(a.ch, NULL), 0);
    CHECK(atomic_load(&a.gid) != 0);
    weft_ctx_cancel(c);
    CHECK_EQ(weft_ctx_after_stop(h), 0);
    weft_ctx_free(c);
    CHECK_EQ(atomic_load(&a.ran), 1);

    /* a context that has ended runs fn at once */
    c = weft_ctx_with_cancel(weft_ctx_background());
    weft_ctx_cancel(c);
    h = weft_ctx_after_func(c, after_fn, &a);
    CHECK(h);
    CHECK_EQ(weft_recv(a.ch, NULL), 0);
    CHECK_EQ(weft_ctx_after_stop(h), 0);
    weft_ctx_free(c);
    CHECK_EQ(atomic_load(&a.ran), 2);

    /* stopped in time: never runs, even when the context ends later */
    c = weft_ctx_with_cancel(weft_ctx_background());
    h = weft_ctx_after_func(c, after_fn, &a);
    CHECK_EQ(weft_ctx_after_stop(h), 1);
    weft_ctx_cancel(c);
    weft_ctx_free(c);

    /* a deadline and a value child: fn runs when the deadline passes */
    c = weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(20));
    weft_ctx *v = weft_ctx_with_value(c, "k", NULL);
    h = weft_ctx_after_func(v, after_fn, &a);
    CHECK_EQ(weft_recv(a.ch, NULL), 0);
    CHECK_EQ(weft_ctx_err(v), -ETIMEDOUT);
    /* the handle outlives the context */
    weft_ctx_free(v);
    weft_ctx_free(c);
    CHECK_EQ(weft_ctx_after_stop(h), 0);

    /* freeing the context ends it, so fn runs */
    c = weft_ctx_with_cancel(weft_ctx_background());
    h = weft_ctx_after_func(c, after_fn, &a);
    weft_ctx_free(c);
    CHECK_EQ(weft_recv(a.ch, NULL), 0);
    CHECK_EQ(weft_ctx_after_stop(h), 0);

    /* background never ends: stop always stops it */
    h = weft_ctx_after_func(weft_ctx_background(), after_fn, &a);
    CHECK_EQ(weft_ctx_after_stop(h), 1);
    CHECK_EQ(atomic_load(&a.ran), 4);
    weft_chan_free(a.ch);
}

/* A stop races the cancel: exactly one of "stop returned 1" and "fn ran". */
typedef struct stopper {
    weft_after *h;
    int stopped;
    weft_wg *wg;
} stopper;

static void stop_g(void *p) {
    stopper *s = p;
    s->stopped = weft_ctx_after_stop(s->h);
    weft_wg_done(s->wg);
}

static void test_after_races(void) {
    int rounds = 3000 / test_scale();
    int batch = 16;
    after_arg a = {0};
    int stopped = 0;
    for (int i = 0; i < rounds; i++) {
        weft_ctx *c = weft_ctx_with_cancel(weft_ctx_background());
        weft_wg wg = {0};
        stopper st[16];
        weft_wg_add(&wg, batch + 1);
        for (int k = 0; k < batch; k++) {
            st[k] = (stopper){weft_ctx_after_func(c, after_fn, &a), -1, &wg};
            CHECK(st[k].h);
        }
        racer rc = {c, -1, 0, &wg};
        for (int k = 0; k < batch; k++) {
            if (k == batch / 2)
                CHECK_EQ(weft_go(cancel_g, &rc), 0);
            CHECK_EQ(weft_go(stop_g, &st[k]), 0);
        }
        weft_wg_wait(&wg);
        weft_ctx_free(c);
        for (int k = 0; k < batch; k++) {
            CHECK(st[k].stopped == 0 || st[k].stopped == 1);
            stopped += st[k].stopped;
        }
    }
    /* every fn that was not stopped runs, once */
    int64_t until = weft_now() + WEFT_SEC(30);
    while (atomic_load(&a.ran) + stopped < rounds * batch && weft_now() < until)
        weft_sleep(WEFT_MS(1));
    weft_sleep(WEFT_MS(20));
    CHECK_EQ(atomic_load(&a.ran) + stopped, rounds * batch);
}

int main(void) {
    TEST_BEGIN(120);
    test_deadline();
    for (int t = 0; t < 2; t++) {
        bool th = t == 1;
        run(read_cancelled, NULL, th);
        run(read_pipe_cancelled, NULL, th);
        run(write_partial, NULL, th);
        run(accept_cancelled, NULL, th);
        run(wait_fd_cancelled, NULL, th);
        run(sleep_cancelled, NULL, th);
        run(regular_file, NULL, th);
        run(race_rounds, NULL, th);
    }
    test_after_basic();
    test_after_races();
    TEST_OK();
    return 0;
}
