/*
 * Subprocess support for tests whose subject ends the process (deadlock
 * exit, stack overflow abort, sanitizer reports) or depends on variables
 * read at runtime start (WEFT_SEED, WEFT_TRACE).
 *
 * A test's main() calls CHILD_DISPATCH(argc, argv, modes) first: when run
 * as "<self> child <mode>" it runs that mode's function and exits with
 * what it returns.  child_run() starts such a child with extra environment
 * entries, collects its stdout and stderr into one buffer, and reports how
 * it ended and how long it took.  The parent never starts the runtime, so
 * it forks while single-threaded.
 */
#ifndef WEFT_TEST_CHILD_H
#define WEFT_TEST_CHILD_H

#include "check.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

typedef struct child_mode {
    const char *name;
    int (*fn)(void);
} child_mode;

typedef struct child {
    int status; /* as from waitpid */
    double secs;
    char out[1 << 16];
} child;

#define CHILD_DISPATCH(argc, argv, modes)                                      \
    do {                                                                       \
        if ((argc) == 3 && strcmp((argv)[1], "child") == 0)                    \
            exit(child_dispatch((argv)[2], modes));                            \
    } while (0)

static inline int child_dispatch(const char *mode, const child_mode *modes) {
    for (; modes->name; modes++)
        if (strcmp(modes->name, mode) == 0)
            return modes->fn();
    fprintf(stderr, "unknown child mode %s\n", mode);
    return 100;
}

static inline double child_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run "<self> child <mode>" with env (NULL-terminated "K=V" entries, may be
 * NULL) added to the environment. */
static inline void child_run(const char *mode, const char *const *env,
                             child *c) {
    int fds[2];
    CHECK(pipe(fds) == 0);
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
        alarm(0);
        execl("/proc/self/exe", "child", "child", mode, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fds[0], c->out + n, sizeof c->out - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof c->out - 1)
            n = 0; /* keep reading so the child never blocks; keep the tail */
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

/* A sanitizer build of this test (the child inherits the instrumentation). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CHILD_SANITIZED 1
#else
#define CHILD_SANITIZED 0
#endif

#endif
