/* SPDX-License-Identifier: MIT */
/*
 * http_epoll: the ceiling for examples/http_server.c, written without weft.
 * One thread per core, each with its own SO_REUSEPORT listener and its own
 * edge-triggered epoll set; connections never leave the thread that
 * accepted them, so nothing is shared and nothing is locked.
 *
 *   http_epoll [port [threads]]    (127.0.0.1; port 0 = any, printed;
 *                                   threads default: the online cores)
 *
 * The same answers as the example server for what wrk sends: GET or HEAD /
 * -> 200 "hello, world", any other path -> 404, the same headers (the Date
 * formatted when the second changed), keep-alive (HTTP/1.1 by default, HTTP/1.0
 * on request), pipelined requests answered in order with one write per read.
 * The per-request work is the example server's too (the head found with
 * memmem, the response formatted with snprintf), so the requests/s ratio
 * between the two measures the runtime rather than the parser.  A bad
 * head gets 400 (431 when over 8 KiB, 501 for Transfer-Encoding) and the
 * connection is shut down after the write; there is no idle timeout (wrk
 * needs none), and no time limit on the lingering close either.
 *
 * Edge-triggered reads stop at a short read: for a stream socket it means
 * the receive queue was empty, and new data raises a new edge (epoll(7)),
 * so the EAGAIN read that would only confirm it is saved.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define OUT_MAX 4096
#define EVENTS 256

struct conn {
    int fd;
    bool closing; /* the last response is queued */
    size_t len;   /* bytes in in[] */
    size_t body;  /* body bytes of the last request still to drop */
    size_t olen, osent;
    char in[HEAD_MAX];
    char out[OUT_MAX];
};

static const struct {
    int status;
    const char *text;
} reasons[] = {{200, "OK"},
               {404, "Not Found"},
               {431, "Request Header Fields Too Large"},
               {501, "Not Implemented"}};

static const char *status_text(int status) {
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Bad Request";
}

/* The Date value, per thread: refreshed once per epoll_wait round, which
 * is as often as the clock's second can have changed for its answers. */
static __thread struct {
    time_t at;
    char text[40];
} date;

static void date_refresh(void) {
    struct tm tm;
    time_t t = time(NULL);
    if (t != date.at && gmtime_r(&t, &tm)) {
        strftime(date.text, sizeof date.text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        date.at = t;
    }
}

/* Writes what out[] holds; false when the connection is gone. */
static bool send_out(struct conn *c) {
    while (c->osent < c->olen) {
        ssize_t w = write(c->fd, c->out + c->osent, c->olen - c->osent);
        if (w < 0)
            return errno == EAGAIN; /* EPOLLOUT resumes */
        c->osent += (size_t)w;
    }
    c->olen = c->osent = 0;
    return true;
}

/* send_out, then the lingering close of the example server once the last
 * response is out: no more sending, and the connection is dropped when the
 * client closes its side, so a reset cannot destroy that response. */
static bool flushed(struct conn *c) {
    if (!send_out(c))
        return false;
    if (c->closing && c->olen == 0)
        shutdown(c->fd, SHUT_WR);
    return true;
}

static bool add_response(struct conn *c, int status, bool head, bool close) {
    char body[64];
    if (status == 200)
        snprintf(body, sizeof body, "hello, world");
    else if (status == 404)
        snprintf(body, sizeof body, "404 page not found\n");
    else
        snprintf(body, sizeof body, "%d %s", status, status_text(status));
    char resp[512];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Date: %s\r\n%s\r\n%s",
                     status, status_text(status), strlen(body), date.text,
                     close ? "Connection: close\r\n" : "", head ? "" : body);
    if (c->olen + (size_t)n > OUT_MAX) {
        /* a full buffer the socket cannot take either: the client is not
         * reading; drop it rather than buffer without bound */
        if (!send_out(c) || c->olen)
            return false;
    }
    memcpy(c->out + c->olen, resp, (size_t)n);
    c->olen += (size_t)n;
    return true;
}

/* Case-insensitive: does the header line [p, e) carry name's value v? */
static bool header_is(const char *p, const char *e, const char *name,
                      const char **v) {
    size_t k = strlen(name);
    if ((size_t)(e - p) <= k || p[k] != ':' || strncasecmp(p, name, k) != 0)
        return false;
    for (p += k + 1; p < e && (*p == ' ' || *p == '\t'); p++)
        ;
    *v = p;
    return true;
}

/* The status for the head [p, p + n) (n includes the blank line), with
 * *head, *close and *body filled in. */
static int judge(const char *p, size_t n, bool *head, bool *close,
                 size_t *body) {
    const char *end = p + n - 2, *eol = memmem(p, n, "\r\n", 2);
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : 0;
    if (!sp1 || sp1 == p || !sp2 || sp2 == sp1 + 1 || eol - sp2 != 9 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
        return 400;
    bool http11 = sp2[8] == '1', host = false;
    *head = sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0;
    *close = !http11;
    *body = 0;
    for (const char *l = eol + 2; l < end;) {
        const char *le = memmem(l, (size_t)(end + 2 - l), "\r\n", 2), *v;
        if (!memchr(l, ':', (size_t)(le - l)))
            return 400;
        if (header_is(l, le, "Host", &v)) {
            host = true;
        } else if (header_is(l, le, "Content-Length", &v)) {
            char *stop;
            unsigned long long x = strtoull(v, &stop, 10);
            if (stop == v || stop != le || x > (1u << 20))
                return 400;
            *body = (size_t)x;
        } else if (header_is(l, le, "Transfer-Encoding", &v)) {
            return 501;
        } else if (header_is(l, le, "Connection", &v)) {
            if (memmem(v, (size_t)(le - v), "close", 5))
                *close = true;
            else if (strncasecmp(v, "keep-alive", 10) == 0)
                *close = false;
        }
        l = le + 2;
    }
    if (http11 && !host)
        return 400;
    size_t plen = (size_t)(sp2 - sp1 - 1);
    const char *q = memchr(sp1 + 1, '?', plen);
    if (q)
        plen = (size_t)(q - sp1 - 1);
    return plen == 1 && sp1[1] == '/' ? 200 : 404;
}

/* Answers every complete request in in[]; false: close the connection. */
static bool serve(struct conn *c) {
    size_t off = 0;
    while (!c->closing) {
        size_t drop = c->body < c->len - off ? c->body : c->len - off;
        off += drop;
        c->body -= drop;
        if (c->body)
            break;
        const char *p = c->in + off;
        const char *e = memmem(p, c->len - off, "\r\n\r\n", 4);
        if (!e)
            break;
        bool head, close;
        size_t n = (size_t)(e + 4 - p);
        int status = judge(p, n, &head, &close, &c->body);
        if (status != 200 && status != 404)
            close = true, head = false;
        if (!add_response(c, status, head, close))
            return false;
        c->closing = close;
        off += n;
    }
    memmove(c->in, c->in + off, c->len - off);
    c->len -= off;
    if (!c->closing && c->len == HEAD_MAX) {
        if (!add_response(c, 431, false, true))
            return false;
        c->closing = true;
    }
    return flushed(c);
}

/* Reads until the socket is drained; false: close the connection. */
static bool readable(struct conn *c) {
    for (;;) {
        if (c->closing)
            c->len = 0; /* answered for good: what still comes is dropped */
        size_t want = HEAD_MAX - c->len;
        ssize_t n = read(c->fd, c->in + c->len, want);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN;
        c->len += (size_t)n;
        if (!c->closing && !serve(c))
            return false;
        if ((size_t)n < want)
            return true;
    }
}

static void drop(struct conn *c) {
    close(c->fd); /* leaves the epoll set with it */
    free(c);
}

static void accept_all(int lfd, int ep) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: all taken; EMFILE and friends: next edge */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = malloc(sizeof *c);
        struct epoll_event ev = {
            .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->closing = false;
        c->len = c->body = c->olen = c->osent = 0;
    }
}

static int listener(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        perror("http_epoll: listen");
        exit(1);
    }
    return fd;
}

static void *loop(void *arg) {
    int lfd = (int)(intptr_t)arg, ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("http_epoll: epoll");
        exit(1);
    }
    struct epoll_event evs[EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, EVENTS, -1);
        date_refresh();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (!c) {
                accept_all(lfd, ep);
                continue;
            }
            bool ok = !(e & EPOLLERR);
            if (ok && (e & EPOLLOUT) && c->olen)
                ok = flushed(c);
            if (ok && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
                ok = readable(c);
            if (!ok)
                drop(c);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    long threads = argc > 2 ? atol(argv[2]) : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    int first = listener(port);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(first, (struct sockaddr *)&a, &len) < 0) {
        perror("http_epoll: getsockname");
        return 1;
    }
    port = ntohs(a.sin_port); /* the others share the port 0 picked */
    printf("http_epoll listening on 127.0.0.1:%d (%ld threads)\n", port,
           threads);
    fflush(stdout);
    for (long i = 1; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, loop, (void *)(intptr_t)listener(port))) {
            fputs("http_epoll: pthread_create failed\n", stderr);
            return 1;
        }
    }
    loop((void *)(intptr_t)first);
    return 0;
}
