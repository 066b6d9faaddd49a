/* SPDX-License-Identifier: MIT */
/*
 * pipes: a channel is a pipe between goroutines.
 *
 * Values go in at one end and come out at the other, in the order they
 * went in, until the channel is closed.  Any number of goroutines may write
 * to one channel and any number may read from it, with no lock in sight:
 * each value is delivered to exactly one reader.
 *
 * Part 1: one writer, one reader, a small buffer: the reader sees the
 * values in the writer's order, and the writer's close() ends the reader's
 * loop (Go's `for v := range c`) once every value is out.
 *
 * Part 2: PIPES_W writers and PIPES_R readers share one channel.  Each
 * reader checks that every writer's values reach it in order, and counts
 * them; together they must receive each of the PIPES_W * PIPES_N values
 * exactly once.  Once every writer has finished, a small goroutine closes
 * the channel, which ends all the readers' loops.
 */
#include <stdio.h>
#include <weft.h>

#define PIPES_W 4
#define PIPES_R 3
#define PIPES_N 10000

/* ---- part 1: order, and close ends the loop ------------------------------ */

static const char *const pipes_words[] = {"one",  "two", "three", "four",
                                          "five", "six", "seven"};
#define PIPES_NWORDS (sizeof pipes_words / sizeof pipes_words[0])

static void pipes_write_words(void *arg) {
    weft_chan *c = arg;
    for (size_t i = 0; i < PIPES_NWORDS; i++)
        WEFT_SEND(c, pipes_words[i]);
    weft_close(c); /* no more values: the reader's loop will end */
}

static int pipes_show_order(void) {
    weft_chan *c = weft_chan_make(sizeof(const char *), 2);
    if (!c || weft_go(pipes_write_words, c) != 0)
        return 1;
    const char *w;
    size_t n = 0;
    printf("one writer, one reader, buffer of 2:");
    while (WEFT_RECV(c, &w) == 0) { /* -EPIPE: closed and drained */
        printf(" %s", w);
        if (w != pipes_words[n++])
            return 1;
    }
    printf("  (closed)\n");
    weft_chan_free(c);
    return n != PIPES_NWORDS;
}

/* ---- part 2: many writers, many readers ---------------------------------- */

typedef struct pipes_msg {
    int writer, seq;
} pipes_msg;

typedef struct pipes_shared {
    weft_chan *c;      /* the pipe */
    weft_chan *counts; /* each reader's tally, sent when it is done */
    weft_wg writers;   /* counts the writers still writing */
} pipes_shared;

typedef struct pipes_writer_arg {
    int id;
    pipes_shared *s;
} pipes_writer_arg;

static void pipes_writer(void *arg) {
    pipes_writer_arg *a = arg;
    for (int i = 0; i < PIPES_N; i++) {
        pipes_msg m = {a->id, i};
        WEFT_SEND(a->s->c, m);
    }
    weft_wg_done(&a->s->writers);
}

/* Close the pipe once every writer has finished. */
static void pipes_closer(void *arg) {
    pipes_shared *s = arg;
    weft_wg_wait(&s->writers);
    weft_close(s->c);
}

static void pipes_reader(void *arg) {
    pipes_shared *s = arg;
    int last[PIPES_W];
    long got = 0, out_of_order = 0;
    for (int i = 0; i < PIPES_W; i++)
        last[i] = -1;
    pipes_msg m;
    while (WEFT_RECV(s->c, &m) == 0) {
        out_of_order += m.seq <= last[m.writer];
        last[m.writer] = m.seq;
        got++;
    }
    long tally[2] = {got, out_of_order};
    weft_send(s->counts, tally);
}

static int pipes_show_many(void) {
    pipes_shared s = {.c = weft_chan_make(sizeof(pipes_msg), 16),
                      .counts = weft_chan_make(2 * sizeof(long), PIPES_R)};
    if (!s.c || !s.counts)
        return 1;
    pipes_writer_arg w[PIPES_W];
    weft_wg_add(&s.writers, PIPES_W);
    for (int i = 0; i < PIPES_W; i++) {
        w[i] = (pipes_writer_arg){i, &s};
        if (weft_go(pipes_writer, &w[i]) != 0)
            return 1;
    }
    for (int i = 0; i < PIPES_R; i++)
        if (weft_go(pipes_reader, &s) != 0)
            return 1;
    if (weft_go(pipes_closer, &s) != 0)
        return 1;
    long total = 0, disorder = 0, tally[2];
    printf("%d writers x %d values, %d readers:", PIPES_W, PIPES_N, PIPES_R);
    for (int i = 0; i < PIPES_R; i++) {
        weft_recv(s.counts, tally);
        printf(" %ld", tally[0]);
        total += tally[0];
        disorder += tally[1];
    }
    printf(" = %ld received, %ld out of order\n", total, disorder);
    weft_chan_free(s.c);
    weft_chan_free(s.counts);
    return total != (long)PIPES_W * PIPES_N || disorder != 0;
}

static int pipes_run(void) {
    return pipes_show_order() || pipes_show_many();
}

#ifndef WEFT_TOUR
int main(void) {
    return pipes_run();
}
#endif
