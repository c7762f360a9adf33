#!/usr/bin/env bash
# Benchmark running across machines (SPEC 11) on one machine: a local
# redis-server (no persistence) and N local workers, each in a checkout
# directory of its own with a copy of the same tasks.toml.
#
#   bench/distribute.sh
#
# Cases, each timed in turn with bench/paired.py (one invocation of each
# side per round, so that a shared machine's drift slows both alike):
#   - overhead per run: a matrix of 200 `true` runs, `tasker -q -jJ many`
#     locally and through the queue (`--queue`, the same -j); the paired
#     medians of the whole invocation, and their difference per run
#     (target: at most 0.3 ms, issue 29);
#   - throughput: 256 MiB of 100-byte lines (`yes ... | head -c`) from one
#     run, stdout to /dev/null: a local run whose output passes through
#     tasker (`--output prefixed`), and the run on a worker (its output
#     streamed back and printed `[NAME@WORKER]`); the paired medians and
#     the remote run's throughput over the local one's (target: at least
#     0.8x, issue 29);
#   - the floor: the same 256 MiB through the same redis-server with
#     XADD and XREAD and nothing of tasker (bench/stream_floor.py), paired
#     with the local run: the most any client of a Redis stream gets here;
#     and the CPU time redis-server spends on it, per run;
#   - worker death: a worker takes a run and is killed with SIGKILL; the
#     time from the kill to another worker starting the run (the lease
#     expiring, then the next look at leases), median of BENCH_DEATHS.
# Prints a markdown table.
#
# Environment: TASKER (binary; default target/release/tasker, built when
# missing or older than src/), BENCH_WORKERS=4 (slots per worker:
# BENCH_SLOTS=8), BENCH_JOBS=32, BENCH_ROUNDS=31 (paired rounds of the
# overhead case), BENCH_BIG_ROUNDS=7 (of the throughput case),
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
rounds=${BENCH_ROUNDS:-31}
big_rounds=${BENCH_BIG_ROUNDS:-7}
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
server=$!
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
run = "yes $line | head -c 268435456"

[tasks.big_local]
quiet = true
run = "yes $line | head -c 268435456"

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

# The medians (ms) of a paired.py row: "| case | A ms | B ms | ratio | rounds |".
paired() { # rounds case -- label cmd... -- label cmd...
    python3 "$here/paired.py" --rounds "$@" | awk -F'|' '{ gsub(/[ ms]/, "", $3); gsub(/[ ms]/, "", $4); print $3, $4 }'
}

for i in $(seq 1 "$workers"); do start_worker "w$i" "w$i" "$slots"; done
sleep 1

read -r remote_many local_many < <(paired "$rounds" many -- queue "$tasker" -q -j"$jobs" many -- local "$tasker" -q -j"$jobs" many_local)
read -r remote_big local_big < <(paired "$big_rounds" big -- queue "$tasker" -q big -- local "$tasker" -q --output prefixed big_local)
# The same bytes through the same server with no tasker at all: the most
# any client could get out of a Redis stream on this machine.
# And the server's own CPU for it (user + system, in clock ticks), over
# the timed runs and paired.py's two untimed ones.
cpu() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
before=$(cpu)
read -r floor_big floor_local < <(paired "$big_rounds" floor -- floor python3 "$here/stream_floor.py" "$port" 268435456 -- local "$tasker" -q --output prefixed big_local)
server_ms=$(( ($(cpu) - before) * 1000 / $(getconf CLK_TCK) / (big_rounds + 2) ))

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

python3 - "$local_many" "$remote_many" "$local_big" "$remote_big" "$death_ms" "$floor_local" "$floor_big" "$server_ms" "$workers" "$slots" "$jobs" "$rounds" "$big_rounds" <<'PY'
import sys
lm, rm, lb, rb, death, fl, fb, server = map(float, sys.argv[1:9])
workers, slots, jobs, rounds, big_rounds = sys.argv[9:14]
mib = lambda ms: 256 * 1000.0 / ms
print(f"Running across machines: {workers} local workers x {slots} slots, -j{jobs}, one local redis-server; paired medians\n")
print("| case | local | through the queue | result | target |")
print("|---|---:|---:|---|---|")
print(f"| 200 `true` runs, whole invocation ({rounds} rounds) | {lm:.1f} ms | {rm:.1f} ms | +{(rm - lm) / 200:.2f} ms per run | +0.3 ms at most |")
print(f"| 256 MiB of output from one run ({big_rounds} rounds) | {mib(lb):.0f} MiB/s (prefixed) | {mib(rb):.0f} MiB/s | {lb / rb:.2f}x local | 0.8x at least |")
print(f"| the same bytes through XADD/XREAD, no tasker (`stream_floor.py`) | {mib(fl):.0f} MiB/s (tasker prefixed) | {mib(fb):.0f} MiB/s | {fl / fb:.2f}x local | the ceiling of any client; redis-server's own CPU: {server:.0f} ms per run |")
print(f"| SIGKILL of a worker to its run taken again | | {death:.0f} ms | median of the runs | lease 5 s, looked at every 2 s |")
PY
