/* SPDX-License-Identifier: MIT */
/*
 * http_server: a minimal HTTP/1.1 server, one goroutine per connection,
 * written as straight-line blocking code over weft_read/weft_write.
 *
 *   http_server [port [idle_seconds]]     (listens on 127.0.0.1; port 0 =
 *                                          any; prints the port it got)
 *
 * Behaviour (the same as bench/go/http for the requests below):
 *   - GET (or HEAD) / -> 200 "hello, world"; any other path -> 404.
 *   - Keep-alive (HTTP/1.1 default, HTTP/1.0 on request); pipelined
 *     requests are answered in order, several per read, and their
 *     responses go out together in one write.
 *   - A malformed request -> 400 and close; a request line plus headers
 *     over 8 KiB -> 431 and close; a body (Content-Length) is read and
 *     dropped; Transfer-Encoding -> 501 and close.
 *   - A connection idle for idle_seconds (default 10) is closed (within a
 *     quarter more): one reaper goroutine for the server rather than a
 *     timer per read, which under load costs more than the read.
 *   - Closing after an error drains what the client still sends (for up to
 *     2 s) before close(2), so the response is not lost to a TCP reset.
 *
 * A connection's state (its buffers) is one heap block owned by its
 * goroutine; parse() works on the bytes buffered so far and returns
 * "incomplete" until a whole head is there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#define HEAD_MAX 8192        /* request line and headers */
#define BODY_MAX (1 << 20)   /* larger bodies get 413 */
#define OUT_MAX 4096         /* responses batched before a write */
#define DRAIN_NS WEFT_SEC(2) /* lingering close */

static int64_t idle_ns = WEFT_SEC(10);

typedef struct conn {
    int fd;
    atomic_uint seen;         /* the reaper's tick at the last read */
    struct conn *prev, *next; /* the live connections (reaper.mu) */
    size_t len;               /* bytes buffered in in[] */
    size_t skip;              /* body bytes still to drop */
    size_t olen;
    char in[HEAD_MAX];
    char out[OUT_MAX];
} conn;

typedef struct request {
    bool head;       /* HEAD: no body in the response */
    bool root;       /* path is "/" */
    bool keep_alive; /* the connection stays open afterwards */
    size_t body;     /* Content-Length */
} request;

/* parse() results besides "n bytes consumed" */
enum {
    INCOMPLETE = 0,
    BAD = -400,
    TOO_BIG = -413,
    TOO_LONG = -431,
    NOT_IMPL = -501
};

/* ---- parsing ------------------------------------------------------------- */

/* RFC 9110's tchar, as a table: the parser asks once per byte of every
 * method and header name.  Filled by tchar_init, before any connection. */
static bool tchar[256];

static void tchar_init(void) {
    for (int c = 0; c < 256; c++)
        tchar[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') ||
                   (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_tchar(unsigned char c) {
    return tchar[c];
}

static bool is_vchar(unsigned char c) {
    return c > 32 && c < 127;
}

/* A whole token list (Connection: a, b) contains tok, ignoring case. */
static bool has_token(const char *v, size_t n, const char *tok) {
    size_t tl = strlen(tok);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return true;
    }
    return false;
}

static bool parse_length(const char *v, size_t n, size_t *out) {
    if (n == 0 || n > 10)
        return false;
    size_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (size_t)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* "METHOD SP target SP HTTP/1.x"; fills head/root/keep_alive default. */
static int parse_request_line(const char *p, size_t n, request *r,
                              bool *http11) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return BAD;
    r->head = i == 4 && memcmp(p, "HEAD", 4) == 0;
    size_t t = ++i;
    while (i < n && is_vchar((unsigned char)p[i]))
        i++;
    if (i == t || i >= n || p[i] != ' ')
        return BAD;
    size_t path_end = t;
    while (path_end < i && p[path_end] != '?')
        path_end++;
    r->root = path_end - t == 1 && p[t] == '/';
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 ||
        (p[i + 7] != '0' && p[i + 7] != '1'))
        return BAD;
    *http11 = p[i + 7] == '1';
    r->keep_alive = *http11;
    return 0;
}

/* One header line (no CRLF).  Updates r; *host is set by a Host header. */
static int parse_header(const char *p, size_t n, request *r, bool *host,
                        bool *has_length) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ':')
        return BAD;
    size_t name_len = i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t end = n;
    while (end > i && (p[end - 1] == ' ' || p[end - 1] == '\t'))
        end--;
    for (size_t k = i; k < end; k++)
        if ((unsigned char)p[k] < 32 && p[k] != '\t')
            return BAD;
    const char *v = p + i;
    size_t vn = end - i;
#define NAME_IS(s) (name_len == sizeof(s) - 1 && !strncasecmp(p, s, name_len))
    if (NAME_IS("Host")) {
        *host = true;
    } else if (NAME_IS("Content-Length")) {
        size_t len;
        if (*has_length || !parse_length(v, vn, &len))
            return BAD;
        if (len > BODY_MAX)
            return TOO_BIG;
        *has_length = true;
        r->body = len;
    } else if (NAME_IS("Transfer-Encoding")) {
        return NOT_IMPL;
    } else if (NAME_IS("Connection")) {
        if (has_token(v, vn, "close"))
            r->keep_alive = false;
        else if (has_token(v, vn, "keep-alive"))
            r->keep_alive = true;
    }
#undef NAME_IS
    return 0;
}

/* Reject obvious garbage before a whole line arrived: the method must be a
 * token followed by a space. */
static int check_prefix(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ')
            return i ? INCOMPLETE : BAD;
        if (!is_tchar((unsigned char)p[i]))
            return BAD;
    }
    return INCOMPLETE;
}

/* Parse one request head from p[0..n): bytes consumed (> 0), INCOMPLETE,
 * or a negative status. */
static int parse(const char *p, size_t n, request *r) {
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    const char *eol = memmem(p, n, "\r\n", 2);
    if (!eol)
        return check_prefix(p, n);
    bool http11 = false, host = false, has_length = false;
    *r = (request){0};
    int e = parse_request_line(p, (size_t)(eol - p), r, &http11);
    if (e < 0 || !end)
        return e;
    for (const char *line = eol + 2; line < end + 2;) {
        const char *le = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        e = parse_header(line, (size_t)(le - line), r, &host, &has_length);
        if (e < 0)
            return e;
        line = le + 2;
    }
    if (http11 && !host)
        return BAD;
    return (int)(end + 4 - p);
}

/* ---- responses ------------------------------------------------------------
 */

/* The Date header's value, formatted once per second per thread.  No weft
 * call happens while it is used, so the thread cannot change under it. */
static const char *http_date(void) {
    static __thread time_t cached;
    static __thread char buf[40];
    time_t now = time(NULL);
    if (now != cached) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = now;
    }
    return buf;
}

static bool flush(conn *c) {
    ssize_t w = c->olen ? weft_write(c->fd, c->out, c->olen) : 0;
    c->olen = 0;
    return w >= 0;
}

static const char *reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 413:
        return "Request Entity Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    default:
        return "Bad Request";
    }
}

/* Queue a response; the body is sent unless head is set. */
static bool respond(conn *c, int status, const char *body, bool head,
                    bool keep_alive) {
    char buf[512];
    int n =
        snprintf(buf, sizeof buf,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Length: %zu\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Date: %s\r\n"
                 "%s\r\n"
                 "%s",
                 status, reason(status), strlen(body), http_date(),
                 keep_alive ? "" : "Connection: close\r\n", head ? "" : body);
    if (c->olen + (size_t)n > OUT_MAX && !flush(c))
        return false;
    memcpy(c->out + c->olen, buf, (size_t)n);
    c->olen += (size_t)n;
    return true;
}

static bool respond_error(conn *c, int status) {
    char body[64];
    snprintf(body, sizeof body, "%d %s", status, reason(status));
    return respond(c, status, body, false, false);
}

/* ---- idle connections --------------------------------------------------- */

/* The reaper ticks TICKS times per idle timeout and shuts down (both ways)
 * any connection whose last read is over TICKS ticks old: a connection
 * blocked reading then sees the end of the stream, one blocked writing an
 * error, and its goroutine closes it.  A connection leaves the list before
 * its descriptor is closed, so the number shut down is always its own. */
#define TICKS 4

static struct {
    weft_mutex mu;
    conn *head;
    atomic_uint tick;
} reaper;

static void conn_link(conn *c) {
    atomic_init(&c->seen,
                atomic_load_explicit(&reaper.tick, memory_order_relaxed));
    weft_mutex_lock(&reaper.mu);
    c->prev = NULL;
    c->next = reaper.head;
    if (reaper.head)
        reaper.head->prev = c;
    reaper.head = c;
    weft_mutex_unlock(&reaper.mu);
}

static void conn_unlink(conn *c) {
    weft_mutex_lock(&reaper.mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        reaper.head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    weft_mutex_unlock(&reaper.mu);
}

/* A plain thread: it is the server's, not a connection's goroutine. */
static void *reap(void *arg) {
    (void)arg;
    while (weft_sleep(idle_ns / TICKS) == 0) {
        unsigned now =
            atomic_fetch_add_explicit(&reaper.tick, 1, memory_order_relaxed) +
            1;
        weft_mutex_lock(&reaper.mu);
        for (conn *c = reaper.head; c; c = c->next)
            if (now - atomic_load_explicit(&c->seen, memory_order_relaxed) >
                TICKS)
                shutdown(c->fd, SHUT_RDWR);
        weft_mutex_unlock(&reaper.mu);
    }
    return NULL;
}

/* ---- a connection -----------------------------------------------------------
 */

/* Close after a final response: stop sending, then read and drop what the
 * client still sends until it closes or DRAIN_NS pass. */
static void lingering_close(int fd) {
    shutdown(fd, SHUT_WR);
    char buf[4096];
    int64_t deadline = weft_now() + DRAIN_NS;
    for (int64_t left; (left = deadline - weft_now()) > 0;)
        if (weft_read_timeout(fd, buf, sizeof buf, left) <= 0)
            break;
    close(fd);
}

enum { MORE, DONE, FAIL };

/* Answer every complete request buffered; MORE wants more input, DONE
 * means close after flushing, FAIL close at once. */
static int serve_buffered(conn *c) {
    size_t off = 0;
    int verdict = MORE;
    while (verdict == MORE) {
        size_t drop = c->skip < c->len - off ? c->skip : c->len - off;
        off += drop;
        c->skip -= drop;
        if (c->skip)
            break;
        request r;
        int n = parse(c->in + off, c->len - off, &r);
        if (n == INCOMPLETE)
            break;
        if (n < 0) {
            verdict = respond_error(c, -n) ? DONE : FAIL;
            break;
        }
        off += (size_t)n;
        c->skip = r.body;
        bool ok = r.root ? respond(c, 200, "hello, world", r.head, r.keep_alive)
                         : respond(c, 404, "404 page not found\n", r.head,
                                   r.keep_alive);
        if (!ok)
            verdict = FAIL;
        else if (!r.keep_alive)
            verdict = DONE;
    }
    memmove(c->in, c->in + off, c->len - off);
    c->len -= off;
    if (verdict == MORE && c->len == HEAD_MAX)
        verdict = respond_error(c, 431) ? DONE : FAIL;
    return verdict;
}

static void serve(void *arg) {
    conn *c = arg;
    int verdict = MORE;
    conn_link(c);
    while (verdict == MORE) {
        ssize_t n = weft_read(c->fd, c->in + c->len, HEAD_MAX - c->len);
        if (n <= 0) { /* closed, reset, or idle too long (reap) */
            verdict = FAIL;
            break;
        }
        atomic_store_explicit(
            &c->seen, atomic_load_explicit(&reaper.tick, memory_order_relaxed),
            memory_order_relaxed);
        c->len += (size_t)n;
        verdict = serve_buffered(c);
        if (verdict != FAIL && !flush(c))
            verdict = FAIL;
    }
    conn_unlink(c);
    if (verdict == DONE)
        lingering_close(c->fd);
    else
        close(c->fd);
    free(c);
}

/* ---- main: the accept loop (a plain thread)
 * ----------------------------------- */

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror("http_server: listen");
        exit(1);
    }
    printf("http_server listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2)
        idle_ns = WEFT_SEC(atoi(argv[2]));
    tchar_init();
    int lfd = listen_on(port);
    pthread_t reaper_thread;
    if (pthread_create(&reaper_thread, NULL, reap, NULL) != 0) {
        fputs("http_server: cannot start the reaper\n", stderr);
        return 1;
    }
    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL);
        if (fd < 0) { /* EMFILE and friends: back off, then go on */
            weft_sleep(WEFT_MS(10));
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = malloc(sizeof *c);
        if (c) {
            c->fd = fd;
            c->len = c->skip = c->olen = 0;
        }
        if (!c || weft_go(serve, c) != 0) {
            free(c);
            close(fd);
        }
    }
}
