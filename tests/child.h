/* SPDX-License-Identifier: MIT */
/*
 * Subprocess support for tests whose subject ends the process (deadlock
 * exit, stack overflow abort, sanitizer reports) or depends on variables
 * read at runtime start (WEFT_SEED, WEFT_TRACE, WEFT_DEADLOCK).
 *
 * child_run(fn, env, &c) forks; the child adds env to its environment,
 * runs fn and exits with what it returns (through exit(), so atexit
 * handlers run as when main returns).  The parent collects the child's
 * stdout and stderr into one buffer and how it ended and how long it took.
 * The parent must never start the runtime itself: it forks while
 * single-threaded, so the child starts from a clean state.  (No exec, so
 * this also works under qemu-user.)
 */
#ifndef WEFT_TEST_CHILD_H
#define WEFT_TEST_CHILD_H

#include "check.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

typedef struct child {
    int status; /* as from waitpid */
    double secs;
    char out[1 << 16];
} child;

static inline double child_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run fn in a child process with env (NULL-terminated "K=V" entries, may
 * be NULL) added to its environment. */
static inline void child_run(int (*fn)(void), const char *const *env,
                             child *c) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    double t0 = child_clock();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        for (; env && *env; env++)
            putenv((char *)*env);
        exit(fn());
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fds[0], c->out + n, sizeof c->out - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof c->out - 1)
            n = 0; /* keep reading so the child never blocks */
    }
    c->out[n] = 0;
    close(fds[0]);
    CHECK(waitpid(pid, &c->status, 0) == pid);
    c->secs = child_clock() - t0;
}

static inline int child_exit_code(const child *c) {
    return WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
}

static inline int child_signal(const child *c) {
    return WIFSIGNALED(c->status) ? WTERMSIG(c->status) : 0;
}

/* Print the child's output when a check on it is about to fail. */
#define CHILD_CHECK(c, cond)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "--- child output ---\n%s--- end ---\n",           \
                    (c)->out);                                                 \
            CHECK(cond);                                                       \
        }                                                                      \
    } while (0)

/* Run fn in a child with one more variable in its environment ("K=V"),
 * and check that it exits with 0 within max_secs. */
static inline void child_run_ok(int (*fn)(void), const char *var,
                                double max_secs) {
    const char *env[] = {var, NULL};
    child c;
    child_run(fn, env, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    CHILD_CHECK(&c, c.secs < max_secs);
}

#endif
