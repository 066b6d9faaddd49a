/* SPDX-License-Identifier: MIT */
/*
 * ownership: a channel hands a buffer from one goroutine to the next.
 *
 * "Don't communicate by sharing memory; share memory by communicating."
 * Sending a pointer over a channel is a transfer of ownership: the sender
 * gives the buffer away and never touches it again; the receiver now owns
 * it and may write it without any lock, because at every moment exactly
 * one goroutine can reach it.  The channel also orders memory: whatever the
 * sender wrote before the send is visible to the receiver after it.
 *
 * Three stages, each the sole owner of a buffer while it holds it:
 *   make  -> allocates a line and fills it in, sends the pointer on;
 *   shout -> upper-cases the line in place (it owns it now), sends it on;
 *   print -> prints the line and frees it: the last owner cleans up.
 * Each stage closes its output when its input is closed, so the end of the
 * input flows down the pipe and every stage returns.
 *
 * (Keeping a copy of the pointer after the send and writing through it
 * would be a data race, which `make race` reports.)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>

typedef struct own_line {
    int n;
    char text[48];
} own_line;

typedef struct own_stage {
    weft_chan *in, *out; /* channels of own_line pointers */
} own_stage;

static const char *const own_words[] = {"share", "memory", "by",
                                        "communicating"};
#define OWN_NWORDS (int)(sizeof own_words / sizeof own_words[0])

static void own_make(void *arg) {
    own_stage *st = arg;
    for (int i = 0; i < OWN_NWORDS; i++) {
        own_line *l = malloc(sizeof *l);
        if (!l)
            break;
        l->n = i + 1;
        snprintf(l->text, sizeof l->text, "%s", own_words[i]);
        WEFT_SEND(st->out, l); /* hand it over... */
        l = NULL;              /* ...and let go of it */
    }
    weft_close(st->out);
}

static void own_shout(void *arg) {
    own_stage *st = arg;
    own_line *l;
    while (WEFT_RECV(st->in, &l) == 0) {
        for (char *p = l->text; *p; p++) /* ours now: no lock needed */
            *p = (char)toupper((unsigned char)*p);
        WEFT_SEND(st->out, l);
    }
    weft_close(st->out);
}

/* The last stage: prints and frees; returns how many lines it saw. */
static int own_print(weft_chan *in) {
    own_line *l;
    int n = 0;
    while (WEFT_RECV(in, &l) == 0) {
        printf("  line %d: %s\n", l->n, l->text);
        free(l);
        n++;
    }
    return n;
}

static int ownership_run(void) {
    weft_chan *made = weft_chan_make(sizeof(own_line *), 0);
    weft_chan *shouted = weft_chan_make(sizeof(own_line *), 0);
    own_stage make = {NULL, made}, shout = {made, shouted};
    if (!made || !shouted || weft_go(own_make, &make) != 0 ||
        weft_go(own_shout, &shout) != 0)
        return 1;
    printf("make -> shout -> print, one owner per buffer at a time:\n");
    int n = own_print(shouted);
    weft_chan_free(made);
    weft_chan_free(shouted);
    return n != OWN_NWORDS;
}

#ifndef WEFT_TOUR
int main(void) {
    return ownership_run();
}
#endif
