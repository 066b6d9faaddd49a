/* SPDX-License-Identifier: MIT */
/*
 * WEFT_LEAKCHECK=exit: a process that exits with goroutines blocked for
 * good ends with status 3 after the leak report; without leaks, or with
 * WEFT_LEAKCHECK=1, its own status stands.
 */
#include "child.h"

#include <stdatomic.h>

static weft_chan *gate;
static atomic_int parked;

static void wait_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&parked, 1);
    weft_recv(gate, NULL);
}

static int leak_one(void) {
    gate = weft_chan_make(0, 0);
    weft_go(wait_forever, NULL);
    while (atomic_load(&parked) != 1)
        weft_yield();
    /* from the counter to parked: the report lists only blocked ones */
    while (!strstr(test_dump(), "[waiting]"))
        weft_sleep(WEFT_MS(1));
    return 0;
}

static int leak_one_status_7(void) {
    leak_one();
    return 7;
}

static void quick(void *arg) {
    (void)arg;
}

static int no_leak(void) {
    weft_go(quick, NULL);
    while (weft_goroutines())
        weft_yield();
    return 0;
}

static const char *const exit_mode[] = {"ASAN_OPTIONS=detect_leaks=0",
                                        "WEFT_LEAKCHECK=exit", NULL};
static const char *const report_mode[] = {"ASAN_OPTIONS=detect_leaks=0",
                                          "WEFT_LEAKCHECK=1", NULL};

static child c;

int main(void) {
    TEST_BEGIN(60);
    const char *report = "weft: leak: 1 goroutine still blocked\n";

    child_run(leak_one, exit_mode, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 3);
    CHILD_CHECK(&c, strstr(c.out, report));

    /* a leak outranks the program's own failure status */
    child_run(leak_one_status_7, exit_mode, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 3);

    child_run(leak_one, report_mode, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    CHILD_CHECK(&c, strstr(c.out, report));

    child_run(no_leak, exit_mode, &c);
    CHILD_CHECK(&c, child_exit_code(&c) == 0);
    CHILD_CHECK(&c, !strstr(c.out, "weft: leak"));

    TEST_OK();
    return 0;
}
