/* SPDX-License-Identifier: MIT */
/*
 * Layer 6, the descriptor calls' internals (fdio.c) for the layers above:
 * the dialler (dial.c) connects with a deadline and a context at once,
 * which no public call offers.
 */
#ifndef WEFT_FDIO_H
#define WEFT_FDIO_H

#include "sys.h"

#include <sys/socket.h>

/* weft_connect with a deadline (-1: none) and a context (NULL: none). */
int weft__connect(int fd, const struct sockaddr *addr, socklen_t len,
                  int64_t deadline, weft_ctx *ctx);

#endif
