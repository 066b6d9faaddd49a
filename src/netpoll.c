/* SPDX-License-Identifier: MIT */
/*
 * The netpoller: one epoll set per P slot (a place among the procs that
 * run goroutines), and the wait records of the descriptors goroutines wait
 * on.
 *
 * Sets.  Each file is registered in one set, its record's home, and only
 * the P in that slot sleeps in it (sched.c, p_sleep), so a connection's
 * events, its goroutine and their cache lines stay on one core, as in an
 * epoll loop with a thread per core.  The home is chosen when a record
 * first registers a file, or when weft makes a new one (weft__fd_adopt):
 * the caller's slot (weft__netpoll_home), or fd modulo the number of sets
 * on a plain thread.  A P whose goroutines keep it busy peeks its own set
 * between them; the monitor peeks a set whose P has done neither for a
 * whole look.  Each set has an eventfd, registered with a NULL pointer,
 * that weft__netpoll_break writes to wake its sleeper.
 *
 * Wait records.  Each descriptor number a goroutine has waited on owns an
 * weft__fdrec, found by fd in a two-level table: a directory of pointers to
 * chunks of CHUNK records.  Lookups take no lock.  Growth (a new chunk, or
 * a directory twice as big) happens under np.grow; a replaced directory is
 * kept until weft__netpoll_release, so a reader still holding it stays
 * safe.  Records are never freed while the runtime runs, which is what
 * lets epoll carry a bare pointer to one (data.ptr).
 *
 * Registration.  weft does not see close(2), so a record cannot know
 * whether its number still names the file it registered, except for the
 * files weft made itself (accepted, dialled and listening sockets):
 * weft__fd_adopt registers one as it is made and marks its record owned,
 * and a wait on an owned record parks without a system call.  Any other
 * wait issues EPOLL_CTL_ADD to the home set right before parking: EEXIST
 * means this very file is registered already; success means the number
 * was closed and reused (epoll forgets a file when its last descriptor
 * closes) and the new file is registered now.  Registration is edge-triggered
 * (EPOLLET) for IN, OUT, PRI and RDHUP at once, so every call tries its syscall
 * first and waits only after EAGAIN (or the drained hint, below); a new
 * registration reports the file's readiness at once.
 *
 * An owned record can still go stale: the program may close(2) the socket
 * and a file weft did not make get its number.  Calls that show it disown
 * the record: weft_connect (weft's own sockets are connected already), a
 * read that says ENOTSOCK, and weft_wait_fd, the call for descriptors made
 * elsewhere, always checks.  What remains (a socket from a plain accept(2)
 * on a recycled number, read with weft_read, say) the sweep catches: every
 * WEFT__SWEEP_NS the monitor calls weft__netpoll_sweep, which gives an
 * owned record whose waiters have been parked since before the previous
 * sweep its EPOLL_CTL_ADD, once per episode (`parked`: the sweep epoch at
 * which the record's queues last became non-empty, VERIFIED once checked;
 * under the lock).  EEXIST confirms the registration; success registers
 * the new file and disowns the record.  Such a wait is late by one or two
 * periods, never lost.
 *
 * The drained hint.  A read from a TCP socket that returns fewer bytes
 * than asked has emptied its receive queue (the kernel returns short only
 * then, or at an urgent mark), so until the poller delivers another
 * readable event the next read would say EAGAIN.  The reader (fdio.c)
 * records seq[RD] as it was before such a read (hint_seq, drained) and its
 * next read parks at once while seq[RD] is unchanged.  The registration
 * check above makes that sound for a new file at the number.  Only TCP
 * (kind, learnt by one getsockopt per registered file): datagram and unix
 * sockets (a read stops at a message with descriptors or other
 * credentials) and ttys (a line at a time) read short with more to come.
 * Urgent data, an end of stream or an error seen by the poller turn the
 * hint off for the file (FD_NOHINT); one that comes after the short read
 * moves seq[RD], which voids the hint anyway.
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
#define VERIFIED UINT_MAX /* r->parked: the sweep has checked this episode */
#define MAX_EVENTS 128

/* A set and the eventfd that wakes its sleeper. */
typedef struct {
    _Alignas(WEFT__CACHELINE) int epfd;
    int evfd;
} pollset;

typedef struct fddir {
    size_t n;            /* chunk slots */
    struct fddir *older; /* replaced directories, freed at release */
    _Atomic(weft__fdrec *) chunk[];
} fddir;

__thread int weft__netpoll_home = -1;

static struct {
    pollset *set;
    int nsets;
    /* descriptor waits: in progress (low 32 bits), begun (high 32) */
    _Atomic(uint64_t) waits;
    atomic_uint epoch; /* sweeps so far, plus one */
    /* the monitor's: waits begun when the last sweep started; whether it
     * saw waits too recent to check */
    uint32_t swept_waits;
    bool young;
    weft__lock grow;
    _Atomic(fddir *) dir;
} np = {.epoch = 1};

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

/* The record of fd (>= 0) if it exists. */
static weft__fdrec *rec_find(int fd) {
    fddir *d = atomic_load_explicit(&np.dir, memory_order_acquire);
    size_t c = (size_t)fd / CHUNK;
    if (d && c < d->n) {
        weft__fdrec *ch =
            atomic_load_explicit(&d->chunk[c], memory_order_acquire);
        if (ch)
            return &ch[fd % CHUNK];
    }
    return NULL;
}

/* The record of fd (>= 0), NULL when memory is exhausted. */
weft__fdrec *weft__fd_rec(int fd) {
    weft__fdrec *r = rec_find(fd);
    return r ? r : rec_slow(fd);
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

static void sets_close(int n) {
    for (int i = 0; i < n; i++) {
        if (np.set[i].evfd >= 0)
            close(np.set[i].evfd);
        if (np.set[i].epfd >= 0)
            close(np.set[i].epfd);
    }
    free(np.set);
    np.set = NULL;
    np.nsets = 0;
}

static int set_open(pollset *ps) {
    ps->epfd = epoll_create1(EPOLL_CLOEXEC);
    ps->evfd = ps->epfd < 0 ? -1 : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ps->evfd < 0 || epoll_ctl(ps->epfd, EPOLL_CTL_ADD, ps->evfd, &ev) < 0)
        return -errno;
    return 0;
}

int weft__netpoll_init(int nsets) {
    np.set = aligned_alloc(WEFT__CACHELINE, (size_t)nsets * sizeof *np.set);
    if (!np.set)
        return -ENOMEM;
    for (int i = 0; i < nsets; i++) {
        int e = set_open(&np.set[i]);
        if (e < 0) {
            sets_close(i + 1);
            return e;
        }
    }
    np.nsets = nsets;
    return 0;
}

void weft__netpoll_release(void) {
    sets_close(np.nsets);
    table_free();
}

/* In a forked child, whose epoll sets and eventfds are the parent's
 * (shared with it): drop them and every record; the next start makes new
 * ones.  A parent's thread may have held np.grow: nobody else is left. */
void weft__netpoll_forget(void) {
    atomic_store_explicit(&np.grow.v, 0, memory_order_relaxed);
    atomic_store_explicit(&np.waits, 0, memory_order_relaxed);
    weft__netpoll_release();
}

void weft__netpoll_break(int set) {
    uint64_t one = 1;
    ssize_t r = write(np.set[set].evfd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, a wake is pending */
}

size_t weft__netpoll_waiting(void) {
    return (uint32_t)atomic_load_explicit(&np.waits, memory_order_relaxed);
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
    if (WEFT__UNLIKELY(ev & (EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        atomic_store_explicit(&r->kind, FD_NOHINT, memory_order_relaxed);
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
static int epoll_wait_ns(int epfd, struct epoll_event *evs,
                         const struct timespec *tp) {
    static atomic_bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        int n = epoll_pwait2(epfd, evs, MAX_EVENTS, tp, NULL);
        if (n >= 0 || weft_errno() != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
    int ms = -1;
    if (tp) {
        int64_t v = (tp->tv_sec * 1000000000 + tp->tv_nsec + 999999) / 1000000;
        ms = v > INT32_MAX ? INT32_MAX : (int)v;
    }
    return epoll_wait(epfd, evs, MAX_EVENTS, ms);
}

/* A deadline of exactly 0 is a non-waiting peek (by the set's P between
 * goroutines, or the monitor): it leaves the eventfd alone, so a break
 * meant for the set's sleeper still reaches it. */
int weft__netpoll(int set, int64_t deadline) {
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
    int n = epoll_wait_ns(np.set[set].epfd, evs, tp);
    int readied = 0;
    for (int i = 0; i < n; i++) {
        weft__fdrec *r = evs[i].data.ptr;
        if (r) {
            readied += deliver(r, evs[i].events);
        } else if (deadline != 0) {
            uint64_t v;
            ssize_t got = read(np.set[set].evfd, &v, sizeof v);
            (void)got;
        }
    }
    return readied;
}

/* ---- what the descriptor calls (fdio.c) build on ------------------------- */

/* The set a record without a home gets: the caller's slot's. */
static unsigned home_here(int fd) {
    int h = weft__netpoll_home;
    return (unsigned)(h >= 0 ? h : fd) % (unsigned)np.nsets + 1;
}

/* EPOLL_CTL_ADD fd to r's home set: 0 (a new registration), -EEXIST,
 * -errno. */
static int add(int fd, weft__fdrec *r) {
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLET,
        .data.ptr = r,
    };
    TSAN_PUBLISH(r);
    unsigned h = atomic_load_explicit(&r->home, memory_order_relaxed);
    if (!h) {
        h = home_here(fd);
        atomic_store_explicit(&r->home, (unsigned short)h,
                              memory_order_relaxed);
    }
    return (int)weft__sys(
        epoll_ctl(np.set[h - 1].epfd, EPOLL_CTL_ADD, fd, &ev));
}

/* r has registered a file it did not know: the old one's kind is void.
 * Not a NOHINT: the poller may have seen the new file end already, right
 * after the registration (an adopted file is known to be new beforehand,
 * see weft__fd_adopt, but here it may be the old one's, which costs the
 * hint only). */
static void new_file(weft__fdrec *r) {
    unsigned char k = atomic_load_explicit(&r->kind, memory_order_relaxed);
    if (k == FD_TCP || k == FD_OTHER)
        atomic_compare_exchange_strong_explicit(&r->kind, &k, FD_UNKNOWN,
                                                memory_order_relaxed,
                                                memory_order_relaxed);
    atomic_store_explicit(&r->owned, false, memory_order_relaxed);
}

int weft__fd_register(int fd, weft__fdrec *r, bool verify) {
    if (!verify && atomic_load_explicit(&r->owned, memory_order_relaxed))
        return 0;
    int e = add(fd, r);
    if (e == 0)
        new_file(r);
    if (e == 0 || e == -EEXIST)
        return 0;
    return e == -EPERM ? 1 : e;
}

void weft__fd_adopt(int fd) {
    weft__fdrec *r = weft__fd_rec(fd);
    if (!r)
        return;
    atomic_store_explicit(&r->kind, FD_UNKNOWN, memory_order_relaxed);
    /* a new file: it may move to the caller's set */
    atomic_store_explicit(&r->home, (unsigned short)home_here(fd),
                          memory_order_relaxed);
    atomic_store_explicit(&r->owned, add(fd, r) == 0, memory_order_relaxed);
}

void weft__fd_disown(int fd) {
    weft__fdrec *r = rec_find(fd);
    if (r)
        atomic_store_explicit(&r->owned, false, memory_order_relaxed);
}

/* Goroutines are parked on r (exact under r's lock, a hint without). */
static bool has_waiters(weft__fdrec *r) {
    return weft__wq_maybe_waiting(&r->q[RD]) ||
           weft__wq_maybe_waiting(&r->q[WR]);
}

void weft__fd_parking(weft__fdrec *r) {
    if (!has_waiters(r))
        r->parked = atomic_load_explicit(&np.epoch, memory_order_relaxed);
}

/* The sweep that moved the epoch on from epoch checks r's registration if
 * its waiters have been parked since before the previous sweep (once per
 * episode), and notes waiters too recent to tell (*young).  The lock is
 * held across the system call: a waiter can leave (and its goroutine close
 * the descriptor) only through the lock or a wake under it, so no close
 * of fd's file by its goroutines races with the check. */
static void sweep_rec(weft__fdrec *r, int fd, unsigned epoch, bool *young) {
    weft__lock_acquire(&r->lock);
    if (has_waiters(r)) {
        if (r->parked < epoch) {
            r->parked = VERIFIED;
            if (add(fd, r) == 0)
                new_file(r);
        } else if (r->parked != VERIFIED) {
            *young = true;
        }
    }
    weft__lock_release(&r->lock);
}

static uint32_t waits_begun(void) {
    return (uint32_t)(atomic_load_explicit(&np.waits, memory_order_acquire) >>
                      32);
}

bool weft__netpoll_unswept(void) {
    return np.young || waits_begun() != np.swept_waits;
}

void weft__netpoll_sweep(void) {
    unsigned epoch =
        atomic_fetch_add_explicit(&np.epoch, 1, memory_order_relaxed);
    np.swept_waits = waits_begun();
    bool young = false;
    fddir *d = weft__netpoll_waiting()
                   ? atomic_load_explicit(&np.dir, memory_order_acquire)
                   : NULL;
    for (size_t c = 0; d && c < d->n; c++) {
        weft__fdrec *ch =
            atomic_load_explicit(&d->chunk[c], memory_order_acquire);
        for (int i = 0; ch && i < CHUNK; i++) {
            weft__fdrec *r = &ch[i];
            int fd = (int)(c * CHUNK) + i;
            if (atomic_load_explicit(&r->owned, memory_order_relaxed) &&
                has_waiters(r))
                sweep_rec(r, fd, epoch, &young);
        }
    }
    np.young = young;
}

void weft__fd_seq_load(weft__fdrec *r, unsigned seq[NDIR]) {
    for (int d = 0; d < NDIR; d++)
        seq[d] = atomic_load_explicit(&r->seq[d], memory_order_seq_cst);
}

/* A wait that begins is counted after its park is queued, with release:
 * a sweep that sees the count sees the queued park too. */
void weft__netpoll_waits(int d) {
    if (d > 0)
        atomic_fetch_add_explicit(&np.waits, (1ull << 32) + 1,
                                  memory_order_release);
    else
        atomic_fetch_sub_explicit(&np.waits, 1, memory_order_relaxed);
}
