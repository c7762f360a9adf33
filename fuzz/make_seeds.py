#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (docs/fuzzing.md) into
fuzz/seeds/<target>/ from the tasks.toml texts of tests/*.rs, the
repository's own tasks.toml and examples/*/tasks.toml.

    python3 fuzz/make_seeds.py

loader: each file text as it is.
args:   each file text, NUL, a task name and flags for its declared args.
render: each template string of each file (strings with {{ or {%), NUL,
        a few values (the format is in src/fuzzing.rs).
"""

import hashlib
import pathlib
import re
import shutil
import textwrap
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"


def texts():
    """Every tasks.toml text the repository holds."""
    found = [ROOT / "tasks.toml", *sorted(ROOT.glob("examples/*/tasks.toml"))]
    for path in found:
        yield path.read_text()
    raw = re.compile(r'r(#+)"(.*?)"\1', re.S)
    for path in sorted((ROOT / "tests").glob("*.rs")):
        for m in raw.finditer(path.read_text()):
            text = m.group(2)
            if "[tasks" in text or "[vars" in text or "[settings" in text:
                yield textwrap.dedent(text.lstrip("\n"))


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def words_for(doc):
    """A command line per task: its name, then each declared arg."""
    for name, task in (doc.get("tasks") or {}).items():
        if not isinstance(task, dict):
            continue
        words = [name]
        for arg in task.get("args") or []:
            if not isinstance(arg, dict) or "name" not in arg:
                continue
            kind = arg.get("type", "str")
            value = {"int": "3", "float": "1.5", "list": "a,b"}.get(kind, "x")
            if "choices" in arg and arg["choices"]:
                value = str(arg["choices"][0])
            if arg.get("positional"):
                words.append(value)
            elif kind in ("bool", "count"):
                words.append("--" + arg["name"])
            else:
                words += ["--" + arg["name"], value]
        yield words


def regressions(target):
    """The inputs kept in fuzz/regressions/<target>/ (docs/fuzzing.md)."""
    directory = ROOT / "fuzz" / "regressions" / target
    if not directory.is_dir():
        return set()
    return {path.read_bytes() for path in directory.iterdir() if path.is_file()}


KEPT = {target: regressions(target) for target in ("loader", "args", "render")}


def write(target, data):
    # An input kept among the regressions is replayed from there. As a
    # seed it would stop the campaign: libFuzzer runs the seeds first and
    # ends at the first one that crashes or times out, and the fuzz build
    # runs the render budget's template past its one second.
    if data in KEPT[target]:
        return
    directory = SEEDS / target
    directory.mkdir(parents=True, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    (directory / name).write_bytes(data)


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    values = b"\0staging\0[a,b c]\0#3\0?\0~"
    for text in texts():
        data = text.encode()
        write("loader", data)
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            continue
        for words in words_for(doc):
            write("args", data + b"\0" + "\0".join(words).encode())
        for s in strings(doc):
            if "{{" in s or "{%" in s:
                write("render", s.encode() + values)
    for target in ("loader", "args", "render"):
        print(target, len(list((SEEDS / target).iterdir())), "seeds")


main()
