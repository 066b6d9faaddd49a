/* SPDX-License-Identifier: MIT */
/* A goroutine squares what it receives; exits 0 when the sums agree. */
#include <stdio.h>
#include <weft.h>

static void square(void *arg) {
    weft_chan *c = arg;
    long long v;
    while (WEFT_RECV(c, &v) == 0)
        if (WEFT_SEND(c, v * v) != 0)
            return;
}

int main(void) {
    weft_chan *c = weft_chan_make(sizeof(long long), 0);
    if (!c || weft_go(square, c) != 0)
        return 1;
    long long sum = 0;
    for (long long i = 1; i <= 10; i++) {
        long long sq;
        if (WEFT_SEND(c, i) != 0 || WEFT_RECV(c, &sq) != 0)
            return 1;
        sum += sq;
    }
    weft_close(c);
    printf("consumer: sum of squares %lld (weft %s)\n", sum, weft_version());
    return sum == 385 ? 0 : 1;
}
