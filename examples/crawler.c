/* SPDX-License-Identifier: MIT */
/*
 * crawler: bounded parallel fan-out over a fake web, with a group.
 *
 * Starting from "/", the crawler fetches every page it can reach, each once.
 * It goes level by level: all the pages of one level are fetched
 * concurrently, one task per page, and the links they return make the next
 * level.  A fetch here is a fake (a table lookup that takes CRAWL_FETCH_MS),
 * but the shape is that of a real crawler.
 *
 * The tasks of a level run in a weft_group (Go's errgroup):
 *   - weft_group_limit bounds them: at most CRAWL_LIMIT fetches at once,
 *     however many pages a level has (polite to the server, and a cap on
 *     what the crawler holds); weft_group_go waits for a free slot;
 *   - weft_group_wait waits for the whole level and returns the first
 *     error a task returned;
 *   - each task gets the group's context, cancelled at the first failure,
 *     and a fetch gives up when it is cancelled.
 * The whole crawl runs under a context with a deadline, the groups' parent:
 * run once with time to spare, and once with a deadline that cuts the
 * crawl short - the fetches in flight see their context expire and return
 * -ETIMEDOUT, which is what weft_group_wait then reports.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>

#define CRAWL_LIMIT 3
#define CRAWL_FETCH_MS 5
#define CRAWL_MAX_LINKS 4
#define CRAWL_MAX_PAGES 32

typedef struct crawl_page {
    const char *url;
    const char *links[CRAWL_MAX_LINKS];
} crawl_page;

/* The fake web.  "/gone" is linked to but does not exist. */
static const crawl_page crawl_web[] = {
    {"/", {"/docs", "/blog", "/about"}},
    {"/docs", {"/", "/docs/guide", "/docs/api", "/docs/design"}},
    {"/docs/guide", {"/docs", "/docs/api"}},
    {"/docs/api", {"/docs"}},
    {"/docs/design", {"/docs", "/gone"}},
    {"/blog", {"/", "/blog/1", "/blog/2", "/blog/3"}},
    {"/blog/1", {"/blog", "/blog/2"}},
    {"/blog/2", {"/blog", "/blog/3"}},
    {"/blog/3", {"/blog", "/about"}},
    {"/about", {"/"}},
};
#define CRAWL_NPAGES (int)(sizeof crawl_web / sizeof crawl_web[0])

static atomic_int crawl_in_flight, crawl_max_in_flight;

/* Count a fetch in (+1) or out (-1), keeping the highest count seen. */
static void crawl_count(int d) {
    int now = atomic_fetch_add(&crawl_in_flight, d) + d;
    int max = atomic_load(&crawl_max_in_flight);
    while (now > max &&
           !atomic_compare_exchange_weak(&crawl_max_in_flight, &max, now))
        ;
}

/* Fetch url into *page (NULL for a missing page): 0, or ctx's error if ctx
 * is cancelled before the fetch completes. */
static int crawl_fetch(weft_ctx *ctx, const char *url,
                       const crawl_page **page) {
    weft_case cancelled = {.chan = weft_ctx_done(ctx), .op = WEFT_RECV};
    crawl_count(+1);
    int r = weft_select(&cancelled, 1, WEFT_MS(CRAWL_FETCH_MS));
    crawl_count(-1);
    if (r == 0)
        return weft_ctx_err(ctx);
    *page = NULL;
    for (int i = 0; i < CRAWL_NPAGES; i++)
        if (strcmp(crawl_web[i].url, url) == 0)
            *page = &crawl_web[i];
    return 0;
}

typedef struct crawl_job {
    const char *url;
    const crawl_page *page; /* the result: written by this job only */
} crawl_job;

static int crawl_task(weft_ctx *ctx, void *arg) {
    crawl_job *j = arg;
    return crawl_fetch(ctx, j->url, &j->page);
}

/* The crawl's state, owned by main: only main reads or writes it. */
typedef struct crawl_state {
    weft_ctx *ctx; /* the whole crawl's deadline */
    const char *seen[CRAWL_MAX_PAGES];
    int nseen, fetched, missing;
} crawl_state;

static bool crawl_seen(crawl_state *s, const char *url) {
    for (int i = 0; i < s->nseen; i++)
        if (strcmp(s->seen[i], url) == 0)
            return true;
    s->seen[s->nseen++] = url;
    return false;
}

/* Fetch the n urls of one level, CRAWL_LIMIT at a time, and put the new
 * links in next[].  Returns how many, or the first fetch error. */
static int crawl_level(crawl_state *s, const char **urls, int n,
                       const char **next) {
    crawl_job jobs[CRAWL_MAX_PAGES];
    weft_group *g = weft_group_make(s->ctx);
    if (!g)
        return -ENOMEM;
    weft_group_limit(g, CRAWL_LIMIT);
    for (int i = 0; i < n; i++) {
        jobs[i] = (crawl_job){urls[i], NULL};
        weft_group_go(g, crawl_task, &jobs[i]); /* waits for a free slot */
    }
    int err = weft_group_wait(g); /* every task has returned; g is freed */
    if (err)
        return err;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!jobs[i].page) {
            s->missing++;
            continue;
        }
        s->fetched++;
        for (int l = 0; l < CRAWL_MAX_LINKS && jobs[i].page->links[l]; l++)
            if (!crawl_seen(s, jobs[i].page->links[l]))
                next[k++] = jobs[i].page->links[l];
    }
    return k;
}

/* Crawl from "/" with a deadline; returns 0 or the error that stopped it. */
static int crawl(int deadline_ms) {
    crawl_state s = {.ctx = weft_ctx_with_timeout(weft_ctx_background(),
                                                  WEFT_MS(deadline_ms))};
    const char *a[CRAWL_MAX_PAGES] = {"/"}, *b[CRAWL_MAX_PAGES];
    const char **urls = a, **next = b;
    int n = 1;
    if (!s.ctx)
        return -ENOMEM;
    crawl_seen(&s, "/");
    int64_t t0 = weft_now();
    while (n > 0) {
        n = crawl_level(&s, urls, n, next);
        const char **t = urls;
        urls = next;
        next = t;
    }
    weft_ctx_free(s.ctx);
    printf("  deadline %4d ms: %2d pages, %d missing, in %3.0f ms%s%s\n",
           deadline_ms, s.fetched, s.missing, (double)(weft_now() - t0) / 1e6,
           n < 0 ? ", stopped: " : "", n < 0 ? weft_strerror(n) : "");
    if (n == 0 && (s.fetched != CRAWL_NPAGES || s.missing != 1))
        return -EIO;
    return n;
}

static int crawler_run(void) {
    printf("crawling a fake web of %d pages, at most %d fetches at once:\n",
           CRAWL_NPAGES, CRAWL_LIMIT);
    int full = crawl(5000);
    int cut = crawl(3 * CRAWL_FETCH_MS);
    printf("  most fetches in flight at any time: %d\n",
           atomic_load(&crawl_max_in_flight));
    return full != 0 || cut != -ETIMEDOUT ||
           atomic_load(&crawl_max_in_flight) > CRAWL_LIMIT;
}

#ifndef WEFT_TOUR
int main(void) {
    return crawler_run();
}
#endif
