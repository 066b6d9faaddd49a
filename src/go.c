/* SPDX-License-Identifier: MIT */
/*
 * Starting goroutines: the public entry points, which check their
 * arguments and start the runtime, in front of the scheduler's weft__go.
 */
#include "runtime.h"
#include "sched.h"

int weft_go_with(weft_fn fn, void *arg, const weft_goopts *opts) {
    size_t size = opts ? opts->stack_size : 0;
    if (!fn || size > WEFT_STACK_MAX)
        return -EINVAL;
    weft__ensure();
    return weft__go(fn, arg, opts);
}

int weft_go(weft_fn fn, void *arg) {
    return weft_go_with(fn, arg, NULL);
}
