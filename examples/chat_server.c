/* SPDX-License-Identifier: MIT */
/*
 * chat_server: a TCP chat room; every line a client sends goes to every
 * client.
 *
 *   chat_server ADDRESS     serve for ever (e.g. ":7000"; try nc localhost
 * 7000) chat_server             self-check: 100 clients on 127.0.0.1, each says
 *                           hello and must hear every hello; exits 0 if so
 *
 * What it shows: Go's chat-server shape in C.  weft_listen by name; per
 * connection a reader goroutine (lines through a weft_reader, bounded in
 * length) and a writer goroutine (a weft_writer flushed whenever its queue
 * runs dry); one hub goroutine owns the client list and serves joins,
 * leaves and messages from a select, so nothing is locked.  A slow client
 * whose queue is full misses lines instead of stalling the room.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

#define LINE_MAX_ 256
#define MAX_CLIENTS 1024

typedef struct msg {
    char text[LINE_MAX_];
} msg;

typedef struct client {
    int fd;
    weft_chan *out; /* msg, to this client */
} client;

static weft_chan *joins, *leaves, *msgs; /* client *, client *, msg */
static weft_wg sessions;                 /* connections still served */

static void hub(void *arg) {
    (void)arg;
    static client *room[MAX_CLIENTS];
    int n = 0;
    for (;;) {
        client *c;
        msg m;
        weft_case cases[] = {{joins, WEFT_RECV, &c, 0},
                             {leaves, WEFT_RECV, &c, 0},
                             {msgs, WEFT_RECV, &m, 0}};
        switch (weft_select(cases, 3, WEFT_FOREVER)) {
        case 0:
            room[n++] = c;
            snprintf(m.text, sizeof m.text, "welcome, %d here\n", n);
            weft_send(c->out, &m);
            break;
        case 1:
            for (int i = 0; i < n; i++)
                if (room[i] == c)
                    room[i] = room[--n];
            weft_close(c->out); /* its writer ends and frees it */
            break;
        case 2:
            for (int i = 0; i < n; i++)
                weft_try_send(room[i]->out, &m); /* full: that one misses it */
            break;
        }
    }
}

static void writer(void *arg) {
    client *c = arg;
    weft_writer *w = weft_writer_make(c->fd, 0);
    msg m;
    while (weft_recv(c->out, &m) == 0) {
        weft_writer_write(w, m.text, strlen(m.text));
        if (weft_chan_len(c->out) == 0 && weft_writer_flush(w) < 0)
            shutdown(c->fd, SHUT_RD); /* gone: make the reader leave */
    }
    weft_writer_free(w);
    close(c->fd);
    weft_chan_free(c->out);
    free(c);
    weft_wg_done(&sessions);
}

static void session(void *arg) {
    client *c = arg;
    weft_go(writer, c);
    weft_send(joins, &c);
    weft_reader *r = weft_reader_make(c->fd, 0);
    msg m;
    ssize_t n;
    while ((n = weft_reader_read_until(r, '\n', m.text, sizeof m.text)) > 0 ||
           n == -EMSGSIZE) {
        if (n == -EMSGSIZE) /* too long: pass it on in pieces */
            m.text[weft_reader_read(r, m.text, sizeof m.text - 1)] = 0;
        weft_send(msgs, &m);
    }
    weft_reader_free(r);
    weft_send(leaves, &c);
}

static void serve(void *arg) {
    int lfd = *(int *)arg;
    int fd;
    while ((fd = weft_accept(lfd, NULL, NULL)) >= 0) {
        client *c = malloc(sizeof *c);
        c->fd = fd;
        c->out = weft_chan_make(sizeof(msg), 256);
        weft_wg_add(&sessions, 1);
        weft_go(session, c);
    }
}

/* ---- the self-check ------------------------------------------------------ */

#define CLIENTS 100
static char addr[64];
static weft_wg joined, finished;
static int heard[CLIENTS]; /* hellos each client heard */

static void chatter(void *arg) {
    int id = (int)(intptr_t)arg;
    int fd = weft_dial("tcp", addr, WEFT_SEC(10));
    weft_reader *r = weft_reader_make(fd, 0);
    char line[LINE_MAX_];
    weft_reader_read_until(r, '\n', line, sizeof line); /* welcome */
    weft_wg_done(&joined);
    weft_wg_wait(&joined); /* everybody is in the room */
    int n = snprintf(line, sizeof line, "hello from %d\n", id);
    weft_write(fd, line, (size_t)n);
    while (heard[id] < CLIENTS &&
           weft_reader_read_until(r, '\n', line, sizeof line) > 0)
        heard[id] += strncmp(line, "hello from ", 11) == 0;
    weft_reader_free(r);
    close(fd);
    weft_wg_done(&finished);
}

int main(int argc, char **argv) {
    int lfd = weft_listen("tcp", argc > 1 ? argv[1] : "127.0.0.1:0");
    if (lfd < 0) {
        fprintf(stderr, "listen: %s\n", weft_strerror(lfd));
        return 1;
    }
    joins = weft_chan_make(sizeof(client *), 0);
    leaves = weft_chan_make(sizeof(client *), 0);
    msgs = weft_chan_make(sizeof(msg), 64);
    weft_go(hub, NULL);
    weft_go(serve, &lfd);
    if (argc > 1) {
        weft_sleep(WEFT_FOREVER);
        return 0;
    }
    weft_local_addr(lfd, addr, sizeof addr);
    weft_wg_add(&joined, CLIENTS);
    weft_wg_add(&finished, CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        weft_go(chatter, (void *)(intptr_t)i);
    weft_wg_wait(&finished);
    weft_wg_wait(&sessions); /* the server saw every client leave */
    for (int i = 0; i < CLIENTS; i++)
        if (heard[i] != CLIENTS) {
            fprintf(stderr, "client %d heard %d hellos of %d\n", i, heard[i],
                    CLIENTS);
            return 1;
        }
    printf("%d clients, each heard all %d hellos\n", CLIENTS, CLIENTS);
    return 0;
}
