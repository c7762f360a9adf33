#!/usr/bin/env python3
"""Render bench/run.sh results (JSON lines from timeit.py) as markdown tables.

    report.py RESULTS SECTION [--bytes N]

SECTION is foundation, concurrency or output. Each table shows medians side
by side, the ratio to the reference the target is stated against, the target,
and whether it was met. A missing or failed measurement shows as n/a.
"""

import argparse
import json

MIB = 1024.0


def load(path):
    data, notes = {}, []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                k = (r["section"], r["case"], r["tool"])
                data.setdefault(k, {}).update(r)
                if r.get("note"):
                    notes.append((r["section"], "%s / %s: %s" % (r["case"], r["tool"], r["note"])))
    except FileNotFoundError:
        pass
    return data, notes


def fmt_ms(v):
    if v is None:
        return "n/a"
    if v < 10:
        return "%.2f ms" % v
    if v < 1000:
        return "%.1f ms" % v
    return "%.2f s" % (v / 1000.0)


def fmt_mib(kib):
    return "n/a" if kib is None else "%.1f MiB" % (kib / MIB)


def ratio(a, b, unit="×"):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f%s" % (a / b, unit)


def met(ok):
    if ok is None:
        return "—"
    return "yes" if ok else "**no**"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


class Results:
    def __init__(self, data, section):
        self.data, self.section = data, section

    def ms(self, case, tool):
        return self.data.get((self.section, case, tool), {}).get("ms")

    def rss(self, case, tool):
        return self.data.get((self.section, case, tool), {}).get("rss_kib")

    def seen(self, case, tool):
        return (self.section, case, tool) in self.data


def cell(r, case, tool):
    """A timing cell: n/a when measured and failed, blank when not measured."""
    if not r.seen(case, tool):
        return "—"
    return fmt_ms(r.ms(case, tool))


def foundation(r):
    rows = []
    floor = r.ms("floor", "sh")

    t, j = r.ms("list20", "tasker"), r.ms("list20", "just")
    rows.append(["`-l`, 20 tasks", cell(r, "list20", "tasker"), cell(r, "list20", "just"),
                 "—", "—", ratio(t, j, "× just"), "≤ `just --list`",
                 met(None if t is None or j is None else t <= j)])

    t = r.ms("one", "tasker")
    over = None if t is None or floor is None else t - floor
    rows.append(["one-step `true` task", cell(r, "one", "tasker"), cell(r, "one", "just"),
                 cell(r, "one", "make"), cell(r, "floor", "sh"),
                 "—" if over is None else "%+.2f ms vs sh" % over,
                 "≤ `sh -c true` + 0.5 ms", met(None if over is None else over <= 0.5)])

    t, j = r.ms("list5000", "tasker"), r.ms("list5000", "just")
    rows.append(["`-l`, 5,000 tasks", cell(r, "list5000", "tasker"), cell(r, "list5000", "just"),
                 "—", "—", ratio(t, j, "× just"), "< 30 ms",
                 met(None if t is None else t < 30)])

    t, m = r.ms("run5000", "tasker"), r.ms("run5000", "make")
    j = r.ms("run5000", "just")
    ref = ratio(t, m, "× make") if m is not None else ratio(t, j, "× just")
    rows.append(["run the last of 5,000 tasks", cell(r, "run5000", "tasker"),
                 cell(r, "run5000", "just"), cell(r, "run5000", "make"), cell(r, "floor", "sh"),
                 ref, "—", "—"])
    t, one = r.ms("list5000x50", "tasker"), r.ms("list5000", "tasker")
    rows.append(["`-l`, 5,000 tasks in 50 included files", cell(r, "list5000x50", "tasker"),
                 "—", "—", "—", ratio(t, one, "× one file"), "< 30 ms",
                 met(None if t is None else t < 30)])
    t, one = r.ms("run5000x50", "tasker"), r.ms("run5000", "tasker")
    rows.append(["run the last of 5,000 tasks in 50 included files",
                 cell(r, "run5000x50", "tasker"), "—", "—", cell(r, "floor", "sh"),
                 ratio(t, one, "× one file"), "—", "—"])
    return table(["case", "tasker", "just", "make", "`sh -c true`", "tasker vs ref",
                  "target", "met"], rows)


def concurrency(r):
    rows = []
    for n, label in (("200", "200 deps"), ("1000", "1,000 deps")):
        case = "fan" + n
        t, m = r.ms(case, "tasker"), r.ms(case, "make")
        rows.append([label + ", `-j2`", cell(r, case, "tasker"), cell(r, case, "make"),
                     cell(r, case, "just"), ratio(t, m, "× make"), "≤ `make -j2`",
                     met(None if t is None or m is None else t <= m)])
    out = table(["case", "`tasker -j2 all`", "`make -j2 all`", "`just all` [parallel]",
                 "tasker vs make", "target", "met"], rows)
    kib = r.rss("rss1000", "tasker")
    out += "\n\n" + table(["case", "peak RSS", "target", "met"], [[
        "tasker, 1,000 deps, `-j2`", fmt_mib(kib), "< 20 MiB",
        met(None if kib is None else kib < 20 * MIB)]])
    return out


def output(r, nbytes):
    rows = []
    prod = r.ms("producer", "sh")
    relay = r.ms("relay", "sh")
    cases = [
        ("producer", "sh", "producer alone (`yes` into `head -c`)", None),
        ("relay", "sh", "producer through `cat` (the cost of any reader in the middle)", None),
        ("plain", "tasker", "(a) tasker, no output keys", 0.95),
        ("failon", "tasker", "(b) tasker, `fail_on`", 0.8),
        ("prefixed", "tasker", "(c) tasker `--output prefixed`", 0.8),
    ]
    for case, tool, label, want in cases:
        ms, kib = r.ms(case, tool), r.rss(case, tool)
        mbs = None if ms is None or not nbytes else nbytes / (ms / 1000.0) / 1e6
        rel = None if ms is None or prod is None else prod / ms
        if want is None:
            target, ok = "—", None
        else:
            target = "%s producer, RSS < 16 MiB" % ("≈ (≥ 0.95×)" if want > 0.9 else "≥ 0.8×")
            ok = None
            if rel is not None and kib is not None:
                ok = rel >= want and kib < 16 * MIB
            elif rel is not None and rel < want:
                ok = False
        via_cat = None if ms is None or relay is None else relay / ms
        rows.append([label, cell(r, case, tool), "n/a" if mbs is None else "%.0f" % mbs,
                     "—" if rel is None or case == "producer" else "%.2f×" % rel,
                     "—" if via_cat is None or case in ("producer", "relay") else "%.2f×" % via_cat,
                     fmt_mib(kib) if r.seen(case, tool) else "—", target, met(ok)])
    return table(["case", "median", "MB/s", "× producer", "× through cat", "peak RSS", "target", "met"], rows)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("section", choices=["foundation", "concurrency", "output"])
    p.add_argument("--bytes", type=int, default=0)
    a = p.parse_args()
    data, notes = load(a.results)
    r = Results(data, a.section)
    if a.section == "foundation":
        print(foundation(r))
    elif a.section == "concurrency":
        print(concurrency(r))
    else:
        print(output(r, a.bytes))
    mine = [n for s, n in notes if s == a.section]
    if mine:
        print("\nn/a rows:")
        for n in mine:
            print("- " + n)


if __name__ == "__main__":
    main()
