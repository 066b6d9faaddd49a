/*
 * crawler: bounded parallel fan-out over a fake web.
 *
 * Starting from "/", the crawler fetches every page it can reach, each once.
 * It goes level by level: all the pages of one level are fetched
 * concurrently, one goroutine per page, and the links they return make the
 * next level.  A fetch here is a fake (a table lookup that takes
 * CRAWL_FETCH_MS), but the shape is that of a real crawler.
 *
 * Bounded: at most CRAWL_LIMIT fetches run at once, however many pages a
 * level has - the polite thing towards a server, and a cap on resources.
 * The bound is a counting semaphore made of a buffered channel: a fetch
 * first puts a token into the channel (waiting while CRAWL_LIMIT tokens are
 * already in), and takes it out when it is done.
 */
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

/* Fetch url: its page, or NULL for a missing one.  Takes a while. */
static const crawl_page *crawl_fetch(const char *url) {
    int now = atomic_fetch_add(&crawl_in_flight, 1) + 1;
    int max = atomic_load(&crawl_max_in_flight);
    while (now > max &&
           !atomic_compare_exchange_weak(&crawl_max_in_flight, &max, now))
        ;
    weft_sleep(WEFT_MS(CRAWL_FETCH_MS));
    atomic_fetch_sub(&crawl_in_flight, 1);
    for (int i = 0; i < CRAWL_NPAGES; i++)
        if (strcmp(crawl_web[i].url, url) == 0)
            return &crawl_web[i];
    return NULL;
}

typedef struct crawl_job {
    const char *url;
    const crawl_page *page; /* the result: written by this job only */
    weft_chan *slots;       /* the semaphore: CRAWL_LIMIT tokens */
    weft_wg *level;
} crawl_job;

static void crawl_one(void *arg) {
    crawl_job *j = arg;
    j->page = crawl_fetch(j->url);
    weft_recv(j->slots, NULL); /* give the slot back */
    weft_wg_done(j->level);
}

/* The crawl's state, owned by main: only main reads or writes it. */
typedef struct crawl_state {
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

/* Fetch the n urls of one level, CRAWL_LIMIT at a time.  Returns how many
 * links of the next level it put in next[]. */
static int crawl_level(crawl_state *s, const char **urls, int n,
                       const char **next, weft_chan *slots) {
    crawl_job jobs[CRAWL_MAX_PAGES];
    weft_wg level = {0};
    weft_wg_add(&level, n);
    for (int i = 0; i < n; i++) {
        jobs[i] = (crawl_job){urls[i], NULL, slots, &level};
        weft_send(slots, NULL); /* waits while CRAWL_LIMIT are running */
        if (weft_go(crawl_one, &jobs[i]) != 0)
            return -1;
    }
    weft_wg_wait(&level);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!jobs[i].page) {
            printf("  %-13s missing\n", urls[i]);
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

static int crawler_run(void) {
    crawl_state s = {0};
    const char *a[CRAWL_MAX_PAGES] = {"/"}, *b[CRAWL_MAX_PAGES];
    const char **urls = a, **next = b;
    weft_chan *slots = weft_chan_make(0, CRAWL_LIMIT);
    if (!slots)
        return 1;
    crawl_seen(&s, "/");
    int64_t t0 = weft_now();
    for (int n = 1, depth = 0; n > 0; depth++) {
        printf("  level %d: %d page%s\n", depth, n, n == 1 ? "" : "s");
        n = crawl_level(&s, urls, n, next, slots);
        if (n < 0)
            return 1;
        const char **t = urls;
        urls = next;
        next = t;
    }
    weft_chan_free(slots);
    printf("crawled %d pages (%d missing) in %.0f ms, at most %d fetches at "
           "once\n",
           s.fetched, s.missing, (double)(weft_now() - t0) / 1e6,
           atomic_load(&crawl_max_in_flight));
    return s.fetched != CRAWL_NPAGES || s.missing != 1 ||
           atomic_load(&crawl_max_in_flight) > CRAWL_LIMIT;
}

#ifndef WEFT_TOUR
int main(void) {
    return crawler_run();
}
#endif
