#!/usr/bin/env python3
"""Time a command, or measure its peak RSS, and append the result to a file.

    timeit.py [options] -- CMD [ARGS...]

The command is started directly (posix_spawn, no shell) with stdin from
/dev/null, stdout to /dev/null and stderr to a temporary file, so the numbers
are the command's own. Wrap pipelines in `sh -c '...'` yourself.

Timing (default): one preflight run checks that the command succeeds (its
first stderr line becomes the note when it does not); then either the builtin
loop (warmup runs, then at least --min-runs runs and --min-time seconds, at
most --max-runs) or, with --engine hyperfine, `hyperfine -N`. The median is
printed and, with --record, appended as one JSON line:

    {"section": ..., "case": ..., "tool": ..., "ms": 1.23, "runs": 200}

`"ms": null` with a "note" means the command failed (the row shows n/a).

--rss: one run; records {"rss_kib": N}, the peak resident set size of the
command and the descendants it waited for, measured with `/usr/bin/time -f %M`
when that is GNU time, else with wait4()'s rusage (what
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss reports).

Needs only the Python 3 standard library (3.8+).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def spawn_and_wait(argv, err_path, env=None):
    """Run argv once; return (exit_code, elapsed_ns, maxrss_kib)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    environ = os.environ if env is None else env
    start = time.perf_counter_ns()
    try:
        pid = os.posix_spawnp(argv[0], argv, environ, file_actions=actions)
    except OSError as e:
        with open(err_path, "w") as f:
            f.write("cannot run %s: %s\n" % (argv[0], e.strerror))
        return 127, 0, 0
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter_ns() - start
    if hasattr(os, "waitstatus_to_exitcode"):
        code = os.waitstatus_to_exitcode(status)
    elif os.WIFSIGNALED(status):
        code = -os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    rss = usage.ru_maxrss
    if sys.platform == "darwin":  # bytes there, KiB on Linux
        rss //= 1024
    return code, elapsed, rss


def first_error_line(err_path, code):
    try:
        with open(err_path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        lines = []
    # prefer a line that looks like an error over the command echo
    for line in lines:
        low = line.lower()
        if "error" in low or "unknown" in low or "not found" in low or "invalid" in low:
            return "exit %d: %s" % (code, line[:160])
    if lines:
        return "exit %d: %s" % (code, lines[-1][:160])
    return "exit %d" % code


def record(path, obj):
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(obj) + "\n")


def gnu_time():
    t = "/usr/bin/time"
    if not os.access(t, os.X_OK):
        return None
    try:
        r = subprocess.run([t, "-f", "%M", "true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    out = r.stderr.decode(errors="replace").strip().splitlines()
    if r.returncode == 0 and out and out[-1].strip().isdigit():
        return t
    return None


def measure_rss(argv, err_path):
    """Return (exit_code, rss_kib, method)."""
    t = gnu_time()
    if t:
        fd, out_path = tempfile.mkstemp(prefix="timeit-rss.")
        os.close(fd)
        try:
            code, _, _ = spawn_and_wait([t, "-f", "%M", "-o", out_path] + argv, err_path)
            with open(out_path) as f:
                lines = [l.strip() for l in f if l.strip()]
        finally:
            os.unlink(out_path)
        rss = int(lines[-1]) if lines and lines[-1].isdigit() else None
        return code, rss, "/usr/bin/time -f %M"
    code, _, rss = spawn_and_wait(argv, err_path)
    return code, rss, "wait4 rusage"


def run_builtin(argv, err_path, args):
    for _ in range(args.warmup):
        code, _, _ = spawn_and_wait(argv, err_path)
        if code != 0:
            return None, first_error_line(err_path, code)
    times = []
    budget_end = time.perf_counter() + args.min_time
    while True:
        code, ns, _ = spawn_and_wait(argv, err_path)
        if code != 0:
            return None, first_error_line(err_path, code)
        times.append(ns / 1e6)
        n = len(times)
        if args.runs:
            if n >= args.runs:
                break
        elif n >= args.max_runs or (n >= args.min_runs and time.perf_counter() >= budget_end):
            break
    return times, None


def run_hyperfine(argv, args):
    import shlex
    fd, json_path = tempfile.mkstemp(prefix="timeit-hf.", suffix=".json")
    os.close(fd)
    cmd = ["hyperfine", "-N", "--style", "none", "--export-json", json_path,
           "--warmup", str(args.warmup)]
    if args.runs:
        cmd += ["--runs", str(args.runs)]
    else:
        cmd += ["--min-runs", str(args.min_runs)]
    cmd.append(" ".join(shlex.quote(a) for a in argv))
    try:
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            msg = r.stderr.decode(errors="replace").strip().splitlines()
            return None, "hyperfine failed: %s" % (msg[-1][:160] if msg else r.returncode)
        with open(json_path) as f:
            data = json.load(f)
        return [t * 1000.0 for t in data["results"][0]["times"]], None
    finally:
        os.unlink(json_path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=["builtin", "hyperfine"], default="builtin")
    p.add_argument("--runs", type=int, default=0, help="exact number of timed runs")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-runs", type=int, default=10)
    p.add_argument("--max-runs", type=int, default=1000)
    p.add_argument("--min-time", type=float, default=float(os.environ.get("BENCH_MIN_TIME", "2")),
                   help="seconds to keep timing (builtin engine)")
    p.add_argument("--no-preflight", action="store_true")
    p.add_argument("--preflight-env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment override for the preflight run only")
    p.add_argument("--rss", action="store_true", help="measure peak RSS instead of time")
    p.add_argument("--record", metavar="FILE")
    p.add_argument("--section", default="")
    p.add_argument("--case", default="")
    p.add_argument("--tool", default="")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    args = p.parse_args()
    argv = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not argv:
        p.error("no command given (put it after --)")

    key = {"section": args.section, "case": args.case, "tool": args.tool}
    label = "%s/%s" % (args.case, args.tool) if args.case else " ".join(argv)
    fd, err_path = tempfile.mkstemp(prefix="timeit-err.")
    os.close(fd)
    try:
        if not args.no_preflight:
            env = dict(os.environ)
            for kv in args.preflight_env:
                name, _, value = kv.partition("=")
                env[name] = value
            code, _, _ = spawn_and_wait(argv, err_path, env)
            if code != 0:
                note = first_error_line(err_path, code)
                field = "rss_kib" if args.rss else "ms"
                record(args.record, dict(key, **{field: None, "note": note}))
                print("  %-28s n/a (%s)" % (label, note), file=sys.stderr)
                return 1

        if args.rss:
            code, rss, method = measure_rss(argv, err_path)
            if code != 0 or rss is None:
                note = first_error_line(err_path, code)
                record(args.record, dict(key, rss_kib=None, note=note))
                print("  %-28s peak RSS n/a (%s)" % (label, note), file=sys.stderr)
                return 1
            record(args.record, dict(key, rss_kib=rss, rss_method=method))
            print("  %-28s peak RSS %.1f MiB" % (label, rss / 1024.0), file=sys.stderr)
            print(rss)
            return 0

        if args.engine == "hyperfine":
            times, note = run_hyperfine(argv, args)
        else:
            times, note = run_builtin(argv, err_path, args)
        if times is None:
            record(args.record, dict(key, ms=None, note=note))
            print("  %-28s n/a (%s)" % (label, note), file=sys.stderr)
            return 1
        med = statistics.median(times)
        record(args.record, dict(key, ms=med, min_ms=min(times), max_ms=max(times), runs=len(times)))
        print("  %-28s median %9.3f ms  (min %.3f, max %.3f, %d runs)"
              % (label, med, min(times), max(times), len(times)), file=sys.stderr)
        print("%.4f" % med)
        return 0
    finally:
        try:
            os.unlink(err_path)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
