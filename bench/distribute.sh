#!/usr/bin/env bash
# Benchmark running across machines (SPEC 11) on one machine: a local
# redis-server (no persistence) and N local workers, each in a checkout
# directory of its own with a copy of the same tasks.toml.
#
#   bench/distribute.sh
#
# Cases:
#   - overhead per run: a matrix of 200 `true` runs, `tasker -q -jJ many`
#     locally and through the queue (`--queue`, the same -j); the median
#     whole invocation divided by 200, and the difference per run;
#   - throughput: 1 GiB of 100-byte lines (`yes ... | head -c`) from one
#     run, stdout to /dev/null: the producer alone, a local run whose
#     output passes through tasker (`--output prefixed`), and the run on a
#     worker (its output streamed back and printed `[NAME@WORKER]`); GiB/s;
#   - worker death: a worker takes a run and is killed with SIGKILL; the
#     time from the kill to another worker starting the run (the lease
#     expiring, then the next look at leases), median of BENCH_DEATHS.
# Prints a markdown table.
#
# Environment: TASKER (binary; default target/release/tasker, built when
# missing or older than src/), BENCH_WORKERS=4 (slots per worker:
# BENCH_SLOTS=8), BENCH_JOBS=32, BENCH_RUNS=5 (timed invocations per case),
# BENCH_DEATHS=3. Needs redis-server (Debian: apt-get install redis-server).

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
tasker=${TASKER:-$repo/target/release/tasker}
if [[ -z ${TASKER:-} ]] && [[ ! -x $tasker || -n $(find "$repo/src" -newer "$tasker" -print -quit) ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
workers=${BENCH_WORKERS:-4}
slots=${BENCH_SLOTS:-8}
jobs=${BENCH_JOBS:-32}
runs=${BENCH_RUNS:-5}
deaths=${BENCH_DEATHS:-3}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
pids+=($!)
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null; do sleep 0.05; done
export TASKER_QUEUE=redis://127.0.0.1:$port

matrix=$(python3 -c 'print(", ".join(str(i) for i in range(200)))')
line=$(python3 -c 'print("x" * 99)')
cat >tasks.toml <<TOML
[tasks.many]
distribute = true
quiet = true
matrix = { n = [$matrix] }
run = "true"

[tasks.many_local]
quiet = true
matrix = { n = [$matrix] }
run = "true"

[tasks.big]
distribute = true
quiet = true
run = "yes $line | head -c 1073741824"

[tasks.big_local]
quiet = true
run = "yes $line | head -c 1073741824"

[tasks.dies]
distribute = true
quiet = true
retries = 1
run = "date +%s%N > $work/taken-\$MACHINE; [ \$MACHINE = victim ] && sleep 600; true"
TOML

start_worker() { # dir name slots
    mkdir -p "$1"
    cp tasks.toml "$1/"
    (cd "$1" && MACHINE=$2 exec "$tasker" --worker -q --name "$2" -j"$3") &
    pids+=($!)
    last_worker=$!
}

median_ms() { # command... : median wall time of $runs runs, in ms
    python3 "$here/timeit.py" --runs "$runs" --warmup 1 -- "$@" | grep -Eo '[0-9]+(\.[0-9]+)?' | head -1
}

for i in $(seq 1 "$workers"); do start_worker "w$i" "w$i" "$slots"; done
sleep 1

local_many=$(median_ms "$tasker" -q -j"$jobs" many_local)
remote_many=$(median_ms "$tasker" -q -j"$jobs" many)
yes_alone=$(median_ms sh -c "yes $line | head -c 1073741824")
local_big=$(median_ms "$tasker" -q --output prefixed big_local)
remote_big=$(median_ms "$tasker" -q big)

for i in $(seq 1 "$workers"); do kill -TERM "${pids[$i]}"; done
wait "${pids[@]:1}" 2>/dev/null || true
pids=("${pids[0]}")

death=()
for d in $(seq 1 "$deaths"); do
    rm -f taken-*
    start_worker "victim-$d" victim 1
    victim=$last_worker
    sleep 0.5
    "$tasker" -q dies >/dev/null 2>&1 &
    coordinator=$!
    until [[ -s taken-victim ]]; do sleep 0.01; done
    start_worker "heir-$d" heir 1
    heir=$last_worker
    killed=$(date +%s%N)
    kill -9 "$victim"
    wait "$coordinator"
    taken=$(cat taken-heir)
    death+=("$(( (taken - killed) / 1000000 ))")
    kill -TERM "$heir"
    wait "$heir" 2>/dev/null || true
done
death_ms=$(printf '%s\n' "${death[@]}" | sort -n | sed -n "$(( (deaths + 1) / 2 ))p")

python3 - "$local_many" "$remote_many" "$yes_alone" "$local_big" "$remote_big" "$death_ms" "$workers" "$slots" "$jobs" <<'PY'
import sys
lm, rm, ya, lb, rb, death = map(float, sys.argv[1:7])
workers, slots, jobs = sys.argv[7:10]
gib = lambda ms: 1000.0 / ms
print(f"Running across machines: {workers} local workers x {slots} slots, -j{jobs}, one local redis-server\n")
print("| case | local | through the queue | note |")
print("|---|---|---|---|")
print(f"| 200 `true` runs, whole invocation | {lm:.0f} ms | {rm:.0f} ms | |")
print(f"| per run | {lm / 200:.2f} ms | {rm / 200:.2f} ms | +{(rm - lm) / 200:.2f} ms per run |")
print(f"| 1 GiB of output from one run | {gib(lb):.2f} GiB/s (prefixed) | {gib(rb):.2f} GiB/s | producer alone: {gib(ya):.2f} GiB/s |")
print(f"| SIGKILL of a worker to its run taken again | | {death:.0f} ms | median of the runs; lease 5 s, looked at every 2 s |")
PY
