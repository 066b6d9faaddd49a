/* SPDX-License-Identifier: MIT */
/* Worker count: WEFT_PROCS, weft_config.procs (wins over the variable), an
 * invalid WEFT_PROCS ignored, WEFT_SEED forcing one worker; each checked
 * across a shutdown and restart of the runtime. */
#include "check.h"

#include <sched.h>

static weft_wg wg;

static void noop(void *arg) {
    (void)arg;
    weft_wg_done(&wg);
}

/* Start (by first use), run a few goroutines, report procs, shut down. */
static int procs_now(void) {
    weft_wg_add(&wg, 8);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(weft_go(noop, NULL), 0);
    weft_wg_wait(&wg);
    int n = weft_procs();
    CHECK_EQ(weft_shutdown(), 0); /* waits for goroutines still returning */
    return n;
}

static int cpus(void) {
    cpu_set_t set;
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

int main(void) {
    TEST_BEGIN(60);
    unsetenv("WEFT_SEED");
    setenv("WEFT_PROCS", "3", 1);
    CHECK_EQ(procs_now(), 3);

    weft_config cfg = {.procs = 2};
    CHECK_EQ(weft_init(&cfg), 0);
    CHECK_EQ(procs_now(), 2); /* the config wins over the variable */

    setenv("WEFT_PROCS", "lots", 1);
    CHECK_EQ(procs_now(), cpus()); /* invalid: ignored */
    setenv("WEFT_PROCS", "-4", 1);
    CHECK_EQ(procs_now(), cpus());

    unsetenv("WEFT_PROCS");
    CHECK_EQ(procs_now(), cpus());

    setenv("WEFT_SEED", "42", 1);
    cfg.procs = 4;
    CHECK_EQ(weft_init(&cfg), 0);
    CHECK_EQ(procs_now(), 1); /* a seeded schedule has one worker */
    TEST_OK();
    return 0;
}
