/* SPDX-License-Identifier: MIT */
/*
 * Scaffolding shared by the bench programs (bench/<name>.c).
 *
 * Every program takes N as an optional first argument, runs its work inside
 * goroutines (main() only starts a root goroutine and waits for it), times
 * the work alone with weft_now(), checks its own result, and prints one line
 *     <name> <N> <value> [key=value ...]
 * A wrong result prints the reason on stderr and exits 1 without a line, so
 * a broken runtime can never report a number.  The Go twins in bench/go do
 * the same through bench/go/internal/bench.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "weft.h"

__attribute__((noreturn, format(printf, 1, 2))) static inline void
bench_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: FAILED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* A result check: the run is wrong unless cond holds. */
#define BENCH_CHECK(cond)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            bench_fail("%s:%d: %s", __FILE__, __LINE__, #cond);                \
    } while (0)

/* A weft call that must succeed (returns 0 or a negative errno). */
#define BENCH_TRY(call)                                                        \
    do {                                                                       \
        int bench_r_ = (call);                                                 \
        if (bench_r_ < 0)                                                      \
            bench_fail("%s:%d: %s: %s", __FILE__, __LINE__, #call,             \
                       weft_strerror(bench_r_));                               \
    } while (0)

/* N from argv[1], else def.  N must be positive. */
static inline int64_t bench_n(int argc, char **argv, int64_t def) {
    if (argc < 2)
        return def;
    char *end;
    long long n = strtoll(argv[1], &end, 10);
    if (*end != '\0' || n <= 0)
        bench_fail("usage: %s [N > 0]", argv[0]);
    return n;
}

/* A channel or die: the benches never run without their channels. */
static inline weft_chan *bench_chan(size_t elem_size, size_t cap) {
    weft_chan *c = weft_chan_make(elem_size, cap);
    if (c == NULL)
        bench_fail("weft_chan_make: %s", weft_strerror(errno));
    return c;
}

struct bench_root {
    weft_fn fn;
    void *arg;
    weft_wg done;
};

static inline void bench_root_main(void *p) {
    struct bench_root *r = p;
    r->fn(r->arg);
    weft_wg_done(&r->done);
}

/* Run fn(arg) in a root goroutine and wait for it to return. */
static inline void bench_run(weft_fn fn, void *arg) {
    struct bench_root r = {.fn = fn, .arg = arg};
    weft_wg_add(&r.done, 1);
    BENCH_TRY(weft_go(bench_root_main, &r));
    weft_wg_wait(&r.done);
}

/* Resident set size now, from /proc/self/statm (the Go twins read the same
 * file, so both sides count the same thing). */
static inline int64_t bench_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long long size, resident;
    if (f == NULL || fscanf(f, "%lld %lld", &size, &resident) != 2)
        bench_fail("cannot read /proc/self/statm");
    fclose(f);
    return resident * (int64_t)sysconf(_SC_PAGESIZE);
}

/* Peak resident set size in MiB (getrusage reports KiB on Linux). */
static inline double bench_peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        bench_fail("getrusage failed");
    return (double)ru.ru_maxrss / 1024.0;
}

/* Print the result line; extra is "key=value ..." or NULL. */
static inline void bench_report(const char *name, int64_t n, double value,
                                const char *extra) {
    printf("%s %" PRId64 " %.1f%s%s\n", name, n, value, extra ? " " : "",
           extra ? extra : "");
}

#endif
