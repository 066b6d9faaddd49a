/* SPDX-License-Identifier: MIT */
/*
 * fork(): the child of a process that uses weft starts a fresh runtime on
 * its first weft call.  Before, weft_go in the child returned 0 and the
 * goroutine never ran: no workers existed there.  The parent forks while
 * its goroutines run and a periodic timer is armed, from main and from a
 * weft_blocking helper; each child spawns goroutines, uses a channel, a
 * sleep and a timer (and stops the parent's timer, which must not touch
 * the child's heap) and exits 0 in bounded time; the parent goes on.
 *
 * Two leftovers of the fork work: a periodic timer whose callback is
 * running at the fork (on a worker the child does not have) once made the
 * child's weft__timer_del wait for ever, and the slot it kept made the
 * child's next timer write into a freed heap; and a traced parent's child
 * rewrote the parent's WEFT_TRACE file with its own events.
 */
#include "../src/timer.h" /* a timer callback held at the fork */
#include "check.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

enum { N = 50 };

static weft_timer *ticker;    /* the parent's, armed at the fork */
static weft__timer slow;      /* the parent's, its callback running at a fork */
static atomic_int slow_state; /* 1: the callback runs; 2: it may return */
static atomic_bool stop_spin;
static weft_wg spin_wg;

static void spin(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_spin))
        weft_sleep(WEFT_US(100));
    weft_wg_done(&spin_wg);
}

static void send_id(void *arg) {
    weft_chan *c = arg;
    weft_sleep(WEFT_MS(1));
    int64_t id = (int64_t)weft_id();
    weft_send(c, &id);
}

/* What each child does: 0 when all of it worked. */
static int child_work(void) {
    if (weft_timer_stop(ticker) != 0) /* periodic: 0, and no crash */
        return 10;
    weft_chan *c = weft_chan_make(sizeof(int64_t), 0);
    if (!c)
        return 11;
    for (int i = 0; i < N; i++)
        if (weft_go(send_id, c) != 0)
            return 12;
    for (int i = 0; i < N; i++) {
        int64_t id;
        if (weft_recv_timeout(c, &id, WEFT_SEC(10)) != 0)
            return 13;
    }
    weft_chan_free(c);
    weft_timer *t = weft_timer_start(WEFT_MS(5), 0);
    int64_t at;
    if (!t || weft_recv_timeout(weft_timer_chan(t), &at, WEFT_SEC(10)) != 0)
        return 14;
    weft_timer_stop(t);
    if (weft_sleep(WEFT_MS(2)) != 0 || weft_goroutines() != 0)
        return 15;
    if (weft_shutdown() != 0) /* writes the trace file, if the child had one */
        return 16;
    return 0;
}

/* Fork; the child runs child_work and leaves with _exit (not exit: it
 * shares the parent's atexit handlers and stdio buffers). */
static pid_t fork_child(void) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_work());
    return pid;
}

/* The child's exit code, -1 when it did not end within 30 s (killed). */
static int wait_child(pid_t pid) {
    int status;
    for (int i = 0; i < 3000 * test_scale(); i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        CHECK(r >= 0);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
        usleep(10 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* The first run waits until the parent has forked. */
static void slow_tick(weft__timer *t, int64_t now) {
    (void)t;
    (void)now;
    int first = 0;
    if (atomic_compare_exchange_strong(&slow_state, &first, 1))
        while (atomic_load(&slow_state) != 2)
            weft__cpu_relax();
}

/* Fork while slow_tick runs on a worker: the child stops that timer (it
 * must not wait for the callback) and then arms and runs a timer of its
 * own, and the rest of child_work. */
static void fork_in_callback(void) {
    slow.fn = slow_tick;
    slow.idx = -1;
    slow.period = WEFT_MS(1);
    CHECK_EQ(weft__timer_add(&slow, weft_now()), 0);
    while (atomic_load(&slow_state) != 1) /* no weft wait: the only worker */
        usleep(100);                      /* may be the one in slow_tick */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        weft__timer_del(&slow);
        _exit(child_work());
    }
    CHECK(pid > 0);
    atomic_store(&slow_state, 2);
    CHECK_EQ(wait_child(pid), 0);
    weft__timer_del(&slow);
}

static void fork_in_helper(void *arg) {
    *(pid_t *)arg = fork_child();
}

/* The parent still works: goroutines, a channel and its own timer. */
static void check_parent(void) {
    weft_chan *c = weft_chan_make(sizeof(int64_t), 0);
    CHECK(c);
    CHECK_EQ(weft_go(send_id, c), 0);
    int64_t id;
    CHECK_EQ(weft_recv_timeout(c, &id, WEFT_SEC(10)), 0);
    weft_chan_free(c);
    int64_t at;
    CHECK_EQ(weft_recv_timeout(weft_timer_chan(ticker), &at, WEFT_SEC(10)), 0);
}

/* ctest's SKIP_RETURN_CODE for this test (CMakeLists.txt) */
#define SKIPPED 77

int main(void) {
    TEST_BEGIN(120);
    /* ThreadSanitizer ends a child of a multi-threaded process that starts
     * threads (its die_after_fork), which is what this child must do;
     * under AddressSanitizer the child sometimes never got its goroutines
     * done (a CI run; cause not found yet), and qemu-user itself aborts in
     * such a child: it runs in a plain native build only */
    const char *san = getenv("WEFT_SANITIZER");
    if (san && strcmp(san, "none") != 0) {
        printf("skipped: threads in a forked child under a sanitizer\n");
        return SKIPPED;
    }
    /* fork_child's children shut their runtime down, which writes a trace
     * file if they trace: the parent's file must not appear */
    char trace[64];
    snprintf(trace, sizeof trace, "/tmp/weft-fork-trace-%d.json",
             (int)getpid());
    unlink(trace);
    CHECK_EQ(setenv("WEFT_TRACE", trace, 1), 0);
    ticker = weft_timer_start(WEFT_MS(1), WEFT_MS(1));
    CHECK(ticker);
    weft_wg_add(&spin_wg, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_go(spin, NULL), 0);
    check_parent();

    pid_t pid = fork_child();
    CHECK(pid > 0);
    CHECK_EQ(wait_child(pid), 0);
    check_parent();

    pid = 0;
    CHECK_EQ(weft_blocking(fork_in_helper, &pid), 0);
    CHECK(pid > 0);
    CHECK_EQ(wait_child(pid), 0);
    check_parent();

    fork_in_callback();
    check_parent();
    CHECK(access(trace, F_OK) != 0);

    atomic_store(&stop_spin, true);
    weft_wg_wait(&spin_wg);
    weft_timer_stop(ticker);
    /* the parent's own trace is written, and it is the parent's */
    CHECK_EQ(weft_shutdown(), 0);
    FILE *f = fopen(trace, "r");
    CHECK(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    char pid_field[32];
    snprintf(pid_field, sizeof pid_field, "\"pid\":%d,", (int)getpid());
    CHECK(strstr(buf, pid_field));
    unlink(trace);
    TEST_OK();
    return 0;
}
