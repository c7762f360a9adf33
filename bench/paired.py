#!/usr/bin/env python3
"""Time commands in turn: one run of each, round after round.

    paired.py [--rounds N] [--header] CASE -- LABEL CMD... -- LABEL CMD...

Prints one markdown row: the case, each command's median wall time, and
the first command's median over the last one's. Every round runs each
command once, so a machine whose speed drifts (other work, a noisy
neighbour on a VM) slows both sides alike; timing each command's runs in
a block, as hyperfine does, lets drift between the blocks into the ratio.

Each command runs with stdin and stdout from/to /dev/null and stderr to
/dev/null, started with posix_spawn (no shell), after two untimed runs.
"""

import os
import statistics
import sys
import time


def usage():
    sys.stderr.write(__doc__)
    sys.exit(2)


def parse(argv):
    rounds = 100
    header = False
    while argv and argv[0].startswith("--"):
        if argv[0] == "--rounds" and len(argv) > 1:
            rounds = int(argv[1])
            argv = argv[2:]
        elif argv[0] == "--header":
            header = True
            argv = argv[1:]
        else:
            usage()
    if len(argv) < 2 or argv[1] != "--":
        usage()
    case = argv[0]
    commands = []
    for word in argv[1:]:
        if word == "--":
            commands.append([])
        else:
            commands[-1].append(word)
    if len(commands) < 2 or any(len(c) < 2 for c in commands):
        usage()
    return rounds, header, case, [(c[0], c[1:]) for c in commands]


def run(cmd, null):
    actions = [
        (os.POSIX_SPAWN_DUP2, null, 0),
        (os.POSIX_SPAWN_DUP2, null, 1),
        (os.POSIX_SPAWN_DUP2, null, 2),
    ]
    start = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    took = time.perf_counter() - start
    return took, status


def main():
    rounds, header, case, commands = parse(sys.argv[1:])
    null = os.open(os.devnull, os.O_RDWR)
    for _, cmd in commands:
        for _ in range(2):
            _, status = run(cmd, null)
            if status != 0:
                sys.stderr.write(f"paired.py: {' '.join(cmd)} failed ({status})\n")
                sys.exit(1)
    times = [[] for _ in commands]
    for _ in range(rounds):
        for i, (_, cmd) in enumerate(commands):
            took, _ = run(cmd, null)
            times[i].append(took)
    medians = [statistics.median(t) * 1000 for t in times]
    if header:
        labels = " | ".join(label for label, _ in commands)
        print(f"| case | {labels} | {commands[0][0]} vs {commands[-1][0]} | rounds |")
        print("|---|" + "---:|" * (len(commands) + 2))
    cells = " | ".join(f"{m:.2f} ms" for m in medians)
    print(f"| {case} | {cells} | {medians[0] / medians[-1]:.2f}× | {rounds} |")


if __name__ == "__main__":
    main()
