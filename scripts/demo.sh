#!/bin/sh
# scripts/demo.sh BUILD_DIR - what `make demo` shows: a correct async
# program, then buggy ones and what coscope says about each.
set -u
b=${1:-build}
ex="$b/examples"
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  say() { printf '\n== %s\n' "$*"; }
fi
run() { printf '$ %s\n' "$*"; "$@"; printf '(exit status %s)\n' "$?"; }

say "fetch_data: three tasks fetch for 3, 1 and 2 s concurrently; the whole run takes ~3 s, not 6"
run "$ex/fetch_data"

say "a deadlock: two tasks each wait for the lock the other holds"
run "$ex/buggy" deadlock

say "cs_run() inside a running loop (asyncio's nested asyncio.run pitfall)"
run "$ex/buggy" nested

say "a task raises; gather returns its error and message to main"
run "$ex/buggy" raise

say "a task overflows its 64 KiB stack: the guard page catches it, and coscope names the task"
(ulimit -c 0; run "$ex/buggy" overflow) 2>&1
exit 0
