/*
 * The netpoller: one epoll instance shared by every worker.
 *
 * An eventfd registered with a NULL tag lets any thread interrupt the
 * worker sleeping in epoll_wait (weft__netpoll_break); everything else
 * registered carries a pointer to its descriptor's wait record.
 *
 * Only one worker at a time waits here with a timeout (the "poller role",
 * see sched.c); others may poll without waiting.
 */
#include "weft_internal.h"

#include <limits.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct {
    int epfd;
    int evfd;
    atomic_size_t waiting; /* descriptor waits in progress */
} np = {.epfd = -1, .evfd = -1};

int weft__netpoll_init(void) {
    np.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (np.epfd < 0)
        return -errno;
    np.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (np.evfd < 0) {
        int e = -errno;
        close(np.epfd);
        np.epfd = -1;
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(np.epfd, EPOLL_CTL_ADD, np.evfd, &ev);
    return 0;
}

void weft__netpoll_release(void) {
    if (np.evfd >= 0)
        close(np.evfd);
    if (np.epfd >= 0)
        close(np.epfd);
    np.evfd = np.epfd = -1;
}

void weft__netpoll_break(void) {
    uint64_t one = 1;
    ssize_t r = write(np.evfd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, a wake is pending */
}

size_t weft__netpoll_waiting(void) {
    return atomic_load_explicit(&np.waiting, memory_order_relaxed);
}

/* epoll_pwait2 (Linux 5.11) takes a nanosecond timeout; where it is
 * missing (older kernels, valgrind 3.19) epoll_wait's milliseconds, rounded
 * up, do. */
static int wait_events(struct epoll_event *evs, int max,
                       const struct timespec *tp) {
    static atomic_bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        int n = epoll_pwait2(np.epfd, evs, max, tp, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
    int ms = -1;
    if (tp) {
        int64_t ns = (int64_t)tp->tv_sec * 1000000000 + tp->tv_nsec;
        ms = ns / 1000000 >= INT_MAX ? INT_MAX : (int)((ns + 999999) / 1000000);
    }
    return epoll_wait(np.epfd, evs, max, ms);
}

int weft__netpoll(int64_t deadline) {
    struct epoll_event evs[128];
    struct timespec ts, *tp = NULL;
    if (deadline >= 0) {
        int64_t d = deadline - weft_now();
        if (d < 0)
            d = 0;
        ts.tv_sec = d / 1000000000;
        ts.tv_nsec = d % 1000000000;
        tp = &ts;
    }
    int n = wait_events(evs, 128, tp);
    int readied = 0;
    for (int i = 0; i < n; i++) {
        if (!evs[i].data.ptr) {
            uint64_t v;
            ssize_t r = read(np.evfd, &v, sizeof v);
            (void)r;
            continue;
        }
    }
    return readied;
}
