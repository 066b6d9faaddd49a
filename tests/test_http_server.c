/* SPDX-License-Identifier: MIT */
/*
 * Runs build/examples/http_server (found next to this test binary, as
 * ../examples/http_server) on a free loopback port with a 1 s idle
 * timeout (8 s under a sanitizer, below the clients' 10 s read timeout:
 * there 200 clients starting at once can leave a connected one waiting
 * longer than 5 s before its first request, and the server rightly closes
 * it), and checks it with raw sockets: GET / and
 * 404, keep-alive, pipelining, 400 on garbage, 431 on oversized heads, HTTP/1.0
 * closing, many concurrent keep-alive clients, and bad clients (1 MiB of
 * garbage, idle, disconnecting mid-request) that must neither stop others being
 * served nor leak descriptors: the server's /proc/<pid>/fd count returns
 * to its baseline.  The clients use weft_read/weft_write (goroutines and
 * the main thread).
 */
#include "check.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define IO_TIMEOUT WEFT_SEC(10)

static pid_t server_pid;
static int server_port;
static int server_err; /* read end of the server's stderr */

/* ---- the server process ----------------------------------------------------
 */

static void server_path(char *out, size_t n) {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(len > 0);
    self[len] = 0;
    snprintf(out, n, "%s/../examples/http_server", dirname(self));
}

static void start_server(void) {
    char path[PATH_MAX + 32];
    server_path(path, sizeof path);
    int p[2], e[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(pipe(e), 0);
    server_pid = fork();
    CHECK(server_pid >= 0);
    if (server_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failing test kills it too */
        dup2(p[1], 1);
        dup2(e[1], 2);
        close(p[0]);
        close(p[1]);
        close(e[0]);
        close(e[1]);
        execl(path, path, "0", getenv("WEFT_SANITIZER") ? "8" : "1",
              (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    close(e[1]);
    server_err = e[0];
    char line[128] = {0};
    size_t got = 0;
    while (got < sizeof line - 1 && !strchr(line, '\n')) {
        ssize_t r = weft_read_timeout(p[0], line + got, sizeof line - 1 - got,
                                      WEFT_SEC(10));
        CHECK(r > 0);
        got += (size_t)r;
    }
    close(p[0]);
    char *colon = strrchr(line, ':');
    CHECK(colon != NULL);
    server_port = atoi(colon + 1);
    CHECK(server_port > 0);
}

static int server_fds(void) {
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)server_pid);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The lowest descriptor count seen over 200 ms: connections the clients
 * just closed may take the server a moment to notice. */
static int settled_fds(void) {
    int low = server_fds();
    for (int i = 0; i < 10; i++) {
        weft_sleep(WEFT_MS(20));
        int n = server_fds();
        low = n < low ? n : low;
    }
    return low;
}

/* Wait up to 5 s for the count to come down to base. */
static void check_fds_back_to(int base) {
    int now = server_fds();
    for (int i = 0; i < 100 && now > base; i++) {
        weft_sleep(WEFT_MS(50));
        now = server_fds();
    }
    printf("server fds: baseline %d, now %d\n", base, now);
    CHECK(now <= base);
}

/* Goroutines alive in the server: SIGQUIT makes it print weft_dump on
 * stderr, one "goroutine ..." line each.  -1 under ThreadSanitizer, which
 * defers a signal that hits a worker asleep in a raw futex call until
 * that worker runs again - possibly never in an idle server. */
static int server_goroutines(void) {
    const char *san = getenv("WEFT_SANITIZER");
    if (san && strcmp(san, "thread") == 0)
        return -1;
    CHECK_EQ(kill(server_pid, SIGQUIT), 0);
    static char out[1 << 16];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof out - 1 &&
           (r = weft_read_timeout(server_err, out + len, sizeof out - 1 - len,
                                  WEFT_MS(500))) > 0)
        len += (size_t)r;
    out[len] = 0;
    int n = 0;
    for (char *l = out; l && *l;
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        n += strncmp(l, "goroutine ", 10) == 0;
    return n;
}

/* ---- a client
 * ---------------------------------------------------------------- */

typedef struct client {
    int fd;
    size_t len;
    char buf[16384];
} client;

static void client_open(client *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c->fd >= 0);
    c->len = 0;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)server_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(weft_connect_timeout(c->fd, (struct sockaddr *)&a, sizeof a,
                                  IO_TIMEOUT),
             0);
}

static void client_send(client *c, const char *s) {
    CHECK_EQ(weft_write_timeout(c->fd, s, strlen(s), IO_TIMEOUT),
             (ssize_t)strlen(s));
}

/* Buffer more input: bytes read, 0 at EOF (or a reset). */
static ssize_t client_fill(client *c) {
    CHECK(c->len < sizeof c->buf);
    ssize_t r = weft_read_timeout(c->fd, c->buf + c->len,
                                  sizeof c->buf - c->len, IO_TIMEOUT);
    CHECK(r != -ETIMEDOUT);
    if (r < 0)
        return 0;
    c->len += (size_t)r;
    return r;
}

/* Read one response: its status, and its body into body (NUL-ended).
 * Returns false at EOF before a response started. */
static bool read_response(client *c, int *status, char *body, size_t cap) {
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (client_fill(c) == 0) {
            CHECK_EQ(c->len, 0);
            return false;
        }
    *end = 0;
    CHECK(sscanf(c->buf, "HTTP/1.1 %d", status) == 1);
    char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    CHECK(cl != NULL);
    size_t blen = (size_t)atol(cl + 17);
    size_t head = (size_t)(end + 4 - c->buf);
    while (c->len < head + blen)
        CHECK(client_fill(c) > 0);
    CHECK(blen < cap);
    memcpy(body, c->buf + head, blen);
    body[blen] = 0;
    memmove(c->buf, c->buf + head + blen, c->len - head - blen);
    c->len -= head + blen;
    return true;
}

static void expect(client *c, int status, const char *body) {
    int st;
    char b[256];
    CHECK(read_response(c, &st, b, sizeof b));
    CHECK_EQ(st, status);
    if (body)
        CHECK(strcmp(b, body) == 0);
}

static void expect_eof(client *c) {
    int st;
    char b[256];
    CHECK(!read_response(c, &st, b, sizeof b));
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- checks
 * -------------------------------------------------------------------- */

static void test_basic(void) {
    client *c = malloc(sizeof *c);
    client_open(c);
    client_send(c, GET("/"));
    expect(c, 200, "hello, world");
    client_send(c, GET("/nope")); /* keep-alive: same connection */
    expect(c, 404, "404 page not found\n");
    client_send(c, GET("/?q=1"));
    expect(c, 200, "hello, world");
    /* three pipelined requests in one write, a body to skip in between */
    client_send(c, GET("/") "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: "
                            "5\r\n\r\nabcde" GET("/"));
    expect(c, 200, "hello, world");
    expect(c, 404, NULL);
    expect(c, 200, "hello, world");
    /* HEAD: a Content-Length but no body; then the server closes */
    client_send(c, "HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    while (client_fill(c) > 0)
        ;
    CHECK(c->len > 4 && memcmp(c->buf, "HTTP/1.1 200 ", 13) == 0);
    CHECK(memcmp(c->buf + c->len - 4, "\r\n\r\n", 4) == 0);
    close(c->fd);

    client_open(c); /* HTTP/1.0 closes after the response */
    client_send(c, "GET / HTTP/1.0\r\n\r\n");
    expect(c, 200, "hello, world");
    expect_eof(c);
    close(c->fd);
    free(c);
}

static void bad_request(const char *req, int status) {
    client *c = malloc(sizeof *c);
    client_open(c);
    client_send(c, req);
    expect(c, status, NULL);
    expect_eof(c);
    close(c->fd);
    free(c);
}

static void test_errors(void) {
    bad_request("garbage\r\n\r\n", 400);
    bad_request("\x01\x02\x03", 400);
    bad_request("GET / HTTP/1.1\r\n\r\n", 400);           /* no Host */
    bad_request("GET / HTTP/1.1\r\nHost t\r\n\r\n", 400); /* no colon */
    bad_request("GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
                "\r\n\r\n",
                501);
    char *big = malloc(9000 + 64);
    strcpy(big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    size_t n = strlen(big);
    memset(big + n, 'a', 9000);
    big[n + 9000] = 0;
    bad_request(big, 431);
    free(big);
}

/* Many goroutines, each with its own keep-alive connection. */
struct load {
    atomic_int ok;
    weft_wg wg;
};

static void load_client(void *arg) {
    struct load *l = arg;
    client *c = malloc(sizeof *c);
    client_open(c);
    for (int i = 0; i < 20; i++) {
        client_send(c, i % 5 ? GET("/") : GET("/missing"));
        expect(c, i % 5 ? 200 : 404, NULL);
    }
    close(c->fd);
    free(c);
    atomic_fetch_add(&l->ok, 1);
    weft_wg_done(&l->wg);
}

static void test_load(void) {
    struct load l = {0};
    int n = 200;
    weft_wg_add(&l.wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go(load_client, &l), 0);
    weft_wg_wait(&l.wg);
    CHECK_EQ(atomic_load(&l.ok), n);
}

/* 1 MiB of garbage: the server answers 400, drains, closes. */
static void garbage_client(void *arg) {
    size_t n = (size_t)1 << 20;
    char *junk = malloc(n);
    memset(junk, 0x01, n);
    client *c = malloc(sizeof *c);
    client_open(c);
    ssize_t w = weft_write_timeout(c->fd, junk, n, IO_TIMEOUT);
    CHECK(w == (ssize_t)n || w == -EPIPE || w == -ECONNRESET);
    int st;
    char b[64];
    if (read_response(c, &st, b, sizeof b))
        CHECK_EQ(st, 400);
    close(c->fd);
    free(c);
    free(junk);
    weft_wg_done(arg);
}

static void test_bad_clients(void) {
    int base = settled_fds();
    client *idle = malloc(sizeof *idle), *half = malloc(sizeof *half),
           *normal = malloc(sizeof *normal);
    client_open(idle); /* connects, never writes */
    client_open(half); /* disconnects mid-request */
    client_send(half, "GET / HTTP/1.1\r\nHo");
    close(half->fd);
    weft_wg wg = {0};
    weft_wg_add(&wg, 1);
    CHECK_EQ(weft_go(garbage_client, &wg), 0);
    client_open(normal); /* is served meanwhile */
    for (int i = 0; i < 10; i++) {
        client_send(normal, GET("/"));
        expect(normal, 200, "hello, world");
    }
    int live = server_goroutines();
    CHECK(live < 0 || live >= 1); /* the dump does count them */
    close(normal->fd);
    weft_wg_wait(&wg);
    /* the idle connection is closed by the server after its idle timeout */
    int64_t t0 = weft_now();
    expect_eof(idle);
    CHECK(weft_now() - t0 < WEFT_SEC(getenv("WEFT_SANITIZER") ? 13 : 8));
    close(idle->fd);
    free(idle);
    free(half);
    free(normal);
    check_fds_back_to(base); /* every connection's descriptor is gone */
}

int main(void) {
    TEST_BEGIN(120);
    start_server();
    test_basic(); /* also starts the server's runtime (epoll, eventfd) */
    int base = settled_fds();
    test_errors();
    test_load();
    test_bad_clients();
    check_fds_back_to(base);
    /* no connection goroutine leaked (the last may still be returning) */
    int live = server_goroutines();
    for (int i = 0; i < 20 && live > 0; i++) {
        weft_sleep(WEFT_MS(100));
        live = server_goroutines();
    }
    CHECK(live <= 0);
    kill(server_pid, SIGKILL);
    int status;
    CHECK_EQ(waitpid(server_pid, &status, 0), server_pid);
    CHECK(WIFSIGNALED(status)); /* it was still running: it never crashed */
    TEST_OK();
    return 0;
}
