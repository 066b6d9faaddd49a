/* SPDX-License-Identifier: MIT */
/*
 * echo_server: a TCP echo server, one goroutine per connection.
 *
 *   echo_server [port]      (127.0.0.1; port 0 or none = any free port,
 *                            printed at start)
 *
 * What it shows: each connection is served by straight-line blocking code
 * (read, write everything back, repeat) in its own goroutine.  weft_read
 * parks only that goroutine while the socket has no data, so thousands of
 * idle connections cost a few KiB each, not a thread each.  The accept
 * loop runs on main(), a plain thread: the same weft calls block it.
 * A client that disconnects or resets just ends its goroutine; writing to
 * a vanished peer returns -EPIPE instead of killing the process.
 *
 * Try: ./echo_server 7000 & then `nc 127.0.0.1 7000`.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

static void echo(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    ssize_t n;
    while ((n = weft_read(fd, buf, sizeof buf)) > 0)
        if (weft_write(fd, buf, (size_t)n) < 0)
            break;
    close(fd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) < 0) {
        perror("echo_server");
        return 1;
    }
    printf("echo_server listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL);
        if (fd < 0) { /* out of descriptors, say: back off and go on */
            weft_sleep(WEFT_MS(10));
            continue;
        }
        if (weft_go(echo, (void *)(intptr_t)fd) != 0)
            close(fd);
    }
}
