#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/http-alternate.sh - HTTP servers' requests/s side by side, in short
# alternating windows.
#
#   ./tools/http-alternate.sh [--rounds K] [--secs S] SERVER...
#
# Each SERVER is a program that takes the port as its only argument and
# answers GET / (build/bench/http_epoll, build/examples/http_server,
# build/bench/go/http).  Every server starts once and stays up; each round
# runs `wrk -t2 -c1000 -dS` against each in turn.  On a shared VM the
# load moves by 15-25% within seconds, and `./tools/bench.sh --http`, which
# restarts the servers for 5 s runs, saw one pair's ratio swing between
# 0.71 and 1.07 from round to round; short windows in many rounds put that
# load on all servers alike.
#
# Per round: each server's requests/s and its CPU time per request
# (utime + stime from /proc/PID/stat, in µs).  At the end, per server: the
# mean and median requests/s, the mean CPU per request, and the mean over
# the rounds of its requests/s divided by the first server's in the same
# round, with the number of rounds it beat the first.  So for weft against
# the epoll ceiling, name the epoll loop first.
#
# Defaults: 10 rounds of 2 s.  Ports 18300 upwards.  Needs wrk.

set -u

ROUNDS=10
SECS=2
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    -*) echo "usage: $0 [--rounds K] [--secs S] SERVER..." >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--rounds K] [--secs S] SERVER..." >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null

pids=()
ports=()
stop() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop EXIT

port=18300
for server in "$@"; do
    port=$((port + 1))
    "$server" "$port" >/dev/null 2>&1 &
    pids+=($!)
    ports+=("$port")
done
for port in "${ports[@]}"; do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

printf 'machine: %s, %s cores; load at start: %s\n' \
    "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'command: %s --rounds %s --secs %s %s\n' "$0" "$ROUNDS" "$SECS" "$*"
results=$(mktemp)
for round in $(seq "$ROUNDS"); do
    line="round $round:"
    for i in "${!ports[@]}"; do
        c0=$(cpu_ticks "${pids[$i]}")
        out=$(wrk -t2 -c1000 -d"${SECS}s" "http://127.0.0.1:${ports[$i]}/" 2>&1)
        c1=$(cpu_ticks "${pids[$i]}")
        rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
        req=$(echo "$out" | awk '/requests in/ {print $1}')
        if [ -z "$rps" ] || [ -z "$req" ] || [ "$req" -eq 0 ] ||
            echo "$out" | grep -q "Non-2xx"; then
            echo "server $((i + 1)) (${*:$((i + 1)):1}) failed in round $round:" >&2
            echo "$out" | tail -n 5 >&2
            exit 1
        fi
        us=$(awk -v a="$c0" -v b="$c1" -v r="$req" -v hz="$hz" \
            'BEGIN {printf "%.2f", (b - a) * 1e6 / hz / r}')
        line="$line $rps $us"
        echo "$round $i $rps $us" >>"$results"
    done
    echo "$line"
done

echo
printf '%-28s %12s %12s %10s %12s %6s\n' server "mean req/s" "median" "cpu µs/req" "ratio to 1st" wins
for i in "${!ports[@]}"; do
    name=$(basename "${*:$((i + 1)):1}")
    median=$(awk -v i="$i" '$2 == i {print $3}' "$results" | sort -g |
        awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
    awk -v i="$i" -v name="$name" -v med="$median" '
        $2 == 0 {first[$1] = $3}
        $2 == i {rps[$1] = $3; cpu += $4; sum += $3; k++}
        END {
            for (r in rps) {ratio += rps[r] / first[r]; if (rps[r] > first[r]) wins++}
            printf "%-28s %12.0f %12.0f %10.2f %12.3f %6d\n", name, sum / k, med,
                cpu / k, ratio / k, wins
        }' "$results"
done
rm -f "$results"
