#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/bench.sh - weft's benchmarks side by side with their Go twins.
#
#   ./tools/bench.sh [--rounds K] [--only NAME[,NAME...]] [--record]
#   ./tools/bench.sh --instr [--only NAME[,NAME...]]
#   ./tools/bench.sh --http [--rounds K]
#
#   --rounds K   runs of each program (default 3).  The weft program and its
#                Go twin take turns (weft, Go, weft, Go, ...); the table shows
#                the median of each side.
#   --only NAME  run only these workloads (comma separated, repeatable).
#   --record     also write docs/BENCHMARKS.md: the machine, the command, the
#                date and the table.  That file is generated: rerun
#                `./tools/bench.sh --record` instead of editing figures.
#                Notes explaining results (perf stat, callgrind) belong in
#                docs/BENCHMARKS.notes.md, which is appended verbatim.
#                The record also counts instructions as --instr does.
#   --instr      instead of timing, count instructions per operation of the
#                switch-bound workloads (`make bench-instr`): each program
#                runs under valgrind's callgrind at N and at 2N, and
#                (I(2N) - I(N)) / N cancels start-up and teardown.  One
#                worker and two; every count is taken twice and the spread
#                between the two is shown (on a noisy machine wall-clock
#                figures move by 15-25%, these by well under 0.5%).
#   --http       the http row alone (same as --only http): weft's example
#                server, bench/http_epoll (the hand-written epoll ceiling)
#                and Go's net/http take turns under the same wrk load.
#                Each run restarts its server; for a ratio the machine's
#                load moves less, tools/http-alternate.sh keeps the servers
#                up and alternates short windows.
#
# `make bench` builds weft and its bench programs, then runs this script with
# no options.  The script builds only the Go twins (bench/go/<name>), once per
# invocation, offline, into build/bench/go with Go's cache under build/.
#
# Environment:
#   WEFT_PROCS     worker threads for weft and GOMAXPROCS for Go (default: nproc)
#   BENCH_TIMEOUT  seconds one run may take before it counts as failed (600)
#   BENCH_HTTP_PORT  port for the http row (18080)
#   BENCH_HTTP_SYSCALLS  1: each http run also counts the server's system
#                  calls per request (perf stat on the syscall tracepoints;
#                  unlike requests/s these do not move with the machine's load)
#   GO             the go command (go)
#   VALGRIND       the valgrind command for --instr (valgrind)
#
# Each program prints `<name> <N> <value> [key=value ...]` and checks its own
# result.  A run that fails its check, crashes or times out shows as FAIL and
# makes the script exit 1.  Without `go` (or `wrk`) the weft side still runs.
#
# The http row runs only when build/examples/http_server, bench/go/http and
# wrk all exist.  The servers take the port as their only argument and
# answer GET /; `wrk -t2 -c1000 -d5s` measures requests/s.  When
# build/bench/http_epoll exists it takes its turn too, and a second table
# gives weft's requests/s as a fraction of that ceiling.
#
# yield_1p is the yield program with one worker on both sides (WEFT_PROCS =
# GOMAXPROCS = 1): with two workers each yielder has a worker to itself and
# weft_yield returns at once, so only this row times a real switch.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
COMMAND="./tools/bench.sh${*:+ $*}"
PROCS=${WEFT_PROCS:-$(nproc)}
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
TIMEOUT=${BENCH_TIMEOUT:-600}
HTTP_PORT=${BENCH_HTTP_PORT:-18080}
HTTP_SYSCALLS=${BENCH_HTTP_SYSCALLS:-0}
GO=${GO:-go}
VALGRIND=${VALGRIND:-valgrind}
ROUNDS=3
ONLY=""
RECORD=0
INSTR_ONLY=0
INSTALL_HINT="apt-get install golang-go wrk"

# name | unit | target (ratio weft/Go unless "abs"; "min" means higher wins)
WORKLOADS="
spawn       ns/goroutine  ratio<=0.30
yield       ns/yield      ratio<=0.25
yield_1p    ns/yield      ratio<=0.30
pingpong    ns/roundtrip  ratio<=0.40
ring        ns/hop        ratio<=0.40
select      ns/select     ratio<=0.40
chan_spsc   ns/item       ratio<=0.80
chan_mpmc   ns/item       ratio<=0.80
skynet      ns/leaf       ratio<=0.50
skynet_rss  peak_MiB      ratio<=1.00
sieve       ns/prime      ratio<=0.60
idle_mem    bytes/g       abs<=4400
http        requests/s    ratio>=1.0
"

# The switch-bound programs --instr counts, each with its N (2N runs too):
# large enough that the difference dwarfs the jitter of start-up, small
# enough that a callgrind run takes seconds.
INSTR_WORKLOADS="
spawn       100000
yield       400000
pingpong    100000
ring        200000
select      100000
chan_spsc   400000
chan_mpmc   200000
"

# What the epoll ceiling's ratio has to reach (weft / epoll requests/s).
HTTP_CEILING_TARGET=0.95

die() {
    echo "bench.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --rounds)
        [ $# -ge 2 ] || die "--rounds needs a number"
        ROUNDS=$2
        shift 2
        ;;
    --only)
        [ $# -ge 2 ] || die "--only needs a name"
        ONLY="$ONLY ${2//,/ }"
        shift 2
        ;;
    --record)
        RECORD=1
        shift
        ;;
    --instr)
        INSTR_ONLY=1
        shift
        ;;
    --http)
        ONLY="$ONLY http"
        shift
        ;;
    -h | --help)
        sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
case $ROUNDS in
'' | *[!0-9]* | 0) die "--rounds wants a positive integer" ;;
esac
[ $INSTR_ONLY = 1 ] && [ $RECORD = 1 ] &&
    die "--record counts instructions too; give it without --instr"

# The rows to run: skynet_rss comes from skynet's output, not a program.
programs() {
    echo "$WORKLOADS" | awk 'NF && $1 != "skynet_rss" {print $1}'
}
for name in $ONLY; do
    programs | grep -qx "$name" || die "unknown workload $name"
done

# The program behind row $1, and the workers it runs with.
program_of() {
    echo "${1%_1p}"
}
procs_of() {
    case $1 in *_1p) echo 1 ;; *) echo "$PROCS" ;; esac
}

selected() {
    [ -z "$ONLY" ] && return 0
    case " $ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}

export WEFT_PROCS=$PROCS GOMAXPROCS=$PROCS

HAVE_GO=0
if command -v "$GO" >/dev/null 2>&1; then
    HAVE_GO=1
else
    echo "go not found: install it with '$INSTALL_HINT'; running the weft side only"
fi
HAVE_WRK=0
if command -v wrk >/dev/null 2>&1; then
    HAVE_WRK=1
fi

# Build the Go twin of $1 once; false when it cannot be built.
declare -A GO_BUILT
build_go() {
    local name=$1
    if [ -z "${GO_BUILT[$name]:-}" ]; then
        GO_BUILT[$name]=no
        mkdir -p "$BUILD/bench/go"
        # building from the package's own directory also works for a twin
        # that brings its own go.mod
        if (cd "$ROOT/bench/go/$name" &&
            GOCACHE=$BUILD/go-cache GOPATH=$BUILD/go-path GOFLAGS=-mod=mod \
                GOPROXY=off GO111MODULE=on \
                "$GO" build -o "$BUILD/bench/go/$name" .); then
            GO_BUILT[$name]=yes
        fi
    fi
    [ "${GO_BUILT[$name]}" = yes ]
}

# Results: VALUES[row:side] is a list of numbers, one per round, or FAIL.
declare -A VALUES
add_value() {
    VALUES[$1:$2]="${VALUES[$1:$2]:-} $3"
}

# Run row $2's program on side $1 (weft or go) once and record its figures.
run_bench() {
    local side=$1 name=$2 prog bin out line procs
    prog=$(program_of "$name")
    procs=$(procs_of "$name")
    if [ "$side" = weft ]; then bin=$BUILD/bench/$prog; else bin=$BUILD/bench/go/$prog; fi
    if [ ! -x "$bin" ]; then
        echo "  $side $name: $bin missing (run make bench)"
        add_value "$name" "$side" FAIL
        return
    fi
    out=$(WEFT_PROCS=$procs GOMAXPROCS=$procs timeout "$TIMEOUT" "$bin" 2>&1)
    local rc=$?
    line=$(echo "$out" | awk -v n="$prog" '$1 == n' | tail -n 1)
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        if [ $rc -eq 124 ]; then
            echo "  $side $name: FAILED (timed out after ${TIMEOUT}s)"
        else
            echo "  $side $name: FAILED (exit $rc)"
        fi
        [ -n "$out" ] && echo "$out" | tail -n 5 | sed 's/^/    /'
        add_value "$name" "$side" FAIL
        [ "$name" = skynet ] && add_value skynet_rss "$side" FAIL
        return
    fi
    printf '  %-4s %s\n' "$side" "$line"
    add_value "$name" "$side" "$(echo "$line" | awk '{print $3}')"
    if [ "$name" = skynet ]; then
        add_value skynet_rss "$side" \
            "$(echo "$line" | sed -n 's/.*peak_rss_mb=\([0-9.]*\).*/\1/p')"
    fi
}

# Wait until something listens on $HTTP_PORT (5 s at most).
wait_port() {
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# System calls per request of server $1 during the wrk run whose output is
# $2, from the perf stat output in file $3 (BENCH_HTTP_SYSCALLS=1).
print_syscalls() {
    local req
    req=$(echo "$2" | awk '/requests in/ {print $1}')
    [ -n "$req" ] && [ "$req" -gt 0 ] || return
    awk -F, -v r="$req" '$1 ~ /^[0-9]+$/ && $1 > 0 {
        name = $3; sub(/.*sys_enter_?/, "", name)
        printf "%s%s %.3f", sep, name == "" ? "all" : name, $1 / r; sep = ", "
    } END { print "" }' "$3" | sed 's/^/    syscalls\/request: /'
}

# One wrk run against server binary $2 of side $1.
run_http() {
    local side=$1 bin=$2 pid out rps perf_pid="" perf_out=""
    ulimit -n "$(ulimit -Hn)" 2>/dev/null
    "$bin" "$HTTP_PORT" >/dev/null 2>&1 &
    pid=$!
    if wait_port; then
        if [ "$HTTP_SYSCALLS" = 1 ]; then
            perf_out=$(mktemp)
            perf stat -x, -o "$perf_out" -p "$pid" -e \
                raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait2,syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield \
                2>/dev/null &
            perf_pid=$!
            sleep 0.2 # attached before the first request
        fi
        out=$(wrk -t2 -c1000 -d5s "http://127.0.0.1:$HTTP_PORT/" 2>&1)
    else
        out="server did not listen on port $HTTP_PORT"
    fi
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null
        wait "$perf_pid" 2>/dev/null
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    if [ -z "$rps" ] || echo "$out" | grep -q "Non-2xx"; then
        echo "  $side http: FAILED"
        echo "$out" | tail -n 5 | sed 's/^/    /'
        add_value http "$side" FAIL
        return
    fi
    printf '  %-4s http 1000conns %s requests/s\n' "$side" "$rps"
    if [ -n "$perf_out" ]; then
        print_syscalls "$side" "$out" "$perf_out"
        rm -f "$perf_out"
    fi
    add_value http "$side" "$rps"
}

http_possible() {
    [ -x "$BUILD/examples/http_server" ] && [ -d "$ROOT/bench/go/http" ]
}

# Run workload $1 for ROUNDS rounds, weft and Go taking turns.
run_workload() {
    local name=$1 go_ok=0
    if [ "$name" = http ]; then
        http_possible || return
        if [ $HAVE_WRK = 0 ]; then
            echo "wrk not found: install it with '$INSTALL_HINT'; skipping http"
            return
        fi
    fi
    [ $HAVE_GO = 1 ] && build_go "$(program_of "$name")" && go_ok=1
    [ $HAVE_GO = 1 ] && [ $go_ok = 0 ] && add_value "$name" go FAIL
    echo "$name:"
    for _ in $(seq "$ROUNDS"); do
        if [ "$name" = http ]; then
            run_http weft "$BUILD/examples/http_server"
            [ -x "$BUILD/bench/http_epoll" ] &&
                run_http epoll "$BUILD/bench/http_epoll"
            [ $go_ok = 1 ] && run_http go "$BUILD/bench/go/http"
        else
            run_bench weft "$name"
            [ $go_ok = 1 ] && run_bench go "$name"
        fi
    done
}

# Median of the numbers in $*, or FAIL if any run failed, or - if none.
median() {
    [ $# -eq 0 ] && { echo -; return; }
    case " $* " in *" FAIL "*) echo FAIL; return ;; esac
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1}
        END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
             printf "%.1f\n", m}'
}

is_number() {
    case $1 in '' | - | FAIL) return 1 ;; esac
    return 0
}

# "yes"/"no" for weft figure $1, Go figure $2, ratio $3 against target $4.
target_met() {
    local weft=$1 ratio=$3 kind=${4%%[<>]=*} op limit
    op=${4:${#kind}:2}
    limit=${4#*=}
    local x=$ratio
    [ "$kind" = abs ] && x=$weft
    if ! is_number "$x"; then
        echo "?"
        return
    fi
    awk -v x="$x" -v l="$limit" -v op="$op" \
        'BEGIN {print ((op == "<=" ? x <= l : x >= l) ? "yes" : "no")}'
}

# ratio<=0.30 -> "<= 0.30", abs<=4400 -> "<= 4400 abs"
show_target() {
    echo "$1" | sed 's/^ratio//; s/^abs\(.*\)/\1 abs/; s/\([<>]=\)/\1 /'
}

# ---- instructions per operation (--instr) ------------------------------

# INSTR[name:workers] is the instructions per operation, the mean of the
# runs; INSTR_RUNS[name:workers] every run's figure; FAIL when one failed.
declare -A INSTR=() INSTR_RUNS=()
INSTR_REPEAT=2

# Instructions callgrind counts for program $2 at N = $3 with $1 workers
# (every thread's, start-up included); nothing when the run fails.
# --fair-sched: valgrind runs one thread at a time, and with its default
# lock a spinning worker could take the CPU straight back.
callgrind_total() {
    local out
    out=$(WEFT_PROCS=$1 timeout "$TIMEOUT" "$VALGRIND" --tool=callgrind \
        --fair-sched=yes --callgrind-out-file=/dev/null \
        "$BUILD/bench/$2" "$3" 2>&1) || return 1
    echo "$out" | awk '$2 == "Collected" && $3 == ":" {print $4}'
}

# (I(2N) - I(N)) / N for program $2 at N = $3 with $1 workers.
instr_per_op() {
    local a b
    a=$(callgrind_total "$1" "$2" "$3") || return 1
    b=$(callgrind_total "$1" "$2" $(($3 * 2))) || return 1
    [ -n "$a" ] && [ -n "$b" ] || return 1
    awk -v a="$a" -v b="$b" -v n="$3" 'BEGIN {printf "%.1f\n", (b - a) / n}'
}

# Spread of the figures in $* as a percentage of their mean.
spread() {
    printf '%s\n' "$@" | awk '{v[NR] = $1; s += $1}
        NR == 1 || $1 < lo {lo = $1} NR == 1 || $1 > hi {hi = $1}
        END {printf "%.2f\n", s ? 100 * (hi - lo) / (s / NR) : 0}'
}

run_instr() {
    local name=$1 n=$2 workers x runs
    for workers in 1 2; do
        runs=""
        for _ in $(seq $INSTR_REPEAT); do
            x=$(instr_per_op $workers "$name" "$n") || x=FAIL
            runs="$runs $x"
        done
        INSTR_RUNS[$name:$workers]=$runs
        case "$runs " in
        *FAIL*)
            INSTR[$name:$workers]=FAIL
            echo "  instr $name, $workers worker(s): FAILED (runs:$runs)"
            ;;
        *)
            # shellcheck disable=SC2086 # the list is meant to split
            INSTR[$name:$workers]=$(printf '%s\n' $runs |
                awk '{s += $1} END {printf "%.0f\n", s / NR}')
            # shellcheck disable=SC2086
            printf '  instr %-9s %d worker(s): %s instr/op (runs:%s, spread %s%%)\n' \
                "$name" $workers "${INSTR[$name:$workers]}" "$runs" "$(spread $runs)"
            ;;
        esac
    done
}

instr_possible() {
    command -v "$VALGRIND" >/dev/null 2>&1 && return 0
    echo "valgrind not found: install it with 'apt-get install valgrind'" \
        "to count instructions"
    return 1
}

run_all_instr() {
    local name n
    echo "instructions per operation (callgrind, N and 2N, each twice;" \
        "$(build_mode)):"
    while read -r name n; do
        [ -n "$name" ] || continue
        selected "$name" || selected "${name}_1p" || continue
        run_instr "$name" "$n"
    done <<<"$INSTR_WORKLOADS"
}

instr_table() {
    local name n
    echo "| workload   |      N | instr/op, 1 worker | spread | instr/op, 2 workers | spread |"
    echo "|------------|-------:|-------------------:|-------:|--------------------:|-------:|"
    while read -r name n; do
        [ -n "${INSTR[$name:1]:-}" ] || continue
        # shellcheck disable=SC2086 # the lists are meant to split
        printf '| %-10s | %6s | %18s | %5s%% | %19s | %5s%% |\n' "$name" "$n" \
            "${INSTR[$name:1]}" "$(spread ${INSTR_RUNS[$name:1]})" \
            "${INSTR[$name:2]}" "$(spread ${INSTR_RUNS[$name:2]})"
    done <<<"$INSTR_WORKLOADS"
}

FAILED=0
table() {
    local name unit target weft go ratio met instr=0 extra=""
    [ ${#INSTR[@]} -gt 0 ] && instr=1
    [ $instr = 1 ] && extra=" instr/op 1w | instr/op 2w |"
    printf '| %-10s | %-12s | %10s | %10s | %7s | %-11s | %-3s |%s\n' \
        workload unit weft Go weft/Go target met "$extra"
    [ $instr = 1 ] && extra="------------:|------------:|"
    printf '|%s|%s|%s|%s|%s|%s|%s|%s\n' "------------" "--------------" \
        "-----------:" "-----------:" "--------:" "-------------" "-----" "$extra"
    echo "$WORKLOADS" | while read -r name unit target; do
        [ -n "$name" ] || continue
        [ -n "${VALUES[$name:weft]:-}" ] || continue
        # shellcheck disable=SC2086 # the lists are meant to split
        weft=$(median ${VALUES[$name:weft]})
        # shellcheck disable=SC2086
        go=$(median ${VALUES[$name:go]:-})
        ratio=-
        if is_number "$weft" && is_number "$go"; then
            ratio=$(awk -v a="$weft" -v b="$go" 'BEGIN {
                if (b > 0) printf "%.2f", a / b; else print "-" }')
        fi
        met=$(target_met "$weft" "$go" "$ratio" "$target")
        extra=""
        [ $instr = 1 ] && extra=$(printf ' %11s | %11s |' \
            "${INSTR[$name:1]:--}" "${INSTR[$name:2]:--}")
        printf '| %-10s | %-12s | %10s | %10s | %7s | %-11s | %-3s |%s\n' \
            "$name" "$unit" "$weft" "$go" "$ratio" "$(show_target "$target")" \
            "$met" "$extra"
    done
}

# weft's example server against the epoll loop of bench/http_epoll.c.
http_ceiling_table() {
    local mine epoll ratio=- met ours=http:weft ceiling=http:epoll
    [ -n "${VALUES[$ceiling]:-}" ] || return 0
    # shellcheck disable=SC2086 # the lists are meant to split
    mine=$(median ${VALUES[$ours]})
    # shellcheck disable=SC2086
    epoll=$(median ${VALUES[$ceiling]})
    if is_number "$mine" && is_number "$epoll"; then
        ratio=$(awk -v a="$mine" -v b="$epoll" 'BEGIN {printf "%.2f", a / b}')
    fi
    met=$(target_met "$mine" "$epoll" "$ratio" "ratio>=$HTTP_CEILING_TARGET")
    echo "| http       | weft req/s | epoll req/s | weft/epoll | target  | met |"
    echo "|------------|-----------:|------------:|-----------:|---------|-----|"
    printf '| %-10s | %10s | %11s | %10s | >= %-4s | %-3s |\n' http "$mine" \
        "$epoll" "$ratio" "$HTTP_CEILING_TARGET" "$met"
}

# How the library was compiled: one translation unit (WEFT_UNITY, the
# default) or one object per file; the instruction counts differ.
build_mode() {
    if [ -f "$BUILD/weft_unity.c" ] &&
        ! grep -q '^WEFT_UNITY:BOOL=OFF' "$BUILD/CMakeCache.txt" 2>/dev/null; then
        echo "libweft as one translation unit"
    else
        echo "libweft one object per source file"
    fi
}

machine() {
    local cc
    cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
    echo "- CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "- Cores: $(nproc) usable, $(getconf _NPROCESSORS_ONLN) online;" \
        "WEFT_PROCS = GOMAXPROCS = $PROCS"
    echo "- Kernel: $(uname -srm)"
    echo "- Load average when the run started: $LOAD_AT_START" \
        "(other work on the machine makes the figures noisy)"
    echo "- Compiler: $("${cc:-gcc}" --version 2>/dev/null | head -n 1)"
    if [ $HAVE_GO = 1 ]; then
        echo "- Go: $("$GO" version)"
    else
        echo "- Go: not installed"
    fi
    echo "- weft: $(git -C "$ROOT" describe --always --dirty 2>/dev/null ||
        echo unknown) (build type $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' \
            "$BUILD/CMakeCache.txt" 2>/dev/null), $(build_mode))"
}

all_rounds() {
    local key
    for key in "${!VALUES[@]}"; do
        echo "- $key:${VALUES[$key]}"
    done | sort
}

record() {
    local doc=$ROOT/docs/BENCHMARKS.md notes=$ROOT/docs/BENCHMARKS.notes.md
    mkdir -p "$ROOT/docs"
    {
        echo "# weft benchmarks"
        echo
        echo "Generated by \`tools/bench.sh\`; do not edit by hand, rerun:"
        echo
        echo "    $COMMAND"
        echo
        echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "## Machine"
        echo
        machine
        echo
        echo "## Results"
        echo
        echo "Median of $ROUNDS rounds; weft and Go took turns. Times are"
        echo "nanoseconds per operation (lower is better), idle_mem is resident"
        echo "bytes per blocked goroutine, skynet_rss the peak RSS of skynet,"
        echo "http requests per second (higher is better). The workloads are"
        echo "described at the top of each bench/<name>.c; bench/go/<name> is"
        echo "its Go twin doing the same work. yield_1p is yield with one"
        echo "worker on both sides (WEFT_PROCS = GOMAXPROCS = 1): with more,"
        echo "each yielder has a worker to itself and weft_yield returns at"
        echo "once, so only yield_1p times a real switch."
        echo
        table
        if [ ${#INSTR[@]} -gt 0 ]; then
            echo
            echo "instr/op is the instructions per operation callgrind counts"
            echo "(\`./tools/bench.sh --instr\`: (I(2N) - I(N)) / N, every thread's"
            echo "instructions), with one worker and with two; it does not move"
            echo "with the machine's load, so it judges a change where the times"
            echo "cannot (yield's two-worker figure is the no-op). Each count"
            echo "was taken $INSTR_REPEAT times; spread is their difference:"
            echo
            instr_table
        fi
        if [ -n "${VALUES[http:epoll]:-}" ]; then
            echo
            echo "The example server against the hand-written epoll loop of"
            echo "bench/http_epoll.c (one thread per core), same wrk load, turns"
            echo "taken in the same run:"
            echo
            http_ceiling_table
        fi
        echo
        echo "## Every round"
        echo
        all_rounds
        if [ -f "$notes" ]; then
            echo
            cat "$notes"
        fi
    } >"$doc.tmp" && mv "$doc.tmp" "$doc"
    echo "wrote $doc"
}

if [ $INSTR_ONLY = 1 ]; then
    instr_possible || exit 2
    run_all_instr
    [ ${#INSTR[@]} -gt 0 ] || die "--only names no workload --instr counts"
    echo
    instr_table
    case " ${INSTR[*]} " in *" FAIL "*) exit 1 ;; esac
    exit 0
fi

for name in $(programs); do
    selected "$name" && run_workload "$name"
done
[ $RECORD = 1 ] && instr_possible && run_all_instr

echo
table
echo
http_ceiling_table
for key in "${!VALUES[@]}"; do
    case ${VALUES[$key]} in *FAIL*) FAILED=1 ;; esac
done
case " ${INSTR[*]} " in *" FAIL "*) FAILED=1 ;; esac
[ $RECORD = 1 ] && record
exit $FAILED
