/* SPDX-License-Identifier: MIT */
/*
 * hello: the smallest weft program, the README's first example.
 *
 * A goroutine produces values on an unbuffered channel and closes it; main
 * (a plain thread) receives until the channel reports it is closed - Go's
 * `for v := range c`.
 */
#include <stdio.h>
#include <weft.h>

static void produce(void *arg) {
    weft_chan *c = arg;
    for (int i = 1; i <= 3; i++)
        WEFT_SEND(c, i); /* c <- i */
    weft_close(c);       /* close(c) */
}

int main(void) {
    weft_chan *c = weft_chan_make(sizeof(int), 0); /* make(chan int) */
    if (!c || weft_go(produce, c) != 0)            /* go produce(c) */
        return 1;
    int v;
    while (WEFT_RECV(c, &v) == 0) /* for v := range c */
        printf("got %d\n", v);
    weft_chan_free(c);
    return 0;
}
