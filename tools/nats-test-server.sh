#!/bin/sh
# SPDX-License-Identifier: MIT
# A throw-away nats-server for trying the NATS bridge (tests start their own
# from C; see tests/nats/nats_test.h).  Loopback only, a free port, JetStream
# storing in a temporary folder.
#
#   tools/nats-test-server.sh start [DIR]   start; prints the URL (DIR: the
#                                           server's folder, made if needed;
#                                           default: a new temporary one,
#                                           named on stderr)
#   tools/nats-test-server.sh restart DIR   stop, start on the same port with
#                                           the same store; prints the URL
#   tools/nats-test-server.sh stop DIR      stop and delete DIR
#
# Example:  url=$(tools/nats-test-server.sh start /tmp/nats1)
#           build/examples/nats_workers -url "$url" -spawn 3
#           tools/nats-test-server.sh stop /tmp/nats1
set -eu

NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}

die() { echo "nats-test-server: $*" >&2; exit 1; }

# run DIR PORT: start the server in the background, wait for its ports file.
run() {
    dir=$1 port=$2
    mkdir -p "$dir/js"
    rm -f "$dir"/nats-server_*.ports
    "$NATS_SERVER" -a 127.0.0.1 -p "$port" -js -sd "$dir/js" \
        --ports_file_dir "$dir" -P "$dir/pid" -l "$dir/server.log" \
        </dev/null >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ ! -s "$dir/nats-server_$pid.ports" ]; do
        kill -0 "$pid" 2>/dev/null || die "server exited; see $dir/server.log"
        i=$((i + 1))
        [ $i -le 200 ] || die "server not ready after 10 s; see $dir/server.log"
        sleep 0.05
    done
    port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/nats-server_$pid.ports")
    echo "$port" >"$dir/port"
    echo "nats://127.0.0.1:$port"
}

# halt DIR: graceful stop (the JetStream store is flushed), then wait.
halt() {
    [ -f "$1/pid" ] || return 0
    pid=$(cat "$1/pid")
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -le 200 ] || { kill -KILL "$pid" 2>/dev/null || true; break; }
        sleep 0.05
    done
    rm -f "$1/pid"
}

cmd=${1:-}
case "$cmd" in
start)
    if [ $# -ge 2 ]; then dir=$2; else
        dir=$(mktemp -d /tmp/weft-nats-XXXXXX)
        echo "nats-test-server: folder $dir (stop: $0 stop $dir)" >&2
    fi
    run "$dir" -1 ;;
restart)
    [ $# -ge 2 ] && [ -f "$2/port" ] || die "restart: no server folder '${2:-}'"
    halt "$2"
    run "$2" "$(cat "$2/port")" ;;
stop)
    [ $# -ge 2 ] || die "stop: which folder?"
    halt "$2"
    rm -rf "$2" ;;
*)
    sed -n '2,18s/^# \{0,1\}//p' "$0" >&2
    exit 2 ;;
esac
