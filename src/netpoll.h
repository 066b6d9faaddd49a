/* SPDX-License-Identifier: MIT */
/*
 * Layer 4, the netpoller (netpoll.c): one epoll set per P slot, the poll
 * the scheduler runs when it looks for work, and the wait records of the
 * descriptors goroutines wait on, for the descriptor calls (fdio.c).
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

/* Wait for events in set, or until deadline (-1 = until woken), and ready
 * the goroutines whose descriptors are ready.  Returns how many. */
int weft__netpoll(int set, int64_t deadline);
/* Wake the worker waiting in weft__netpoll on set. */
void weft__netpoll_break(int set);
/* One set per slot: 0 or -errno. */
int weft__netpoll_init(int nsets);
/* The calling thread's slot, whose set the files it registers join (-1 on
 * a plain thread); the scheduler sets it for each M. */
extern __thread int weft__netpoll_home;
void weft__netpoll_release(void);
/* In a forked child: close the parent's epoll sets and eventfds, drop the
 * records. */
void weft__netpoll_forget(void);
/* Descriptor waits in progress (keeps the deadlock detector quiet). */
size_t weft__netpoll_waiting(void);

/* ---- wait records, for the descriptor calls ------------------------------ */

#define BOTH (WEFT_READABLE | WEFT_WRITABLE)

/* Directions: bit d of an events mask (WEFT_READABLE = 1 << 0, WEFT_WRITABLE
 * = 1 << 1) selects seq[d] and q[d]. */
enum { RD, WR, NDIR };

/* Fields after q: see "Registration" and "The drained hint" in netpoll.c
 * for what they mean and who writes them. */
typedef struct weft__fdrec {
    weft__lock lock;
    atomic_uint seq[NDIR]; /* events delivered per direction */
    weft__wq q[NDIR];      /* parked goroutines per direction */
    atomic_uchar owned;    /* weft made the file and registered it */
    atomic_uchar kind;     /* FD_* below, for the registered file */
    atomic_uchar drained;  /* the reader's hint: seq[RD] was hint_seq... */
    atomic_ushort home;    /* the set it registers in, plus one; 0: none */
    atomic_uint hint_seq;  /* ...when a short read emptied the socket */
    unsigned parked;       /* sweep epoch of the oldest park (lock) */
} weft__fdrec;

/* r->kind: what the drained hint needs to know of the registered file.
 * NOHINT: the poller saw urgent data (a short read may stop at its mark),
 * an end of stream or an error (a read that took the rest of the data may
 * have taken the end too, and the next one returns at once). */
enum { FD_UNKNOWN, FD_TCP, FD_OTHER, FD_NOHINT };

/* The record of fd, made on first use; NULL when memory runs out. */
weft__fdrec *weft__fd_rec(int fd);
/* Make sure the file fd names now is in the epoll set (see netpoll.c):
 * an owned record's is, unless verify.  0, 1 when it cannot be polled (a
 * regular file: always ready), -errno. */
int weft__fd_register(int fd, weft__fdrec *r, bool verify);
/* fd is a socket weft has just made (accepted, dialled, listening):
 * register it once, so that waits on it need not check (netpoll.c). */
void weft__fd_adopt(int fd);
/* fd's record no longer describes a file weft made: the number may be
 * reused by anybody.  Before weft closes a descriptor it made, and when a
 * call shows the file is not one weft made. */
void weft__fd_disown(int fd);
/* A goroutine is about to park on r (under r->lock, its queues as they
 * were before it queues itself). */
void weft__fd_parking(weft__fdrec *r);
/* The monitor's sweep (see "Registration" in netpoll.c): re-check the
 * registrations that goroutines have waited on for a whole period.  And
 * whether a later sweep has waits to look at: some began since this one
 * started, or it saw some too recent to check. */
void weft__netpoll_sweep(void);
bool weft__netpoll_unswept(void);
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
