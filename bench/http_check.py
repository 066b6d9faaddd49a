#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The smoke test of an http row server (bench_smoke_http_epoll).

    http_check.py SERVER [ARG...]

Starts SERVER ARG... 0, reads the port from the "listening on HOST:PORT"
line it prints, and checks the answers tools/bench.sh relies on: keep-alive,
pipelined requests answered in order, HEAD, 404, HTTP/1.0, a body skipped,
400 and 431 with a close that does not lose the response.  Exits 1 on the
first wrong answer."""
import re
import socket
import subprocess
import sys

CASES = [
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
     b"GET /?q HTTP/1.1\r\nHost: a\r\n\r\n"
     b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
     [(200, b"hello, world", True), (200, b"hello, world", True),
      (200, b"", False)]),
    (b"GET / HTTP/1.0\r\n\r\n", [(200, b"hello, world", False)]),
    (b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
     [(404, b"404 page not found\n", False)]),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
     b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
     [(200, b"hello, world", True), (200, b"hello, world", False)]),
    (b"nonsense\r\n\r\n", [(400, b"400 Bad Request", False)]),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
     [(431, b"431 Request Header Fields Too Large", False)]),
]


def talk(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d


def responses(raw):
    """(status, body, keep-alive) of each response in raw, in order."""
    got = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            sys.exit("http_check: truncated response %r" % raw)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = dict(l.split(b": ", 1) for l in lines[1:])
        n = int(hdrs.get(b"Content-Length", b"0"))
        if b"Date" not in hdrs:
            sys.exit("http_check: no Date header in %r" % head)
        got.append((status, rest[:n], hdrs.get(b"Connection") != b"close"))
        raw = rest[n:]
    return got


def main():
    server = subprocess.Popen(sys.argv[1:] + ["0"], stdout=subprocess.PIPE)
    try:
        m = re.search(rb"listening on [0-9.]+:([0-9]+)", server.stdout.readline())
        if not m:
            sys.exit("http_check: no port announced")
        port = int(m.group(1))
        for req, want in CASES:
            # the HEAD answer comes last, so the body its Content-Length
            # announces reads as the empty rest
            got = responses(talk(port, req))
            if got != want:
                sys.exit("http_check: %r\n  got  %r\n  want %r" % (req[:60], got, want))
        print("http_check: %d cases answered as expected" % len(CASES))
    finally:
        server.kill()
        server.wait()


main()
