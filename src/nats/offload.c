/*
 * Running libnats's blocking calls (connect, flush, close, JetStream API
 * requests: each waits on the network) without holding a worker thread:
 * a goroutine hands the call to a fresh detached thread and parks on a
 * WaitGroup until it is done.  These calls are rare (set-up, tear-down),
 * so a thread per call costs nothing that matters.  A plain thread just
 * makes the call.
 */
#include "nats_internal.h"

#include <pthread.h>

typedef struct job {
    void (*fn)(void *);
    void *arg;
    weft_wg done;
} job;

static void *run(void *arg) {
    job *j = arg;
    j->fn(j->arg);
    weft_wg_done(&j->done); /* j lives on the waiter's stack: last access */
    return NULL;
}

void weft__nats_offload(void (*fn)(void *), void *arg) {
    if (weft_id() == 0) {
        fn(arg);
        return;
    }
    job j = {.fn = fn, .arg = arg};
    weft_wg_add(&j.done, 1);
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &attr, run, &j);
    pthread_attr_destroy(&attr);
    if (e != 0) { /* no thread to spare: block this worker instead */
        run(&j);
        return;
    }
    weft_wg_wait(&j.done);
}
