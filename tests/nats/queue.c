/* SPDX-License-Identifier: MIT */
/*
 * A queue group of 3 consumer processes.
 *
 * Core NATS: every value is processed exactly once across the three, and
 * each of them gets some.
 *
 * JetStream (durable consumer, manual acks): one member is SIGKILLed
 * mid-stream and restarted; nothing is lost.  What the killed member had
 * recorded but whose ack had not reached the server comes again: those
 * duplicates are counted and printed, not forbidden.
 *
 * Each consumer records every value it processes as a fixed-width line in
 * its own results file (write(2) per value, so a SIGKILL loses nothing
 * already recorded) and, under JetStream, acks only after that.  The
 * parent counts by value id across all files.  Consumers stop when their
 * stdin closes.
 *
 * Role (this binary re-run): consume <url> core|js <results file>.
 */
#include "nats_test.h"

#include <pthread.h>

#define LINE 17 /* "%016llx\n" */
#define ACK_WAIT WEFT_SEC(2)

static void *stop_on_eof(void *arg) {
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    weft_nats_sub_close(arg);
    return NULL;
}

static void record(int fd, uint64_t v) {
    char line[LINE + 1];
    snprintf(line, sizeof line, "%016" PRIx64 "\n", v);
    CHECK_EQ(write(fd, line, LINE), LINE);
}

static int consume(const char *url, bool js, const char *file) {
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0644);
    CHECK(fd >= 0);
    weft_nats *nc = nt_connect(url);
    weft_nats_sub *s;
    weft_nats_subopts so = {.elem_size = sizeof(uint64_t),
                            .cap = 64,
                            .queue = "workers",
                            .manual_ack = js};
    if (js) {
        so.durable = "workers";
        so.stream = "Q";
        so.ack_wait = ACK_WAIT;
        so.max_ack_pending = 64;
    }
    CHECK_EQ(weft_nats_subscribe(nc, js ? "q.js" : "q.core", &so, &s), 0);
    CHECK_EQ(weft_nats_flush(nc, WEFT_SEC(10)), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, stop_on_eof, s), 0);
    printf("ready\n");
    fflush(stdout);
    weft_chan *c = weft_nats_sub_chan(s);
    for (;;) {
        uint64_t v;
        weft_nats_msg m;
        if (weft_recv(c, js ? (void *)&m : (void *)&v) != 0)
            break;
        if (js) {
            memcpy(&v, m.data, sizeof v);
            weft_sleep(WEFT_US(200)); /* slow enough to kill mid-stream */
        }
        record(fd, v);
        if (js)
            CHECK_EQ(weft_nats_ack(&m), 0);
    }
    pthread_join(t, NULL);
    weft_nats_sub_free(s);
    weft_nats_close(nc);
    close(fd);
    return 0;
}

/* ---- the parent ---------------------------------------------------------- */

typedef struct member {
    pid_t pid;
    int in; /* write end of its stdin: closing it stops the member */
    char file[128];
} member;

static void member_start(member *m, const char *url, const char *mode,
                         const char *file) {
    int in[2], out[2];
    CHECK_EQ(pipe2(in, O_CLOEXEC), 0);
    CHECK_EQ(pipe2(out, O_CLOEXEC), 0);
    snprintf(m->file, sizeof m->file, "%s", file);
    char *argv[] = {(char *)nt_self(), "consume", (char *)url,
                    (char *)mode,      m->file,   NULL};
    m->pid = nt_spawn(argv, in[0], out[1], NULL);
    close(in[0]);
    close(out[1]);
    m->in = in[1];
    char line[16] = {0};
    CHECK(read(out[0], line, sizeof line - 1) > 0);
    CHECK(strncmp(line, "ready", 5) == 0);
    close(out[0]);
}

static void member_stop(member *m) {
    close(m->in);
    CHECK_EQ(nt_wait(m->pid, 60000), 0);
}

static off_t file_lines(const char *file) {
    struct stat st;
    return stat(file, &st) == 0 ? st.st_size / LINE : 0;
}

/* Add the ids in file to count[]; returns how many lines it had. */
static uint64_t tally(const char *file, uint32_t *count, uint64_t n) {
    FILE *f = fopen(file, "r");
    CHECK(f != NULL);
    uint64_t v, lines = 0;
    while (fscanf(f, "%" SCNx64, &v) == 1) {
        CHECK(v < n);
        count[v]++;
        lines++;
    }
    fclose(f);
    return lines;
}

static off_t total_lines(char files[][128], int nfiles) {
    off_t t = 0;
    for (int i = 0; i < nfiles; i++)
        t += file_lines(files[i]);
    return t;
}

static void wait_lines(char files[][128], int nfiles, off_t want) {
    for (int t = 0; t < 120000 && total_lines(files, nfiles) < want; t += 10)
        nt_sleep_ms(10);
}

static void publish(weft_nats *nc, const char *subject, uint64_t n, int js) {
    weft_chan *c = weft_chan_make(sizeof(uint64_t), n);
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(weft_send(c, &i), 0);
    weft_close(c);
    weft_nats_pubopts po = {.elem_size = sizeof(uint64_t), .jetstream = js};
    CHECK_EQ(weft_nats_publish(nc, subject, c, &po), 0);
    weft_chan_free(c);
}

static void test_core(nt_server *srv, weft_nats *nc) {
    uint64_t n = 30000 / test_scale();
    char files[3][128];
    member m[3];
    for (int i = 0; i < 3; i++) {
        snprintf(files[i], sizeof files[i], "%s/core%d", srv->dir, i);
        member_start(&m[i], srv->url, "core", files[i]);
    }
    publish(nc, "q.core", n, 0);
    wait_lines(files, 3, (off_t)n);
    for (int i = 0; i < 3; i++)
        member_stop(&m[i]);
    uint32_t *count = calloc(n, sizeof *count);
    for (int i = 0; i < 3; i++)
        CHECK(tally(files[i], count, n) > 0); /* each member got work */
    for (uint64_t v = 0; v < n; v++)
        CHECK_EQ(count[v], 1);
    free(count);
    printf("core: %" PRIu64 " values, each processed exactly once\n", n);
}

static void test_js_kill(nt_server *srv, weft_nats *nc) {
    uint64_t n = 20000 / test_scale();
    CHECK_EQ(weft_nats_stream(nc, "Q", "q.js"), 0);
    char files[4][128];
    member m[3];
    for (int i = 0; i < 4; i++)
        snprintf(files[i], sizeof files[i], "%s/js%d", srv->dir, i);
    for (int i = 0; i < 3; i++)
        member_start(&m[i], srv->url, "js", files[i]);
    publish(nc, "q.js", n, 1);
    wait_lines(files, 3, (off_t)n / 4);
    kill(m[0].pid, SIGKILL);
    nt_wait(m[0].pid, 10000);
    close(m[0].in);
    off_t at_kill = total_lines(files, 4);
    CHECK(at_kill < (off_t)n); /* the kill came mid-stream */
    member_start(&m[0], srv->url, "js", files[3]); /* the restart */

    uint32_t *count = calloc(n, sizeof *count);
    uint64_t missing = n;
    for (int t = 0; t < 120000 && missing; t += 50) {
        wait_lines(files, 4, (off_t)n);
        memset(count, 0, n * sizeof *count);
        for (int i = 0; i < 4; i++)
            tally(files[i], count, n);
        missing = 0;
        for (uint64_t v = 0; v < n; v++)
            missing += count[v] == 0;
        if (missing)
            nt_sleep_ms(50);
    }
    for (int i = 0; i < 3; i++)
        member_stop(&m[i]);
    uint64_t dups = 0, lines = 0;
    memset(count, 0, n * sizeof *count);
    for (int i = 0; i < 4; i++)
        lines += tally(files[i], count, n);
    for (uint64_t v = 0; v < n; v++) {
        CHECK(count[v] >= 1); /* nothing lost */
        dups += count[v] - 1;
    }
    CHECK_EQ(lines, n + dups);
    CHECK(dups < n / 10);
    printf("jetstream: %" PRIu64 " values, member killed after %lld "
           "processed and restarted: none lost, %" PRIu64 " redelivered "
           "twice\n",
           n, (long long)at_kill, dups);
    free(count);
}

int main(int argc, char **argv) {
    if (argc == 5) {
        TEST_BEGIN(240);
        return consume(argv[2], strcmp(argv[3], "js") == 0, argv[4]);
    }
    TEST_BEGIN(280);
    nt_server srv;
    nt_server_start(&srv);
    weft_nats *nc = nt_connect(srv.url);
    test_core(&srv, nc);
    test_js_kill(&srv, nc);
    weft_nats_close(nc);
    nt_server_cleanup(&srv);
    TEST_OK();
    return 0;
}
