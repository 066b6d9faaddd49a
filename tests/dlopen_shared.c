/* SPDX-License-Identifier: MIT */
/*
 * libweft.so loaded with dlopen, not linked: its thread-locals are in the
 * initial-exec TLS model (CMakeLists.txt), which a library loaded after
 * start-up gets from glibc's static TLS surplus.  The program is not
 * linked with libweft; every call goes through dlsym.  argv[1] is the
 * library's path.
 */
#include "check.h"

#include <dlfcn.h>

typedef weft_chan *(*chan_make_fn)(size_t, size_t);
typedef int (*go_fn)(weft_fn, void *);
typedef int (*chan_op_fn)(weft_chan *, void *);
typedef int (*send_fn)(weft_chan *, const void *);
typedef int (*close_fn)(weft_chan *);

static chan_op_fn recv_;
static send_fn send_;
static weft_chan *ping, *pong;

static void echo(void *arg) {
    (void)arg;
    int v;
    while (recv_(ping, &v) == 0)
        CHECK_EQ(send_(pong, &v), 0);
}

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p)
        fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
    CHECK(p);
    return p;
}

int main(int argc, char **argv) {
    TEST_BEGIN(60);
    CHECK(argc == 2);
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
    CHECK(lib);
    chan_make_fn chan_make = (chan_make_fn)sym(lib, "weft_chan_make");
    go_fn go = (go_fn)sym(lib, "weft_go");
    close_fn close_ = (close_fn)sym(lib, "weft_close");
    recv_ = (chan_op_fn)sym(lib, "weft_recv");
    send_ = (send_fn)sym(lib, "weft_send");

    ping = chan_make(sizeof(int), 0);
    pong = chan_make(sizeof(int), 0);
    CHECK(ping && pong);
    /* more goroutines than workers, so that they move between threads */
    for (int i = 0; i < 4; i++)
        CHECK_EQ(go(echo, NULL), 0);
    long sum = 0;
    for (int i = 0; i < 10000; i++) {
        int v = i;
        CHECK_EQ(send_(ping, &v), 0);
        CHECK_EQ(recv_(pong, &v), 0);
        CHECK_EQ(v, i);
        sum += v;
    }
    CHECK_EQ(sum, 10000L * 9999 / 2);
    CHECK_EQ(close_(ping), 0);
    TEST_OK();
    return 0;
}
