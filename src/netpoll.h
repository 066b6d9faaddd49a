/* SPDX-License-Identifier: MIT */
/*
 * Layer 4, the netpoller's wait records (netpoll.c), for the descriptor
 * calls above it (fdio.c): the record of a descriptor, its registration in
 * the epoll set, and the count of waits in progress.  The poller itself
 * (weft__netpoll, _break, _init, _release) is declared with the scheduler,
 * its one caller.
 */
#ifndef WEFT_NETPOLL_H
#define WEFT_NETPOLL_H

#include "weft_internal.h"

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
