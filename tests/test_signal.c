/* SPDX-License-Identifier: MIT */
/*
 * Signals as channels: weft_signal_notify / stop / ctx, the masks of
 * weft's own threads, and the default behaviour of a process that never
 * asked for a signal.  Every case runs in a child process: its subject is
 * process-wide (dispositions, masks) or ends the process.
 */
#include "child.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

/* An int channel, kept reachable for the leak checker: a child exits with
 * its channels still registered, or killed by the signal under test. */
static weft_chan *int_chan(size_t cap) {
    static weft_chan *made[8];
    static int n;
    CHECK(n < 8);
    return made[n++] = weft_chan_make(sizeof(int), cap);
}

/* A goroutine's (a worker's) signal mask, and a weft_blocking helper's. */
static sigset_t g_mask, helper_mask;
static weft_wg done;

static void read_mask(void *arg) {
    pthread_sigmask(SIG_BLOCK, NULL, arg);
}

static void mask_goroutine(void *arg) {
    (void)arg;
    read_mask(&g_mask);
    weft_blocking(read_mask, &helper_mask);
    weft_wg_done(&done);
}

/* Worker and helper threads block asynchronous signals, but not faults
 * nor the runtime's own SIGQUIT, whatever the mask of the thread that
 * started the runtime. */
static int runtime_masks(void) {
    weft_wg_add(&done, 1);
    weft_go(mask_goroutine, NULL);
    weft_wg_wait(&done);
    const sigset_t *masks[] = {&g_mask, &helper_mask};
    for (int i = 0; i < 2; i++) {
        if (!sigismember(masks[i], SIGTERM) || !sigismember(masks[i], SIGINT) ||
            !sigismember(masks[i], SIGUSR1))
            return 10 + i;
        if (sigismember(masks[i], SIGSEGV) || sigismember(masks[i], SIGBUS) ||
            sigismember(masks[i], SIGQUIT))
            return 20 + i;
    }
    return 0;
}

/* The trap: a program that blocks SIGTERM to sigwait() for it,
 * but only after the runtime started.  Workers used to take the signal,
 * and its default action killed the process. */
static int sigwait_after_start(void) {
    CHECK(weft_procs() > 0); /* starts the workers */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGTERM);
    struct timespec ts = {10, 0};
    int s = sigtimedwait(&set, NULL, &ts);
    return s == SIGTERM ? 0 : 3;
}

/* A process that never asked for signals: SIGTERM still kills it. */
static int never_asked(void) {
    CHECK(weft_procs() > 0);
    kill(getpid(), SIGTERM);
    weft_sleep(WEFT_SEC(10));
    return 0; /* not reached */
}

static int recv_sig(weft_chan *c) {
    int s = 0;
    int e = weft_recv_timeout(c, &s, WEFT_SEC(10));
    return e < 0 ? e : s;
}

/* SIGUSR1 to a channel, received by a goroutine. */
static weft_chan *got;
static void receiver(void *arg) {
    int s = recv_sig(arg);
    weft_send(got, &s);
}

static int usr1(void) {
    weft_chan *c = int_chan(1);
    got = int_chan(1);
    CHECK_EQ(weft_signal_notify(c, (int[]){SIGUSR1}, 1), 0);
    weft_go(receiver, c);
    kill(getpid(), SIGUSR1);
    int s = 0;
    CHECK_EQ(weft_recv_timeout(got, &s, WEFT_SEC(10)), 0);
    CHECK_EQ(s, SIGUSR1);
    CHECK_EQ(weft_signal_stop(c), 0);
    return 0;
}

/* SIGTERM while the runtime runs and goroutines are busy: it lands on the
 * channel, several times, and the process goes on. */
static atomic_int stop_spin;
static void spinner(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_spin))
        weft_yield();
}

static int sigterm(void) {
    for (int i = 0; i < 4; i++)
        weft_go(spinner, NULL);
    weft_chan *c = int_chan(4);
    CHECK_EQ(weft_signal_notify(c, (int[]){SIGINT, SIGTERM}, 2), 0);
    for (int i = 0; i < 3; i++) {
        kill(getpid(), SIGTERM);
        CHECK_EQ(recv_sig(c), SIGTERM);
    }
    kill(getpid(), SIGINT);
    CHECK_EQ(recv_sig(c), SIGINT);
    atomic_store(&stop_spin, 1);
    printf("alive\n");
    return 0;
}

/* Every thread of the program blocks SIGUSR1: the signal thread still
 * takes it. */
static int all_blocked(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    weft_chan *c = int_chan(1);
    CHECK_EQ(weft_signal_notify(c, (int[]){SIGUSR1}, 1), 0);
    kill(getpid(), SIGUSR1);
    CHECK_EQ(recv_sig(c), SIGUSR1);
    return 0;
}

/* A full channel drops the signal, and delivery to other channels goes
 * on: the signal thread never blocks. */
static int full_drops(void) {
    weft_chan *full = int_chan(1);
    weft_chan *other = int_chan(4);
    int sigs[] = {SIGUSR1, SIGUSR2};
    CHECK_EQ(weft_signal_notify(full, sigs, 2), 0);
    kill(getpid(), SIGUSR1);
    while (weft_chan_len(full) == 0)
        weft_sleep(WEFT_MS(1));
    CHECK_EQ(weft_signal_notify(other, (int[]){SIGUSR2}, 1), 0);
    kill(getpid(), SIGUSR2);
    CHECK_EQ(recv_sig(other), SIGUSR2);
    /* the same delivery pass tried full first or next: it dropped */
    CHECK_EQ(weft_chan_len(full), 1);
    CHECK_EQ(recv_sig(full), SIGUSR1);
    CHECK_EQ(weft_try_recv(full, NULL), -EAGAIN);
    /* an unbuffered channel nobody receives on drops everything */
    weft_chan *unbuf = int_chan(0);
    CHECK_EQ(weft_signal_notify(unbuf, (int[]){SIGUSR2}, 1), 0);
    kill(getpid(), SIGUSR2);
    CHECK_EQ(recv_sig(other), SIGUSR2);
    CHECK_EQ(weft_try_recv(unbuf, NULL), -EAGAIN);
    return 0;
}

/* After stop, a signal nobody wants has its default action again. */
static int stop_restores(void) {
    weft_chan *c = int_chan(1);
    weft_chan *d = int_chan(1);
    CHECK_EQ(weft_signal_notify(c, (int[]){SIGUSR1}, 1), 0);
    CHECK_EQ(weft_signal_notify(d, (int[]){SIGUSR1}, 1), 0);
    CHECK_EQ(weft_signal_stop(c), 0);
    kill(getpid(), SIGUSR1); /* d still wants it */
    CHECK_EQ(recv_sig(d), SIGUSR1);
    CHECK_EQ(weft_try_recv(c, NULL), -EAGAIN);
    CHECK_EQ(weft_signal_stop(d), 0);
    CHECK_EQ(weft_signal_stop(d), 0); /* nothing left: still fine */
    kill(getpid(), SIGUSR1);
    weft_sleep(WEFT_SEC(10));
    return 0; /* not reached */
}

/* Wait until the signal thread gives sig its default disposition back. */
static void wait_default(int sig) {
    struct sigaction sa;
    for (;;) {
        sigaction(sig, NULL, &sa);
        if (sa.sa_handler == SIG_DFL)
            return;
        weft_sleep(WEFT_MS(1));
    }
}

/* The signal context: the signal cancels it, which ends a goroutine's
 * blocked read; then the signal is no longer caught. */
static weft_ctx *sctx;
static void blocked_read(void *arg) {
    char b;
    int e = (int)weft_read_ctx(sctx, *(int *)arg, &b, 1);
    weft_send(got, &e);
}

static int signal_ctx(void) {
    got = int_chan(1);
    int sigs[] = {SIGINT, SIGTERM};
    weft_ctx *ctx = weft_signal_ctx(weft_ctx_background(), sigs, 2);
    CHECK(ctx);
    CHECK_EQ(weft_ctx_err(ctx), 0);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    sctx = ctx;
    weft_go(blocked_read, &p[0]);
    weft_sleep(WEFT_MS(20)); /* parked in the read, as a rule */
    kill(getpid(), SIGTERM);
    int e = 0;
    CHECK_EQ(weft_recv_timeout(got, &e, WEFT_SEC(10)), 0);
    CHECK_EQ(e, -ECANCELED);
    weft_ctx_free(ctx);
    wait_default(SIGINT);
    kill(getpid(), SIGINT);
    weft_sleep(WEFT_SEC(10));
    return 0; /* not reached */
}

/* Freeing a signal context before any signal gives the signal back. */
static int signal_ctx_freed(void) {
    weft_ctx *ctx = weft_signal_ctx(weft_ctx_background(), (int[]){SIGUSR1}, 1);
    CHECK(ctx);
    weft_ctx_free(ctx);
    wait_default(SIGUSR1);
    kill(getpid(), SIGUSR1);
    weft_sleep(WEFT_SEC(10));
    return 0; /* not reached */
}

static int bad_args(void) {
    weft_chan *c = int_chan(1);
    weft_chan *wide = weft_chan_make(sizeof(long long), 1);
    CHECK_EQ(weft_signal_notify(NULL, (int[]){SIGUSR1}, 1), -EINVAL);
    CHECK_EQ(weft_signal_notify(wide, (int[]){SIGUSR1}, 1), -EINVAL);
    CHECK_EQ(weft_signal_notify(c, NULL, 1), -EINVAL);
    CHECK_EQ(weft_signal_notify(c, (int[]){SIGUSR1}, 0), -EINVAL);
    int bad[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE,
                 SIGILL,  0,       -1,      NSIG,   1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(weft_signal_notify(c, (int[]){SIGUSR1, bad[i]}, 2), -EINVAL);
        errno = 0;
        CHECK(!weft_signal_ctx(weft_ctx_background(), &bad[i], 1));
        CHECK_EQ(errno, EINVAL);
    }
    CHECK(!weft_signal_ctx(NULL, (int[]){SIGUSR1}, 1));
    CHECK_EQ(weft_signal_stop(NULL), -EINVAL);
    CHECK_EQ(weft_signal_stop(c), 0);
    /* nothing was registered by the failed calls */
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL);
    weft_chan_free(c);
    weft_chan_free(wide);
    return 0;
}

/* fork(): the grandchild starts with none of the parent's registrations
 * (SIGUSR1 has its default disposition back), and a registration of its
 * own gets its signal: its dispatcher was believed running, and the
 * eventfd was the parent's.  The parent still gets its own signal after. */
static int forked_grandchild(void) {
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    if (sa.sa_handler != SIG_DFL)
        return 20;
    weft_chan *c = int_chan(1);
    if (!c || weft_signal_notify(c, (int[]){SIGUSR1}, 1) != 0)
        return 21;
    kill(getpid(), SIGUSR1);
    if (recv_sig(c) != SIGUSR1)
        return 22;
    return 0;
}

static int forked(void) {
    weft_chan *c = int_chan(1);
    CHECK_EQ(weft_signal_notify(c, (int[]){SIGUSR1}, 1), 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(forked_grandchild());
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "grandchild: status %#x\n", status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    kill(getpid(), SIGUSR1);
    CHECK_EQ(recv_sig(c), SIGUSR1);
    return 0;
}

static const char *const quiet[] = {"ASAN_OPTIONS=detect_leaks=0", NULL};
static child c;

static void expect_ok(int (*fn)(void), const char *name) {
    child_run(fn, quiet, &c);
    if (child_exit_code(&c) != 0)
        fprintf(stderr, "case %s: exit %d, signal %d\n", name,
                child_exit_code(&c), child_signal(&c));
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
}

static void expect_killed(int (*fn)(void), int sig, const char *name) {
    child_run(fn, quiet, &c);
    if (child_signal(&c) != sig)
        fprintf(stderr, "case %s: exit %d, signal %d\n", name,
                child_exit_code(&c), child_signal(&c));
    CHILD_CHECK(&c, child_signal(&c) == sig);
}

int main(void) {
    TEST_BEGIN(120);
    const char *san = getenv("WEFT_SANITIZER");
    expect_ok(runtime_masks, "runtime_masks");
    expect_ok(sigwait_after_start, "sigwait_after_start");
    expect_killed(never_asked, SIGTERM, "never_asked");
    expect_ok(usr1, "usr1");
    expect_ok(sigterm, "sigterm");
    CHILD_CHECK(&c, strstr(c.out, "alive\n"));
    /* Under ThreadSanitizer the signal was lost 2 to 5 runs in 10 (at
     * 5e8a405 too; strace shows it delivered to main, which was to block
     * it, and TSan defers a handler to the receiving thread's next
     * intercepted call).  Not understood yet: the case runs everywhere
     * else. */
    if (san && !strcmp(san, "thread"))
        printf("skipped all_blocked under ThreadSanitizer\n");
    else
        expect_ok(all_blocked, "all_blocked");
    expect_ok(full_drops, "full_drops");
    expect_killed(stop_restores, SIGUSR1, "stop_restores");
    expect_killed(signal_ctx, SIGINT, "signal_ctx");
    expect_killed(signal_ctx_freed, SIGUSR1, "signal_ctx_freed");
    expect_ok(bad_args, "bad_args");
    /* ThreadSanitizer ends a forked child of a multi-threaded process
     * that starts threads (die_after_fork), which this one must; under
     * AddressSanitizer such a child sometimes hangs (see test_fork.c) */
    if (san && strcmp(san, "none") != 0)
        printf("case forked: skipped under a sanitizer\n");
    else
        expect_ok(forked, "forked");
    TEST_OK();
    return 0;
}
