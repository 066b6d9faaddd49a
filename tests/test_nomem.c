/*
 * Out of memory inside the scheduler: nothing may be lost.  A full run
 * queue spills half of itself to the global queue in an array it
 * allocates, and a worker with too many free g structs hands 32 of them
 * on in another; when malloc fails, both fall back to linked lists.  This
 * program replaces malloc so that it fails on demand, spawns bursts from
 * a goroutine while it does, and checks that every goroutine ran exactly
 * once.  Stacks are warmed up first: a goroutine's stack is attached when
 * it first runs, where running out of memory is fatal by design.  Label
 * nosan: a sanitizer runtime owns malloc.
 */
#include "check.h"

#include <stdatomic.h>
#include <stdbool.h>

void *__libc_malloc(size_t n);

static atomic_int failing;
static atomic_long refused;

void *malloc(size_t n) {
    if (atomic_load_explicit(&failing, memory_order_relaxed)) {
        atomic_fetch_add(&refused, 1);
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(n);
}

enum { BURST = 20000 };
static weft_wg wg;
static atomic_char ran[BURST];

static void mark(void *arg) {
    atomic_fetch_add(&ran[(intptr_t)arg], 1);
    weft_wg_done(&wg);
}

static void burst(void *done) {
    weft_wg_add(&wg, BURST);
    for (intptr_t i = 0; i < BURST; i++)
        CHECK_EQ(weft_go(mark, (void *)i), 0);
    weft_wg_wait(&wg);
    weft_wg_done(done);
}

/* One burst spawned by a goroutine, malloc failing or not. */
static void run_burst(bool fail) {
    memset(ran, 0, sizeof ran);
    weft_wg done = {0};
    weft_wg_add(&done, 1);
    atomic_store(&failing, fail);
    CHECK_EQ(weft_go(burst, &done), 0);
    weft_wg_wait(&done);
    atomic_store(&failing, 0);
    for (int i = 0; i < BURST; i++)
        CHECK_EQ(ran[i], 1);
}

/* Give every worker cached stacks: WARM goroutines blocked at once, too few
 * to spill a run queue or a free array (which would allocate the arrays
 * this test wants to see fail). */
enum { WARM = 16 };

static weft_wg warm_started;

static void warm_one(void *gate) {
    weft_wg_done(&warm_started);
    CHECK_EQ(weft_recv(gate, NULL), -EPIPE);
    weft_wg_done(&wg);
}

static void warm_stacks(void) {
    weft_chan *gate = weft_chan_make(0, 0);
    CHECK(gate);
    weft_wg_add(&warm_started, WARM);
    weft_wg_add(&wg, WARM);
    for (int i = 0; i < WARM; i++)
        CHECK_EQ(weft_go(warm_one, gate), 0);
    weft_wg_wait(&warm_started);
    CHECK_EQ(weft_close(gate), 0);
    weft_wg_wait(&wg);
    weft_chan_free(gate);
}

int main(void) {
    TEST_BEGIN(60);
    CHECK_EQ(weft_init(NULL), 0);
    warm_stacks();
    run_burst(true);
    CHECK(atomic_load(&refused) > 0); /* the fallbacks really ran */
    run_burst(false);
    run_burst(true);
    CHECK_EQ(weft_shutdown(), 0);
    TEST_OK();
    return 0;
}
