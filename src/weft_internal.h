/* SPDX-License-Identifier: MIT */
/*
 * Every layer's internal header at once, for the files that do not include
 * their own yet (the scheduler's, the runtime's and the diagnostics'); a
 * file that does says by its #include lines which layers it depends on.
 * The layers and what each owns: docs/design.md, "Layers", and each
 * header's opening comment.
 */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include "arch/arch.h"
#include "chan.h"
#include "diag.h"
#include "fdio.h"
#include "netpoll.h"
#include "sched.h"
#include "stack.h"
#include "sync.h"
#include "sys.h"
#include "timer.h"
#include "waiter.h"

/* ---- fork(): the child starts a fresh runtime (runtime.c) ---------------- */

/* pthread_atfork phases, for the parts that keep state across a fork: 0
 * before the fork (take the lock), 1 in the parent (release it), 2 in the
 * child (forget what belongs to the parent's threads, release it). */
void weft__threads_atfork(int phase);
/* In the child: close the parent's epoll instance and eventfd, drop the
 * records. */
void weft__netpoll_forget(void);

#endif
