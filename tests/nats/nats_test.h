/* SPDX-License-Identifier: MIT */
/*
 * Support for the NATS bridge tests (and its benchmark): a private
 * nats-server per test, and child processes of the test binary itself.
 *
 * The server runs on 127.0.0.1 with JetStream storing in a fresh
 * temporary folder.  Its first start picks a free port itself (-p -1) and
 * reports it in a ports file, so no two tests race for a port; a restart
 * reuses that port.  Every child (server or role process) gets
 * PR_SET_PDEATHSIG, so a test killed by its alarm leaves nothing behind.
 */
#ifndef WEFT_NATS_TEST_H
#define WEFT_NATS_TEST_H

#include "../check.h"
#include "weft_nats.h"
#include <stdbool.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#ifndef NATS_SERVER_BIN
#define NATS_SERVER_BIN "nats-server"
#endif

typedef struct nt_server {
    pid_t pid;
    int port;
    char dir[64];
    char url[64];
} nt_server;

static inline void nt_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* fork + exec argv with the child dying with us; stdout to out_fd if >= 0,
 * stdin from in_fd if >= 0, stderr to log (if not NULL). */
static inline pid_t nt_spawn(char *const argv[], int in_fd, int out_fd,
                             const char *log) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (in_fd >= 0)
            dup2(in_fd, 0);
        if (out_fd >= 0)
            dup2(out_fd, 1);
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Exit status of pid, waiting at most ms (then SIGKILL and -1). */
static inline int nt_wait(pid_t pid, int ms) {
    int st;
    for (int t = 0; t < ms; t += 5) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        nt_sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static inline int nt_read_port(const char *dir, pid_t pid) {
    char path[128], buf[256] = {0};
    snprintf(path, sizeof path, "%s/nats-server_%d.ports", dir, (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    const char *p = n > 0 ? strstr(buf, "127.0.0.1:") : NULL;
    return p ? atoi(p + strlen("127.0.0.1:")) : 0;
}

/* Start (port 0: a free one) and wait until it serves. */
static inline void nt_server_run(nt_server *s, int port) {
    char portarg[16], sd[96], log[96];
    snprintf(portarg, sizeof portarg, "%d", port ? port : -1);
    snprintf(sd, sizeof sd, "%s/js", s->dir);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    char *argv[] = {
        NATS_SERVER_BIN, "-a", "127.0.0.1",        "-p",   portarg, "-js",
        "-sd",           sd,   "--ports_file_dir", s->dir, NULL};
    s->pid = nt_spawn(argv, -1, -1, log);
    for (int t = 0; t < 10000 && !(s->port = nt_read_port(s->dir, s->pid));
         t += 10)
        nt_sleep_ms(10);
    CHECK(s->port > 0);
    snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
}

static inline void nt_server_start(nt_server *s) {
    snprintf(s->dir, sizeof s->dir, "/tmp/weft-nats-XXXXXX");
    CHECK(mkdtemp(s->dir) != NULL);
    nt_server_run(s, 0);
}

/* Graceful stop (the JetStream store is flushed); the folder stays. */
static inline void nt_server_stop(nt_server *s) {
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    nt_wait(s->pid, 10000);
    s->pid = 0;
}

static inline void nt_server_restart(nt_server *s) {
    int port = s->port;
    nt_server_stop(s);
    nt_server_run(s, port);
}

static inline int nt_rm(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline void nt_server_cleanup(nt_server *s) {
    nt_server_stop(s);
    nftw(s->dir, nt_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Path of this executable, for re-running it in another role. */
static inline const char *nt_self(void) {
    static char path[512];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    CHECK(n > 0);
    path[n] = 0;
    return path;
}

/* Connect, failing the test on error. */
static inline weft_nats *nt_connect(const char *url) {
    weft_nats *nc = NULL;
    int r = weft_nats_connect(url, WEFT_SEC(10), &nc);
    if (r)
        fprintf(stderr, "connect %s: %s\n", url, weft_strerror(r));
    CHECK_EQ(r, 0);
    return nc;
}

#endif
