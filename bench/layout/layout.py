#!/usr/bin/env python3
"""Turn traces of where runs went (trace.c) into link/startup.ld.

    layout.py BINARY OUT TRACE... [--also SCRIPT]

The function at each traced address is named in the linker script, in
the order of the traces and of first arrival in each; the linker places
those functions together in `.text.start`, before the rest of the
program's code. A call between two pages that were both open while
tracing is not seen, so a function may be missed; a trace of a binary
laid out this way sees it (bench/layout.sh runs twice). `--also` keeps
the patterns of an earlier script, after the new ones.

Names are written as patterns that survive a new build: symbols are in
the v0 scheme (.cargo/config.toml), whose crate disambiguators (`Cs..._`,
a hash of the build's metadata) become `*`, and so does the suffix LTO
gives local symbols (`.123`, `.llvm.456`).
"""

import bisect
import re
import subprocess
import sys


def segments(binary):
    """(file offset, virtual address, size) of each loadable segment."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True)
    segs = []
    for line in out.stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    return segs


def functions(binary):
    """(address, size, name) of every function, by address."""
    out = subprocess.run(["nm", "-S", "--defined-only", "-n", binary], capture_output=True, text=True, check=True)
    funcs = []
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in ("t", "T", "W", "w") and int(f[1], 16):
            funcs.append((int(f[0], 16), int(f[1], 16), f[3]))
    return funcs


def pattern(name):
    base, dot, _ = name.partition(".")
    if base.startswith("_R"):
        base = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", base)
    return base + ("*" if dot else "")


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    args = sys.argv[1:]
    also = []
    if "--also" in args:
        i = args.index("--also")
        text = open(args[i + 1]).read()
        also = re.findall(r"^    \*\(\.text\.(\S*) ", text, re.M)
        del args[i : i + 2]
    binary, out, traces = args[0], args[1], args[2:]
    segs = segments(binary)
    funcs = functions(binary)
    starts = [a for a, _, _ in funcs]

    def address(offset):
        for off, vaddr, size in segs:
            if off - off % 4096 <= offset < off + size:
                return offset - off + vaddr
        return None

    names, seen = [], set()
    for trace in traces:
        for line in open(trace):
            at = address(int(line, 16))
            if at is None:
                continue
            i = bisect.bisect_right(starts, at) - 1
            if i < 0:
                continue
            start, size, name = funcs[i]
            if at < start + size and name not in seen:
                seen.add(name)
                names.append(name)
    patterns = list(dict.fromkeys([pattern(n) for n in names] + also))
    size = sum(s for _, s, n in funcs if n in seen)
    with open(out, "w") as f:
        f.write("/* The code a run of tasker touches first, placed together so that\n")
        f.write("   a start maps fewer pages of the binary (build.rs). Written by\n")
        f.write("   bench/layout.sh; do not edit. */\n")
        # What bench/layout/check.py holds a build to.
        f.write(f"/* functions: {len(names)}, bytes: {size} */\n")
        f.write("SECTIONS\n{\n  .text.start :\n  {\n")
        for p in patterns:
            # LLVM puts a function it deems cold in `.text.unlikely.NAME`.
            f.write(f"    *(.text.{p} .text.unlikely.{p})\n")
        f.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"{len(names)} functions ({size // 1024} KiB) as {len(patterns)} patterns", file=sys.stderr)


main()
