/* SPDX-License-Identifier: MIT */
/*
 * Out of memory inside the scheduler: nothing may be lost.  A full run
 * queue spills half of itself to the global queue in an array it
 * allocates, and a worker with too many free g structs hands 32 of them
 * on in another; when malloc fails, both fall back to linked lists.  This
 * program replaces malloc so that it fails on demand, spawns bursts from
 * a goroutine while it does, and checks that every goroutine ran exactly
 * once.  Stacks are warmed up first: a goroutine's stack of the default
 * size is attached when it first runs, where running out of memory is
 * fatal by design.
 *
 * realloc and mmap fail on demand too (the timer heap grows by realloc;
 * stacks and g chunks come from mmap, which the static build calls through
 * libc): a timed wait that finds no timer slot returns -ENOMEM at once and
 * loses nothing, a periodic timer keeps ticking while the heap is full,
 * and with everything failing each call returns -ENOMEM or succeeds.
 * Label nosan: a sanitizer runtime owns malloc.
 */
#include "check.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/syscall.h>

void *__libc_malloc(size_t n);
void *__libc_realloc(void *p, size_t n);

static atomic_int failing, realloc_failing, mmap_failing;
static atomic_long refused, realloc_refused;

void *malloc(size_t n) {
    if (atomic_load_explicit(&failing, memory_order_relaxed)) {
        atomic_fetch_add(&refused, 1);
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(n);
}

void *realloc(void *p, size_t n) {
    if (atomic_load_explicit(&realloc_failing, memory_order_relaxed)) {
        atomic_fetch_add(&realloc_refused, 1);
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, n);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (atomic_load_explicit(&mmap_failing, memory_order_relaxed)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

enum { BURST = 20000 };
static weft_wg wg;
static atomic_char ran[BURST];

static void mark(void *arg) {
    atomic_fetch_add(&ran[(intptr_t)arg], 1);
    weft_wg_done(&wg);
}

static void burst(void *done) {
    weft_wg_add(&wg, BURST);
    for (intptr_t i = 0; i < BURST; i++)
        CHECK_EQ(weft_go(mark, (void *)i), 0);
    weft_wg_wait(&wg);
    weft_wg_done(done);
}

/* One burst spawned by a goroutine, malloc failing or not. */
static void run_burst(bool fail) {
    memset(ran, 0, sizeof ran);
    weft_wg done = {0};
    weft_wg_add(&done, 1);
    atomic_store(&failing, fail);
    CHECK_EQ(weft_go(burst, &done), 0);
    weft_wg_wait(&done);
    atomic_store(&failing, 0);
    for (int i = 0; i < BURST; i++)
        CHECK_EQ(ran[i], 1);
}

/* Give every worker cached stacks: WARM goroutines blocked at once, too few
 * to spill a run queue or a free array (which would allocate the arrays
 * this test wants to see fail). */
enum { WARM = 16 };

static weft_wg warm_started;

static void warm_one(void *gate) {
    weft_wg_done(&warm_started);
    CHECK_EQ(weft_recv(gate, NULL), -EPIPE);
    weft_wg_done(&wg);
}

static void warm_stacks(void) {
    weft_chan *gate = weft_chan_make(0, 0);
    CHECK(gate);
    weft_wg_add(&warm_started, WARM);
    weft_wg_add(&wg, WARM);
    for (int i = 0; i < WARM; i++)
        CHECK_EQ(weft_go(warm_one, gate), 0);
    weft_wg_wait(&warm_started);
    CHECK_EQ(weft_close(gate), 0);
    weft_wg_wait(&wg);
    weft_chan_free(gate);
}

/* Timed waits while the timer heap cannot grow: each returns -ETIMEDOUT
 * or, at once, -ENOMEM; none hangs, and none leaves a node behind. */
enum { WAITERS = 400 };
static atomic_int timed_out, no_timer;

static void timed_waiter(void *c) {
    int v;
    int64_t t0 = weft_now();
    int r = weft_recv_timeout(c, &v, WEFT_MS(100));
    if (r == -ENOMEM) {
        CHECK(weft_now() - t0 < WEFT_MS(100));
        atomic_fetch_add(&no_timer, 1);
    } else {
        CHECK_EQ(r, -ETIMEDOUT);
        atomic_fetch_add(&timed_out, 1);
    }
    weft_wg_done(&wg);
}

static void test_timed_waits(void) {
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    CHECK(c);
    atomic_store(&realloc_failing, 1);
    weft_wg_add(&wg, WAITERS);
    for (int i = 0; i < WAITERS; i++)
        CHECK_EQ(weft_go(timed_waiter, c), 0);
    weft_wg_wait(&wg);
    atomic_store(&realloc_failing, 0);
    CHECK_EQ(atomic_load(&timed_out) + atomic_load(&no_timer), WAITERS);
    CHECK(atomic_load(&no_timer) > 0);
    int v = 7;
    CHECK_EQ(weft_try_send(c, &v), -EAGAIN); /* no waiter left queued */
    weft_chan_free(c);
}

/* Fillers keep the timer heap full while realloc fails; a periodic timer
 * must keep its slot and tick on. */
static atomic_bool filling;

static void filler(void *c) {
    int v;
    while (atomic_load(&filling))
        if (weft_recv_timeout(c, &v, WEFT_MS(20)) == -ENOMEM)
            weft_yield();
    weft_wg_done(&wg);
}

static void test_periodic_full_heap(void) {
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    CHECK(c);
    weft_timer *t = weft_timer_start(WEFT_MS(5), WEFT_MS(5));
    CHECK(t);
    atomic_store(&filling, true);
    atomic_store(&realloc_failing, 1);
    weft_wg_add(&wg, WAITERS);
    for (int i = 0; i < WAITERS; i++)
        CHECK_EQ(weft_go(filler, c), 0);
    int ticks = 0;
    int64_t at, end = weft_now() + WEFT_MS(500);
    while (weft_now() < end)
        if (weft_recv_timeout(weft_timer_chan(t), &at, WEFT_MS(100)) == 0)
            ticks++;
    atomic_store(&filling, false);
    weft_wg_wait(&wg);
    atomic_store(&realloc_failing, 0);
    CHECK(atomic_load(&realloc_refused) > 0);
    CHECK(ticks >= 5);
    CHECK_EQ(weft_timer_stop(t), 0);
    weft_chan_free(c);
}

static void nop(void *arg) {
    weft_wg_done(arg);
}

/* malloc, realloc and mmap all failing: -ENOMEM (or NULL with errno
 * ENOMEM) from every call that needs memory, and afterwards everything
 * works again. */
static void test_all_failing(void) {
    weft_goopts big = {.stack_size = 512 * 1024}; /* no such stack pooled */
    weft_wg w = {0};
    atomic_store(&failing, 1);
    atomic_store(&realloc_failing, 1);
    atomic_store(&mmap_failing, 1);
    CHECK_EQ(weft_go_with(nop, &w, &big), -ENOMEM);
    errno = 0;
    CHECK(!weft_chan_make(sizeof(int), 4));
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(!weft_timer_start(WEFT_MS(1), 0));
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(!weft_ctx_with_timeout(weft_ctx_background(), WEFT_MS(1)));
    CHECK_EQ(errno, ENOMEM);
    weft_case cs[9] = {{0}};
    for (int i = 0; i < 9; i++)
        cs[i].op = WEFT_RECV;
    CHECK_EQ(weft_select(cs, 9, 0), -ENOMEM);
    atomic_store(&mmap_failing, 0);
    atomic_store(&realloc_failing, 0);
    atomic_store(&failing, 0);
    weft_wg_add(&w, 2);
    CHECK_EQ(weft_go_with(nop, &w, &big), 0);
    CHECK_EQ(weft_go(nop, &w), 0);
    weft_wg_wait(&w);
    weft_timer *t = weft_timer_start(WEFT_MS(1), 0);
    CHECK(t);
    int64_t at;
    CHECK_EQ(weft_recv(weft_timer_chan(t), &at), 0);
    CHECK_EQ(weft_timer_stop(t), 0);
}

int main(void) {
    TEST_BEGIN(60);
    CHECK_EQ(weft_init(NULL), 0);
    warm_stacks();
    run_burst(true);
    CHECK(atomic_load(&refused) > 0); /* the fallbacks really ran */
    run_burst(false);
    run_burst(true);
    test_timed_waits();
    test_periodic_full_heap();
    test_all_failing();
    CHECK_EQ(weft_shutdown(), 0);
    TEST_OK();
    return 0;
}
