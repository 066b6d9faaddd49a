/* SPDX-License-Identifier: MIT */
/*
 * lost_update: a read-yield-write race that loses a deposit in some
 * interleavings and not in others.  In a normal run, whether it fails
 * depends on timing, so a failure seen once may never come back; under
 * WEFT_SEED each seed is one interleaving, failing or passing every time.
 *
 * Each of three goroutines makes a deposit by reading the balance, doing
 * some "work" (a yield point, where another goroutine may run), and
 * writing back what it read plus one.  If another deposit reads the
 * balance in between, one of the two increments is lost.  Goroutines on
 * different workers race on the plain int too; run it only under WEFT_SEED
 * (one worker), as tools/weft-explore does:
 *
 *   tools/weft-explore build/examples/lost_update
 *   WEFT_SEED=<the seed it printed> build/examples/lost_update
 *
 * Exit status 1 when a deposit was lost.
 */
#include <stdio.h>
#include <weft.h>

#define DEPOSITS 3

static int balance;
static weft_mutex audit; /* the correct part: a log kept under a lock */
static int audited;

static void deposit(void *arg) {
    weft_wg *done = arg;
    weft_mutex_lock(&audit);
    audited++;
    weft_mutex_unlock(&audit);
    weft_yield();
    int seen = balance; /* read ... */
    weft_yield();       /* ... someone else may run here ... */
    balance = seen + 1; /* ... and write back a stale value */
    weft_wg_done(done);
}

/* Everything starts from one goroutine: under WEFT_SEED the schedule is
 * fixed for goroutines, but a plain thread (main) spawning while they
 * already run would add its own timing. */
static void run_deposits(void *arg) {
    weft_wg *done = arg;
    for (int i = 0; i < DEPOSITS; i++)
        if (weft_go(deposit, done) != 0)
            weft_wg_done(done);
}

int main(void) {
    weft_wg done = {0};
    weft_wg_add(&done, DEPOSITS);
    if (weft_go(run_deposits, &done) != 0)
        return 2;
    weft_wg_wait(&done);
    if (balance != DEPOSITS || audited != DEPOSITS) {
        printf("lost update: balance %d after %d deposits\n", balance, audited);
        return 1;
    }
    printf("balance %d: ok\n", balance);
    return 0;
}
