#!/bin/sh
# tests/agent/trace_warnings.sh BUGGY COSCOPE - the agent's reports reach the
# trace too: each buggy mode recorded with COSCOPE_RECORD, then read back
# with `coscope report`, lists its warning with the task it is about and a
# stack.
set -u
buggy=$1 coscope=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

check() { # mode, then the warning line expected in the report
  mode=$1 want=$2
  rm -f "$tmp/t.cst"
  (ulimit -c 0; ASAN_OPTIONS=handle_segv=0:detect_leaks=0 \
     COSCOPE_RECORD="$tmp/t.cst" "$buggy" "$mode") >/dev/null 2>&1
  "$coscope" report "$tmp/t.cst" >"$tmp/r" 2>&1 || fail "$mode: report failed: $(cat "$tmp/r")"
  grep -q -- "$want" "$tmp/r" || fail "$mode: no '$want' in: $(cat "$tmp/r")"
  # a stack: the line after the warning is a frame
  grep -A1 -- "$want" "$tmp/r" | tail -n1 | grep -q '#0 ' ||
    [ "$mode" = pending ] || fail "$mode: no stack under '$want'"
  echo "ok: $mode"
}

check deadlock "deadlock: task 3 'worker-b'"
check never-awaited "never-awaited"
check unretrieved "exception: task 2 'fetch_profile'"
check pending "pending: task 2 'heartbeat'"
