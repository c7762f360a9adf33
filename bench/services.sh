#!/usr/bin/env bash
# Benchmark services (SPEC 6): a `background` task with a `ready` line and
# one dependent.
#
#   bench/services.sh
#
# Three small C programs are built into a temporary directory:
#   - svc: the service. It reads CLOCK_MONOTONIC, appends it to ready.log,
#     prints `ready`, then waits for a signal (one process, no children);
#   - stamp: the dependent, a `true` that first appends CLOCK_MONOTONIC to
#     dep.log;
#   - floor: what the invocation must do at the least, without tasker:
#     start svc with its stdout on a pipe, read its ready line, run `true`
#     and wait for it, SIGTERM svc and wait for it.
# Cases:
#   - ready line -> dependent start: `tasker -q dep` where dep (stamp)
#     depends on svc, run BENCH_LATENCY_RUNS times; the median of
#     dep.log - ready.log per run. Beside it, the same gap when `floor`
#     starts stamp right after the line (the cost of a fork and exec, which
#     any runner pays). Target: < 2 ms.
#   - whole invocation: `tasker -q dep` with `true` as the dependent,
#     against `floor svc true`, timed with bench/timeit.py (median).
#     Target: within 5 ms of the floor.
# Prints a markdown table.
#
# Environment: TASKER (binary; default target/release/tasker, built when
# missing or older than src/), BENCH_MIN_TIME=2, BENCH_LATENCY_RUNS=200,
# CC (default cc).

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
tasker=${TASKER:-$repo/target/release/tasker}
if [[ -z ${TASKER:-} ]] && [[ ! -x $tasker || -n $(find "$repo/src" -newer "$tasker" -print -quit) ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
runs=${BENCH_LATENCY_RUNS:-200}
cc=${CC:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=$work/results.jsonl
cd "$work"

cat >common.h <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static void stamp(const char *path) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    FILE *f = fopen(path, "a");
    if (!f) exit(1);
    fprintf(f, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    fclose(f);
}
C
cat >svc.c <<'C'
#include "common.h"
#include <unistd.h>
int main(void) {
    stamp("ready.log");
    fputs("ready\n", stdout);
    fflush(stdout);
    for (;;) pause();
}
C
cat >stamp.c <<'C'
#include "common.h"
int main(void) { stamp("dep.log"); return 0; }
C
cat >floor.c <<'C'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
/* floor SVC DEP: start SVC, read its first line, run DEP, stop SVC. */
int main(int argc, char **argv) {
    int fds[2];
    if (argc != 3 || pipe(fds) != 0) return 2;
    pid_t svc = fork();
    if (svc == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(argv[1], argv[1], (char *)0);
        _exit(127);
    }
    close(fds[1]);
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') {}
    pid_t dep = fork();
    if (dep == 0) {
        execlp(argv[2], argv[2], (char *)0);
        _exit(127);
    }
    int status;
    waitpid(dep, &status, 0);
    kill(svc, SIGTERM);
    waitpid(svc, NULL, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
C
for p in svc stamp floor; do "$cc" -O2 -o "$p" "$p.c"; done

cat >tasks.toml <<'TOML'
[tasks.svc]
background = true
ready = '^ready$'
run = [{ cmd = ["./svc"] }]

[tasks.dep]
deps = ["svc"]
run = "{{ dep }}"
[[tasks.dep.args]]
name = "dep"
default = "true"
TOML

# Ready line -> dependent start, through tasker and through the floor.
latency() { # tool cmd...
    local tool=$1
    shift
    rm -f ready.log dep.log
    for _ in $(seq "$runs"); do "$@" >/dev/null; done
    python3 - "$tool" "$results" <<'PY'
import json, statistics, sys
ready = [int(l) for l in open("ready.log")]
dep = [int(l) for l in open("dep.log")]
gaps = [(d - r) / 1e6 for r, d in zip(ready, dep)]
with open(sys.argv[2], "a") as f:
    f.write(json.dumps({"case": "ready line -> dependent start", "tool": sys.argv[1],
                        "ms": statistics.median(gaps), "runs": len(gaps),
                        "p90": sorted(gaps)[int(len(gaps) * 0.9)]}) + "\n")
PY
}
latency tasker "$tasker" -q dep --dep ./stamp
latency "floor (fork + exec)" ./floor ./svc ./stamp

# The whole invocation.
python3 "$here/timeit.py" --record "$results" --case "whole invocation" --tool tasker \
    -- "$tasker" -q dep >/dev/null
python3 "$here/timeit.py" --record "$results" --case "whole invocation" \
    --tool "floor (svc up, true, svc stopped)" -- ./floor ./svc true >/dev/null

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ms = {(r["case"], r["tool"]): r["ms"] for r in rows}
print("| case | tool | median ms | note |")
print("|---|---|---|---|")
for r in rows:
    if r["ms"] is None:
        print(f"| {r['case']} | {r['tool']} | n/a | {r.get('note', '')} |")
        continue
    note = ""
    if r["tool"] == "tasker" and r["case"].startswith("ready"):
        floor = ms.get((r["case"], "floor (fork + exec)"))
        note = f"p90 {r['p90']:.2f} ms; {r['ms'] - floor:+.2f} ms over the floor (target: < 2 ms)"
    if r["tool"] == "tasker" and r["case"] == "whole invocation":
        floor = ms.get((r["case"], "floor (svc up, true, svc stopped)"))
        note = f"{r['ms'] - floor:+.2f} ms over the floor (target: within 5 ms)"
    print(f"| {r['case']} | {r['tool']} | {r['ms']:.2f} | {note} |")
PY
