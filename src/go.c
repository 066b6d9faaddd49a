/* SPDX-License-Identifier: MIT */
/*
 * Starting goroutines: the public entry points, which check their
 * arguments and start the runtime, in front of the scheduler's weft__go.
 *
 * The spawn site (weft_dump's site of a running goroutine) comes from the
 * weft_go / weft_go_with macros as two more arguments (weft__go_at,
 * weft__go_with_at); the functions themselves record none.
 */
#include "runtime.h"
#include "sched.h"

int weft__go_with_at(weft_fn fn, void *arg, const weft_goopts *opts,
                     const char *file, int line) {
    size_t size = opts ? opts->stack_size : 0;
    if (!fn || size > WEFT_STACK_MAX)
        return -EINVAL;
    weft__ensure();
    return weft__go(fn, arg, opts, file, line);
}

int weft__go_at(weft_fn fn, void *arg, const char *file, int line) {
    if (!fn)
        return -EINVAL;
    weft__ensure();
    return weft__go(fn, arg, NULL, file, line);
}

int weft_go_with(weft_fn fn, void *arg, const weft_goopts *opts) {
    return weft__go_with_at(fn, arg, opts, NULL, 0);
}

int weft_go(weft_fn fn, void *arg) {
    return weft__go_at(fn, arg, NULL, 0);
}
