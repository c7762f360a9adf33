#!/usr/bin/env bash
# Benchmark tasker against just and make, side by side, in one run.
#
#   bench/run.sh [foundation|concurrency|output|paired|all]   (default: all)
#
# Prints a markdown report: per section, a table of medians, ratios and the
# targets, then the reason for every n/a row. A peer that is not installed
# is skipped with a note; a tasker feature that does not work yet shows as
# n/a. Nothing here fails the script except bad usage.
#
# Environment:
#   TASKER=PATH              binary to time (default: target/release/tasker,
#                            built with `cargo build --release` if missing or
#                            older than the sources)
#   BENCH_HARNESS=hyperfine|builtin
#                            timing engine (default: hyperfine when installed,
#                            else bench/timeit.py)
#   BENCH_MIN_TIME=2         seconds to spend per measurement (builtin engine)
#   BENCH_OUTPUT_SIZE=1G     output section volume (head -c syntax: 64M, 1G)
#   BENCH_OUTPUT_RUNS=3      timed runs per output case
#   BENCH_ROUNDS=1           multiplies the rounds of the paired section
#   BENCH_JUST, BENCH_MAKE   peer binaries (default: just and make on PATH;
#                            a pyenv shim for just is resolved to the binary)
#
# Needs bash, python3 (standard library only) and coreutils. Generated files
# live in a temporary directory removed on exit.

set -uo pipefail

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

section=${1:-all}
case $section in
    foundation | concurrency | output | paired | all) ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tasker-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
results=$tmp/results.jsonl
: >"$results"

have() { command -v "$1" >/dev/null 2>&1; }
note() { printf '> %s\n\n' "$*"; }
log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- setup

if ! have python3; then
    echo "bench/run.sh: python3 is required" >&2
    exit 2
fi

tasker=${TASKER:-$root/target/release/tasker}
if [ -z "${TASKER:-}" ]; then
    stale=""
    if [ -x "$tasker" ]; then
        stale=$(cd "$root" && find src Cargo.toml Cargo.lock -newer "$tasker" 2>/dev/null | head -n 1)
    fi
    if [ ! -x "$tasker" ] || [ -n "$stale" ]; then
        log "building tasker: cargo build --release (in $root)"
        if ! (cd "$root" && cargo build --release >&2); then
            log "cargo build --release failed; tasker rows will show n/a"
        fi
    fi
fi

engine=builtin
if [ "${BENCH_HARNESS:-}" = hyperfine ] || { [ -z "${BENCH_HARNESS:-}" ] && have hyperfine; }; then
    if have hyperfine && hyperfine -N --runs 2 --style none true >/dev/null 2>&1; then
        engine=hyperfine
    else
        log "hyperfine missing or too old for -N; using bench/timeit.py"
    fi
fi

# peers (BENCH_JUST=/path/to/just, BENCH_MAKE=... pick other binaries)
have_just=false
have_make=false
just=${BENCH_JUST:-$(command -v just || true)}
case $just in
    */shims/*) # a pyenv (or similar) shim is a script: time the real binary
        just=$(pyenv which just 2>/dev/null || echo "$just") ;;
esac
make=${BENCH_MAKE:-make}
[ -n "$just" ] && have "$just" && have_just=true
have "$make" && have_make=true

cur=""
# bench CASE TOOL [timeit options] -- CMD...: time CMD, record the median
bench() {
    local case=$1 tool=$2
    shift 2
    python3 "$here/timeit.py" --engine "$engine" --record "$results" \
        --section "$cur" --case "$case" --tool "$tool" "$@" >/dev/null
}
# rss CASE TOOL [timeit options] -- CMD...: record the peak RSS of one run
rss() {
    local case=$1 tool=$2
    shift 2
    python3 "$here/timeit.py" --rss --record "$results" \
        --section "$cur" --case "$case" --tool "$tool" "$@" >/dev/null
}
peers_note() {
    $have_just || note "just is not installed: its column is skipped"
    $have_make || note "make is not installed: its column is skipped"
    [ -x "$tasker" ] || note "no tasker binary at $tasker: tasker rows show n/a"
}
report() {
    python3 "$here/report.py" "$results" "$cur" "$@"
    echo
}

# head -c style size (1G, 64M, 512K, 1000) -> bytes
to_bytes() {
    local s=$1 n mult=1
    case $s in
        *[kK]) n=${s%?}; mult=1024 ;;
        *[mM]) n=${s%?}; mult=$((1024 * 1024)) ;;
        *[gG]) n=${s%?}; mult=$((1024 * 1024 * 1024)) ;;
        *) n=$s ;;
    esac
    case $n in
        '' | *[!0-9]*) return 1 ;;
    esac
    echo $((n * mult))
}

# ---------------------------------------------------------------- header

echo "# tasker benchmarks"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(uname -srm), $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') CPUs"
echo "- tasker: $("$tasker" --version 2>/dev/null | head -n 1 || echo "not available") ($tasker$(
    cd "$root" && git rev-parse --short HEAD 2>/dev/null | sed 's/^/, commit /'
))"
if $have_just; then echo "- just: $("$just" --version 2>/dev/null | head -n 1)"; else echo "- just: not installed"; fi
if $have_make; then echo "- make: $("$make" --version 2>/dev/null | head -n 1)"; else echo "- make: not installed"; fi
if [ "$engine" = hyperfine ]; then
    echo "- harness: $(hyperfine --version | head -n 1) (-N, no shell)"
else
    echo "- harness: bench/timeit.py (posix_spawn, no shell; median of >= 10 runs over >= ${BENCH_MIN_TIME:-2} s)"
fi
echo "- all commands run with stdin from /dev/null and stdout to /dev/null"
echo

# ---------------------------------------------------------------- foundation

foundation() {
    cur=foundation
    echo "## foundation: startup, listing, one trivial task"
    echo
    peers_note
    log "== foundation"

    local d=$tmp/list20
    mkdir -p "$d"
    python3 "$here/gen.py" list 20 "$d" >/dev/null
    bench list20 tasker -- "$tasker" -f "$d/tasks.toml" -l
    $have_just && bench list20 just -- "$just" --justfile "$d/justfile" --list

    d=$tmp/one
    mkdir -p "$d"
    python3 "$here/gen.py" one "$d"
    bench floor sh -- sh -c true
    bench one tasker -- "$tasker" -f "$d/tasks.toml" t
    $have_just && bench one just -- "$just" --justfile "$d/justfile" t
    $have_make && bench one make -- "$make" --no-print-directory -f "$d/Makefile" t

    d=$tmp/chain
    mkdir -p "$d"
    python3 "$here/gen.py" chain "$d"
    bench chain tasker -- "$tasker" -f "$d/tasks.toml" a b c
    $have_just && bench chain just -- "$just" --justfile "$d/justfile" a b c
    $have_make && bench chain make -- "$make" --no-print-directory -f "$d/Makefile" a b c

    d=$tmp/mib
    mkdir -p "$d"
    python3 "$here/gen.py" mib "$d"
    bench mib tasker -- "$tasker" -f "$d/tasks.toml" t
    $have_just && bench mib just -- "$just" --justfile "$d/justfile" t
    $have_make && bench mib make -- "$make" --no-print-directory -f "$d/Makefile" t

    d=$tmp/list5000
    mkdir -p "$d"
    local last
    last=$(python3 "$here/gen.py" list 5000 "$d")
    bench list5000 tasker -- "$tasker" -f "$d/tasks.toml" -l
    $have_just && bench list5000 just -- "$just" --justfile "$d/justfile" --list
    bench run5000 tasker -- "$tasker" -f "$d/tasks.toml" "$last"
    $have_just && bench run5000 just -- "$just" --justfile "$d/justfile" "$last"
    $have_make && bench run5000 make -- "$make" --no-print-directory -f "$d/Makefile" "$last"

    # The same 5,000 tasks split over 50 included files.
    d=$tmp/split5000
    mkdir -p "$d"
    last=$(python3 "$here/gen.py" split 5000 50 "$d")
    bench list5000x50 tasker -- "$tasker" -f "$d/tasks.toml" -l
    bench run5000x50 tasker -- "$tasker" -f "$d/tasks.toml" "$last"

    report
}

# ---------------------------------------------------------------- concurrency

concurrency() {
    cur=concurrency
    echo "## concurrency: one task depending on N independent \`true\` tasks, 2 jobs"
    echo
    peers_note
    $have_just && note "just has no -j: its column runs \`[parallel]\` deps with just's own limit (needs just >= 1.42)"
    log "== concurrency"

    local n d
    for n in 200 1000; do
        d=$tmp/fan$n
        mkdir -p "$d"
        python3 "$here/gen.py" fanout "$n" "$d"
        bench "fan$n" tasker --min-runs 5 --warmup 1 -- "$tasker" -f "$d/tasks.toml" -j2 all
        $have_make && bench "fan$n" make --min-runs 5 --warmup 1 -- \
            "$make" --no-print-directory -j2 -f "$d/Makefile" all
        $have_just && bench "fan$n" just --min-runs 5 --warmup 1 -- "$just" --justfile "$d/justfile" all
    done
    rss rss1000 tasker -- "$tasker" -f "$tmp/fan1000/tasks.toml" -j2 all

    report
}

# ---------------------------------------------------------------- output

output() {
    cur=output
    local size=${BENCH_OUTPUT_SIZE:-1G} bytes
    if ! bytes=$(to_bytes "$size"); then
        echo "bench/run.sh: BENCH_OUTPUT_SIZE=$size is not a size like 1G, 64M or 1000" >&2
        return 0
    fi
    echo "## output: $size ($bytes bytes) of 100-byte lines through tasker"
    echo
    [ -x "$tasker" ] || note "no tasker binary at $tasker: tasker rows show n/a"
    log "== output ($size)"

    local d=$tmp/output runs=${BENCH_OUTPUT_RUNS:-3}
    mkdir -p "$d"
    python3 "$here/gen.py" output "$d"
    export BENCH_BYTES=$bytes
    # the preflight run (which also checks that the command works) is small
    local opts=(--runs "$runs" --warmup 0 --preflight-env BENCH_BYTES=65536)

    if bench producer sh "${opts[@]}" -- sh "$d/producer.sh"; then
        rss producer sh --no-preflight -- sh "$d/producer.sh"
    fi
    # the same bytes through `cat`: what any program reading them in the
    # middle costs on this machine (a pipe hop, a copy, context switches)
    if bench relay sh "${opts[@]}" -- sh -c "sh '$d/producer.sh' | cat"; then
        rss relay sh --no-preflight -- sh -c "sh '$d/producer.sh' | cat"
    fi
    if bench plain tasker "${opts[@]}" -- "$tasker" -f "$d/plain.toml" out; then
        rss plain tasker --no-preflight -- "$tasker" -f "$d/plain.toml" out
    fi
    if bench failon tasker "${opts[@]}" -- "$tasker" -f "$d/failon.toml" out; then
        rss failon tasker --no-preflight -- "$tasker" -f "$d/failon.toml" out
    fi
    if bench prefixed tasker "${opts[@]}" -- "$tasker" -f "$d/plain.toml" --output prefixed out; then
        rss prefixed tasker --no-preflight -- "$tasker" -f "$d/plain.toml" --output prefixed out
    fi

    # a cheap correctness check: does every byte come through?
    local small=1000000 got
    if [ -x "$tasker" ]; then
        got=$(BENCH_BYTES=$small "$tasker" -f "$d/plain.toml" out 2>/dev/null | wc -c)
        [ "$got" -eq "$small" ] || note "check: (a) passed $got of $small bytes through"
        got=$(BENCH_BYTES=$small "$tasker" -f "$d/failon.toml" out 2>/dev/null | wc -c)
        [ "$got" -eq "$small" ] || note "check: (b) passed $got of $small bytes through"
        got=$(BENCH_BYTES=$small "$tasker" -f "$d/plain.toml" --output prefixed out 2>/dev/null | wc -c)
        [ "$got" -ge "$small" ] || note "check: (c) passed $got bytes, expected at least $small"
    fi
    unset BENCH_BYTES

    report --bytes "$bytes"
}

# ---------------------------------------------------------------- paired

# The cases compared with make, timed in turn (bench/paired.py): one run of
# tasker, one of make, round after round, so that a machine whose speed
# drifts slows both alike. BENCH_ROUNDS scales the rounds (default 1).
paired() {
    echo "## paired: tasker and make in turn"
    echo
    if ! $have_make || [ ! -x "$tasker" ]; then
        note "needs make and a tasker binary"
        return
    fi
    log "== paired"
    local k=${BENCH_ROUNDS:-1} d last
    pair() { python3 "$here/paired.py" "$@"; }
    d=$tmp/p-one
    mkdir -p "$d"
    python3 "$here/gen.py" one "$d"
    pair --header --rounds $((300 * k)) "one-step \`true\` task" \
        -- tasker "$tasker" -f "$d/tasks.toml" t \
        -- make "$make" --no-print-directory -f "$d/Makefile" t
    d=$tmp/p-chain
    mkdir -p "$d"
    python3 "$here/gen.py" chain "$d"
    pair --rounds $((300 * k)) "chain \`a b c\`" \
        -- tasker "$tasker" -f "$d/tasks.toml" a b c \
        -- make "$make" --no-print-directory -f "$d/Makefile" a b c
    d=$tmp/p-mib
    mkdir -p "$d"
    python3 "$here/gen.py" mib "$d"
    pair --rounds $((300 * k)) "1 MiB to an inherited stdout" \
        -- tasker "$tasker" -f "$d/tasks.toml" t \
        -- make "$make" --no-print-directory -f "$d/Makefile" t
    d=$tmp/p-list5000
    mkdir -p "$d"
    last=$(python3 "$here/gen.py" list 5000 "$d")
    pair --rounds $((100 * k)) "run the last of 5,000 tasks" \
        -- tasker "$tasker" -f "$d/tasks.toml" "$last" \
        -- make "$make" --no-print-directory -f "$d/Makefile" "$last"
    local n
    for n in 200 1000; do
        d=$tmp/p-fan$n
        mkdir -p "$d"
        python3 "$here/gen.py" fanout "$n" "$d"
        pair --rounds $(((n == 200 ? 40 : 10) * k)) "$n deps, \`-j2\`" \
            -- tasker "$tasker" -f "$d/tasks.toml" -j2 all \
            -- make "$make" --no-print-directory -j2 -f "$d/Makefile" all
    done
    # extract against fail_on over the same 256 MiB of lines: both search
    # a block of lines at once and cut lines only where a pattern matches
    d=$tmp/p-output
    mkdir -p "$d"
    python3 "$here/gen.py" output "$d"
    BENCH_BYTES=$((256 * 1024 * 1024)) pair --rounds $((10 * k)) "\`extract\` over 256 MiB of lines" \
        -- extract "$tasker" -f "$d/extract.toml" out \
        -- fail_on "$tasker" -f "$d/failon.toml" out
    echo
}

case $section in
    foundation) foundation ;;
    concurrency) concurrency ;;
    output) output ;;
    paired) paired ;;
    all)
        foundation
        concurrency
        output
        paired
        ;;
esac
exit 0
