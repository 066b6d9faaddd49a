/* SPDX-License-Identifier: MIT */
/*
 * weft - Go's concurrency model for C.
 *
 * Goroutines scheduled M:N over every core, channels, select, timers, sync
 * primitives, context cancellation, and network I/O that parks a goroutine
 * instead of a thread.  This is the only public header.
 *
 * Conventions
 *   - int-returning calls return 0 (or a non-negative result) on success and
 *     a negative errno on failure; pointer-returning calls return NULL and set
 *     errno.
 *   - Durations and deadlines are int64_t nanoseconds on the weft_now()
 *     clock.  WEFT_FOREVER (-1) waits without limit; a timeout of 0 does not
 *     wait; any other negative timeout counts as 0.  now + timeout beyond
 *     INT64_MAX saturates there: a deadline that never comes, yet still a
 *     deadline (a sleep sleeps, a timer stays armed, a context reports it).
 *   - A timed wait in a goroutine needs a slot in the timer heap; when none
 *     can be allocated the call returns -ENOMEM at once, having done
 *     nothing (no value sent or consumed).
 *   - Every blocking call works from a goroutine (it parks the goroutine, the
 *     worker runs others) and from any plain OS thread, main() included (it
 *     blocks that thread).  Mixed use of one object is fine.
 *   - The runtime starts itself on first use.
 *
 * errno and thread-locals: a goroutine may resume on a different worker
 * thread after any weft call that can block or yield.  Thread-local
 * variables are per thread, not per goroutine, and the compiler may keep a
 * thread-local's address in a register across such a call.  glibc's errno
 * is the common case: __errno_location() is declared const, so inside one
 * function the compiler may reuse the errno address computed before a weft
 * call after it - on the wrong thread.  Rules: weft's own functions return
 * errors as values, except the pointer-returning constructors
 * (weft_chan_make, weft_timer_start, weft_ctx_*, weft_group_make, ...),
 * whose errno is read right after the call, before another weft call; in
 * a function that calls weft, read errno through weft_errno() (never
 * inlined, always the current thread's); never keep a pointer to a
 * thread-local across a weft call.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Marks what libweft.so exports: the library is built with
 * -fvisibility=hidden, so its internals stay out of the dynamic symbol
 * table and no program can link against them. */
#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_VERSION "0.1.0"

#define WEFT_FOREVER ((int64_t)-1)
#define WEFT_US(x) ((int64_t)(x)*1000)
#define WEFT_MS(x) ((int64_t)(x)*1000000)
#define WEFT_SEC(x) ((int64_t)(x)*1000000000)

/* Name of a (negative or positive) errno value; never NULL. */
WEFT_API const char *weft_strerror(int err);

/* errno of the thread running the caller right now (see above). */
WEFT_API int weft_errno(void);

/* ------------------------------------------------------------------------ */
/* Runtime and goroutines                                                   */

typedef void (*weft_fn)(void *arg);

typedef struct weft_config {
    int procs;         /* worker threads; 0 = WEFT_PROCS env, else CPU count */
    size_t stack_size; /* default goroutine stack; 0 = built-in default */
} weft_config;

/* Default goroutine stack: 256 KiB of address space, committed page by page
 * as it is touched (a goroutine that stays shallow costs one 4 KiB page; one
 * that has not run yet costs none).  Sizes are rounded up to whole pages,
 * minimum 16 KiB.  Overflow is caught by a 64 KiB guard below each stack
 * (MADV_GUARD_INSTALL on Linux 6.13+, which costs no memory mapping; on
 * older kernels mprotect guards while a quarter of vm.max_map_count lasts,
 * then a canary word checked at every switch) and reported as
 * "weft: fatal: goroutine N stack overflow".  The rule and its limit: a
 * frame larger than the guard could jump it, so build code that runs in
 * goroutines with -fstack-clash-protection (weft.pc and the CMake package
 * add it; it makes large frames touch every page); code built without it
 * must keep each frame under 64 KiB. */
#define WEFT_DEFAULT_STACK ((size_t)256 * 1024)

/* The largest stack_size weft_init and weft_go_with accept (-EINVAL
 * above).  weft_go_with reserves a stack of a size other than the default
 * at once: -ENOMEM when that address space is not available. */
#define WEFT_STACK_MAX ((size_t)1 << 30)

/* Start the runtime with cfg (NULL = defaults) before first use.
 * Returns -EALREADY if it is already running, -EINVAL for procs < 0 or a
 * stack_size above WEFT_STACK_MAX. */
WEFT_API int weft_init(const weft_config *cfg);

/* Stop the workers and free the runtime's memory; the next use starts the
 * runtime again.  0, or -EBUSY with nothing stopped while goroutines are
 * alive (the caller is one), a weft_timer or a context deadline is armed,
 * or a weft_blocking call runs.  Goroutines only returning (after a last
 * weft_wg_done, say) are waited for, up to 1 s. */
WEFT_API int weft_shutdown(void);

/* fork(): the child, which has only the thread that called fork, starts a
 * fresh runtime on its first weft call; the parent's goroutines, workers
 * and helpers do not exist there.  In the child, use only objects it makes
 * and ones no goroutine or other thread of the parent was using at the
 * fork (a channel someone waits on, a mutex held, are not valid).  A
 * parent's weft_timer may be stopped.  A goroutine that forks goes on as a
 * plain thread in the child and must not return: exec or _exit.  The
 * child has no signal registrations (weft_signal_notify, weft_signal_ctx):
 * the signals they caught are back to their earlier dispositions there. */

/* Number of worker slots (Go's GOMAXPROCS): how many goroutines run at
 * once, each on a thread of its own.
 *
 * No goroutine can stall the others by holding its thread.  A goroutine
 * that keeps its thread without calling weft (a CPU loop, a plain blocking
 * call: read(2) on a blocking descriptor, getaddrinfo, sleep, a database
 * client) for more than about 2 ms while other goroutines wait loses its
 * worker slot to another thread (a spare one, or a new one): the others go
 * on with weft_procs() threads.  It keeps its own thread for as long as it
 * stays in C; when it next blocks, yields or returns, that thread gives
 * the slot up and waits as a spare (spares end after 10 s unused).  Limits:
 *   - a spinning goroutine still burns its core, and a blocking call holds
 *     its thread while it lasts: weft_blocking remains the cheap way that
 *     needs no detection and no extra thread;
 *   - WEFT_MAXTHREADS=n (default 256, at least procs) caps the threads that
 *     run goroutines, held ones and spares included.  At the cap nothing is
 *     handed off: goroutines queued behind held threads wait until one
 *     comes back, and stderr gets one line naming WEFT_MAXTHREADS;
 *   - after a hand-off a goroutine may keep running in C beside the procs
 *     slots until it next switches (more threads than procs run then);
 *   - under WEFT_SEED nothing is handed off (a schedule from a seed must
 *     not depend on time).
 * WEFT_HOGWARN=ms names, once on stderr, each goroutine the first time it
 * holds its thread that long (its id, name and spawn site).  Both are read
 * at start-up.  See errno and thread-locals above: a goroutine resumes on
 * another thread after a weft call that blocks or yields, as before; one
 * stuck in C keeps its thread until then. */
WEFT_API int weft_procs(void);

/* Goroutines started with weft_go* that have not returned yet. */
WEFT_API size_t weft_goroutines(void);

/* The library version, "major.minor.patch". */
WEFT_API const char *weft_version(void);

/* Start fn(arg) in a new goroutine.  0, -EINVAL (fn NULL), -ENOMEM. */
WEFT_API int weft_go(weft_fn fn, void *arg);

typedef struct weft_goopts {
    size_t stack_size; /* 0 = the runtime default */
    const char *name;  /* shown by weft_dump(); copied (up to 31 bytes) */
} weft_goopts;

/* weft_go with options; opts NULL uses the defaults.  -EINVAL for a
 * stack_size above WEFT_STACK_MAX, -ENOMEM when it cannot be reserved. */
WEFT_API int weft_go_with(weft_fn fn, void *arg, const weft_goopts *opts);

/* Let other goroutines run.  On a plain thread this is sched_yield(). */
WEFT_API void weft_yield(void);

/* Sleep ns nanoseconds (parks a goroutine).  Returns 0; ns <= 0 returns at
 * once; -ENOMEM, without sleeping, when no timer can be allocated. */
WEFT_API int weft_sleep(int64_t ns);

/* Monotonic clock in nanoseconds. */
WEFT_API int64_t weft_now(void);

/* Id of the calling goroutine (ids start at 1 and are never reused); 0 on a
 * plain thread. */
WEFT_API uint64_t weft_id(void);

/* ------------------------------------------------------------------------ */
/* Channels                                                                 */

typedef struct weft_chan weft_chan;

/* A channel of cap elements of elem_size bytes each.  cap 0 is unbuffered
 * (a send completes when a receiver takes the value); elem_size 0 makes a
 * signal-only channel.  NULL with errno ENOMEM on failure. */
WEFT_API weft_chan *weft_chan_make(size_t elem_size, size_t cap);

/* Free c (NULL is fine).  No goroutine or thread may still use it. */
WEFT_API void weft_chan_free(weft_chan *c);

/* Copy elem_size bytes from elem into c, waiting for room or a receiver.
 * 0, -EPIPE (closed, also while waiting), -EINVAL (c NULL). */
WEFT_API int weft_send(weft_chan *c, const void *elem);

/* Take the next value into out (NULL discards it).  After close, buffered
 * values come first, then -EPIPE forever.  -EINVAL for c NULL. */
WEFT_API int weft_recv(weft_chan *c, void *out);

/* Send without waiting: -EAGAIN if it would block, -EPIPE if closed. */
WEFT_API int weft_try_send(weft_chan *c, const void *elem);

/* Receive without waiting: -EAGAIN if empty, -EPIPE if closed and drained. */
WEFT_API int weft_try_recv(weft_chan *c, void *out);

/* weft_send giving up after timeout_ns with -ETIMEDOUT. */
WEFT_API int weft_send_timeout(weft_chan *c, const void *elem,
                               int64_t timeout_ns);

/* weft_recv giving up after timeout_ns with -ETIMEDOUT. */
WEFT_API int weft_recv_timeout(weft_chan *c, void *out, int64_t timeout_ns);

/* Close c: waiting senders and receivers get -EPIPE; buffered values are
 * still received.  -EPIPE if already closed, -EINVAL for NULL. */
WEFT_API int weft_close(weft_chan *c);

/* Values buffered now (0 for NULL). */
WEFT_API size_t weft_chan_len(const weft_chan *c);

/* Buffer capacity (0 for NULL or unbuffered). */
WEFT_API size_t weft_chan_cap(const weft_chan *c);

/* weft_send after checking size against c's element size: -EMSGSIZE, and
 * nothing sent, when they differ; -EINVAL for c NULL.  See WEFT_SEND. */
WEFT_API int weft_send_sized(weft_chan *c, const void *elem, size_t size);

/* weft_recv after checking size against c's element size: -EMSGSIZE, and
 * nothing received or written, when they differ.  See WEFT_RECV. */
WEFT_API int weft_recv_sized(weft_chan *c, void *out, size_t size);

/* weft_try_send with the size check of weft_send_sized. */
WEFT_API int weft_try_send_sized(weft_chan *c, const void *elem, size_t size);

/* weft_try_recv with the size check of weft_recv_sized. */
WEFT_API int weft_try_recv_sized(weft_chan *c, void *out, size_t size);

/* weft_send_timeout with the size check of weft_send_sized. */
WEFT_API int weft_send_timeout_sized(weft_chan *c, const void *elem,
                                     size_t size, int64_t timeout_ns);

/* weft_recv_timeout with the size check of weft_recv_sized. */
WEFT_API int weft_recv_timeout_sized(weft_chan *c, void *out, size_t size,
                                     int64_t timeout_ns);

/* Size-checked sends and receives of an object: WEFT_SEND(c, v) sends v,
 * WEFT_RECV(c, &v) receives into v, passing sizeof.  With GCC or Clang v
 * may be an rvalue (a scalar or struct, copied into a __typeof__ compound
 * literal), otherwise it must be an lvalue.  An rvalue has its own type: on
 * a long long channel WEFT_SEND(c, 42) is an int (-EMSGSIZE); write 42LL.
 * They share the names of the select ops below, which as function-like
 * macros they never disturb (those are never followed by a parenthesis). */
#if defined(__GNUC__)
#define WEFT__OBJ(v) ((__typeof__(v)[1]){v})
#else
#define WEFT__OBJ(v) (&(v))
#endif
#define WEFT_SEND(c, v) weft_send_sized((c), WEFT__OBJ(v), sizeof(v))
#define WEFT_RECV(c, p) weft_recv_sized((c), (p), sizeof *(p))
#define WEFT_TRY_SEND(c, v) weft_try_send_sized((c), WEFT__OBJ(v), sizeof(v))
#define WEFT_TRY_RECV(c, p) weft_try_recv_sized((c), (p), sizeof *(p))
#define WEFT_SEND_TIMEOUT(c, v, ns)                                            \
    weft_send_timeout_sized((c), WEFT__OBJ(v), sizeof(v), (ns))
#define WEFT_RECV_TIMEOUT(c, p, ns)                                            \
    weft_recv_timeout_sized((c), (p), sizeof *(p), (ns))

/* ------------------------------------------------------------------------ */
/* Select                                                                   */

enum { WEFT_RECV = 1, WEFT_SEND = 2 };

typedef struct weft_case {
    weft_chan *chan; /* NULL: this case is never ready (Go's nil channel) */
    int op;          /* WEFT_RECV or WEFT_SEND */
    void *elem;      /* SEND: value to send; RECV: where to store it, or NULL */
    int err;         /* out, for the case that fired: 0, or -EPIPE (closed) */
} weft_case;

/* Wait until one case can proceed and perform exactly that one; returns its
 * index.  Several ready cases: one is picked uniformly at random.
 * -ETIMEDOUT when timeout_ns passes (0 = Go's default:), -EINVAL for a bad
 * case, -ENOMEM when the wait's bookkeeping for a large n cannot be
 * allocated (nothing takes effect then).  Only the fired case's err and
 * elem are written. */
WEFT_API int weft_select(weft_case *cases, size_t n, int64_t timeout_ns);

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */

typedef struct weft_timer weft_timer;

/* A timer firing after delay_ns (negative: at once), then every period_ns
 * (0 = one-shot).  NULL with errno EINVAL for a negative period. */
WEFT_API weft_timer *weft_timer_start(int64_t delay_ns, int64_t period_ns);

/* The timer's channel: int64_t elements (weft_now() at firing), cap 1.
 * A tick nobody has read yet is dropped, not queued.  Closed only by
 * weft_timer_stop. */
WEFT_API weft_chan *weft_timer_chan(weft_timer *t);

/* Stop and free t and its channel.  1 if a one-shot was stopped before it
 * fired, else 0; -EINVAL for NULL.  Goroutines and threads already blocked
 * on the channel (receive or select) wake with -EPIPE, as from a closed
 * channel, before it is freed; starting a receive after stop began is a
 * use after free. */
WEFT_API int weft_timer_stop(weft_timer *t);

#ifdef __cplusplus
#define WEFT_ALIGN8_ alignas(8)
#else
#define WEFT_ALIGN8_ _Alignas(8)
#endif

/* ------------------------------------------------------------------------ */
/* Sync primitives: a zero-initialised object is ready to use.  A goroutine
 * waiting on one parks; a plain thread blocks.  The fields are private. */

typedef struct weft_mutex {
    WEFT_ALIGN8_ unsigned char opaque_[32];
} weft_mutex;
typedef struct weft_rwmutex {
    WEFT_ALIGN8_ unsigned char opaque_[96];
} weft_rwmutex;
typedef struct weft_wg {
    WEFT_ALIGN8_ unsigned char opaque_[32];
} weft_wg;
typedef struct weft_once {
    WEFT_ALIGN8_ unsigned char opaque_[48];
} weft_once;
typedef struct weft_cond {
    WEFT_ALIGN8_ unsigned char opaque_[32];
} weft_cond;

/* Lock m; spins briefly, then waits in FIFO order.  A waiter that has waited
 * over 1 ms switches m to hand-off mode, so nobody starves. */
WEFT_API void weft_mutex_lock(weft_mutex *m);

/* Lock m if it is free: 0, else -EBUSY. */
WEFT_API int weft_mutex_trylock(weft_mutex *m);

/* Unlock m (any goroutine or thread may).  Unlocking an unlocked mutex is
 * fatal.  m may be freed right after an unlock that was its last use. */
WEFT_API void weft_mutex_unlock(weft_mutex *m);

/* Shared lock; waits while a writer holds or waits for m. */
WEFT_API void weft_rwmutex_rlock(weft_rwmutex *m);

/* Release a shared lock; fatal if none is held. */
WEFT_API void weft_rwmutex_runlock(weft_rwmutex *m);

/* Exclusive lock; new readers wait behind a waiting writer. */
WEFT_API void weft_rwmutex_lock(weft_rwmutex *m);

/* Release the exclusive lock; fatal if it is not held. */
WEFT_API void weft_rwmutex_unlock(weft_rwmutex *m);

/* Add delta (may be negative) to the counter; below zero is fatal. */
WEFT_API void weft_wg_add(weft_wg *wg, int64_t delta);

/* weft_wg_add(wg, -1).  A counter that goroutines on other cores decrement
 * while its owner keeps calling functions (a spawn loop) is best kept off
 * the owner's stack: there it shares a cache line with the owner's call
 * frames (bench/spawn: 31 instead of 18 ns a goroutine). */
WEFT_API void weft_wg_done(weft_wg *wg);

/* Wait until the counter is zero.  wg may be freed or reused as soon as
 * this returns. */
WEFT_API void weft_wg_wait(weft_wg *wg);

/* Run fn(arg) once per o; every caller returns after that run finished. */
WEFT_API void weft_once_do(weft_once *o, weft_fn fn, void *arg);

/* Unlock m, wait for a signal or broadcast, lock m again.  No spurious
 * wakeups. */
WEFT_API void weft_cond_wait(weft_cond *c, weft_mutex *m);

/* Wake the longest-waiting waiter of c, if any. */
WEFT_API void weft_cond_signal(weft_cond *c);

/* Wake every waiter of c. */
WEFT_API void weft_cond_broadcast(weft_cond *c);

/* ------------------------------------------------------------------------ */
/* Context: cancellation, deadlines and values, as Go's context package.     */

typedef struct weft_ctx weft_ctx;

/* The root context: never cancelled, one static object; free is a no-op. */
WEFT_API weft_ctx *weft_ctx_background(void);

/* A child cancelled by weft_ctx_cancel or with its parent.  NULL parent:
 * NULL, errno EINVAL. */
WEFT_API weft_ctx *weft_ctx_with_cancel(weft_ctx *parent);

/* A child also cancelled (-ETIMEDOUT) at the absolute deadline. */
WEFT_API weft_ctx *weft_ctx_with_deadline(weft_ctx *parent, int64_t deadline);

/* weft_ctx_with_deadline(parent, weft_now() + timeout_ns). */
WEFT_API weft_ctx *weft_ctx_with_timeout(weft_ctx *parent, int64_t timeout_ns);

/* A child carrying key -> value; its done and err are its parent's. */
WEFT_API weft_ctx *weft_ctx_with_value(weft_ctx *parent, const void *key,
                                       void *value);

/* The value of the nearest ancestor with key (compared by address), or NULL. */
WEFT_API void *weft_ctx_value(weft_ctx *c, const void *key);

/* Cancel c and every descendant (-ECANCELED); idempotent.  No-op on value
 * contexts and background. */
WEFT_API void weft_ctx_cancel(weft_ctx *c);

/* A channel closed when c is cancelled (use it as a select case); NULL for
 * background. */
WEFT_API weft_chan *weft_ctx_done(weft_ctx *c);

/* 0, -ECANCELED, or -ETIMEDOUT (its deadline, or an ancestor's, passed). */
WEFT_API int weft_ctx_err(weft_ctx *c);

/* Cancel c and drop the caller's reference; children stay valid.  NULL ok. */
WEFT_API void weft_ctx_free(weft_ctx *c);

/* ------------------------------------------------------------------------ */
/* Groups: structured concurrency, as Go's errgroup.                        */

typedef struct weft_group weft_group;
typedef int (*weft_task)(weft_ctx *ctx, void *arg); /* 0 or a negative errno */

/* A group whose context derives from parent (NULL = background). */
WEFT_API weft_group *weft_group_make(weft_ctx *parent);

/* The group's context: cancelled at the first failure or when wait returns. */
WEFT_API weft_ctx *weft_group_ctx(weft_group *g);

/* Run at most n tasks at once (n <= 0: no limit). */
WEFT_API void weft_group_limit(weft_group *g, int n);

/* Start fn(ctx, arg) in a goroutine, waiting for a free slot. */
WEFT_API int weft_group_go(weft_group *g, weft_task fn, void *arg);

/* Like weft_group_go but -EAGAIN when the limit is reached. */
WEFT_API int weft_group_try_go(weft_group *g, weft_task fn, void *arg);

/* Wait for every task; return the first failure or 0, and free g. */
WEFT_API int weft_group_wait(weft_group *g);

/* ------------------------------------------------------------------------ */
/* Network and blocking calls.  They park only the calling goroutine; they
 * work on blocking and non-blocking descriptors alike and never raise
 * SIGPIPE.  One reader and one writer may use a descriptor at once (more
 * waiters are allowed, e.g. several goroutines accepting on one listener:
 * each readiness event wakes them all to retry).  On a plain thread they
 * block that thread (in poll(2)).  Errors are negative errno values:
 * -EBADF, -ECONNREFUSED, -ECONNRESET, -EPIPE, -ETIMEDOUT...
 *
 * Descriptor flags: sockets keep their flags (weft passes MSG_DONTWAIT per
 * call; weft_connect sets O_NONBLOCK only for the duration of the call).
 * Two cases have no per-call flag, so weft sets O_NONBLOCK on the
 * descriptor for good: a listening socket passed to weft_accept, and a
 * non-socket descriptor (pipe, FIFO, tty) passed to weft_read/weft_write.
 * That flag belongs to the open file, so it is shared with dup()s and with
 * other processes holding it (an inherited stdin, say).
 *
 * Regular files (and block devices, directories): epoll cannot wait on
 * them, and the kernel reports them always ready.  weft_read/weft_write
 * and weft_wait_fd work on them but never park: the read(2) or write(2)
 * runs at once and blocks the calling thread, a worker when called from a
 * goroutine, for as long as the disk takes.  weft leaves their flags
 * alone.  To keep workers free during file I/O, run it in weft_blocking,
 * or use a weft_reader/weft_writer (below), which does so a buffer at a
 * time.
 *
 * Closing: close(2) does not wake a goroutine parked on that descriptor
 * (as with threads blocked in read(2)); call shutdown(2) first, or use the
 * _timeout variants.  Descriptor numbers may be closed and reused freely.
 * The sockets weft makes (weft_accept, weft_dial, weft_listen) are
 * registered with epoll once, so their waits cost no system call; when one
 * is closed with close(2) and its number goes to a socket weft did not
 * make, a wait on that one in weft_read/weft_write/weft_accept may be
 * served up to 100 ms late, once (weft_wait_fd and weft_connect are not
 * affected). */

enum { WEFT_READABLE = 1, WEFT_WRITABLE = 2 };

/* Wait until fd is ready for events: the ready requested events (> 0; a
 * hang-up or error counts as all of them), -ETIMEDOUT, or -EINVAL. */
WEFT_API int weft_wait_fd(int fd, int events, int64_t timeout_ns);

/* read(2) that parks instead of blocking: bytes read, 0 at EOF, -errno. */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t n);

/* Write all n bytes (n), or return the error (-EPIPE for a closed peer). */
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t n);

/* accept(2); the new descriptor is non-blocking and close-on-exec. */
WEFT_API int weft_accept(int fd, struct sockaddr *addr, socklen_t *len);

/* connect(2), parking until the connection is established or fails. */
WEFT_API int weft_connect(int fd, const struct sockaddr *addr, socklen_t len);

/* The same four, giving up with -ETIMEDOUT after timeout_ns. */
WEFT_API ssize_t weft_read_timeout(int fd, void *buf, size_t n,
                                   int64_t timeout_ns);
WEFT_API ssize_t weft_write_timeout(int fd, const void *buf, size_t n,
                                    int64_t timeout_ns);
WEFT_API int weft_accept_timeout(int fd, struct sockaddr *addr, socklen_t *len,
                                 int64_t timeout_ns);
WEFT_API int weft_connect_timeout(int fd, const struct sockaddr *addr,
                                  socklen_t len, int64_t timeout_ns);

/* Run fn(arg) on a helper thread (a pool of 4 growing up to 64) and park
 * until it returns.  fn may call any weft function, as a plain thread; a
 * weft_blocking call made by fn runs inline on the same helper.
 * With 64 calls running, further calls wait their turn.  Helpers start on
 * first use and stop at weft_shutdown.  0, -EINVAL (fn NULL), -ENOMEM. */
WEFT_API int weft_blocking(weft_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Cancellation that reaches blocked calls.  Each call below is its blocking
 * counterpart above, also returning as soon as ctx ends (cancelled, or its
 * deadline or an ancestor's passed) with ctx's error: -ECANCELED or
 * -ETIMEDOUT.  A ctx that has ended already fails at once, before any I/O,
 * as in Go.  Nothing is lost: a call cut short has consumed nothing
 * (received bytes and queued connections stay where they were), except
 * that weft_write_ctx returns the count already written.  The end reaches
 * a goroutine parked on the netpoller and a plain thread in poll(2)
 * alike.  NULL ctx: -EINVAL (use weft_ctx_background() for none). */

/* As Go's ctx.Deadline(): 1 and *deadline (absolute, weft_now() clock) when
 * c or an ancestor has one, else 0 and *deadline = WEFT_FOREVER.  deadline
 * may be NULL.  -EINVAL for c NULL. */
WEFT_API int weft_ctx_deadline(weft_ctx *c, int64_t *deadline);

/* A pending after-function; see weft_ctx_after_func. */
typedef struct weft_after weft_after;

/* As Go's context.AfterFunc: run fn(arg) once, in a goroutine of its own,
 * when c ends (at once if it has ended; weft_ctx_free ends c too).  Never
 * for background or a context no cancel can reach.  NULL, errno EINVAL (c
 * or fn NULL) or ENOMEM.  Call weft_ctx_after_stop once per handle. */
WEFT_API weft_after *weft_ctx_after_func(weft_ctx *c, weft_fn fn, void *arg);

/* Stop a's fn from running and free a: 1 if this stopped it, 0 if fn has
 * started or run (it is not waited for), -EINVAL for NULL.  Call exactly
 * once per handle, whether fn ran or not; c may be freed before. */
WEFT_API int weft_ctx_after_stop(weft_after *a);

/* weft_sleep(ns) that ends early with ctx's error; 0 after the full sleep. */
WEFT_API int weft_sleep_ctx(weft_ctx *ctx, int64_t ns);

/* weft_wait_fd without a timeout, ending with ctx. */
WEFT_API int weft_wait_fd_ctx(weft_ctx *ctx, int fd, int events);

/* weft_read ending with ctx: bytes read, 0 at EOF, ctx's error, -errno. */
WEFT_API ssize_t weft_read_ctx(weft_ctx *ctx, int fd, void *buf, size_t n);

/* weft_write ending with ctx: n when all was written; when ctx ends part
 * way, the bytes written so far (0 < count < n; the next call then returns
 * ctx's error); ctx's error or -errno when nothing was written. */
WEFT_API ssize_t weft_write_ctx(weft_ctx *ctx, int fd, const void *buf,
                                size_t n);

/* weft_accept ending with ctx; a pending connection stays queued. */
WEFT_API int weft_accept_ctx(weft_ctx *ctx, int fd, struct sockaddr *addr,
                             socklen_t *len);

/* weft_connect ending with ctx.  A connection cut short is left half
 * open: close fd. */
WEFT_API int weft_connect_ctx(weft_ctx *ctx, int fd,
                              const struct sockaddr *addr, socklen_t len);

/* ------------------------------------------------------------------------ */
/* Dialling and listening by name, as Go's net.Dial and net.Listen.
 *
 * network: "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6" or "unix" (a stream
 * socket).  address, as Go writes it: "host:port", "[v6]:port" or ":port"
 * (no host: the local system to dial, every local address to listen on);
 * host a name or a literal address, port a number or a service name
 * ("http"); for "unix" a path, or "@name" in Linux's abstract namespace.
 * Names are resolved (getaddrinfo) on a thread of their own, never on a
 * worker; a literal address with a numeric port needs no lookup.  The
 * caller leaves at its deadline or when its context ends even while the
 * lookup still runs (it cleans up after itself).
 *
 * Descriptors returned are non-blocking and close-on-exec; use them with
 * weft_read/weft_write (or read(2) and write(2)) and close(2) them.
 * Errors: -EINVAL (unknown network, bad address syntax, unknown service,
 * port out of range), -ENXIO (no such host), -EAGAIN (the name server
 * failed for now), -ENAMETOOLONG (unix path), -ECONNREFUSED, -ETIMEDOUT,
 * -ECANCELED, -ENETUNREACH, -EADDRINUSE (listen), -ENOMEM, other -errno. */

/* Connect to address: a descriptor (>= 0) or -errno.  Each address the
 * name resolves to is tried in order until one connects; with a timeout
 * each try gets an equal share of the time left (at least 2 s), all
 * within timeout_ns, which covers the lookup too (WEFT_FOREVER: none; 0
 * fails with -ETIMEDOUT unless it connects at once).  When every address
 * fails, the first failure is returned.  A "udp" dial connects the socket
 * (no packet is sent). */
WEFT_API int weft_dial(const char *network, const char *address,
                       int64_t timeout_ns);

/* weft_dial within ctx: its deadline is the timeout, and it ends with
 * ctx's error (-ECANCELED, -ETIMEDOUT) as soon as ctx ends, also during
 * the lookup.  NULL ctx: -EINVAL. */
WEFT_API int weft_dial_ctx(weft_ctx *ctx, const char *network,
                           const char *address);

/* A listening socket for "tcp*" and "unix", a bound socket for "udp*"
 * (read it with recvfrom(2), or weft_wait_fd first): a descriptor or
 * -errno.  Port 0 picks a free port (read it back with weft_local_addr or
 * weft_local_port).  TCP sockets get SO_REUSEADDR; "tcp" and "udp"
 * without a host listen on one dual-stack [::] socket (0.0.0.0 where
 * IPv6 is missing), "tcp6" with a host on IPv6 only.  A unix path must not
 * exist yet (-EADDRINUSE): remove it with unlink(2) when done.  The
 * backlog is SOMAXCONN.  The lookup of a host name has no deadline. */
WEFT_API int weft_listen(const char *network, const char *address);

/* The local address of socket fd as text, the way address above is
 * written: "127.0.0.1:41234", "[::1]:41234", a unix path, "@name", or ""
 * for an unnamed unix socket.  Returns its length, or -ENOSPC when cap
 * bytes cannot hold it and its NUL (buf then holds ""), -EINVAL (buf NULL
 * or cap 0), -EAFNOSUPPORT, -errno. */
WEFT_API int weft_local_addr(int fd, char *buf, size_t cap);

/* The peer's address of connected socket fd, as weft_local_addr. */
WEFT_API int weft_remote_addr(int fd, char *buf, size_t cap);

/* The local port of an IPv4 or IPv6 socket, or -EAFNOSUPPORT, -errno. */
WEFT_API int weft_local_port(int fd);

/* ------------------------------------------------------------------------ */
/* Buffered I/O, as Go's bufio, and weft_copy (io.Copy).
 *
 * Over any descriptor weft_read/weft_write take (the goroutine parks, never
 * its thread) and over regular files and block devices, which epoll cannot
 * wait on: each read or write of those runs on the weft_blocking pool, one
 * thread hand-off per buffer fill or flush (not per line), and the file's
 * flags are left alone.  A reader or writer is used by one
 * goroutine at a time; neither closes its descriptor.  Errors are negative
 * errno values; the end of the input reads as 0, as with read(2). */

typedef struct weft_reader weft_reader;
typedef struct weft_writer weft_writer;

/* A reader of fd with a size-byte buffer (0 = 4096).  NULL with errno
 * EBADF (fd < 0) or ENOMEM. */
WEFT_API weft_reader *weft_reader_make(int fd, size_t size);

/* Free r (NULL ok); bytes still buffered are dropped, fd stays open. */
WEFT_API void weft_reader_free(weft_reader *r);

/* Later reads (fills) of r also end with ctx's error when ctx ends, as
 * weft_read_ctx (a file's fill checks ctx before it starts); NULL = none.
 * ctx must outlive its use by r.  0, or -EINVAL for r NULL. */
WEFT_API int weft_reader_ctx(weft_reader *r, weft_ctx *ctx);

/* Bytes buffered now, which the next read returns without waiting. */
WEFT_API size_t weft_reader_buffered(const weft_reader *r);

/* Up to n bytes: the buffered ones, else one read(2)'s worth.  Bytes
 * (> 0), 0 at the end of the input, -errno. */
WEFT_API ssize_t weft_reader_read(weft_reader *r, void *buf, size_t n);

/* Exactly n bytes (io.ReadFull): n; 0 at the end of the input before any
 * byte; -EPIPE when it ends part way; or the error (-ECANCELED...).  On
 * any failure nothing is consumed: the bytes read stay in r for the next
 * call (r's buffer grows to hold them). */
WEFT_API ssize_t weft_reader_read_full(weft_reader *r, void *buf, size_t n);

/* The bytes up to and including the first delim (Go's ReadString; '
'
 * for a line) into buf, NUL-terminated: their count.  A line longer than
 * cap - 1 bytes: -EMSGSIZE and nothing consumed (read it in pieces with
 * weft_reader_read); r's buffer grows up to cap bytes to look.  At the end
 * of the input, the last bytes without a delim (0 when none are left).
 * -EINVAL for buf NULL or cap 0. */
WEFT_API ssize_t weft_reader_read_until(weft_reader *r, int delim, char *buf,
                                        size_t cap);

/* A writer of fd with a size-byte buffer (0 = 4096).  NULL with errno
 * EBADF (fd < 0) or ENOMEM. */
WEFT_API weft_writer *weft_writer_make(int fd, size_t size);

/* As weft_reader_ctx, for w's writes: a write cut short keeps the rest of
 * the buffer, and the error sticks (see weft_writer_write). */
WEFT_API int weft_writer_ctx(weft_writer *w, weft_ctx *ctx);

/* Bytes buffered, not yet written. */
WEFT_API size_t weft_writer_buffered(const weft_writer *w);

/* Buffer n bytes, writing the buffer out when it fills (a write at least
 * as big as the buffer goes straight out): n or -errno.  An error sticks,
 * as in Go: every later write and flush returns it (-EPIPE for a closed
 * peer). */
WEFT_API ssize_t weft_writer_write(weft_writer *w, const void *buf, size_t n);

/* Write out everything buffered: 0 or the (sticky) error. */
WEFT_API int weft_writer_flush(weft_writer *w);

/* Flush, then free w (NULL ok: 0); fd stays open.  Returns the flush's
 * result: w is freed even when it fails. */
WEFT_API int weft_writer_free(weft_writer *w);

/* Copy src_fd to dst_fd until src's end (io.Copy), parking on both sides:
 * the bytes copied, or -errno (the count copied before is lost then). */
WEFT_API ssize_t weft_copy(int dst_fd, int src_fd);

/* weft_copy ending with ctx's error when ctx ends; -EINVAL for ctx NULL. */
WEFT_API ssize_t weft_copy_ctx(weft_ctx *ctx, int dst_fd, int src_fd);

/* ------------------------------------------------------------------------ */
/* Signals as channels, as Go's os/signal.
 *
 * Which thread takes a signal.  Every thread weft creates (workers,
 * weft_blocking helpers, the signal thread below) runs with all
 * asynchronous signals blocked, whenever the runtime starts: a signal sent
 * to the process (kill, Ctrl-C) is taken by one of the program's own
 * threads, main() included, exactly as if weft were not there.  So a
 * program that handles signals itself (sigaction, sigwait, signalfd) keeps
 * its rules: its handlers run on its own threads, never on a worker in the
 * middle of a goroutine.  Only faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGTRAP, SIGSYS), SIGPROF (profilers) and SIGQUIT (the runtime's own
 * dump, weft_dump, which may run on any thread) reach a worker.  raise()
 * and pthread_kill() target one thread: from a goroutine, that is a
 * worker, which never takes the signal; use kill(getpid(), sig).
 *
 * Signals asked for below are caught by weft instead: a handler that only
 * records the signal, and a signal thread that keeps exactly those signals
 * unblocked (so they are received even if every other thread blocks them)
 * and passes them on.  While any signal is asked for, that thread exists
 * and the deadlock report is off, as in Go. */

/* Send each of the n signals to c, an int channel, as it arrives; delivery
 * never blocks: a signal finding c full is dropped (as in Go; give c a
 * buffer).  Adds to c's earlier signals.  0, -EINVAL (c NULL or not of
 * int, n 0, a fault signal, SIGKILL/SIGSTOP), -ENOMEM.  Signals arriving
 * close together may be merged by the kernel. */
WEFT_API int weft_signal_notify(weft_chan *c, const int *signals, size_t n);

/* Stop sending signals to c: nothing more is sent once it returns.  A
 * signal no registration wants any more gets back the disposition it had
 * before the first weft_signal_notify or weft_signal_ctx (normally the
 * default).  0 (also when c had nothing registered), -EINVAL for NULL. */
WEFT_API int weft_signal_stop(weft_chan *c);

/* A child of parent cancelled (-ECANCELED) when one of the n signals
 * arrives: Go's signal.NotifyContext.  The signals are caught from the
 * call until the context ends, by a signal, its parent or weft_ctx_free
 * (Go's stop); then, if nothing else wants them, they get their old
 * disposition back, so a second Ctrl-C ends the program.  NULL with errno
 * EINVAL (as weft_signal_notify) or ENOMEM. */
WEFT_API weft_ctx *weft_signal_ctx(weft_ctx *parent, const int *signals,
                                   size_t n);

/* ------------------------------------------------------------------------ */
/* Diagnostics                                                              */

/* Write one line per goroutine to out (NULL: stderr), then one per plain
 * thread blocked in weft:
 *   goroutine <id> [<state>] <name>: <what it waits on> (<file:line>)
 *   thread <tid> [waiting] <name>: <what it waits on> (<file:line>)
 * <state> is running, runnable or waiting; <what> names the operation and
 * its object (e.g. "chan receive 0x5581c0a0", "mutex 0x...", "sleep, 1.5s
 * left", "fd read 7"); <file:line> is the blocking call's site, or ?.
 * A running goroutine's <what> is how long it has held its thread, as
 * "on its thread 0.152s" (", P handed off" once its worker slot went to
 * another thread), and its <file:line> the weft_go* call that started it.
 * SIGQUIT writes the same to stderr and the program goes on. */
WEFT_API void weft_dump(FILE *out);

/* Call sites for weft_dump.  Each blocking call below is also a macro that
 * records __FILE__ and __LINE__ and calls the real operation.  The channel
 * operations and weft_select pass them as two more arguments to their
 * weft__*_at form, kept only by a call that waits; the others record them
 * first with weft__site, an out-of-line call costing about a nanosecond.
 * The functions keep their names, signatures and addresses: &weft_recv,
 * (weft_recv)(c, v) and code compiled with -DWEFT_NO_SITE do the same
 * operation (their blocks show "?" as the site).  Define WEFT_NO_SITE
 * before including this header to turn the macros off.  weft_go and
 * weft_go_with are macros of the same kind (weft__go_at, weft__go_with_at):
 * the dump shows a running goroutine with its spawn site. */
WEFT_API void weft__site(const char *file, int line);
WEFT_API int weft__go_at(weft_fn fn, void *arg, const char *file, int line);
WEFT_API int weft__go_with_at(weft_fn fn, void *arg, const weft_goopts *opts,
                              const char *file, int line);
WEFT_API int weft__send_at(weft_chan *c, const void *elem, const char *file,
                           int line);
WEFT_API int weft__recv_at(weft_chan *c, void *out, const char *file, int line);
WEFT_API int weft__send_timeout_at(weft_chan *c, const void *elem,
                                   int64_t timeout_ns, const char *file,
                                   int line);
WEFT_API int weft__recv_timeout_at(weft_chan *c, void *out, int64_t timeout_ns,
                                   const char *file, int line);
WEFT_API int weft__select_at(weft_case *cases, size_t n, int64_t timeout_ns,
                             const char *file, int line);

#ifndef WEFT_NO_SITE
#define WEFT__AT(fn) (weft__site(__FILE__, __LINE__), fn)
#define weft_go(...) weft__go_at(__VA_ARGS__, __FILE__, __LINE__)
#define weft_go_with(...) weft__go_with_at(__VA_ARGS__, __FILE__, __LINE__)
#define weft_send(...) weft__send_at(__VA_ARGS__, __FILE__, __LINE__)
#define weft_recv(...) weft__recv_at(__VA_ARGS__, __FILE__, __LINE__)
#define weft_send_timeout(...)                                                 \
    weft__send_timeout_at(__VA_ARGS__, __FILE__, __LINE__)
#define weft_recv_timeout(...)                                                 \
    weft__recv_timeout_at(__VA_ARGS__, __FILE__, __LINE__)
#define weft_select(...) weft__select_at(__VA_ARGS__, __FILE__, __LINE__)
#define weft_sleep(...) WEFT__AT(weft_sleep)(__VA_ARGS__)
#define weft_mutex_lock(...) WEFT__AT(weft_mutex_lock)(__VA_ARGS__)
#define weft_rwmutex_rlock(...) WEFT__AT(weft_rwmutex_rlock)(__VA_ARGS__)
#define weft_rwmutex_lock(...) WEFT__AT(weft_rwmutex_lock)(__VA_ARGS__)
#define weft_wg_wait(...) WEFT__AT(weft_wg_wait)(__VA_ARGS__)
#define weft_once_do(...) WEFT__AT(weft_once_do)(__VA_ARGS__)
#define weft_cond_wait(...) WEFT__AT(weft_cond_wait)(__VA_ARGS__)
#define weft_group_go(...) WEFT__AT(weft_group_go)(__VA_ARGS__)
#define weft_group_wait(...) WEFT__AT(weft_group_wait)(__VA_ARGS__)
#define weft_wait_fd(...) WEFT__AT(weft_wait_fd)(__VA_ARGS__)
#define weft_read(...) WEFT__AT(weft_read)(__VA_ARGS__)
#define weft_write(...) WEFT__AT(weft_write)(__VA_ARGS__)
#define weft_accept(...) WEFT__AT(weft_accept)(__VA_ARGS__)
#define weft_connect(...) WEFT__AT(weft_connect)(__VA_ARGS__)
#define weft_read_timeout(...) WEFT__AT(weft_read_timeout)(__VA_ARGS__)
#define weft_write_timeout(...) WEFT__AT(weft_write_timeout)(__VA_ARGS__)
#define weft_accept_timeout(...) WEFT__AT(weft_accept_timeout)(__VA_ARGS__)
#define weft_connect_timeout(...) WEFT__AT(weft_connect_timeout)(__VA_ARGS__)
#define weft_blocking(...) WEFT__AT(weft_blocking)(__VA_ARGS__)
#define weft_sleep_ctx(...) WEFT__AT(weft_sleep_ctx)(__VA_ARGS__)
#define weft_wait_fd_ctx(...) WEFT__AT(weft_wait_fd_ctx)(__VA_ARGS__)
#define weft_read_ctx(...) WEFT__AT(weft_read_ctx)(__VA_ARGS__)
#define weft_write_ctx(...) WEFT__AT(weft_write_ctx)(__VA_ARGS__)
#define weft_accept_ctx(...) WEFT__AT(weft_accept_ctx)(__VA_ARGS__)
#define weft_connect_ctx(...) WEFT__AT(weft_connect_ctx)(__VA_ARGS__)
#define weft_dial(...) WEFT__AT(weft_dial)(__VA_ARGS__)
#define weft_dial_ctx(...) WEFT__AT(weft_dial_ctx)(__VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif
#endif
