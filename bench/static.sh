#!/usr/bin/env bash
# Start-up of the static (musl) binary against the glibc one (SPEC 12).
#
#   bench/static.sh
#
# Times, in turn (bench/paired.py), the release binaries of one commit on
# the foundation cases that are mostly start-up: a one-step `true` task, a
# chain of three, and `-l` of 20 tasks. A glibc-against-glibc row comes
# first: the two sides run the same binary, so its ratio is the noise of
# the machine at that moment, and a musl ratio closer to 1 than it says
# nothing. Then the peak RSS of a one-step run of each (bench/timeit.py).
#
# Environment: TASKER_GLIBC (default target/release/tasker), TASKER_MUSL
# (default target/x86_64-unknown-linux-musl/release/tasker; `tasker dist
# x86_64-unknown-linux-musl` or `tasker check-static -r` builds it),
# BENCH_ROUNDS=300.

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
glibc=${TASKER_GLIBC:-$repo/target/release/tasker}
musl=${TASKER_MUSL:-$repo/target/x86_64-unknown-linux-musl/release/tasker}
rounds=${BENCH_ROUNDS:-300}
for bin in "$glibc" "$musl"; do
    if [ ! -x "$bin" ]; then
        echo "bench/static.sh: no binary at $bin" >&2
        exit 2
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tasker-static.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/one" "$tmp/chain" "$tmp/list20"
python3 "$here/gen.py" one "$tmp/one"
python3 "$here/gen.py" chain "$tmp/chain"
python3 "$here/gen.py" list 20 "$tmp/list20" >/dev/null

echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- glibc: $glibc ($(stat -c %s "$glibc") bytes)"
echo "- musl: $musl ($(stat -c %s "$musl") bytes)"
echo
pair() { python3 "$here/paired.py" "$@"; }
echo "| case (first / second) | first | second | ratio | rounds |"
echo "|---|---:|---:|---:|---:|"
pair --rounds "$rounds" "noise: one-step \`true\` task (glibc / glibc)" \
    -- glibc "$glibc" -f "$tmp/one/tasks.toml" t \
    -- glibc "$glibc" -f "$tmp/one/tasks.toml" t
pair --rounds "$rounds" "one-step \`true\` task (musl / glibc)" \
    -- musl "$musl" -f "$tmp/one/tasks.toml" t \
    -- glibc "$glibc" -f "$tmp/one/tasks.toml" t
pair --rounds "$rounds" "chain \`a b c\` (musl / glibc)" \
    -- musl "$musl" -f "$tmp/chain/tasks.toml" a b c \
    -- glibc "$glibc" -f "$tmp/chain/tasks.toml" a b c
pair --rounds "$rounds" "\`-l\` of 20 tasks (musl / glibc)" \
    -- musl "$musl" -f "$tmp/list20/tasks.toml" -l \
    -- glibc "$glibc" -f "$tmp/list20/tasks.toml" -l
echo
for side in glibc musl; do
    bin=$glibc
    [ "$side" = musl ] && bin=$musl
    kib=$(python3 "$here/timeit.py" --rss -- "$bin" -f "$tmp/one/tasks.toml" t 2>/dev/null)
    echo "- peak RSS of a one-step run, $side: $((kib / 1024)) MiB ($kib KiB)"
done
