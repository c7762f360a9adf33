#!/usr/bin/env python3
"""Generate the equivalent tasks.toml / justfile / Makefile that bench/run.sh times.

    gen.py list N DIR      N tasks with help (some with arguments), each `true`
    gen.py split N F DIR   the N tasks of `list`, over F files that DIR/tasks.toml
                           includes (p00/tasks.toml ...); prints the full name
                           of the last task
    gen.py one DIR         one task `t` whose only step is `true`
    gen.py chain DIR       tasks `a`, `b`, `c`, each `true` (run as `a b c`)
    gen.py mib DIR         one task `t` writing 1 MiB to the inherited stdout
    gen.py fanout N DIR    task `all` depending on N independent `true` tasks
                           (justfile: `[parallel]` on `all`)
    gen.py output DIR      plain.toml, failon.toml and extract.toml: one task
                           `out` writing $BENCH_BYTES bytes of 100-byte lines
                           (the second with fail_on = ["NEVER_MATCHES_xyz"],
                           the third with an `extract` that only the last
                           line, `version 1.2.3`, matches)

Files for tasker use only the basics of SPEC sections 2-3 (help, args, deps,
run), so each benchmark works as soon as those are implemented.
"""

import os
import sys

LINE = "a" * 99  # `yes` adds the newline: 100-byte lines


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def gen_list(n, d):
    toml, just, make = [], ["set shell := [\"sh\", \"-c\"]\n"], []
    width = len(str(n - 1))
    for i in range(n):
        name = "t%0*d" % (width, i)
        help_ = "Do step %d of the project" % i
        toml.append("[tasks.%s]\nhelp = \"%s\"\nrun = \"true\"\n" % (name, help_))
        if i == n - 1:  # the task run5000 runs: no arguments
            just.append("# %s\n%s:\n    true\n" % (help_, name))
        elif i % 4 == 1:
            toml.append("[[tasks.%s.args]]\nname = \"release\"\ntype = \"bool\"\n"
                        "help = \"Optimised\"\n" % name)
            just.append("# %s\n%s release=\"false\":\n    true\n" % (help_, name))
        elif i % 4 == 3:
            toml.append("[[tasks.%s.args]]\nname = \"target\"\npositional = true\n"
                        "help = \"Where\"\n" % name)
            just.append("# %s\n%s target:\n    true\n" % (help_, name))
        else:
            just.append("# %s\n%s:\n    true\n" % (help_, name))
        toml.append("\n")
        just.append("\n")
        make.append("%s:\n\ttrue\n" % name)
    last = "t%0*d" % (width, n - 1)
    make.append(".PHONY: %s\n" % " ".join("t%0*d" % (width, i) for i in range(n)))
    write(os.path.join(d, "tasks.toml"), "".join(toml))
    write(os.path.join(d, "justfile"), "".join(just))
    write(os.path.join(d, "Makefile"), "".join(make))
    print(last)


def list_tasks(names):
    """The tasks.toml text of gen_list for these task names (same help and
    arguments pattern, by position)."""
    toml = []
    for i, name in enumerate(names):
        toml.append("[tasks.%s]\nhelp = \"Do step %d of the project\"\nrun = \"true\"\n" % (name, i))
        if i == len(names) - 1:
            pass
        elif i % 4 == 1:
            toml.append("[[tasks.%s.args]]\nname = \"release\"\ntype = \"bool\"\n"
                        "help = \"Optimised\"\n" % name)
        elif i % 4 == 3:
            toml.append("[[tasks.%s.args]]\nname = \"target\"\npositional = true\n"
                        "help = \"Where\"\n" % name)
        toml.append("\n")
    return "".join(toml)


def gen_split(n, files, d):
    """The 5,000-task listing with its tasks in included files (SPEC 9)."""
    width = len(str(n - 1))
    names = ["t%0*d" % (width, i) for i in range(n)]
    per = -(-n // files)
    fwidth = max(2, len(str(files - 1)))
    include = ["[include]\n"]
    last = None
    for f in range(files):
        part = names[f * per:(f + 1) * per]
        if not part:
            break
        ns = "p%0*d" % (fwidth, f)
        os.makedirs(os.path.join(d, ns), exist_ok=True)
        write(os.path.join(d, ns, "tasks.toml"), list_tasks(part))
        include.append("%s = \"%s/tasks.toml\"\n" % (ns, ns))
        last = "%s:%s" % (ns, part[-1])
    write(os.path.join(d, "tasks.toml"), "".join(include))
    print(last)


def gen_one(d):
    write(os.path.join(d, "tasks.toml"), "[tasks.t]\nrun = \"true\"\n")
    write(os.path.join(d, "justfile"), "set shell := [\"sh\", \"-c\"]\n\nt:\n    true\n")
    write(os.path.join(d, "Makefile"), "t:\n\ttrue\n.PHONY: t\n")


def gen_chain(d):
    write(os.path.join(d, "tasks.toml"),
          "".join("[tasks.%s]\nrun = \"true\"\n" % x for x in "abc"))
    write(os.path.join(d, "justfile"),
          "set shell := [\"sh\", \"-c\"]\n\n" + "".join("%s:\n    true\n" % x for x in "abc"))
    write(os.path.join(d, "Makefile"), "".join("%s:\n\ttrue\n" % x for x in "abc") + ".PHONY: a b c\n")


def gen_mib(d):
    cmd = "head -c 1048576 /dev/zero"
    write(os.path.join(d, "tasks.toml"), "[tasks.t]\nrun = \"%s\"\n" % cmd)
    write(os.path.join(d, "justfile"), "set shell := [\"sh\", \"-c\"]\n\nt:\n    %s\n" % cmd)
    write(os.path.join(d, "Makefile"), "t:\n\t%s\n.PHONY: t\n" % cmd)


def gen_fanout(n, d):
    names = ["t%d" % i for i in range(n)]
    toml = ["[tasks.all]\ndeps = [%s]\nrun = \"true\"\n\n" % ", ".join('"%s"' % x for x in names)]
    toml += ["[tasks.%s]\nrun = \"true\"\n\n" % x for x in names]
    just = ["set shell := [\"sh\", \"-c\"]\n\n[parallel]\nall: %s\n    true\n\n" % " ".join(names)]
    just += ["%s:\n    true\n\n" % x for x in names]
    make = ["all: %s\n\ttrue\n\n" % " ".join(names)]
    make += ["%s:\n\ttrue\n" % x for x in names]
    make.append(".PHONY: all %s\n" % " ".join(names))
    write(os.path.join(d, "tasks.toml"), "".join(toml))
    write(os.path.join(d, "justfile"), "".join(just))
    write(os.path.join(d, "Makefile"), "".join(make))


def gen_output(d):
    run = "run = 'yes %s | head -c \"$BENCH_BYTES\"'\n" % LINE
    write(os.path.join(d, "plain.toml"), "[tasks.out]\n" + run)
    write(os.path.join(d, "failon.toml"),
          "[tasks.out]\n" + run + "fail_on = [\"NEVER_MATCHES_xyz\"]\n")
    write(os.path.join(d, "extract.toml"),
          "[tasks.out]\nrun = 'yes %s | head -c \"$BENCH_BYTES\"; echo version 1.2.3'\n" % LINE
          + "extract = { version = 'version (\\S+)' }\n")
    write(os.path.join(d, "producer.sh"), "yes %s | head -c \"$BENCH_BYTES\"\n" % LINE)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    kind = argv[1]
    if kind == "list" and len(argv) == 4:
        gen_list(int(argv[2]), argv[3])
    elif kind == "split" and len(argv) == 5:
        gen_split(int(argv[2]), int(argv[3]), argv[4])
    elif kind == "one" and len(argv) == 3:
        gen_one(argv[2])
    elif kind == "chain" and len(argv) == 3:
        gen_chain(argv[2])
    elif kind == "mib" and len(argv) == 3:
        gen_mib(argv[2])
    elif kind == "fanout" and len(argv) == 4:
        gen_fanout(int(argv[2]), argv[3])
    elif kind == "output" and len(argv) == 3:
        gen_output(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
