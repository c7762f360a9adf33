#!/usr/bin/env bash
# Benchmark tasker's up-to-date check (SPEC 7) on large trees.
#
#   bench/fresh.sh
#
# Cases, each timed with bench/timeit.py (median of many runs):
#   - 10,000 small source files in 100 directories, unchanged since the last
#     run: `tasker build` (the check, then "up to date"), side by side with
#     `find DIR -type f | wc -l` (a walk of the tree, which with d_type
#     needs no stat at all), `find DIR -type f -printf '%s %T@ %C@ %i'`
#     (the floor: one stat per file, as the check needs) and, when it is
#     installed, go-task's checksum mode (`task build` with
#     `method: checksum`);
#   - the same tree checked cold: no record, every file read and hashed
#     (`tasker -B build`, whose run is `true`);
#   - 4 files of 256 MiB (BENCH_BIG=256M), hashed cold (`-B`): the hashing
#     speed, in GiB/s, page cache warm;
#   - 20,000 files (BENCH_GIT_FILES) committed to a git repository, unchanged:
#     `tasker build` and `git status --porcelain` on the same tree, timed in
#     turn by bench/paired.py (paired medians; target: ratio <= 1.0).
# Prints a markdown table. Targets: unchanged 10,000-file check under 50 ms
# and within 3x the find floor; cold hashing of the large files >= 1 GiB/s.
#
# Environment: TASKER (binary; default target/release/tasker, built when
# missing), BENCH_FILES=10000, BENCH_BIG=256M, BENCH_MIN_TIME=2,
# BENCH_TASK (go-task binary; default `task` or `go-task` on PATH).

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
files=${BENCH_FILES:-10000}
big=${BENCH_BIG:-256M}
tasker=${TASKER:-$repo/target/release/tasker}
if [[ -z ${TASKER:-} ]] && [[ ! -x $tasker || -n $(find "$repo/src" -newer "$tasker" -print -quit) ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
gotask=${BENCH_TASK:-$(command -v task || command -v go-task || true)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=$work/results.jsonl

time_it() { # case tool cmd...
    local case=$1 tool=$2
    shift 2
    python3 "$here/timeit.py" --record "$results" --case "$case" --tool "$tool" -- "$@" >/dev/null
}

# The small tree.
tree=$work/tree
mkdir -p "$tree"
python3 - "$tree" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "src", f"d{i % 100:03}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05}.txt"), "w") as f:
        f.write(f"file {i}\n" * 8)
PY
cat >"$tree/tasks.toml" <<'TOML'
[tasks.build]
sources = ["src/**/*.txt"]
run = "true"
TOML
cat >"$tree/Taskfile.yml" <<'YML'
version: '3'
method: checksum
tasks:
  build:
    sources: ['src/**/*.txt']
    cmds: ['true']
YML
# Timestamps older than tasker's 2 s window, so the stat cache is trusted.
sleep 3
(cd "$tree" && "$tasker" -q build && "$tasker" -q build)

cd "$tree"
time_it "10k unchanged" tasker "$tasker" -q build
time_it "10k unchanged" "find -type f (walk only)" sh -c 'find src -type f | wc -l'
time_it "10k unchanged" "find -printf stat (floor)" sh -c "find src -type f -printf '%s %T@ %C@ %i\\n' | wc -l"
if [[ -n $gotask ]]; then
    "$gotask" -s build >/dev/null 2>&1 || true
    time_it "10k unchanged" go-task "$gotask" -s build
fi
time_it "10k cold (-B)" tasker "$tasker" -q -B build

# The large files.
bigtree=$work/big
mkdir -p "$bigtree/data"
for i in 1 2 3 4; do head -c "$big" /dev/urandom >"$bigtree/data/f$i.bin"; done
cat >"$bigtree/tasks.toml" <<'TOML'
[tasks.build]
sources = ["data/*.bin"]
run = "true"
TOML
cd "$bigtree"
"$tasker" -q -B build
time_it "4 x $big cold (-B)" tasker "$tasker" -q -B build
bytes=$(du -sb data | cut -f1)

# 20,000 files in a git repository: tasker's check against git's index.
gitfiles=${BENCH_GIT_FILES:-20000}
gittree=$work/git
mkdir -p "$gittree"
python3 - "$gittree" "$gitfiles" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "src", f"d{i % 200:03}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05}.txt"), "w") as f:
        f.write(f"file {i}\n" * 8)
PY
cat >"$gittree/tasks.toml" <<'TOML'
[tasks.build]
sources = ["src/**/*.txt"]
run = "true"
TOML
printf '.tasker\n' >"$gittree/.gitignore"
(
    cd "$gittree"
    git init -q .
    git add -A
    git -c user.email=bench@localhost -c user.name=bench commit -qm tree
    sleep 3
    "$tasker" -q build && "$tasker" -q build
)
paired_table=$(cd "$gittree" && python3 "$here/paired.py" --rounds "${BENCH_GIT_ROUNDS:-60}" --header \
    "$gitfiles unchanged, in git" -- tasker "$tasker" -q build -- git git status --porcelain)

python3 - "$results" "$bytes" "$big" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bytes_, big = int(sys.argv[2]), sys.argv[3]
print("| case | tool | median ms | note |")
print("|---|---|---|---|")
ms = {(r["case"], r["tool"]): r["ms"] for r in rows}
for r in rows:
    note = ""
    if r["ms"] is None:
        print(f"| {r['case']} | {r['tool']} | n/a | {r.get('note', '')} |")
        continue
    if r["case"] == "10k unchanged" and r["tool"] == "tasker":
        floor = ms.get(("10k unchanged", "find -printf stat (floor)"))
        walk = ms.get(("10k unchanged", "find -type f (walk only)"))
        if floor and walk:
            note = (f"{r['ms'] / floor:.2f}x the stat floor, {r['ms'] / walk:.2f}x the walk"
                    " (target: < 50 ms, <= 3x the floor)")
    if r["case"].startswith("4 x"):
        note = f"{bytes_ / (r['ms'] / 1000) / 2**30:.2f} GiB/s (target: >= 1 GiB/s)"
    print(f"| {r['case']} | {r['tool']} | {r['ms']:.1f} | {note} |")
PY

echo
echo "$paired_table"
