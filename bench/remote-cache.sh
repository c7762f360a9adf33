#!/usr/bin/env bash
# Benchmark the remote cache (SPEC 7) against a local turborepo-remote-cache.
#
#   bench/remote-cache.sh
#
# Cases, each timed with bench/timeit.py (median):
#   - a hit on a task whose outputs are 1,000 small files and one file of
#     100 MiB (random bytes: zstd cannot shrink them): `tasker build` in a
#     checkout without its local record (ask, download, check, unpack,
#     rename, record), beside `tar -x` of the same archive (`tar --zstd`,
#     into a fresh directory) and beside the download alone (`curl`);
#   - the cost of a miss: the same task run with its source changed each
#     time, with the cache (ask, miss, run, pack, upload before exit) and
#     with `--remote-cache off`;
#   - 100 independent tasks that all hit (`tasker all`, each restoring one
#     small file), beside one such task alone: if the requests went one
#     after another, the 100 would cost about 100 times the one.
# Prints a markdown table.
#
# Environment: TASKER (binary; default target/release/tasker, built when
# missing), BENCH_MIN_TIME=2, BENCH_BIG=100M, BENCH_SMALL=1000. The server
# is installed with npm on first use into target/tmp (as the tests do).

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
big=${BENCH_BIG:-100M}
small=${BENCH_SMALL:-1000}
tasker=${TASKER:-$repo/target/release/tasker}
if [[ -z ${TASKER:-} ]] && [[ ! -x $tasker || -n $(find "$repo/src" -newer "$tasker" -print -quit) ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
server_dir=$repo/target/tmp/turborepo-remote-cache-2.12.0
if [[ ! -f $server_dir/node_modules/turborepo-remote-cache/dist/cli.js ]]; then
    mkdir -p "$server_dir"
    npm install --no-audit --no-fund --loglevel=error --prefix "$server_dir" turborepo-remote-cache@2.12.0
fi
work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
results=$work/results.jsonl

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/storage"
NODE_ENV=production HOST=127.0.0.1 PORT=$port TURBO_TOKEN=bench STORAGE_PROVIDER=local \
    STORAGE_PATH="$work/storage" STORAGE_PATH_USE_TMP_FOLDER=false LOG_LEVEL=error \
    BODY_LIMIT=1073741824 \
    node "$server_dir/node_modules/turborepo-remote-cache/dist/cli.js" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
export TASKER_REMOTE_CACHE_URL=http://127.0.0.1:$port TASKER_REMOTE_CACHE_TEAM=bench \
    TASKER_REMOTE_CACHE_TOKEN=bench

time_it() { # case tool cmd...
    local case=$1 tool=$2
    shift 2
    python3 "$here/timeit.py" --record "$results" --case "$case" --tool "$tool" -- "$@" >/dev/null
}

# The large task: its run copies a prepared tree into `out`.
proj=$work/big
mkdir -p "$proj/src" "$work/data/small"
python3 - "$work/data/small" "$small" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i % 20:02}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:04}.txt"), "w") as f:
        f.write(f"small file {i}\n" * 16)
PY
head -c "$big" /dev/urandom >"$work/data/big.bin"
echo 1 >"$proj/src/version"
cat >"$proj/tasks.toml" <<TOML
[tasks.build]
sources = ["src/**"]
outputs = ["out"]
run = "rm -rf out && cp -r '$work/data' out"
TOML
cd "$proj"
"$tasker" -q build # uploads the artifact
artifact=$(find "$work/storage/bench" -type f ! -name '*.tag' | head -1)
size=$(stat -c %s "$artifact")
time_it "hit: 1 x $big + $small files" "tasker (ask, download, unpack, rename)" \
    sh -c "rm -rf .tasker out && '$tasker' -q build"
time_it "hit: 1 x $big + $small files" "tar --zstd -x of the artifact" \
    sh -c "rm -rf '$work/x' && mkdir '$work/x' && tar --zstd -x -C '$work/x' -f '$artifact'"
key=$(basename "$artifact")
time_it "hit: 1 x $big + $small files" "curl (the download alone)" \
    sh -c "curl -sf -H 'Authorization: Bearer bench' -o /dev/null 'http://127.0.0.1:$port/v8/artifacts/$key?teamId=bench'"

# A miss each time: the source changes before every run.
time_it "miss: 1 x $big + $small files" "tasker --remote-cache off (run only)" \
    sh -c "date +%s%N >src/version && '$tasker' -q --remote-cache off build"
time_it "miss: 1 x $big + $small files" "tasker (ask, run, pack, upload)" \
    sh -c "date +%s%N >src/version && '$tasker' -q build"

# 100 small tasks that all hit.
many=$work/many
mkdir -p "$many/src"
{
    printf '[tasks.all]\ndeps = [%s]\n' "$(seq -f '"t%03g"' 0 99 | paste -sd,)"
    for i in $(seq -f '%03g' 0 99); do
        echo "t$i" >"$many/src/t$i.txt"
        printf '[tasks.t%s]\nsources = ["src/t%s.txt"]\noutputs = ["out/t%s.txt"]\nrun = "mkdir -p out && cp src/t%s.txt out/"\n' "$i" "$i" "$i" "$i"
    done
} >"$many/tasks.toml"
cd "$many"
"$tasker" -q all # uploads 100 artifacts
time_it "100 tasks, all hits" "tasker all (100 lookups, 100 restores)" \
    sh -c "rm -rf .tasker out && '$tasker' -q all"
time_it "100 tasks, all hits" "tasker t000 (one lookup, one restore)" \
    sh -c "rm -rf .tasker out && '$tasker' -q t000"
time_it "100 tasks, all hits" "tasker --remote-cache off all (100 runs of cp)" \
    sh -c "rm -rf .tasker out && '$tasker' -q --remote-cache off all"

python3 - "$results" "$size" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
size = int(sys.argv[2])
print(f"artifact of the large task: {size / 2**20:.1f} MiB\n")
print("| case | tool | median ms | runs |")
print("|---|---|---|---|")
for r in rows:
    ms = "n/a" if r["ms"] is None else f"{r['ms']:.1f}"
    print(f"| {r['case']} | {r['tool']} | {ms} | {r.get('runs', '')} |")
PY
