/* SPDX-License-Identifier: MIT */
/*
 * The descriptor calls: weft_wait_fd, weft_read, weft_write, weft_accept,
 * weft_connect, their _timeout and _ctx variants, and weft__connect for
 * the dialler.  Built on the netpoller's wait records (netpoll.c) and the
 * waiter.
 *
 * Plain threads never touch records: they wait in poll(2), which needs no
 * poller and blocks just that thread.
 *
 * Descriptor flags.  Sockets are used with MSG_DONTWAIT, so their flags
 * stay as the user set them; weft_connect sets O_NONBLOCK for the duration
 * of the call only.  A listening socket passed to weft_accept and any
 * non-socket descriptor (pipe, FIFO, tty) passed to weft_read/weft_write
 * are switched to O_NONBLOCK for good: there is no per-call flag for them.
 * Regular files, block devices and directories keep their flags: epoll
 * cannot wait on them (EPERM), they are always "ready", and read(2) and
 * write(2) on them block the calling thread (a worker, for a goroutine)
 * for the disk's time whatever the flags say.
 */
#include "fdio.h"
#include "netpoll.h"
#include "runtime.h"
#include "sched.h"
#include "sync.h"
#include "sys.h"
#include "waiter.h"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- waiting for a descriptor ------------------------------------------- */

static const char *wait_why(int events) {
    return events & WEFT_READABLE ? "fd read" : "fd write";
}

/* Park the calling goroutine until an event for events arrives on fd after
 * seq was read, deadline passes or ctx (NULL: none) ends; verify: check the
 * registration of an owned record too (netpoll.c).  0 (try again),
 * -ETIMEDOUT, ctx's error, -errno. */
static int park_fd(int fd, weft__fdrec *r, int events, const unsigned seq[NDIR],
                   int64_t deadline, weft_ctx *ctx, bool verify) {
    if (deadline >= 0 && weft_now() >= deadline)
        return -ETIMEDOUT;
    int e = weft__fd_register(fd, r, verify);
    if (e != 0)
        return e > 0 ? 0 : e;
    weft__park p;
    weft__wnode n[NDIR] = {{.park = &p}, {.park = &p}};
    weft__park_init(&p, wait_why(events), (const void *)(intptr_t)fd);
    p.multi = events == BOTH; /* one node per queue: wakers must race */
    weft__lock_acquire(&r->lock);
    for (int d = 0; d < NDIR; d++)
        if ((events & (1 << d)) &&
            atomic_load_explicit(&r->seq[d], memory_order_relaxed) != seq[d]) {
            weft__lock_release(&r->lock);
            return 0;
        }
    /* linked last, under the lock: from here this goroutine blocks for
     * sure, which is what a hook that claims the park relies on */
    weft__ctx_wait cw;
    if (ctx && (e = weft__ctx_wait_begin(&cw, ctx, &p, -1)) != 0) {
        weft__lock_release(&r->lock);
        return e;
    }
    weft__fd_parking(r);
    for (int d = 0; d < NDIR; d++)
        if (events & (1 << d))
            weft__wq_push(&r->q[d], &n[d]);
    weft__netpoll_waits(1);
    int res = weft__block(&p, deadline, weft__unlock_cb, &r->lock);
    weft__netpoll_waits(-1);
    if (res < 0 || events == BOTH || ctx) {
        /* nodes the poller did not pop are still queued */
        weft__lock_acquire(&r->lock);
        for (int d = 0; d < NDIR; d++)
            if (events & (1 << d))
                weft__wq_remove(&r->q[d], &n[d]);
        weft__lock_release(&r->lock);
    }
    if (ctx && (e = weft__ctx_wait_end(&cw)) != 0)
        return e;
    return res;
}

/* Requested events that revents reports: hang-up and error count as all of
 * them.  -EBADF for a closed descriptor. */
static int ready_mask(short revents, int events) {
    if (revents & POLLNVAL)
        return -EBADF;
    if (revents & (POLLHUP | POLLERR))
        return events;
    int m = 0;
    if (revents & (POLLIN | POLLPRI | POLLRDHUP))
        m |= WEFT_READABLE;
    if (revents & POLLOUT)
        m |= WEFT_WRITABLE;
    return m & events;
}

/* One poll(2) of fd for ms milliseconds (-1 forever), and of the eventfd
 * efd too unless it is -1: the ready mask, 0 when nothing is ready yet (or
 * only efd), or -errno. */
static int poll_once(int fd, int events, int efd, int ms) {
    struct pollfd pfd[2] = {
        {.fd = fd,
         .events = (short)((events & WEFT_READABLE ? POLLIN | POLLRDHUP : 0) |
                           (events & WEFT_WRITABLE ? POLLOUT : 0))},
        {.fd = efd, .events = POLLIN},
    };
    int n = (int)weft__sys(poll(pfd, efd >= 0 ? 2 : 1, ms));
    if (n < 0)
        return n == -EINTR ? 0 : n;
    return n ? ready_mask(pfd[0].revents, events) : 0;
}

/* Milliseconds until deadline, rounded up; -1 for no deadline. */
static int ms_until(int64_t deadline) {
    if (deadline < 0)
        return -1;
    int64_t left = deadline - weft_now();
    if (left <= 0)
        return 0;
    left = (left + 999999) / 1000000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* A plain thread blocks in poll(2): the ready mask, -ETIMEDOUT, ctx's
 * error, or -errno.  It is listed as blocked (weft_dump) and counted as a
 * descriptor wait.  A context that can end gets an eventfd of this wait's
 * own, which the context's hook writes: a poll(2) cannot be woken
 * otherwise, and a descriptor per wait needs no cleanup per thread. */
static int thread_wait(int fd, int events, int64_t deadline, weft_ctx *ctx) {
    weft__ctx_wait cw;
    int efd = -1;
    if (ctx && weft_ctx_done(ctx)) {
        efd = (int)weft__sys(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (efd < 0)
            return efd;
        int e = weft__ctx_wait_begin(&cw, ctx, NULL, efd);
        if (e) {
            close(efd);
            return e;
        }
    }
    weft__park p;
    weft__park_init(&p, wait_why(events), (const void *)(intptr_t)fd);
    weft__thread_blocked(&p, true);
    weft__netpoll_waits(1);
    int m;
    for (;;) {
        m = poll_once(fd, events, efd, ms_until(deadline));
        if (m != 0 ||
            (efd >= 0 && atomic_load_explicit(&cw.done, memory_order_acquire)))
            break;
        if (deadline >= 0 && weft_now() >= deadline) {
            m = -ETIMEDOUT;
            break;
        }
    }
    weft__netpoll_waits(-1);
    weft__thread_blocked(&p, false);
    if (efd >= 0) {
        int e = weft__ctx_wait_end(&cw);
        close(efd);
        if (e)
            return e;
    }
    return m;
}

/* Wait until poll(2) reports fd ready for events: the mask, -ETIMEDOUT,
 * -errno.  A goroutine re-checks after each wake, so a stray event never
 * makes it return early.  verify: as park_fd's. */
static int fd_wait(int fd, int events, int64_t deadline, weft_ctx *ctx,
                   bool verify) {
    if (!weft__curg())
        return thread_wait(fd, events, deadline, ctx);
    weft__fdrec *r = weft__fd_rec(fd);
    if (!r)
        return -ENOMEM;
    for (;;) {
        unsigned seq[NDIR];
        weft__fd_seq_load(r, seq);
        int m = poll_once(fd, events, -1, 0);
        if (m != 0)
            return m;
        int e = park_fd(fd, r, events, seq, deadline, ctx, verify);
        if (e < 0)
            return e;
    }
}

int weft_wait_fd(int fd, int events, int64_t timeout_ns) {
    if (events == 0 || (events & ~BOTH))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    weft__ensure();
    return fd_wait(fd, events, weft__deadline(timeout_ns), NULL, true);
}

/* ---- the I/O loop ------------------------------------------------------- */

typedef struct io {
    int fd;
    void *buf; /* read destination or write source */
    size_t n;
    struct sockaddr *addr;
    socklen_t *alen;
    weft_ctx *ctx; /* the _ctx variants' context, else NULL */
    bool nonsock;  /* not a socket: plain read/write (see to_nonsock) */
    bool reading;  /* a read: the drained hint applies (netpoll.c) */
} io;

/* Set O_NONBLOCK on fd, except on a file epoll cannot wait on (a regular
 * file, a block device, a directory): reads and writes there never say
 * EAGAIN, so the flag would change nothing for weft, only the file's
 * flags behind its owner's back. */
static int set_nonblock(int fd) {
    int fl = (int)weft__sys(fcntl(fd, F_GETFL));
    if (fl < 0 || (fl & O_NONBLOCK))
        return fl < 0 ? fl : 0;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -weft_errno();
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
        return 0;
    return (int)weft__sys(fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

/* A socket call failed with ENOTSOCK: switch o to the non-socket path.
 * The file is not one weft made, whatever its record says. */
static int to_nonsock(io *o) {
    weft__fd_disown(o->fd);
    int e = set_nonblock(o->fd);
    if (e == 0)
        o->nonsock = true;
    return e;
}

/* write(2) with SIGPIPE blocked in this thread; a SIGPIPE it raised is
 * consumed before the old mask returns, so the process never sees it. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t n) {
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    ssize_t r = weft__sys(write(fd, buf, n));
    if (r == -EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

/* One read or write attempt; a descriptor that turns out not to be a
 * socket switches to the non-socket path (see to_nonsock) and retries. */
static ssize_t transfer(io *o, bool writing) {
    for (;;) {
        ssize_t r;
        if (o->nonsock)
            r = writing ? write_nosigpipe(o->fd, o->buf, o->n)
                        : weft__sys(read(o->fd, o->buf, o->n));
        else
            r = weft__sys(
                writing ? send(o->fd, o->buf, o->n, MSG_DONTWAIT | MSG_NOSIGNAL)
                        : recv(o->fd, o->buf, o->n, MSG_DONTWAIT));
        if (r == -EINTR)
            continue;
        if (r != -ENOTSOCK || o->nonsock)
            return r;
        int e = to_nonsock(o);
        if (e < 0)
            return e;
    }
}

static ssize_t read_op(io *o) {
    return transfer(o, false);
}

static ssize_t write_op(io *o) {
    return transfer(o, true);
}

static ssize_t accept_op(io *o) {
    for (;;) {
        ssize_t c = weft__sys(
            accept4(o->fd, o->addr, o->alen, SOCK_NONBLOCK | SOCK_CLOEXEC));
        /* ECONNABORTED: reset while queued; wait for the next one */
        if (c != -EINTR && c != -ECONNABORTED)
            return c;
    }
}

/* The drained hint (netpoll.c): a read now would say EAGAIN, seq being
 * seq[RD] before it.  A hint serves once. */
static bool drained(weft__fdrec *r, unsigned seq) {
    if (!atomic_load_explicit(&r->drained, memory_order_relaxed))
        return false;
    atomic_store_explicit(&r->drained, false, memory_order_relaxed);
    return atomic_load_explicit(&r->hint_seq, memory_order_relaxed) == seq;
}

/* Whether fd, r's registered file, is a TCP socket: learnt once per file. */
static bool is_tcp(int fd, weft__fdrec *r) {
    unsigned char k = atomic_load_explicit(&r->kind, memory_order_relaxed);
    if (k == FD_UNKNOWN) {
        int proto = 0;
        socklen_t len = sizeof proto;
        unsigned char now =
            getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
                    proto == IPPROTO_TCP
                ? FD_TCP
                : FD_OTHER;
        if (atomic_compare_exchange_strong_explicit(
                &r->kind, &k, now, memory_order_relaxed, memory_order_relaxed))
            k = now;
    }
    return k == FD_TCP;
}

/* A read of o returned x, seq[RD] being seq before it: a short one from a
 * TCP socket leaves the drained hint. */
static void note_read(io *o, weft__fdrec *r, ssize_t x, unsigned seq) {
    if (x > 0 && (size_t)x < o->n && !o->nonsock && is_tcp(o->fd, r)) {
        atomic_store_explicit(&r->hint_seq, seq, memory_order_relaxed);
        atomic_store_explicit(&r->drained, true, memory_order_relaxed);
    }
}

/* Run op until it does not say -EAGAIN, waiting for events in between. */
static ssize_t io_loop(io *o, int events, int64_t deadline,
                       ssize_t (*op)(io *)) {
    if (o->ctx) {
        int e = weft_ctx_err(o->ctx);
        if (e)
            return e; /* as Go: a context that has ended fails at once */
    }
    weft__fdrec *r = NULL;
    if (weft__curg() && !(r = weft__fd_rec(o->fd)))
        return -ENOMEM;
    for (;;) {
        unsigned seq[NDIR] = {0, 0};
        if (r)
            weft__fd_seq_load(r, seq);
        bool hint = r && o->reading;
        ssize_t x = hint && drained(r, seq[RD]) ? -EAGAIN : op(o);
        if (x != -EAGAIN) {
            if (hint)
                note_read(o, r, x, seq[RD]);
            return x;
        }
        int e = r ? park_fd(o->fd, r, events, seq, deadline, o->ctx, false)
                  : thread_wait(o->fd, events, deadline, o->ctx);
        if (e < 0)
            return e;
    }
}

static ssize_t do_read(int fd, void *buf, size_t n, int64_t deadline,
                       weft_ctx *ctx) {
    if (fd < 0)
        return -EBADF;
    weft__ensure();
    io o = {.fd = fd, .buf = buf, .n = n, .ctx = ctx, .reading = true};
    return io_loop(&o, WEFT_READABLE, deadline, read_op);
}

/* With a context, bytes already written count for more than its end: a
 * write cut short returns them, and the next call the context's error. */
static ssize_t do_write(int fd, const void *buf, size_t n, int64_t deadline,
                        weft_ctx *ctx) {
    if (fd < 0)
        return -EBADF;
    weft__ensure();
    io o = {.fd = fd, .ctx = ctx};
    for (size_t done = 0; done < n;) {
        o.buf = (char *)buf + done;
        o.n = n - done;
        ssize_t x = io_loop(&o, WEFT_WRITABLE, deadline, write_op);
        if (x < 0)
            return ctx && done && x == weft_ctx_err(ctx) ? (ssize_t)done : x;
        done += (size_t)x;
    }
    return (ssize_t)n;
}

static int do_accept(int fd, struct sockaddr *addr, socklen_t *len,
                     int64_t deadline, weft_ctx *ctx) {
    if (fd < 0)
        return -EBADF;
    weft__ensure();
    int e = set_nonblock(fd);
    if (e < 0)
        return e;
    io o = {.fd = fd, .addr = addr, .alen = len, .ctx = ctx};
    int c = (int)io_loop(&o, WEFT_READABLE, deadline, accept_op);
    if (c >= 0)
        weft__fd_adopt(c);
    return c;
}

static int connect_nb(int fd, const struct sockaddr *addr, socklen_t len,
                      int64_t deadline, weft_ctx *ctx) {
    int e = (int)weft__sys(connect(fd, addr, len));
    /* EINTR: the connection goes on in the background, like EINPROGRESS */
    if (e != -EINPROGRESS && e != -EINTR)
        return e;
    int m = fd_wait(fd, WEFT_WRITABLE, deadline, ctx, false);
    if (m < 0)
        return m;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    e = (int)weft__sys(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl));
    return e < 0 ? e : -soerr;
}

/* The socket is non-blocking during the call only: afterwards it is used
 * with MSG_DONTWAIT, so its flags go back to what the user chose. */
int weft__connect(int fd, const struct sockaddr *addr, socklen_t len,
                  int64_t deadline, weft_ctx *ctx) {
    if (fd < 0)
        return -EBADF;
    weft__ensure();
    if (ctx) {
        int e = weft_ctx_err(ctx);
        if (e)
            return e;
    }
    int fl = (int)weft__sys(fcntl(fd, F_GETFL));
    if (fl < 0)
        return fl;
    bool restore = !(fl & O_NONBLOCK);
    int e = restore ? (int)weft__sys(fcntl(fd, F_SETFL, fl | O_NONBLOCK)) : 0;
    if (e < 0)
        return e;
    int r = connect_nb(fd, addr, len, deadline, ctx);
    if (restore)
        fcntl(fd, F_SETFL, fl);
    return r;
}

/* ---- public calls ------------------------------------------------------- */

ssize_t weft_read(int fd, void *buf, size_t n) {
    return do_read(fd, buf, n, -1, NULL);
}

ssize_t weft_read_timeout(int fd, void *buf, size_t n, int64_t timeout_ns) {
    return do_read(fd, buf, n, weft__deadline(timeout_ns), NULL);
}

ssize_t weft_write(int fd, const void *buf, size_t n) {
    return do_write(fd, buf, n, -1, NULL);
}

ssize_t weft_write_timeout(int fd, const void *buf, size_t n,
                           int64_t timeout_ns) {
    return do_write(fd, buf, n, weft__deadline(timeout_ns), NULL);
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return do_accept(fd, addr, len, -1, NULL);
}

int weft_accept_timeout(int fd, struct sockaddr *addr, socklen_t *len,
                        int64_t timeout_ns) {
    return do_accept(fd, addr, len, weft__deadline(timeout_ns), NULL);
}

/* weft_connect*: the socket is the caller's, whatever its record says. */
static int user_connect(int fd, const struct sockaddr *addr, socklen_t len,
                        int64_t deadline, weft_ctx *ctx) {
    if (fd >= 0)
        weft__fd_disown(fd);
    return weft__connect(fd, addr, len, deadline, ctx);
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len) {
    return user_connect(fd, addr, len, -1, NULL);
}

int weft_connect_timeout(int fd, const struct sockaddr *addr, socklen_t len,
                         int64_t timeout_ns) {
    return user_connect(fd, addr, len, weft__deadline(timeout_ns), NULL);
}

/* ---- context variants: the same calls, ending with ctx ------------------- */

int weft_wait_fd_ctx(weft_ctx *ctx, int fd, int events) {
    if (!ctx || events == 0 || (events & ~BOTH))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int e = weft_ctx_err(ctx);
    if (e)
        return e;
    weft__ensure();
    return fd_wait(fd, events, -1, ctx, true);
}

ssize_t weft_read_ctx(weft_ctx *ctx, int fd, void *buf, size_t n) {
    return ctx ? do_read(fd, buf, n, -1, ctx) : -EINVAL;
}

ssize_t weft_write_ctx(weft_ctx *ctx, int fd, const void *buf, size_t n) {
    return ctx ? do_write(fd, buf, n, -1, ctx) : -EINVAL;
}

int weft_accept_ctx(weft_ctx *ctx, int fd, struct sockaddr *addr,
                    socklen_t *len) {
    return ctx ? do_accept(fd, addr, len, -1, ctx) : -EINVAL;
}

int weft_connect_ctx(weft_ctx *ctx, int fd, const struct sockaddr *addr,
                     socklen_t len) {
    return ctx ? user_connect(fd, addr, len, -1, ctx) : -EINVAL;
}
