/* SPDX-License-Identifier: MIT */
/*
 * The netpoller (one epoll instance shared by every worker) and the
 * descriptor calls built on it: weft_wait_fd, weft_read, weft_write,
 * weft_accept, weft_connect and their _timeout variants.
 *
 * Wait records.  Each descriptor number a goroutine has waited on owns an
 * fdrec, found by fd in a two-level table: a directory of pointers to
 * chunks of CHUNK records.  Lookups take no lock.  Growth (a new chunk, or
 * a directory twice as big) happens under np.grow; a replaced directory is
 * kept until weft__netpoll_release, so a reader still holding it stays
 * safe.  Records are never freed while the runtime runs, which is what
 * lets epoll carry a bare pointer to one (data.ptr).  The eventfd used by
 * weft__netpoll_break is registered with a NULL pointer.
 *
 * Registration.  weft never sees close(2), so a record cannot know whether
 * its number still names the file it registered.  Each wait therefore
 * issues EPOLL_CTL_ADD right before parking: EEXIST means this very file
 * is registered already; success means the number was closed and reused
 * (epoll forgets a file when its last descriptor closes) and the new file
 * is registered now.  One cheap syscall per park buys correct reuse.
 * Registration is edge-triggered (EPOLLET) for IN, OUT and RDHUP at once,
 * so every call tries its syscall first and waits only after EAGAIN.
 *
 * Lost wakeups.  seq[dir] counts the events the poller delivered for a
 * direction.  A waiter reads seq before its syscall; after EAGAIN it takes
 * the record's lock and parks only if seq has not moved, so readiness that
 * arrived in between sends it back to retry.  The poller bumps seq and
 * empties the queue under that same lock.
 *
 * Waiters.  q[dir] holds the wnodes of parked goroutines.  Several are
 * allowed (goroutines accepting on one listener); an event wakes them all
 * and each retries its syscall.  Waiting for both directions queues one
 * node on each queue, sharing one park.  The waiter takes its nodes off
 * again under the lock after a timeout (see weft_internal.h).
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
#include "runtime.h"
#include "weft_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
/* A record's pointer reaches the poller through the kernel (epoll's
 * data.ptr), which ThreadSanitizer cannot see: tell it that registering
 * publishes the record and receiving an event acquires it. */
#define TSAN_PUBLISH(r) __tsan_release(r)
#define TSAN_RECEIVE(r) __tsan_acquire(r)
#else
#define TSAN_PUBLISH(r) ((void)(r))
#define TSAN_RECEIVE(r) ((void)(r))
#endif

#define CHUNK 256
#define MAX_EVENTS 128
#define BOTH (WEFT_READABLE | WEFT_WRITABLE)

/* Directions: bit d of an events mask (WEFT_READABLE = 1 << 0, WEFT_WRITABLE
 * = 1 << 1) selects seq[d] and q[d]. */
enum { RD, WR, NDIR };

typedef struct fdrec {
    weft__lock lock;
    atomic_uint seq[NDIR]; /* events delivered per direction */
    weft__wq q[NDIR];      /* parked goroutines per direction */
} fdrec;

typedef struct fddir {
    size_t n;            /* chunk slots */
    struct fddir *older; /* replaced directories, freed at release */
    _Atomic(fdrec *) chunk[];
} fddir;

static struct {
    int epfd;
    int evfd;
    atomic_size_t waiting; /* descriptor waits in progress */
    weft__lock grow;
    _Atomic(fddir *) dir;
} np = {.epfd = -1, .evfd = -1};

/* ---- the record table --------------------------------------------------- */

static fddir *dir_grow(fddir *d, size_t need) {
    size_t n = d ? d->n * 2 : 16;
    while (n <= need)
        n *= 2;
    fddir *nd = calloc(1, sizeof *nd + n * sizeof nd->chunk[0]);
    if (!nd)
        return NULL;
    nd->n = n;
    nd->older = d;
    for (size_t i = 0; d && i < d->n; i++)
        atomic_init(&nd->chunk[i],
                    atomic_load_explicit(&d->chunk[i], memory_order_relaxed));
    atomic_store_explicit(&np.dir, nd, memory_order_release);
    return nd;
}

static fdrec *rec_slow(int fd) {
    size_t c = (size_t)fd / CHUNK;
    fdrec *ch = NULL;
    weft__lock_acquire(&np.grow);
    fddir *d = atomic_load_explicit(&np.dir, memory_order_relaxed);
    if (!d || c >= d->n)
        d = dir_grow(d, c);
    if (d) {
        ch = atomic_load_explicit(&d->chunk[c], memory_order_relaxed);
        if (!ch && (ch = calloc(CHUNK, sizeof *ch)))
            atomic_store_explicit(&d->chunk[c], ch, memory_order_release);
    }
    weft__lock_release(&np.grow);
    return ch ? &ch[fd % CHUNK] : NULL;
}

/* The record of fd (>= 0), NULL when memory is exhausted. */
static fdrec *rec_get(int fd) {
    fddir *d = atomic_load_explicit(&np.dir, memory_order_acquire);
    size_t c = (size_t)fd / CHUNK;
    if (d && c < d->n) {
        fdrec *ch = atomic_load_explicit(&d->chunk[c], memory_order_acquire);
        if (ch)
            return &ch[fd % CHUNK];
    }
    return rec_slow(fd);
}

static void table_free(void) {
    fddir *d = atomic_load_explicit(&np.dir, memory_order_relaxed);
    for (size_t i = 0; d && i < d->n; i++)
        free(atomic_load_explicit(&d->chunk[i], memory_order_relaxed));
    while (d) {
        fddir *older = d->older;
        free(d);
        d = older;
    }
    atomic_store_explicit(&np.dir, NULL, memory_order_relaxed);
}

/* ---- the poller --------------------------------------------------------- */

int weft__netpoll_init(void) {
    np.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (np.epfd < 0)
        return -errno;
    np.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (np.evfd < 0) {
        int e = -errno;
        close(np.epfd);
        np.epfd = -1;
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(np.epfd, EPOLL_CTL_ADD, np.evfd, &ev);
    return 0;
}

void weft__netpoll_release(void) {
    if (np.evfd >= 0)
        close(np.evfd);
    if (np.epfd >= 0)
        close(np.epfd);
    np.evfd = np.epfd = -1;
    table_free();
}

/* In a forked child, whose epoll instance and eventfd are the parent's
 * (shared with it): drop them and every record; the next start makes new
 * ones.  A parent's thread may have held np.grow: nobody else is left. */
void weft__netpoll_forget(void) {
    atomic_store_explicit(&np.grow.v, 0, memory_order_relaxed);
    atomic_store_explicit(&np.waiting, 0, memory_order_relaxed);
    weft__netpoll_release();
}

void weft__netpoll_break(void) {
    uint64_t one = 1;
    ssize_t r = write(np.evfd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, a wake is pending */
}

size_t weft__netpoll_waiting(void) {
    return atomic_load_explicit(&np.waiting, memory_order_relaxed);
}

/* Record the events of r and wake its waiters; returns how many. */
static int deliver(fdrec *r, uint32_t ev) {
    static const uint32_t dir_ev[NDIR] = {
        EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR,
        EPOLLOUT | EPOLLHUP | EPOLLERR,
    };
    weft__wnode *list = NULL;
    size_t woken = 0;
    TSAN_RECEIVE(r);
    weft__lock_acquire(&r->lock);
    for (int d = 0; d < NDIR; d++)
        if (ev & dir_ev[d]) {
            atomic_fetch_add_explicit(&r->seq[d], 1, memory_order_relaxed);
            woken += weft__wq_claim(&r->q[d], SIZE_MAX, &list);
        }
    weft__lock_release(&r->lock);
    weft__wq_unpark(list);
    return (int)woken;
}

/* epoll_pwait2 takes a nanosecond timeout (Linux 5.11+).  Where it is
 * missing (older kernels; valgrind does not know it either) fall back to
 * epoll_wait, rounding the timeout up to whole milliseconds. */
static int epoll_wait_ns(struct epoll_event *evs, const struct timespec *tp) {
    static atomic_bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        int n = epoll_pwait2(np.epfd, evs, MAX_EVENTS, tp, NULL);
        if (n >= 0 || weft_errno() != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
    int ms = -1;
    if (tp) {
        int64_t v = (tp->tv_sec * 1000000000 + tp->tv_nsec + 999999) / 1000000;
        ms = v > INT32_MAX ? INT32_MAX : (int)v;
    }
    return epoll_wait(np.epfd, evs, MAX_EVENTS, ms);
}

/* A deadline of exactly 0 is a non-waiting peek by a worker that does not
 * hold the poller role: it leaves the eventfd alone, so a break meant for
 * the poller (an earlier timer, say) still reaches it. */
int weft__netpoll(int64_t deadline) {
    struct epoll_event evs[MAX_EVENTS];
    struct timespec ts, *tp = NULL;
    if (deadline >= 0) {
        int64_t d = deadline - weft_now();
        if (d < 0)
            d = 0;
        ts.tv_sec = d / 1000000000;
        ts.tv_nsec = d % 1000000000;
        tp = &ts;
    }
    int n = epoll_wait_ns(evs, tp);
    int readied = 0;
    for (int i = 0; i < n; i++) {
        fdrec *r = evs[i].data.ptr;
        if (r) {
            readied += deliver(r, evs[i].events);
        } else if (deadline != 0) {
            uint64_t v;
            ssize_t got = read(np.evfd, &v, sizeof v);
            (void)got;
        }
    }
    return readied;
}

/* A system call's result, or -errno read the safe way: these functions
 * park, and a goroutine may resume on another thread, so errno is always
 * read through weft_errno() (see weft.h). */
static ssize_t sys(ssize_t r) {
    return r < 0 ? -weft_errno() : r;
}

/* ---- waiting for a descriptor ------------------------------------------- */

static const char *wait_why(int events) {
    return events & WEFT_READABLE ? "fd read" : "fd write";
}

/* Make sure the file fd names now is in the epoll set (see the top).
 * 0, 1 when it cannot be polled (a regular file: always ready), -errno. */
static int fd_register(int fd, fdrec *r) {
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = r,
    };
    TSAN_PUBLISH(r);
    int e = (int)sys(epoll_ctl(np.epfd, EPOLL_CTL_ADD, fd, &ev));
    if (e == 0 || e == -EEXIST)
        return 0;
    return e == -EPERM ? 1 : e;
}

static void seq_load(fdrec *r, unsigned seq[NDIR]) {
    for (int d = 0; d < NDIR; d++)
        seq[d] = atomic_load_explicit(&r->seq[d], memory_order_seq_cst);
}

/* Park the calling goroutine until an event for events arrives on fd after
 * seq was read, deadline passes or ctx (NULL: none) ends.  0 (try again),
 * -ETIMEDOUT, ctx's error, -errno. */
static int park_fd(int fd, fdrec *r, int events, const unsigned seq[NDIR],
                   int64_t deadline, weft_ctx *ctx) {
    if (deadline >= 0 && weft_now() >= deadline)
        return -ETIMEDOUT;
    int e = fd_register(fd, r);
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
    for (int d = 0; d < NDIR; d++)
        if (events & (1 << d))
            weft__wq_push(&r->q[d], &n[d]);
    atomic_fetch_add_explicit(&np.waiting, 1, memory_order_relaxed);
    int res = weft__block(&p, deadline, weft__unlock_cb, &r->lock);
    atomic_fetch_sub_explicit(&np.waiting, 1, memory_order_relaxed);
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
    int n = (int)sys(poll(pfd, efd >= 0 ? 2 : 1, ms));
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
        efd = (int)sys(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
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
    atomic_fetch_add_explicit(&np.waiting, 1, memory_order_relaxed);
    int m;
    for (;;) {
        m = poll_once(fd, events, efd, ms_until(deadline));
        if (m != 0 || (efd >= 0 && atomic_load_explicit(
                                       &cw.done, memory_order_acquire)))
            break;
        if (deadline >= 0 && weft_now() >= deadline) {
            m = -ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub_explicit(&np.waiting, 1, memory_order_relaxed);
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
 * makes it return early. */
static int fd_wait(int fd, int events, int64_t deadline, weft_ctx *ctx) {
    if (!weft__curg())
        return thread_wait(fd, events, deadline, ctx);
    fdrec *r = rec_get(fd);
    if (!r)
        return -ENOMEM;
    for (;;) {
        unsigned seq[NDIR];
        seq_load(r, seq);
        int m = poll_once(fd, events, -1, 0);
        if (m != 0)
            return m;
        int e = park_fd(fd, r, events, seq, deadline, ctx);
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
    return fd_wait(fd, events, weft__deadline(timeout_ns), NULL);
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
} io;

/* Set O_NONBLOCK on fd, except on a file epoll cannot wait on (a regular
 * file, a block device, a directory): reads and writes there never say
 * EAGAIN, so the flag would change nothing for weft, only the file's
 * flags behind its owner's back. */
static int set_nonblock(int fd) {
    int fl = (int)sys(fcntl(fd, F_GETFL));
    if (fl < 0 || (fl & O_NONBLOCK))
        return fl < 0 ? fl : 0;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -weft_errno();
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
        return 0;
    return (int)sys(fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

/* A socket call failed with ENOTSOCK: switch o to the non-socket path. */
static int to_nonsock(io *o) {
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
    ssize_t r = sys(write(fd, buf, n));
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
                        : sys(read(o->fd, o->buf, o->n));
        else
            r = sys(writing
                        ? send(o->fd, o->buf, o->n, MSG_DONTWAIT | MSG_NOSIGNAL)
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
        ssize_t c =
            sys(accept4(o->fd, o->addr, o->alen, SOCK_NONBLOCK | SOCK_CLOEXEC));
        /* ECONNABORTED: reset while queued; wait for the next one */
        if (c != -EINTR && c != -ECONNABORTED)
            return c;
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
    fdrec *r = NULL;
    if (weft__curg() && !(r = rec_get(o->fd)))
        return -ENOMEM;
    for (;;) {
        unsigned seq[NDIR] = {0, 0};
        if (r)
            seq_load(r, seq);
        ssize_t x = op(o);
        if (x != -EAGAIN)
            return x;
        int e = r ? park_fd(o->fd, r, events, seq, deadline, o->ctx)
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
    io o = {.fd = fd, .buf = buf, .n = n, .ctx = ctx};
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
    return (int)io_loop(&o, WEFT_READABLE, deadline, accept_op);
}

static int connect_nb(int fd, const struct sockaddr *addr, socklen_t len,
                      int64_t deadline, weft_ctx *ctx) {
    int e = (int)sys(connect(fd, addr, len));
    /* EINTR: the connection goes on in the background, like EINPROGRESS */
    if (e != -EINPROGRESS && e != -EINTR)
        return e;
    int m = fd_wait(fd, WEFT_WRITABLE, deadline, ctx);
    if (m < 0)
        return m;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    e = (int)sys(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl));
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
    int fl = (int)sys(fcntl(fd, F_GETFL));
    if (fl < 0)
        return fl;
    bool restore = !(fl & O_NONBLOCK);
    int e = restore ? (int)sys(fcntl(fd, F_SETFL, fl | O_NONBLOCK)) : 0;
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

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len) {
    return weft__connect(fd, addr, len, -1, NULL);
}

int weft_connect_timeout(int fd, const struct sockaddr *addr, socklen_t len,
                         int64_t timeout_ns) {
    return weft__connect(fd, addr, len, weft__deadline(timeout_ns), NULL);
}

/* ---- context variants: the same calls, ending with ctx -------------------- */

int weft_wait_fd_ctx(weft_ctx *ctx, int fd, int events) {
    if (!ctx || events == 0 || (events & ~BOTH))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int e = weft_ctx_err(ctx);
    if (e)
        return e;
    weft__ensure();
    return fd_wait(fd, events, -1, ctx);
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
    return ctx ? weft__connect(fd, addr, len, -1, ctx) : -EINVAL;
}
