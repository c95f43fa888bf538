#!/bin/sh
# scripts/demo.sh BUILD_DIR - what `make demo` shows: a correct async
# program, buggy ones and what coscope says about each, and a live process
# looked at from outside.
set -u
b=${1:-build}
ex="$b/examples"
coscope="$b/cli/coscope"
preload="$b/agent/libcoscope-preload.so"
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  say() { printf '\n== %s\n' "$*"; }
fi
run() { printf '$ %s\n' "$*"; "$@"; printf '(exit status %s)\n' "$?"; }

say "fetch_data: three tasks fetch for 3, 1 and 2 s concurrently; the whole run takes ~3 s, not 6"
run "$ex/fetch_data"

say "a coroutine created and never awaited"
run "$ex/buggy" never-awaited

say "a task fails and nobody retrieves its error"
run "$ex/buggy" unretrieved

say "a blocking sleep() inside a task freezes the loop (the interposer, LD_PRELOAD, catches it)"
printf '$ LD_PRELOAD=%s %s\n' "$preload" "$ex/buggy blocking-sleep"
LD_PRELOAD="$preload" "$ex/buggy" blocking-sleep
printf '(exit status %s)\n' "$?"

say "a CPU-bound step: the watchdog samples the loop thread while it runs"
run "$ex/buggy" cpu-loop

say "two tasks each wait for the lock the other holds"
run "$ex/buggy" deadlock

say "a task overflows its 64 KiB stack: the guard page catches it, and coscope names the task"
(ulimit -c 0; run "$ex/buggy" overflow) 2>&1

if [ -d "$b/python/lib/coscope" ]; then
  say "an unmodified asyncio program (python3 examples/python/prices.py): coscope check finds its blocking call, with the .py line"
  run "$coscope" check -- /usr/bin/python3 examples/python/prices.py
fi

say "a live server, looked at from another process without stopping it"
fifo=$(mktemp -u)
mkfifo "$fifo"
"$ex/echo_server" 0 >"$fifo" 2>/dev/null &
pid=$!
read -r line <"$fifo"
rm -f "$fifo"
echo "$line (pid $pid)"
run "$coscope" ps
run "$coscope" tasks "$pid" --stacks
kill -INT "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
exit 0
