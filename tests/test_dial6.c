/* SPDX-License-Identifier: MIT */
/*
 * weft_dial / weft_listen over the IPv6 loopback: "[::1]:port" read back
 * and dialled, "tcp6" and "udp6".  A machine without an IPv6 loopback
 * skips the test (exit 77, ctest's SKIP_RETURN_CODE).
 */
#include "dial.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

static bool have_v6_loopback(void) {
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return false;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(s);
    return ok;
}

static void dial_echo(int l, const char *network, const char *addr) {
    CHECK_EQ(weft_go(echo_once, (void *)(intptr_t)l), 0);
    int fd = weft_dial(network, addr, WEFT_SEC(20));
    CHECK(fd >= 0);
    char peer[64];
    CHECK(weft_remote_addr(fd, peer, sizeof peer) > 0);
    CHECK(strncmp(peer, "[::1]:", 6) == 0);
    roundtrip(fd, 'v');
    close(fd);
}

int main(void) {
    TEST_BEGIN(60);
    if (!have_v6_loopback())
        TEST_SKIP("no IPv6 loopback");
    int l = weft_listen("tcp6", "[::1]:0");
    CHECK(l >= 0);
    int port = weft_local_port(l);
    char want[64], got[64];
    snprintf(want, sizeof want, "[::1]:%d", port);
    CHECK_EQ(weft_local_addr(l, got, sizeof got), strlen(want));
    CHECK(strcmp(got, want) == 0);
    dial_echo(l, "tcp6", want);
    dial_echo(l, "tcp", want);
    /* tcp4 cannot reach an IPv6 literal */
    CHECK(weft_dial("tcp4", want, WEFT_SEC(20)) < 0);
    close(l);

    /* the dual-stack ":0" listener takes IPv6 too */
    l = weft_listen("tcp", ":0");
    CHECK(l >= 0);
    snprintf(want, sizeof want, "[::1]:%d", weft_local_port(l));
    dial_echo(l, "tcp", want);
    close(l);

    int u = weft_listen("udp6", "[::1]:0");
    CHECK(u >= 0);
    snprintf(want, sizeof want, "[::1]:%d", weft_local_port(u));
    int c = weft_dial("udp6", want, WEFT_SEC(20));
    CHECK(c >= 0);
    CHECK_EQ(weft_write(c, "six", 3), 3);
    char b[8];
    CHECK_EQ(weft_read(u, b, sizeof b), 3);
    close(c);
    close(u);
    TEST_OK();
    return 0;
}
