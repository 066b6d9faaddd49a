/* SPDX-License-Identifier: MIT */
/*
 * Minimal test support: every test program includes this, calls
 * TEST_BEGIN(seconds) first (arms alarm() so a hang fails instead of
 * blocking CI), and uses CHECK/CHECK_EQ, which print the failing expression
 * with file:line and exit(1).
 */
#ifndef WEFT_TEST_CHECK_H
#define WEFT_TEST_CHECK_H

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);        \
        if (check_a_ != check_b_) {                                            \
            fprintf(stderr,                                                    \
                    "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n",        \
                    __FILE__, __LINE__, #a, check_a_, #b, check_b_);           \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* Sanitizers slow everything down; scale loop counts with this. */
static inline int test_scale(void) {
    return getenv("WEFT_SANITIZER") || getenv("WEFT_VALGRIND") ? 10 : 1;
}

/* ThreadSanitizer counts every goroutine as a thread and dies past 8,128
 * of them alive at once: cap how many a test keeps alive together. */
static inline int test_max_live(int n) {
    const char *san = getenv("WEFT_SANITIZER");
    return san && strcmp(san, "thread") == 0 && n > 2000 ? 2000 : n;
}

/* weft_dump into a string (a buffer of each test program's own). */
static inline char *test_dump(void) {
    static char buf[1 << 16];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    CHECK(f);
    weft_dump(f);
    fclose(f);
    return buf;
}

/* How many times what occurs in s. */
static inline int test_count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++)
        n++;
    return n;
}

/* How many times slower than when idle the machine runs now: its load
 * average per core, 1 to 8.  For a bound on CPU-heavy work, which a
 * loaded machine stretches by as much. */
static inline int test_load_factor(void) {
    double load = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = 0;
        fclose(f);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int k = (int)(load / (double)(cores > 0 ? cores : 1) + 0.999);
    return k < 1 ? 1 : k > 8 ? 8 : k;
}

#define TEST_BEGIN(seconds)                                                    \
    do {                                                                       \
        alarm((unsigned)(seconds) * (unsigned)test_scale());                   \
        setvbuf(stdout, NULL, _IONBF, 0);                                      \
    } while (0)

#define TEST_OK() printf("ok %s\n", __FILE__)

/* End the test as skipped: ctest reports exit code 77 as "Skipped" (see
 * SKIP_RETURN_CODE in CMakeLists.txt). */
#define TEST_SKIP(why)                                                         \
    do {                                                                       \
        printf("skipped %s: %s\n", __FILE__, why);                             \
        exit(77);                                                              \
    } while (0)

#endif
