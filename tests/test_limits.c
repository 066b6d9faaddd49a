/* SPDX-License-Identifier: MIT */
/*
 * Inputs at the edge of their range (issue 13, items 9 and 12):
 * impossible stack sizes are refused at spawn instead of aborting at the
 * first run or wrapping to a tiny stack, and weft_strerror takes any int
 * (INT_MIN must not be negated: UBSan checks that under make asan).
 */
#include "check.h"

#include <limits.h>
#include <stdatomic.h>

static atomic_int ran;

static void deep(void *arg) {
    volatile char frame[32 * 1024];
    frame[0] = 1;
    frame[sizeof frame - 1] = 2;
    atomic_fetch_add(&ran, frame[0] + frame[sizeof frame - 1]);
    weft_wg_done(arg);
}

int main(void) {
    TEST_BEGIN(60);
    CHECK(weft_strerror(INT_MIN) != NULL);
    CHECK(weft_strerror(INT_MAX) != NULL);

    weft_config bad = {.stack_size = SIZE_MAX};
    CHECK_EQ(weft_init(&bad), -EINVAL);
    weft_wg wg = {0};
    const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4095, (size_t)1 << 47,
                            WEFT_STACK_MAX + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        weft_goopts o = {.stack_size = sizes[i]};
        CHECK_EQ(weft_go_with(deep, &wg, &o), -EINVAL);
    }
    /* sizes that work, the largest included: reserved, not committed */
    const size_t good[] = {64 * 1024, (size_t)1 << 20, WEFT_STACK_MAX};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        weft_goopts o = {.stack_size = good[i]};
        weft_wg_add(&wg, 1);
        CHECK_EQ(weft_go_with(deep, &wg, &o), 0);
    }
    weft_wg_wait(&wg);
    CHECK_EQ(atomic_load(&ran), 3 * 3);
    TEST_OK();
    return 0;
}
