/* SPDX-License-Identifier: MIT */
/*
 * Layer 4, the netpoller (netpoll.c): one epoll set for the process, the
 * poll the scheduler runs when it looks for work, and the wait records of
 * the descriptors goroutines wait on, for the descriptor calls (fdio.c).
 * A record holds wait queues and the poll readies their waiters, so this
 * header stands on the waiter's: scheduler -> poller -> waiter ->
 * scheduler is the runtime's one real cycle (docs/design.md, "Layers").
 */
#ifndef WEFT_NETPOLL_H
#define WEFT_NETPOLL_H

#include "sys.h"
#include "waiter.h"

/* ---- the poller, for the scheduler and the runtime ------------------------
 */

/* Wait for descriptor events or until deadline (-1 = until woken) and ready
 * the goroutines whose descriptors are ready.  Returns how many. */
int weft__netpoll(int64_t deadline);
/* Wake a worker waiting in weft__netpoll. */
void weft__netpoll_break(void);
int weft__netpoll_init(void);
void weft__netpoll_release(void);
/* In a forked child: close the parent's epoll instance and eventfd, drop
 * the records. */
void weft__netpoll_forget(void);
/* Descriptor waits in progress (keeps the deadlock detector quiet). */
size_t weft__netpoll_waiting(void);

/* ---- wait records, for the descriptor calls ------------------------------ */

#define BOTH (WEFT_READABLE | WEFT_WRITABLE)

/* Directions: bit d of an events mask (WEFT_READABLE = 1 << 0, WEFT_WRITABLE
 * = 1 << 1) selects seq[d] and q[d]. */
enum { RD, WR, NDIR };

typedef struct weft__fdrec {
    weft__lock lock;
    atomic_uint seq[NDIR]; /* events delivered per direction */
    weft__wq q[NDIR];      /* parked goroutines per direction */
} weft__fdrec;

/* The record of fd, made on first use; NULL when memory runs out. */
weft__fdrec *weft__fd_rec(int fd);
/* Make sure the file fd names now is in the epoll set (see netpoll.c).
 * 0, 1 when it cannot be polled (a regular file: always ready), -errno. */
int weft__fd_register(int fd, weft__fdrec *r);
/* The events delivered so far per direction, read before a syscall. */
void weft__fd_seq_load(weft__fdrec *r, unsigned seq[NDIR]);
/* A descriptor wait starts (1) or ends (-1): weft__netpoll_waiting. */
void weft__netpoll_waits(int d);

/* A system call's result, or -errno read the safe way: these functions
 * park, and a goroutine may resume on another thread, so errno is always
 * read through weft_errno() (see weft.h). */
static inline ssize_t weft__sys(ssize_t r) {
    return r < 0 ? -weft_errno() : r;
}

#endif
