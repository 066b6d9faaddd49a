/* SPDX-License-Identifier: MIT */
/*
 * The netpoller: one epoll instance shared by every worker, and the wait
 * records of the descriptors goroutines wait on.
 *
 * Wait records.  Each descriptor number a goroutine has waited on owns an
 * weft__fdrec, found by fd in a two-level table: a directory of pointers to
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
 * again under the lock after a timeout (see waiter.h).
 *
 * The descriptor calls built on these records (weft_wait_fd, weft_read,
 * ...) are in fdio.c.
 */
#include "netpoll.h"
#include "sys.h"
#include "waiter.h"

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
typedef struct fddir {
    size_t n;            /* chunk slots */
    struct fddir *older; /* replaced directories, freed at release */
    _Atomic(weft__fdrec *) chunk[];
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

static weft__fdrec *rec_slow(int fd) {
    size_t c = (size_t)fd / CHUNK;
    weft__fdrec *ch = NULL;
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
weft__fdrec *weft__fd_rec(int fd) {
    fddir *d = atomic_load_explicit(&np.dir, memory_order_acquire);
    size_t c = (size_t)fd / CHUNK;
    if (d && c < d->n) {
        weft__fdrec *ch =
            atomic_load_explicit(&d->chunk[c], memory_order_acquire);
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
static int deliver(weft__fdrec *r, uint32_t ev) {
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
    weft__unlock_unpark_list(&r->lock, list);
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
        weft__fdrec *r = evs[i].data.ptr;
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

/* ---- what the descriptor calls (fdio.c) build on ------------------------- */

/* Make sure the file fd names now is in the epoll set (see the top).
 * 0, 1 when it cannot be polled (a regular file: always ready), -errno. */
int weft__fd_register(int fd, weft__fdrec *r) {
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = r,
    };
    TSAN_PUBLISH(r);
    int e = (int)weft__sys(epoll_ctl(np.epfd, EPOLL_CTL_ADD, fd, &ev));
    if (e == 0 || e == -EEXIST)
        return 0;
    return e == -EPERM ? 1 : e;
}

void weft__fd_seq_load(weft__fdrec *r, unsigned seq[NDIR]) {
    for (int d = 0; d < NDIR; d++)
        seq[d] = atomic_load_explicit(&r->seq[d], memory_order_seq_cst);
}

void weft__netpoll_waits(int d) {
    atomic_fetch_add_explicit(&np.waiting, (size_t)d, memory_order_relaxed);
}
