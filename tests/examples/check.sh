#!/bin/sh
# tests/examples/check.sh EXAMPLES_DIR CASE - runs one example as a user
# would and checks what they would read: the order of fetch_data's lines,
# and each buggy mode's exit status and message.
# RUNNER, if set, runs the binaries (qemu-aarch64 for the cross build).
set -u
dir=$1
case=$2
run() { ${RUNNER:-} "$@"; }
fail() { echo "FAIL: $case: $*" >&2; exit 1; }

case $case in
fetch_data)
  out=$(run "$dir/fetch_data" 0.02) || fail "exit status $?"
  order=$(echo "$out" | sed -n 's/.*\] \([ABC]\) done$/\1/p' | tr -d '\n')
  [ "$order" = BCA ] || fail "finished in order '$order', want BCA: $out"
  echo "$out" | grep -q "all done: A done, B done, C done" ||
    fail "gather results missing or out of argument order: $out"
  ;;
buggy_deadlock)
  err=$(run "$dir/buggy" deadlock 2>&1); rc=$?
  [ $rc -eq 1 ] || fail "exit status $rc"
  echo "$err" | grep -q "CS_EDEADLK: deadlock: every task is waiting" || fail "$err"
  ;;
buggy_nested)
  err=$(run "$dir/buggy" nested 2>&1); rc=$?
  [ $rc -eq 1 ] || fail "exit status $rc"
  echo "$err" | grep -q "CS_ENESTED: nested cs_run: cs_run() cannot be called from a running event loop" || fail "$err"
  ;;
buggy_raise)
  err=$(run "$dir/buggy" raise 2>&1); rc=$?
  [ $rc -eq 1 ] || fail "exit status $rc"
  echo "$err" | grep -q "CS_ETIMEDOUT: gather: fetching 'http://bad/2' timed out" || fail "$err"
  ;;
buggy_overflow)
  err=$(ulimit -c 0; ASAN_OPTIONS=handle_segv=0 run "$dir/buggy" overflow 2>&1); rc=$?
  [ $rc -eq 139 ] || fail "exit status $rc, want death by SIGSEGV (139)"
  echo "$err" | grep -q "stack overflow in task 'deep'" || fail "$err"
  ;;
buggy_usage)
  err=$(run "$dir/buggy" nosuchbug 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "exit status $rc, want 2"
  echo "$err" | grep -q "^usage: buggy" || fail "$err"
  ;;
*) fail "unknown case" ;;
esac
echo "ok: $case"
