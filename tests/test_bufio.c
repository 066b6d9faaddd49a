/* SPDX-License-Identifier: MIT */
/*
 * Buffered I/O and weft_copy: lines over a pipe and a socket, a line
 * longer than the bound (nothing lost), read exactly n with the end of the
 * input in the middle, the writer's sticky error on a closed peer, a
 * reader's context, 10 MB through weft_copy, and a regular file read by
 * lines while another goroutine keeps running on the only worker.
 */
#include "child.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define LINES 5000

typedef struct pair {
    int rd, wr;
} pair;

static weft_wg wg;

static void line_writer(void *arg) {
    pair *p = arg;
    weft_writer *w = weft_writer_make(p->wr, 512);
    CHECK(w);
    char line[64];
    for (int i = 0; i < LINES; i++) {
        int n = snprintf(line, sizeof line, "line %d %.*s\n", i, i % 40,
                         "........................................");
        CHECK_EQ(weft_writer_write(w, line, (size_t)n), n);
    }
    CHECK_EQ(weft_writer_free(w), 0);
    close(p->wr);
    weft_wg_done(&wg);
}

static void line_reader(void *arg) {
    pair *p = arg;
    weft_reader *r = weft_reader_make(p->rd, 100);
    CHECK(r);
    char line[128], want[64];
    for (int i = 0; i < LINES; i++) {
        int n = snprintf(want, sizeof want, "line %d %.*s\n", i, i % 40,
                         "........................................");
        CHECK_EQ(weft_reader_read_until(r, '\n', line, sizeof line), n);
        CHECK(strcmp(line, want) == 0);
    }
    CHECK_EQ(weft_reader_read_until(r, '\n', line, sizeof line), 0);
    weft_reader_free(r);
    close(p->rd);
    weft_wg_done(&wg);
}

static void lines_over(pair p) {
    weft_wg_add(&wg, 2);
    weft_go(line_writer, &p);
    weft_go(line_reader, &p);
    weft_wg_wait(&wg);
}

static pair a_pipe(void) {
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    return (pair){fds[0], fds[1]};
}

static pair a_socket(void) {
    int fds[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    return (pair){fds[0], fds[1]};
}

static void put(int fd, const char *s) {
    CHECK_EQ(weft_write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Too long for the bound: -EMSGSIZE, and every byte is still there. */
static void long_line(void) {
    pair p = a_pipe();
    char big[201];
    memset(big, 'x', 200);
    big[200] = 0;
    put(p.wr, big);
    put(p.wr, "\nshort\ntail");
    close(p.wr);
    weft_reader *r = weft_reader_make(p.rd, 16);
    char line[300];
    CHECK_EQ(weft_reader_read_until(r, '\n', line, 50), -EMSGSIZE);
    CHECK_EQ(weft_reader_read_until(r, '\n', line, 201), -EMSGSIZE);
    CHECK_EQ(weft_reader_read(r, line, 10), 10); /* in pieces */
    CHECK(memcmp(line, big, 10) == 0);
    CHECK_EQ(weft_reader_read_until(r, '\n', line, sizeof line), 191);
    CHECK(line[189] == 'x' && line[190] == '\n' && line[191] == 0);
    CHECK_EQ(weft_reader_read_until(r, '\n', line, sizeof line), 6);
    CHECK(strcmp(line, "short\n") == 0);
    CHECK_EQ(weft_reader_read_until(r, '\n', line, sizeof line), 4);
    CHECK(strcmp(line, "tail") == 0);
    CHECK_EQ(weft_reader_read_until(r, '\n', line, sizeof line), 0);
    CHECK_EQ(weft_reader_read_until(r, '\n', NULL, 10), -EINVAL);
    weft_reader_free(r);
    close(p.rd);
}

/* Read exactly n with the end of the input in the middle. */
static void read_full(void) {
    pair p = a_pipe();
    put(p.wr, "0123456789");
    weft_reader *r = weft_reader_make(p.rd, 4);
    char b[32];
    CHECK_EQ(weft_reader_read_full(r, b, 3), 3);
    CHECK(memcmp(b, "012", 3) == 0);
    close(p.wr);
    CHECK_EQ(weft_reader_read_full(r, b, 16), -EPIPE);
    CHECK_EQ(weft_reader_buffered(r), 7); /* nothing consumed */
    CHECK_EQ(weft_reader_read_full(r, b, 7), 7);
    CHECK(memcmp(b, "3456789", 7) == 0);
    CHECK_EQ(weft_reader_read_full(r, b, 1), 0);
    CHECK_EQ(weft_reader_read(r, b, 1), 0);
    weft_reader_free(r);
    close(p.rd);
}

/* A write to a closed peer fails at the flush, and the error sticks. */
static void sticky(void) {
    pair p = a_socket();
    close(p.rd);
    weft_writer *w = weft_writer_make(p.wr, 64);
    CHECK_EQ(weft_writer_write(w, "hello", 5), 5);
    CHECK_EQ(weft_writer_buffered(w), 5);
    CHECK_EQ(weft_writer_flush(w), -EPIPE);
    CHECK_EQ(weft_writer_write(w, "x", 1), -EPIPE);
    CHECK_EQ(weft_writer_flush(w), -EPIPE);
    CHECK_EQ(weft_writer_free(w), -EPIPE);
    close(p.wr);
}

/* A reader's context ends a blocked fill; bytes that arrive after are
 * still there for the next read. */
static weft_ctx *rctx;
static void cancel_soon(void *arg) {
    (void)arg;
    weft_sleep(WEFT_MS(20));
    weft_ctx_cancel(rctx);
    weft_wg_done(&wg);
}

static void reader_ctx(void) {
    pair p = a_socket();
    weft_reader *r = weft_reader_make(p.rd, 0);
    rctx = weft_ctx_with_cancel(weft_ctx_background());
    CHECK_EQ(weft_reader_ctx(r, rctx), 0);
    weft_wg_add(&wg, 1);
    weft_go(cancel_soon, NULL);
    char b[16];
    CHECK_EQ(weft_reader_read_until(r, '\n', b, sizeof b), -ECANCELED);
    put(p.wr, "late\n");
    CHECK_EQ(weft_reader_read_until(r, '\n', b, sizeof b), -ECANCELED);
    CHECK_EQ(weft_reader_ctx(r, NULL), 0);
    CHECK_EQ(weft_reader_read_until(r, '\n', b, sizeof b), 5);
    CHECK(strcmp(b, "late\n") == 0);
    weft_wg_wait(&wg); /* the canceller holds no reference of its own */
    weft_ctx_free(rctx);
    weft_reader_free(r);
    close(p.rd);
    close(p.wr);
}

/* ---- weft_copy: 10 MB through two pipes, every byte checked ---------- */

#define COPY_BYTES (10 * 1024 * 1024)

static unsigned char pattern(size_t i) {
    return (unsigned char)(i * 7 + i / 4093);
}

static void produce(void *arg) {
    int fd = *(int *)arg;
    static unsigned char buf[8192];
    for (size_t off = 0; off < COPY_BYTES; off += sizeof buf) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = pattern(off + i);
        CHECK_EQ(weft_write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    }
    close(fd);
    weft_wg_done(&wg);
}

static void consume(void *arg) {
    int fd = *(int *)arg;
    static unsigned char buf[5000];
    size_t off = 0;
    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf);
        CHECK(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            CHECK(buf[i] == pattern(off + (size_t)i));
        off += (size_t)n;
    }
    CHECK_EQ(off, COPY_BYTES);
    close(fd);
    weft_wg_done(&wg);
}

static void copy_pipes(void) {
    pair in = a_pipe(), out = a_pipe();
    weft_wg_add(&wg, 2);
    weft_go(produce, &in.wr);
    weft_go(consume, &out.rd);
    CHECK_EQ(weft_copy(out.wr, in.rd), COPY_BYTES);
    close(out.wr);
    close(in.rd);
    weft_wg_wait(&wg);
    CHECK_EQ(weft_copy(-1, 0), -EBADF);
    CHECK_EQ(weft_copy_ctx(NULL, 1, 0), -EINVAL);
}

/* ---- a regular file by lines, on one worker -------------------------- */

#define FILE_LINES 100000
static char path[] = "/tmp/weft-bufio-XXXXXX";
static atomic_int reading = 1, ticks_while_reading;

static weft_chan *ticking;

static void ticker(void *arg) {
    (void)arg;
    weft_timer *t = weft_timer_start(WEFT_MS(1), WEFT_MS(1));
    weft_recv(weft_timer_chan(t), NULL);
    weft_close(ticking); /* running: the reader may start */
    while (atomic_load(&reading)) {
        weft_recv(weft_timer_chan(t), NULL);
        atomic_fetch_add(&ticks_while_reading, 1);
    }
    weft_timer_stop(t);
    weft_wg_done(&wg);
}

/* On the only worker, as the ticker: each fill must park it. */
static void file_reader(void *arg) {
    int fd = *(int *)arg;
    weft_reader *r = weft_reader_make(fd, 0);
    char line[128], want[128];
    int64_t t0 = weft_now();
    for (int i = 0; i < FILE_LINES; i++) {
        int n = snprintf(want, sizeof want, "%08d the quick brown fox\n", i);
        CHECK_EQ(weft_reader_read_until(r, '\n', line, sizeof line), n);
        CHECK(strcmp(line, want) == 0);
    }
    CHECK_EQ(weft_reader_read_until(r, '\n', line, sizeof line), 0);
    int ticks = atomic_load(&ticks_while_reading);
    atomic_store(&reading, 0);
    weft_reader_free(r);
    printf("read %d lines in %.1f ms, ticker ran %d times meanwhile\n",
           FILE_LINES, (double)(weft_now() - t0) / 1e6, ticks);
    CHECK(ticks >= 1);
    weft_wg_done(&wg);
}

static int file_lines(void) {
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    int fl = fcntl(fd, F_GETFL);
    ticking = weft_chan_make(0, 0);
    weft_wg_add(&wg, 2);
    weft_go(ticker, NULL);
    weft_recv(ticking, NULL);
    weft_go(file_reader, &fd);
    weft_wg_wait(&wg);
    weft_chan_free(ticking);
    CHECK_EQ(fcntl(fd, F_GETFL), fl); /* flags left alone */
    close(fd);
    return 0;
}

static void write_file(void) {
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < FILE_LINES; i++)
        fprintf(f, "%08d the quick brown fox\n", i);
    fclose(f);
}

static void file_writer(void) {
    char wpath[] = "/tmp/weft-bufio-w-XXXXXX";
    int fd = mkstemp(wpath);
    CHECK(fd >= 0);
    weft_writer *w = weft_writer_make(fd, 0);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(weft_writer_write(w, "0123456789", 10), 10);
    CHECK_EQ(weft_writer_free(w), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_END), 10000);
    close(fd);
    unlink(wpath);
}

int main(void) {
    TEST_BEGIN(120);
    /* the file case first: the parent must not start the runtime before
     * forking its child */
    write_file();
    static const char *const one[] = {"WEFT_PROCS=1",
                                      "ASAN_OPTIONS=detect_leaks=0", NULL};
    child c;
    child_run(file_lines, one, &c);
    unlink(path);
    printf("%s", c.out);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);

    lines_over(a_pipe());
    lines_over(a_socket());
    long_line();
    read_full();
    sticky();
    reader_ctx();
    copy_pipes();
    file_writer();
    TEST_OK();
    return 0;
}
