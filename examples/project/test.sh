#!/bin/sh
# Tests for build/hello; run by `tasker test`. Exits non-zero on the first failure.
set -eu
bin=${1:-build/hello}
fails=0

check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1: expected '$2', got '$3'"
        fails=$((fails + 1))
    fi
}

check "default greeting" "Hello, world!" "$("$bin")"
check "named greeting" "Hello, tasker!" "$("$bin" tasker)"
check "version" "hello $(cat VERSION)" "$("$bin" --version)"

[ "$fails" -eq 0 ] && echo "all tests passed"
exit "$fails"
