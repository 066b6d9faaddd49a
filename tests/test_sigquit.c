/* SPDX-License-Identifier: MIT */
/*
 * SIGQUIT dumps while the interrupted thread holds a runtime lock.  The
 * child spawns goroutines from main (each spawn from a plain thread takes
 * the lock of the free g structs) while the parent sends SIGQUIT over and
 * over; the handler runs on whichever thread the signal lands on, main
 * included.  Before, the dump waited for that same lock and the child
 * hung the first time a signal landed inside it.  The child must finish
 * in bounded time, and its stderr must hold dumps.
 */
#include "check.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

enum { PER_ROUND = 2000 };

static weft_wg wg;

static void nothing(void *arg) {
    (void)arg;
    weft_wg_done(&wg);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read what the child wrote so far; true if there was something.  Counts
 * the goroutine lines (one cut across two reads is missed: no matter). */
static bool drain(int fd, size_t *bytes, int *dumps) {
    static char buf[1 << 16];
    bool any = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf - 1)) > 0) {
        buf[n] = 0;
        *bytes += (size_t)n;
        *dumps += test_count(buf, "goroutine ");
        any = true;
    }
    return any;
}

static int child_main(int ready_fd) {
    weft_procs(); /* starts the runtime, which installs the handler */
    CHECK(write(ready_fd, "r", 1) == 1);
    close(ready_fd);
    for (int64_t end = weft_now() + WEFT_SEC(3); weft_now() < end;) {
        weft_wg_add(&wg, PER_ROUND);
        for (int i = 0; i < PER_ROUND; i++)
            CHECK_EQ(weft_go(nothing, NULL), 0);
        weft_wg_wait(&wg);
    }
    return 0;
}

int main(void) {
    TEST_BEGIN(120);
    int ready[2], log[2];
    CHECK(pipe(ready) == 0);
    CHECK(pipe2(log, O_NONBLOCK) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(log[0]);
        dup2(log[1], 2);
        _exit(child_main(ready[1]));
    }
    close(ready[1]);
    close(log[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    double t0 = now_s();
    int status, sent = 0, dumps = 0;
    size_t bytes = 0;
    pid_t done = 0;
    /* the dumps are read and dropped as they come: they add up to GBs */
    while (done == 0) {
        if (now_s() - t0 > 60 * test_scale()) {
            kill(pid, SIGKILL);
            fprintf(stderr, "child hung after %d SIGQUITs\n", sent);
            CHECK(!"the child finished");
        }
        kill(pid, SIGQUIT);
        sent++;
        drain(log[0], &bytes, &dumps);
        usleep(500);
        done = waitpid(pid, &status, WNOHANG);
    }
    while (drain(log[0], &bytes, &dumps))
        continue;
    CHECK_EQ(done, pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK(dumps > 0);
    printf("%d SIGQUITs, %d dump lines, %zu bytes\n", sent, dumps, bytes);
    TEST_OK();
    return 0;
}
