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


def versus(r, case, ref_case, ref_tool, unit, limit, label, t_case=None):
    """A row: tasker's median for `case`, its ratio to `ref_tool`'s median for
    `ref_case`, and whether the ratio is at most `limit`."""
    t, ref = r.ms(t_case or case, "tasker"), r.ms(ref_case, ref_tool)
    rt = None if t is None or ref is None else t / ref
    return [label, cell(r, t_case or case, "tasker"), cell(r, case, "just"), cell(r, case, "make"),
            cell(r, "floor", "sh"), ratio(t, ref, unit), "≤ %.1f%s" % (limit, unit),
            met(None if rt is None else rt <= limit)]


def foundation(r):
    rows = [
        versus(r, "list20", "floor", "sh", "× `sh -c true`", 2.0, "`-l`, 20 tasks"),
        versus(r, "one", "one", "make", "× make", 1.0, "one-step `true` task"),
        versus(r, "chain", "chain", "make", "× make", 1.0, "chain `a b c` of `true` tasks"),
        versus(r, "mib", "mib", "make", "× make", 1.0, "1 MiB to an inherited stdout"),
        versus(r, "list5000", "list5000", "just", "× just", 0.5, "`-l`, 5,000 tasks"),
        versus(r, "run5000", "run5000", "make", "× make", 1.0, "run the last of 5,000 tasks"),
    ]
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
        ("failon", "tasker", "(b) tasker, `fail_on`", None),
        ("prefixed", "tasker", "(c) tasker `--output prefixed`", 0.8),
    ]
    for case, tool, label, want in cases:
        ms, kib = r.ms(case, tool), r.rss(case, tool)
        mbs = None if ms is None or not nbytes else nbytes / (ms / 1000.0) / 1e6
        rel = None if ms is None or prod is None else prod / ms
        if case == "failon":
            # Patterns at pipe speed: within 1.05x of the same bytes through cat.
            target = "≤ 1.05× through cat, RSS < 16 MiB"
            ok = None
            if ms is not None and relay is not None:
                ok = ms <= 1.05 * relay and (kib is None or kib < 16 * MIB)
        elif want is None:
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
