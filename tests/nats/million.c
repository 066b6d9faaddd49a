/* SPDX-License-Identifier: MIT */
/*
 * A producer process and a consumer process exchange 1,000,000 values
 * through one core NATS subject: every value arrives, in order.
 *
 * Core NATS has no flow control, so "all arrive" rests on buffers big
 * enough for a consumer that falls behind for a while: the consumer's
 * channel (64 Ki values), libnats's queue in front of it (1 Mi messages by
 * default) and the server's per-client output buffer (64 MiB, about 1.5 M
 * of these 8-byte messages).  The consumer reports what it counted as
 * dropped, so a loss shows up as a number, not only as a missing value.
 *
 * Roles (this binary re-run): consume <url> <n>  /  produce <url> <n>.
 */
#include "nats_test.h"

typedef struct gen {
    weft_chan *c;
    uint64_t n;
} gen;

static void generate(void *arg) {
    gen *g = arg;
    for (uint64_t i = 0; i < g->n; i++)
        CHECK_EQ(weft_send(g->c, &i), 0);
    weft_close(g->c);
}

static int produce(const char *url, uint64_t n) {
    weft_nats *nc = nt_connect(url);
    gen g = {weft_chan_make(sizeof(uint64_t), 4096), n};
    CHECK_EQ(weft_go(generate, &g), 0);
    weft_nats_pubopts po = {.elem_size = sizeof(uint64_t)};
    int64_t t0 = weft_now();
    CHECK_EQ(weft_nats_publish(nc, "million", g.c, &po), 0);
    fprintf(stderr, "producer: %" PRIu64 " values in %.2f s\n", n,
            (double)(weft_now() - t0) / 1e9);
    weft_chan_free(g.c);
    weft_nats_close(nc);
    return 0;
}

static int consume(const char *url, uint64_t n) {
    weft_nats *nc = nt_connect(url);
    weft_nats_sub *s;
    weft_nats_subopts so = {.elem_size = sizeof(uint64_t), .cap = 65536};
    CHECK_EQ(weft_nats_subscribe(nc, "million", &so, &s), 0);
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(10)), 0); /* server knows us */
    printf("ready\n");
    fflush(stdout);
    weft_chan *c = weft_nats_sub_chan(s);
    uint64_t got = 0, v;
    int r;
    while (got < n && (r = weft_recv_timeout(c, &v, WEFT_SEC(20))) == 0) {
        if (v != got) {
            fprintf(stderr,
                    "consumer: value %" PRIu64 " where %" PRIu64 " was due\n",
                    v, got);
            break;
        }
        got++;
    }
    weft_nats_sub_stats st;
    weft_nats_sub_stats_get(s, &st);
    fprintf(stderr,
            "consumer: %" PRIu64 " of %" PRIu64 " in order; dropped %" PRIu64
            " (full %" PRIu64 ", libnats %" PRIu64 ")\n",
            got, n, st.dropped, st.full, st.lib);
    weft_nats_sub_free(s);
    weft_nats_close(nc);
    return got == n ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 4) {
        TEST_BEGIN(240);
        uint64_t n = strtoull(argv[3], NULL, 10);
        return strcmp(argv[1], "produce") == 0 ? produce(argv[2], n)
                                               : consume(argv[2], n);
    }
    TEST_BEGIN(280);
    nt_server srv;
    nt_server_start(&srv);
    char n[32];
    snprintf(n, sizeof n, "%d", 1000000 / test_scale());
    char *self = (char *)nt_self();

    int ready[2];
    CHECK_EQ(pipe2(ready, O_CLOEXEC), 0);
    char *cargv[] = {self, "consume", srv.url, n, NULL};
    pid_t consumer = nt_spawn(cargv, -1, ready[1], NULL);
    close(ready[1]);
    char line[16] = {0};
    CHECK(read(ready[0], line, sizeof line - 1) > 0);
    CHECK(strncmp(line, "ready", 5) == 0);

    char *pargv[] = {self, "produce", srv.url, n, NULL};
    pid_t producer = nt_spawn(pargv, -1, -1, NULL);
    CHECK_EQ(nt_wait(producer, 240000), 0);
    CHECK_EQ(nt_wait(consumer, 60000), 0);
    nt_server_cleanup(&srv);
    TEST_OK();
    return 0;
}
