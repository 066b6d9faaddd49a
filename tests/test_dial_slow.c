/* SPDX-License-Identifier: MIT */
/*
 * A dial whose name lookup is slow: the caller leaves when its context is
 * cancelled, or at its deadline, while getaddrinfo still runs, and the
 * lookup cleans up after itself when it ends later.  Offline there is no
 * slow name server to ask, so this program defines getaddrinfo itself
 * (the executable's definition wins over libc's for the library linked
 * into it): names ending in ".slow" wait until the test lets them go and
 * then do not resolve; every other name, and every numeric-only lookup
 * (weft_dial tries the address as a literal first, on the caller), goes to
 * the real getaddrinfo.
 */
#define _GNU_SOURCE
#include "check.h"

#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started, finished;
static bool released;

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
                      struct addrinfo **);

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res) {
    size_t n = node ? strlen(node) : 0;
    bool numeric = hints && (hints->ai_flags & AI_NUMERICHOST);
    if (numeric || n < 5 || strcmp(node + n - 5, ".slow") != 0) {
        gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
        return real ? real(node, service, hints, res) : EAI_FAIL;
    }
    pthread_mutex_lock(&mu);
    started++;
    pthread_cond_broadcast(&cv);
    while (!released)
        pthread_cond_wait(&cv, &mu);
    finished++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return EAI_NONAME;
}

static void wait_count(int *count, int want) {
    pthread_mutex_lock(&mu);
    while (*count < want)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

typedef struct later {
    weft_ctx *ctx;
    weft_wg wg;
} later;

static void wait_first(void *unused) {
    (void)unused;
    wait_count(&started, 1);
}

/* Cancel once the lookup is under way, so the dial is surely inside it
 * (waiting on a weft_blocking helper, not on a worker). */
static void cancel_in_lookup(void *p) {
    later *l = p;
    CHECK_EQ(weft_blocking(wait_first, NULL), 0);
    weft_ctx_cancel(l->ctx);
    weft_wg_done(&l->wg);
}

int main(void) {
    TEST_BEGIN(120);
    later l = {.ctx = weft_ctx_with_cancel(weft_ctx_background())};
    CHECK(l.ctx);
    weft_wg_add(&l.wg, 1);
    CHECK_EQ(weft_go(cancel_in_lookup, &l), 0);
    int64_t t0 = weft_now();
    CHECK_EQ(weft_dial_ctx(l.ctx, "tcp", "a.slow:80"), -ECANCELED);
    CHECK(weft_now() - t0 < WEFT_SEC(30));
    weft_wg_wait(&l.wg);
    weft_ctx_free(l.ctx);

    /* the deadline cuts a lookup short too: it still runs afterwards */
    t0 = weft_now();
    CHECK_EQ(weft_dial("tcp", "b.slow:80", WEFT_MS(100)), -ETIMEDOUT);
    int64_t took = weft_now() - t0;
    CHECK(took >= WEFT_MS(90) && took < WEFT_SEC(30));
    wait_count(&started, 2);

    pthread_mutex_lock(&mu);
    released = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    wait_count(&finished, 2);
    /* once let go, the same name fails as a name that does not resolve */
    CHECK_EQ(weft_dial("tcp", "c.slow:80", WEFT_SEC(30)), -ENXIO);
    TEST_OK();
    return 0;
}
