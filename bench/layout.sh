#!/usr/bin/env bash
# Write link/startup.ld: the code tasker's common runs touch first, placed
# together at the start of the binary's code by the release link
# (build.rs), so that a start maps and faults in fewer pages of it.
#
#   bench/layout.sh
#
# Builds the release binary, runs it under bench/layout/trace.c (an
# LD_PRELOAD that records the functions a run enters, in order) on the
# runs below, and turns them into patterns of function names
# (bench/layout/layout.py). The tracer sees a call only when it crosses
# from one page to another; the second pass traces the binary laid out by
# the first, in which most of the calls it missed do. The last build is
# left in target/release.
#
# Run it again after large changes to what a start does; names that no
# longer exist match nothing and cost nothing. Needs cc, python3, nm and
# readelf (binutils), on Linux with glibc.

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
tasker=$root/target/release/tasker
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cc -O2 -shared -fPIC -o "$work/trace.so" "$here/layout/trace.c"
for kind in one chain; do
    mkdir -p "$work/$kind"
    python3 "$here/gen.py" "$kind" "$work/$kind"
done
mkdir -p "$work/list" "$work/fan"
last=$(python3 "$here/gen.py" list 5000 "$work/list")
python3 "$here/gen.py" fanout 20 "$work/fan"

trace() { # dir: one file of addresses per run, in order
    local dir=$1 n=0
    rm -rf "$dir"
    mkdir -p "$dir"
    run() {
        n=$((n + 1))
        TRACE_OUT=$dir/$(printf %02d $n) LD_PRELOAD=$work/trace.so "$tasker" "$@" >/dev/null 2>&1 </dev/null || true
    }
    # The one-step run first: its functions lead the layout.
    run -q -f "$work/one/tasks.toml" t
    run -f "$work/one/tasks.toml" t
    run -f "$work/chain/tasks.toml" a b c
    run -f "$work/one/tasks.toml" -l
    run -f "$work/list/tasks.toml" "$last"
    run -f "$work/list/tasks.toml" "$last"
    run -f "$work/fan/tasks.toml" -j2 all
    run -f "$root/examples/arguments/tasks.toml" deploy staging -t v1 --dry-run
    run -f "$root/examples/arguments/tasks.toml" deploy --help
    run --help
}

script=$root/link/startup.ld
(cd "$root" && cargo build --release --quiet)
trace "$work/pass1"
python3 "$here/layout/layout.py" "$tasker" "$script" "$work"/pass1/*
(cd "$root" && cargo build --release --quiet)
# Calls between pages that were open together went unseen in the first
# pass; in this layout most of them cross pages.
cp "$script" "$work/pass1.ld"
trace "$work/pass2"
python3 "$here/layout/layout.py" "$tasker" "$script" "$work"/pass2/* --also "$work/pass1.ld"
(cd "$root" && cargo build --release --quiet)
python3 "$here/layout/check.py" "$tasker" "$root/link/startup.ld"
