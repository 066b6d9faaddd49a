/* SPDX-License-Identifier: MIT */
/*
 * fork(): the child of a process that uses weft starts a fresh runtime on
 * its first weft call.  Before, weft_go in the child returned 0 and the
 * goroutine never ran: no workers existed there.  The parent forks while
 * its goroutines run and a periodic timer is armed, from main and from a
 * weft_blocking helper; each child spawns goroutines, uses a channel, a
 * sleep and a timer (and stops the parent's timer, which must not touch
 * the child's heap) and exits 0 in bounded time; the parent goes on.
 */
#include "check.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

enum { N = 50 };

static weft_timer *ticker; /* the parent's, armed at the fork */
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
     * threads (its die_after_fork), which is what this child must do */
    const char *san = getenv("WEFT_SANITIZER");
    if (san && strcmp(san, "thread") == 0) {
        printf("skipped: threads in a forked child under ThreadSanitizer\n");
        return SKIPPED;
    }
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

    atomic_store(&stop_spin, true);
    weft_wg_wait(&spin_wg);
    weft_timer_stop(ticker);
    TEST_OK();
    return 0;
}
