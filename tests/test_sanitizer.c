/* SPDX-License-Identifier: MIT */
/*
 * The sanitizers see goroutines as they see threads.
 *
 * ThreadSanitizer build: two goroutines that increment a plain int on two
 * workers at once ARE reported as a data race; the same increments ordered
 * by a channel hand-off, a weft_mutex, a close, or a WaitGroup are clean
 * (weft's happens-before edges are visible to TSan).
 * AddressSanitizer build: a use-after-free inside a goroutine is reported.
 * Each program runs as a child process; in a build without the sanitizer
 * in question its part is skipped (and says so), and in a build with
 * neither the whole test reports ctest's skip status.
 */
#include "child.h"

#include <stdatomic.h>
#include <stdbool.h>

#define INCREMENTS 1000

static int counter; /* plain on purpose */
static atomic_int arrived;
static atomic_bool together;
static weft_wg wg;

/* Hold the calling goroutine until both of a pair are running, so that the
 * two really run on two workers at once (false after a second alone). */
static bool meet(void) {
    atomic_fetch_add(&arrived, 1);
    int64_t until = weft_now() + WEFT_SEC(1);
    while (atomic_load(&arrived) < 2)
        if (weft_now() > until)
            return false;
    return true;
}

/* Run fn in two goroutines that start together; retried a few times in
 * case the second one did not get its own worker in time. */
static int pair(weft_fn fn) {
    for (int attempt = 0; attempt < 5; attempt++) {
        atomic_store(&arrived, 0);
        atomic_store(&together, true);
        weft_wg_add(&wg, 2);
        weft_go(fn, NULL);
        weft_go(fn, NULL);
        weft_wg_wait(&wg);
        if (atomic_load(&together))
            return 0;
    }
    fprintf(stderr, "the two goroutines never ran at the same time\n");
    return 4;
}

static void racy(void *arg) {
    (void)arg;
    if (!meet())
        atomic_store(&together, false);
    for (int i = 0; i < INCREMENTS; i++)
        counter++;
    weft_wg_done(&wg);
}

static weft_chan *baton; /* one token: whoever holds it may increment */

static void by_channel(void *arg) {
    (void)arg;
    if (!meet())
        atomic_store(&together, false);
    for (int i = 0; i < INCREMENTS; i++) {
        weft_recv(baton, NULL);
        counter++;
        weft_send(baton, NULL);
    }
    weft_wg_done(&wg);
}

static weft_mutex mu;

static void by_mutex(void *arg) {
    (void)arg;
    if (!meet())
        atomic_store(&together, false);
    for (int i = 0; i < INCREMENTS; i++) {
        weft_mutex_lock(&mu);
        counter++;
        weft_mutex_unlock(&mu);
    }
    weft_wg_done(&wg);
}

static int race(void) {
    return pair(racy);
}

static int channel(void) {
    baton = weft_chan_make(0, 1);
    weft_send(baton, NULL);
    int r = pair(by_channel);
    return r ? r : counter % (2 * INCREMENTS) == 0 ? 0 : 5;
}

static int mutex(void) {
    int r = pair(by_mutex);
    return r ? r : counter % (2 * INCREMENTS) == 0 ? 0 : 5;
}

static int slots[2];
static weft_chan *closed;

static void write_slot(void *arg) {
    slots[(intptr_t)arg] = 42;
    weft_wg_done(&wg);
}

static void write_then_close(void *arg) {
    (void)arg;
    counter = 7;
    weft_close(closed);
}

/* A WaitGroup orders the goroutines' writes before weft_wg_wait's return;
 * a close orders the write before the receive that sees it. */
static int wg_and_close(void) {
    weft_wg_add(&wg, 2);
    weft_go(write_slot, (void *)0);
    weft_go(write_slot, (void *)1);
    weft_wg_wait(&wg);
    closed = weft_chan_make(0, 0);
    weft_go(write_then_close, NULL);
    if (weft_recv(closed, NULL) != -EPIPE)
        return 6;
    return slots[0] + slots[1] == 84 && counter == 7 ? 0 : 7;
}

/* Called through a pointer the compiler cannot see through, or it would
 * refuse to compile the bug (-Wuse-after-free). */
static void (*volatile release)(void *) = free;

static void use_after_free(void *arg) {
    (void)arg;
    volatile char *p = malloc(32);
    p[0] = 1;
    release((void *)p);
    weft_wg_done(&wg);
    counter = p[0]; /* reported by AddressSanitizer */
}

static int uaf(void) {
    weft_wg_add(&wg, 1);
    weft_go(use_after_free, NULL);
    weft_wg_wait(&wg);
    weft_sleep(WEFT_SEC(5));
    return 0;
}

#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#else
#define TSAN_BUILD 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#else
#define ASAN_BUILD 0
#endif

/* Each part returns whether it ran. */
static bool tsan_part(void) {
    if (!TSAN_BUILD) {
        printf("skipped: ThreadSanitizer part (not a -fsanitize=thread "
               "build)\n");
        return false;
    }
    static const char *const two_workers[] = {"WEFT_PROCS=2", NULL};
    static child c;
    child_run(race, two_workers, &c);
    CHILD_CHECK(&c, strstr(c.out, "WARNING: ThreadSanitizer: data race"));
    CHILD_CHECK(&c, strstr(c.out, "racy"));
    printf("race: reported (exit status %d)\n", child_exit_code(&c));
    static const struct {
        const char *name;
        int (*fn)(void);
    } clean[] = {
        {"channel", channel}, {"mutex", mutex}, {"wg_and_close", wg_and_close}};
    for (int i = 0; i < 3; i++) {
        child_run(clean[i].fn, two_workers, &c);
        CHILD_CHECK(&c, child_exit_code(&c) == 0);
        CHILD_CHECK(&c, !strstr(c.out, "ThreadSanitizer"));
        printf("%s: clean\n", clean[i].name);
    }
    return true;
}

static bool asan_part(void) {
    if (!ASAN_BUILD) {
        printf("skipped: AddressSanitizer part (not a -fsanitize=address "
               "build)\n");
        return false;
    }
    static child c;
    child_run(uaf, NULL, &c);
    CHILD_CHECK(&c, child_exit_code(&c) != 0);
    CHILD_CHECK(&c, strstr(c.out, "ERROR: AddressSanitizer: "
                                  "heap-use-after-free"));
    printf("use after free: reported\n");
    return true;
}

int main(void) {
    TEST_BEGIN(120);
    bool ran = tsan_part();
    ran |= asan_part();
    if (!ran)
        TEST_SKIP("neither a ThreadSanitizer nor an AddressSanitizer build");
    TEST_OK();
    return 0;
}
