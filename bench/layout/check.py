#!/usr/bin/env python3
"""Check that a release binary was laid out by link/startup.ld.

    check.py BINARY SCRIPT

The script records how many bytes of functions it placed when
bench/layout.sh wrote it; the binary's `.text.start` must hold at least
80% of that. Less means that the patterns no longer name what a start
runs (functions renamed, symbols not in the v0 scheme, the script not
passed to the linker): run bench/layout.sh again. Exit 1 then, 2 on bad
use.
"""

import re
import subprocess
import sys

if len(sys.argv) != 3:
    sys.stderr.write(__doc__)
    sys.exit(2)
binary, script = sys.argv[1:]
recorded = re.search(r"bytes: (\d+)", open(script).read())
if not recorded:
    sys.exit(f"{script}: no recorded size; write it with bench/layout.sh")
want = int(recorded.group(1))
sections = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
found = re.search(r"\] \.text\.start\s+PROGBITS\s+\S+\s+\S+\s+([0-9a-f]+)", sections)
have = int(found.group(1), 16) if found else 0
print(f"{binary}: .text.start holds {have // 1024} KiB of the {want // 1024} KiB that {script} placed")
if have < want * 0.8:
    sys.exit(f"{script} is stale for this build: run bench/layout.sh again")
