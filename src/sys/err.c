/* SPDX-License-Identifier: MIT */
/*
 * Errors: the fatal-error line and abort, error names, and the errno
 * accessor the public header asks programs to use.
 */
#include "../sys.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

uint64_t (*weft__fatal_id)(void);

_Noreturn void weft__fatal(const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "weft: fatal: %s (goroutine %llu)\n", msg,
            (unsigned long long)(weft__fatal_id ? weft__fatal_id() : 0));
    fflush(stderr);
    abort();
}

/* Each name fits every weft call that returns the code (channels, the
 * net calls, sync, ctx, the NATS bridge): -EPIPE is a closed channel or a
 * broken socket or pipe, so the name must not blame either alone. */
const char *weft_strerror(int err) {
    if (err < 0 && err != INT_MIN) /* -INT_MIN overflows */
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case EINVAL:
        return "invalid argument";
    case ENOMEM:
        return "out of memory";
    case EPIPE:
        return "broken pipe or closed channel";
    case EAGAIN:
        return "would block";
    case ETIMEDOUT:
        return "timed out";
    case ECANCELED:
        return "canceled";
    case EBUSY:
        return "busy";
    case EALREADY:
        return "already running";
    case EMSGSIZE:
        return "wrong size (element size mismatch, or message too long)";
    case ENOTCONN:
        return "not connected";
    default:
        return strerror(err);
    }
}

__attribute__((noinline)) int weft_errno(void) {
    __asm__ volatile("" ::: "memory");
    return errno;
}
