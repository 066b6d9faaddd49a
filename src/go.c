/* SPDX-License-Identifier: MIT */
/*
 * Starting goroutines: the public entry points, which check their
 * arguments and start the runtime, in front of the scheduler's weft__go.
 *
 * The spawn site (weft_dump's site of a running goroutine) is what
 * weft__site left for this call through the weft_go / weft_go_with macros,
 * taken with the check that gives a blocking call's park its site
 * (weft__site_take), so that a site left by an unrelated earlier call is
 * not taken.
 */
#include "runtime.h"
#include "sched.h"
#include "waiter.h"

/* Takes the site before weft__ensure, whose first call may block (and so
 * take the site for its own park). */
static inline int go(weft_fn fn, void *arg, const weft_goopts *opts) {
    weft__callsite at = weft__site_take(__builtin_frame_address(0));
    weft__ensure();
    return weft__go(fn, arg, opts, at.file, at.line);
}

int weft_go_with(weft_fn fn, void *arg, const weft_goopts *opts) {
    size_t size = opts ? opts->stack_size : 0;
    if (!fn || size > WEFT_STACK_MAX)
        return -EINVAL;
    return go(fn, arg, opts);
}

int weft_go(weft_fn fn, void *arg) {
    if (!fn)
        return -EINVAL;
    return go(fn, arg, NULL);
}
