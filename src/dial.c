/* SPDX-License-Identifier: MIT */
/*
 * Dialling and listening by name, as Go's net.Dial and net.Listen:
 * weft_dial, weft_dial_ctx, weft_listen, and the address read-back
 * weft_local_addr / weft_remote_addr / weft_local_port.
 *
 * Addresses are Go's: "host:port", "[v6]:port", ":port" (no host: the
 * local system to dial, every address to listen on), the port a number or
 * a service name; a path for "unix" ("@name": Linux's abstract
 * namespace).
 *
 * Resolution.  A literal address with a numeric port resolves inline
 * (getaddrinfo with AI_NUMERICHOST | AI_NUMERICSERV never blocks).
 * Anything else goes to a detached thread of its own: getaddrinfo cannot
 * be interrupted, and the caller must be able to leave at its deadline or
 * when its context ends while the lookup runs on.  The lookup lives on the
 * heap with two references, the caller's and the thread's; the thread
 * signals a one-slot channel when it is done, the caller selects on that
 * channel, its context's done channel and its deadline, and whoever drops
 * the last reference frees the answer, the channel and the record.  So a
 * caller that gave up costs nothing but the thread's remaining time.
 *
 * Connecting.  Each resolved address is tried in order.  With a deadline,
 * as in Go, an attempt gets an equal share of the time left (at least 2 s,
 * never past the deadline), so one address that drops packets does not
 * use up the time of the ones after it.  The first failure is what the
 * caller sees when every address fails; the deadline and the context end
 * the loop at once.
 */
#include "fdio.h"
#include "netpoll.h"
#include "runtime.h"
#include "sys.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define MIN_ATTEMPT WEFT_SEC(2)

typedef struct netw {
    int family; /* AF_UNSPEC, AF_INET, AF_INET6 or AF_UNIX */
    int socktype;
} netw;

static int parse_network(const char *network, netw *n) {
    static const struct {
        const char *name;
        netw n;
    } known[] = {
        {"tcp", {AF_UNSPEC, SOCK_STREAM}}, {"tcp4", {AF_INET, SOCK_STREAM}},
        {"tcp6", {AF_INET6, SOCK_STREAM}}, {"udp", {AF_UNSPEC, SOCK_DGRAM}},
        {"udp4", {AF_INET, SOCK_DGRAM}},   {"udp6", {AF_INET6, SOCK_DGRAM}},
        {"unix", {AF_UNIX, SOCK_STREAM}},
    };
    if (!network)
        return -EINVAL;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(network, known[i].name) == 0) {
            *n = known[i].n;
            return 0;
        }
    return -EINVAL;
}

/* ---- "host:port" --------------------------------------------------------- */

typedef struct hostport {
    char host[NI_MAXHOST]; /* "" for none */
    char port[NI_MAXSERV];
} hostport;

static int copy_part(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap)
        return -EINVAL;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static bool all_digits(const char *s) {
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Go's SplitHostPort: a host with colons must be bracketed; a port is
 * required. */
static int split_hostport(const char *addr, hostport *hp) {
    const char *colon, *host = addr, *host_end;
    if (addr[0] == '[') {
        host = addr + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return -EINVAL;
        colon = host_end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || memchr(addr, ':', (size_t)(colon - addr)) ||
            strchr(addr, '[') || strchr(addr, ']'))
            return -EINVAL;
        host_end = colon;
    }
    if (!colon[1])
        return -EINVAL;
    int e =
        copy_part(hp->host, sizeof hp->host, host, (size_t)(host_end - host));
    if (!e)
        e = copy_part(hp->port, sizeof hp->port, colon + 1, strlen(colon + 1));
    /* getaddrinfo takes any number and wraps it */
    if (!e && all_digits(hp->port) &&
        (strlen(hp->port) > 5 || atoi(hp->port) > 65535))
        e = -EINVAL;
    return e;
}

/* ---- name resolution ----------------------------------------------------- */

typedef struct lookup {
    atomic_int refs;
    hostport hp;
    struct addrinfo hints;
    struct addrinfo *res;
    int rc;        /* getaddrinfo's result */
    int sys_errno; /* errno, for EAI_SYSTEM */
    weft_chan *done;
} lookup;

static void lookup_unref(lookup *l) {
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (l->res)
        freeaddrinfo(l->res);
    weft_chan_free(l->done);
    free(l);
}

static void lookup_run(lookup *l) {
    l->rc = getaddrinfo(l->hp.host[0] ? l->hp.host : NULL, l->hp.port,
                        &l->hints, &l->res);
    l->sys_errno = l->rc == EAI_SYSTEM ? weft_errno() : 0;
}

static void *lookup_thread(void *arg) {
    lookup *l = arg;
    lookup_run(l);
    weft_try_send(l->done, NULL); /* one slot, one send: never full */
    lookup_unref(l);
    return NULL;
}

/* getaddrinfo's answer as an errno value.  No such host is -ENXIO. */
static int gai_errno(int rc, int sys_errno) {
    switch (rc) {
    case 0:
        return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENXIO;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAIL:
        return -EIO;
    case EAI_SYSTEM:
        return sys_errno ? -sys_errno : -EIO;
    default: /* EAI_SERVICE (unknown port name), EAI_FAMILY, ... */
        return -EINVAL;
    }
}

/* Time left until deadline as a timeout (-1: none). */
static int64_t time_left(int64_t deadline) {
    if (deadline < 0)
        return WEFT_FOREVER;
    int64_t left = deadline - weft_now();
    return left > 0 ? left : 0;
}

/* Wait for l's thread, the deadline or the end of ctx (NULL: none). */
static int lookup_wait(lookup *l, int64_t deadline, weft_ctx *ctx) {
    weft_case cases[2] = {
        {.chan = l->done, .op = WEFT_RECV},
        {.chan = ctx ? weft_ctx_done(ctx) : NULL, .op = WEFT_RECV},
    };
    int i = weft_select(cases, 2, time_left(deadline));
    if (i == 0)
        return gai_errno(l->rc, l->sys_errno);
    return i == 1 ? weft_ctx_err(ctx) : i;
}

/* Resolve hp for socktype/family into *out (freed with lookup_unref), off
 * the workers unless it is literal. */
static int resolve(const hostport *hp, const netw *n, int flags,
                   int64_t deadline, weft_ctx *ctx, lookup **out) {
    lookup *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    atomic_init(&l->refs, 1);
    l->hp = *hp;
    l->hints.ai_family = n->family;
    l->hints.ai_socktype = n->socktype;
    l->hints.ai_flags = flags | AI_NUMERICHOST | AI_NUMERICSERV;
    int e = 0;
    if (all_digits(hp->port)) {
        lookup_run(l);
        e = gai_errno(l->rc, l->sys_errno);
        if (e != -ENXIO) { /* -ENXIO: not a literal; ask the resolver */
            *out = l;
            return e;
        }
    }
    l->hints.ai_flags = flags;
    l->done = weft_chan_make(0, 1);
    pthread_attr_t attr;
    pthread_t t;
    if (!l->done || pthread_attr_init(&attr)) {
        lookup_unref(l);
        return -ENOMEM;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_store_explicit(&l->refs, 2, memory_order_relaxed);
    e = weft__thread_start(&t, &attr, lookup_thread, l);
    pthread_attr_destroy(&attr);
    if (e) {
        atomic_store_explicit(&l->refs, 1, memory_order_relaxed);
        lookup_unref(l);
        return -e;
    }
    e = lookup_wait(l, deadline, ctx);
    *out = l;
    return e;
}

/* ---- trying each address ------------------------------------------------- */

typedef struct walk {
    int64_t deadline; /* -1: none */
    weft_ctx *ctx;    /* NULL: none */
    int family;       /* the network's; AF_UNSPEC for "tcp" and "udp" */
    int left;         /* addresses still to try, the current one included */
} walk;

/* A descriptor for ai (>= 0) or -errno. */
typedef int (*try_fn)(const struct addrinfo *ai, walk *w);

/* try each address in order until one gives a descriptor: that, or the
 * first failure; the end of the deadline or of the context stops it. */
static int try_each(const struct addrinfo *ai, walk *w, try_fn try) {
    int first = 0;
    for (const struct addrinfo *a = ai; a; a = a->ai_next)
        w->left++;
    for (; ai; ai = ai->ai_next, w->left--) {
        int fd = try(ai, w);
        if (fd >= 0)
            return fd;
        if (!first)
            first = fd;
        int e = w->ctx ? weft_ctx_err(w->ctx) : 0;
        if (e)
            return e;
        if (w->deadline >= 0 && weft_now() >= w->deadline)
            return -ETIMEDOUT;
    }
    return first ? first : -ENXIO; /* a lookup that found no address */
}

static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len) {
    size_t n = strlen(path);
    if (n == 0)
        return -EINVAL;
    if (n >= sizeof sa->sun_path)
        return -ENAMETOOLONG;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n);
    if (path[0] == '@')
        sa->sun_path[0] = '\0'; /* abstract: the length says where it ends */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                       (path[0] != '@'));
    return 0;
}

/* The addresses network and address name, each handed to try in turn.
 * flags: getaddrinfo's (AI_PASSIVE to listen). */
static int each_addr(const char *network, const char *address, int flags,
                     walk *w, try_fn try) {
    netw n;
    if (parse_network(network, &n) < 0 || !address)
        return -EINVAL;
    weft__ensure();
    w->family = n.family;
    struct addrinfo one = {.ai_family = n.family, .ai_socktype = n.socktype};
    if (n.family == AF_UNIX) {
        struct sockaddr_un su;
        int e = unix_addr(address, &su, &one.ai_addrlen);
        one.ai_addr = (struct sockaddr *)&su;
        return e ? e : try_each(&one, w, try);
    }
    hostport hp;
    int e = split_hostport(address, &hp);
    if (e)
        return e;
    if ((flags & AI_PASSIVE) && !hp.host[0] && n.family == AF_UNSPEC &&
        all_digits(hp.port)) {
        /* every address: one dual-stack socket on [::], as Go does, and
         * 0.0.0.0 on a machine without IPv6 */
        uint16_t port = htons((uint16_t)atoi(hp.port));
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6,
                                  .sin6_port = port,
                                  .sin6_addr = IN6ADDR_ANY_INIT};
        struct sockaddr_in s4 = {.sin_family = AF_INET,
                                 .sin_port = port,
                                 .sin_addr.s_addr = htonl(INADDR_ANY)};
        struct addrinfo v4 = {.ai_family = AF_INET,
                              .ai_socktype = n.socktype,
                              .ai_addrlen = sizeof s4,
                              .ai_addr = (struct sockaddr *)&s4};
        one = (struct addrinfo){.ai_family = AF_INET6,
                                .ai_socktype = n.socktype,
                                .ai_addrlen = sizeof s6,
                                .ai_addr = (struct sockaddr *)&s6,
                                .ai_next = &v4};
        return try_each(&one, w, try);
    }
    lookup *l = NULL;
    e = resolve(&hp, &n, flags, w->deadline, w->ctx, &l);
    if (!e)
        e = try_each(l->res, w, try);
    if (l)
        lookup_unref(l);
    return e;
}

/* Sockets weft makes are registered once, as they are made (netpoll.c). */
static int new_socket(const struct addrinfo *ai) {
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
    if (fd < 0)
        return -weft_errno();
    weft__fd_adopt(fd);
    return fd;
}

static void drop_socket(int fd) {
    weft__fd_disown(fd);
    close(fd);
}

/* ---- dialling ------------------------------------------------------------ */

/* The deadline of one attempt with left addresses still to try. */
static int64_t attempt_deadline(int64_t deadline, int left) {
    if (deadline < 0 || left <= 1)
        return deadline;
    int64_t share = (deadline - weft_now()) / left;
    if (share < MIN_ATTEMPT)
        share = MIN_ATTEMPT;
    int64_t d = weft_now() + share;
    return d < deadline ? d : deadline;
}

static int dial_try(const struct addrinfo *ai, walk *w) {
    int fd = new_socket(ai);
    if (fd < 0)
        return fd;
    int e = weft__connect(fd, ai->ai_addr, ai->ai_addrlen,
                          attempt_deadline(w->deadline, w->left), w->ctx);
    if (e == 0)
        return fd;
    drop_socket(fd);
    return e;
}

int weft_dial(const char *network, const char *address, int64_t timeout_ns) {
    walk w = {.deadline = weft__deadline(timeout_ns)};
    return each_addr(network, address, 0, &w, dial_try);
}

int weft_dial_ctx(weft_ctx *ctx, const char *network, const char *address) {
    walk w = {.ctx = ctx};
    if (weft_ctx_deadline(ctx, &w.deadline) < 0)
        return -EINVAL;
    int e = weft_ctx_err(ctx);
    return e ? e : each_addr(network, address, 0, &w, dial_try);
}

/* ---- listening ----------------------------------------------------------- */

/* Bound to ai, and listening unless it is a datagram socket.  An IPv6
 * socket is dual-stack only for "tcp"/"udp" on the unspecified address. */
static int listen_try(const struct addrinfo *ai, walk *w) {
    int fd = new_socket(ai);
    if (fd < 0)
        return fd;
    if (ai->ai_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)ai->ai_addr;
        int v6only =
            w->family != AF_UNSPEC || !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    bool stream = ai->ai_socktype == SOCK_STREAM;
    int one = 1;
    if (stream && ai->ai_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        (stream && listen(fd, SOMAXCONN) < 0)) {
        int e = -weft_errno();
        drop_socket(fd);
        return e;
    }
    return fd;
}

/* The lookup of a host name has no deadline, as documented. */
int weft_listen(const char *network, const char *address) {
    walk w = {.deadline = -1};
    return each_addr(network, address, AI_PASSIVE, &w, listen_try);
}

/* ---- addresses as text --------------------------------------------------- */

static int format_addr(const struct sockaddr_storage *ss, socklen_t len,
                       char *buf, size_t cap) {
    char ip[INET6_ADDRSTRLEN];
    int k;
    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        k = snprintf(buf, cap, "%s:%u", ip, ntohs(s4->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        k = snprintf(buf, cap, "[%s]:%u", ip, ntohs(s6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *su = (const struct sockaddr_un *)ss;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? len - off : 0;
        bool abstract = n > 0 && su->sun_path[0] == '\0';
        if (!abstract)
            n = strnlen(su->sun_path, n);
        k = snprintf(buf, cap, "%s%.*s", abstract ? "@" : "",
                     (int)(abstract ? n - 1 : n),
                     su->sun_path + (abstract ? 1 : 0));
        break;
    }
    default:
        return -EAFNOSUPPORT;
    }
    return (size_t)k < cap ? k : -ENOSPC;
}

static int sock_addr(int fd, bool peer, char *buf, size_t cap) {
    if (!buf || cap == 0)
        return -EINVAL;
    buf[0] = '\0';
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
                 : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (r < 0)
        return -weft_errno();
    int k = format_addr(&ss, len, buf, cap);
    if (k < 0)
        buf[0] = '\0';
    return k;
}

int weft_local_addr(int fd, char *buf, size_t cap) {
    return sock_addr(fd, false, buf, cap);
}

int weft_remote_addr(int fd, char *buf, size_t cap) {
    return sock_addr(fd, true, buf, cap);
}

int weft_local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -weft_errno();
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}
