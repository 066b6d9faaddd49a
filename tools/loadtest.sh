#!/bin/bash
# SPDX-License-Identifier: MIT
# Load test: wrk against build/examples/http_server and the Go net/http twin
# (bench/go/http), interleaved, on 127.0.0.1.  Prints req/s, errors and the
# servers' RSS after each run.
#
#   tools/loadtest.sh [rounds] [connections] [seconds]    (3 1000 5)
#
# Needs: a built tree (make), wrk, go.  Uses ports 18080 (weft) and 18081.
set -eu

ROUNDS=${1:-3}
CONNS=${2:-1000}
SECS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
WEFT_PID=
GO_PID=

cleanup() {
    for p in $WEFT_PID $GO_PID; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(cd "$ROOT/bench/go/http" && GOFLAGS=-mod=mod go build -o "$TMP/gohttp" .)

"$ROOT/build/examples/http_server" 18080 >/dev/null &
WEFT_PID=$!
"$TMP/gohttp" 18081 >/dev/null &
GO_PID=$!
sleep 1

run() { # name port pid
    out=$(wrk -t2 -c"$CONNS" -d"$SECS"s "http://127.0.0.1:$2/")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    errs=$(echo "$out" | grep -E 'Socket errors|Non-2xx' | tr -s ' ' | tr '\n' ';')
    rss=$(ps -o rss= -p "$3" | tr -d ' ')
    echo "$1 req/s=$rps rss_kb=$rss ${errs:-errors=none}"
}

i=1
while [ "$i" -le "$ROUNDS" ]; do
    run weft 18080 "$WEFT_PID"
    run go 18081 "$GO_PID"
    i=$((i + 1))
done
