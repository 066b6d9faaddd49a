/* SPDX-License-Identifier: MIT */
/*
 * Buffered I/O (Go's bufio) and weft_copy (io.Copy) over descriptors.
 *
 * Descriptors.  A descriptor epoll can wait on (socket, pipe, tty) goes
 * through weft_read/weft_write, or their _ctx variants when a context is
 * set: the goroutine parks on the netpoller.  A regular file or block
 * device cannot be waited on (it is always "ready", and a read of it may
 * still sleep in the kernel), so each of its reads and writes is one job on
 * the weft_blocking pool: one thread hand-off per buffer fill or flush, not
 * per line.  Its flags are left alone.  A context is checked before such a
 * job; the job itself, once started, runs to its end.
 *
 * Reader.  buf[off, end) holds bytes read and not yet consumed.  Nothing is
 * consumed by a call that fails: read_full pushes what it had taken back
 * (growing buf as needed: the rare path), and read_until looks for the
 * delimiter without consuming, growing buf up to the caller's bound, so a
 * line too long for it stays buffered.
 *
 * Writer.  buf[0, len) waits to be written.  A write larger than the free
 * space goes straight out once the buffer is flushed.  The first error is
 * kept (err) and returned by every later call, as in Go: bytes after a
 * failure could arrive out of order.
 */
#include "sys.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SIZE 4096
#define COPY_SIZE (64 * 1024)

static bool is_file(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

/* ---- one read or write, on the pool for a file --------------------------- */

typedef struct file_job {
    int fd;
    void *buf;
    size_t n;
    bool writing;
    ssize_t res;
} file_job;

static void file_io(void *arg) {
    file_job *j = arg;
    size_t done = 0;
    for (;;) {
        ssize_t r = j->writing
                        ? write(j->fd, (char *)j->buf + done, j->n - done)
                        : read(j->fd, j->buf, j->n);
        if (r < 0 && weft_errno() == EINTR)
            continue;
        if (r < 0) {
            j->res = -weft_errno();
            return;
        }
        done += (size_t)r;
        if (!j->writing || done == j->n || r == 0) {
            j->res = (ssize_t)done;
            return;
        }
    }
}

/* read(2) (writing false) or write-all on fd: bytes, 0 at EOF, -errno. */
static ssize_t fd_io(int fd, bool file, weft_ctx *ctx, void *buf, size_t n,
                     bool writing) {
    if (file) {
        int e = ctx ? weft_ctx_err(ctx) : 0;
        if (e)
            return e;
        file_job j = {.fd = fd, .buf = buf, .n = n, .writing = writing};
        e = weft_blocking(file_io, &j);
        return e < 0 ? e : j.res;
    }
    if (writing)
        return ctx ? weft_write_ctx(ctx, fd, buf, n) : weft_write(fd, buf, n);
    return ctx ? weft_read_ctx(ctx, fd, buf, n) : weft_read(fd, buf, n);
}

/* What a reader and a writer share, first in both. */
typedef struct buffered {
    int fd;
    bool file;
    weft_ctx *ctx;
    char *buf;
    size_t cap;
} buffered;

/* A reader or writer (obj bytes) of fd with a size-byte buffer. */
static void *buffered_make(size_t obj, int fd, size_t size) {
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    size = size ? size : DEFAULT_SIZE;
    buffered *b = calloc(1, obj);
    if (!b || !(b->buf = malloc(size))) {
        free(b);
        errno = ENOMEM;
        return NULL;
    }
    b->fd = fd;
    b->file = is_file(fd);
    b->cap = size;
    return b;
}

/* ---- reader ------------------------------------------------------------- */

struct weft_reader {
    buffered b;
    size_t off, end;
    bool eof; /* read(2) said 0: report it once per call that needs more */
};

weft_reader *weft_reader_make(int fd, size_t size) {
    return buffered_make(sizeof(weft_reader), fd, size);
}

void weft_reader_free(weft_reader *r) {
    if (r) {
        free(r->b.buf);
        free(r);
    }
}

int weft_reader_ctx(weft_reader *r, weft_ctx *ctx) {
    if (!r)
        return -EINVAL;
    r->b.ctx = ctx;
    return 0;
}

size_t weft_reader_buffered(const weft_reader *r) {
    return r ? r->end - r->off : 0;
}

/* Room for need bytes in buf (slides the data down, grows when needed). */
static int make_room(weft_reader *r, size_t need) {
    if (r->off && r->b.cap - r->end < need) {
        memmove(r->b.buf, r->b.buf + r->off, r->end - r->off);
        r->end -= r->off;
        r->off = 0;
    }
    if (r->b.cap - r->end >= need)
        return 0;
    char *nb = realloc(r->b.buf, r->end + need);
    if (!nb)
        return -ENOMEM;
    r->b.buf = nb;
    r->b.cap = r->end + need;
    return 0;
}

/* One read into the free space: bytes (> 0), 0 at EOF, -errno. */
static ssize_t fill(weft_reader *r) {
    if (r->eof)
        return 0;
    if (r->off == r->end)
        r->off = r->end = 0;
    int e = make_room(r, r->end == r->b.cap ? DEFAULT_SIZE : 1);
    if (e < 0)
        return e;
    ssize_t n = fd_io(r->b.fd, r->b.file, r->b.ctx, r->b.buf + r->end,
                      r->b.cap - r->end, false);
    if (n > 0)
        r->end += (size_t)n;
    else if (n == 0)
        r->eof = true;
    return n;
}

/* Move up to n buffered bytes to dst. */
static size_t take(weft_reader *r, void *dst, size_t n) {
    size_t k = r->end - r->off < n ? r->end - r->off : n;
    memcpy(dst, r->b.buf + r->off, k);
    r->off += k;
    return k;
}

ssize_t weft_reader_read(weft_reader *r, void *buf, size_t n) {
    if (!r || (!buf && n))
        return -EINVAL;
    if (n == 0)
        return 0;
    if (r->off == r->end) {
        /* nothing buffered: a big read skips the copy, as in Go */
        if (n >= r->b.cap && !r->eof)
            return fd_io(r->b.fd, r->b.file, r->b.ctx, buf, n, false);
        ssize_t x = fill(r);
        if (x <= 0) {
            r->eof = false; /* EOF is reported once, as read(2) does */
            return x;
        }
    }
    return (ssize_t)take(r, buf, n);
}

ssize_t weft_reader_read_full(weft_reader *r, void *buf, size_t n) {
    if (!r || (!buf && n))
        return -EINVAL;
    size_t got = take(r, buf, n);
    while (got < n) {
        ssize_t x = fill(r);
        if (x <= 0) {
            r->eof = false;
            if (x == 0 && got == 0)
                return 0;
            /* give back what was taken: nothing is consumed */
            int e = make_room(r, got);
            if (e < 0)
                return e;
            memmove(r->b.buf + r->off + got, r->b.buf + r->off,
                    r->end - r->off);
            memcpy(r->b.buf + r->off, buf, got);
            r->end += got;
            return x == 0 ? -EPIPE : x;
        }
        got += take(r, (char *)buf + got, n - got);
    }
    return (ssize_t)n;
}

ssize_t weft_reader_read_until(weft_reader *r, int delim, char *buf,
                               size_t cap) {
    if (!r || !buf || cap == 0)
        return -EINVAL;
    size_t max = cap - 1, scanned = 0;
    for (;;) {
        size_t have = r->end - r->off;
        size_t lim = have < max ? have : max;
        char *p = memchr(r->b.buf + r->off + scanned, delim, lim - scanned);
        if (p) {
            size_t len = (size_t)(p - (r->b.buf + r->off)) + 1;
            take(r, buf, len);
            buf[len] = 0;
            return (ssize_t)len;
        }
        scanned = lim;
        if (have >= max)
            return -EMSGSIZE; /* all still buffered */
        if (r->off + max > r->b.cap) {
            int e = make_room(r, max - have);
            if (e < 0)
                return e;
        }
        ssize_t x = fill(r);
        if (x < 0)
            return x;
        if (x == 0) {
            /* EOF: the last line, without its delimiter (0 when none) */
            r->eof = false;
            size_t len = take(r, buf, have);
            buf[len] = 0;
            return (ssize_t)len;
        }
    }
}

/* ---- writer ------------------------------------------------------------- */

struct weft_writer {
    buffered b;
    size_t len;
    int err; /* sticky */
};

weft_writer *weft_writer_make(int fd, size_t size) {
    return buffered_make(sizeof(weft_writer), fd, size);
}

int weft_writer_ctx(weft_writer *w, weft_ctx *ctx) {
    if (!w)
        return -EINVAL;
    w->b.ctx = ctx;
    return 0;
}

size_t weft_writer_buffered(const weft_writer *w) {
    return w ? w->len : 0;
}

/* Write buf[0, n) out; on failure the unwritten part of w's own buffer
 * stays in it and the error sticks. */
static int put(weft_writer *w, const void *buf, size_t n) {
    while (n) {
        ssize_t x = fd_io(w->b.fd, w->b.file, w->b.ctx, (void *)buf, n, true);
        if (x <= 0) {
            w->err = x < 0 ? (int)x : -EIO;
            return w->err;
        }
        if (buf == w->b.buf) {
            memmove(w->b.buf, w->b.buf + x, w->len - (size_t)x);
            w->len -= (size_t)x;
        } else {
            buf = (const char *)buf + x;
        }
        n -= (size_t)x;
    }
    return 0;
}

int weft_writer_flush(weft_writer *w) {
    if (!w)
        return -EINVAL;
    if (w->err || !w->len)
        return w->err;
    return put(w, w->b.buf, w->len);
}

ssize_t weft_writer_write(weft_writer *w, const void *buf, size_t n) {
    if (!w || (!buf && n))
        return -EINVAL;
    if (w->err)
        return w->err;
    if (n > w->b.cap - w->len) {
        int e = weft_writer_flush(w);
        if (e < 0)
            return e;
        if (n >= w->b.cap) {
            e = put(w, buf, n);
            return e < 0 ? e : (ssize_t)n;
        }
    }
    memcpy(w->b.buf + w->len, buf, n);
    w->len += n;
    return (ssize_t)n;
}

int weft_writer_free(weft_writer *w) {
    if (!w)
        return 0;
    int e = weft_writer_flush(w);
    free(w->b.buf);
    free(w);
    return e;
}

/* ---- weft_copy ----------------------------------------------------------- */

static ssize_t copy(weft_ctx *ctx, int dst, int src) {
    if (dst < 0 || src < 0)
        return -EBADF;
    char *buf = malloc(COPY_SIZE);
    if (!buf)
        return -ENOMEM;
    bool dfile = is_file(dst), sfile = is_file(src);
    ssize_t total = 0;
    for (;;) {
        ssize_t n = fd_io(src, sfile, ctx, buf, COPY_SIZE, false);
        if (n <= 0) {
            total = n < 0 ? n : total;
            break;
        }
        /* a write cut short by ctx returns the part written: go on, the
         * next one returns ctx's error */
        ssize_t x = 1;
        for (ssize_t off = 0; off < n && x > 0; off += x)
            x = fd_io(dst, dfile, ctx, buf + off, (size_t)(n - off), true);
        if (x <= 0) {
            total = x < 0 ? x : -EIO;
            break;
        }
        total += n;
    }
    free(buf);
    return total;
}

ssize_t weft_copy(int dst_fd, int src_fd) {
    return copy(NULL, dst_fd, src_fd);
}

ssize_t weft_copy_ctx(weft_ctx *ctx, int dst_fd, int src_fd) {
    return ctx ? copy(ctx, dst_fd, src_fd) : -EINVAL;
}
