#!/bin/sh
# tests/agent/check.sh CASE BUGGY CLEAN PRELOAD FORWARD MANY WATCHDOG - runs
# one program as a user would and checks what the agent writes to stderr:
# the headline (asyncio's wording), the task's name, the culprit function in
# the stack, the exit status, and silence where nothing is wrong.
set -u
case=$1 buggy=$2 clean=$3 preload=$4 forward=$5 many=$6 watchdog=$7
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $case: $*" >&2; echo "--- stderr:" >&2; cat "$tmp/err" >&2; exit 1; }
skip() { echo "SKIP: $case: $*"; exit 0; }

# Under AddressSanitizer the ASan runtime must come first in LD_PRELOAD.
asan=""
if [ "${COSCOPE_SANITIZE:-0}" = 1 ]; then
  asan=$(cc -print-file-name=libasan.so 2>/dev/null)
  [ -f "$asan" ] || asan=""
fi
with_preload() {
  if [ "${COSCOPE_SANITIZE:-0}" = 1 ] && [ -z "$asan" ]; then
    skip "no libasan.so to put before the preload library under ASan"
  fi
  LD_PRELOAD="${asan:+$asan:}$preload" ASAN_OPTIONS=handle_segv=0:detect_leaks=0 "$@"
}
# run CMD...: stderr to $tmp/err, status to $rc; no core files
run() { (ulimit -c 0; ASAN_OPTIONS=${ASAN_OPTIONS:-handle_segv=0} "$@") >"$tmp/out" 2>"$tmp/err"; rc=$?; }
has() { grep -q -- "$1" "$tmp/err" || fail "no '$1' in stderr"; }
hasE() { grep -qE -- "$1" "$tmp/err" || fail "no /$1/ in stderr"; }
reports() { grep -c '^coscope: ' "$tmp/err"; }
status() { [ "$rc" -eq "$1" ] || fail "exit status $rc, want $1"; }
silent() { n=$(reports); [ "$n" -eq 0 ] || fail "$n reports, want none"; }
one() { n=$(reports); [ "$n" -eq 1 ] || fail "$n reports, want exactly one"; }

case $case in
never_awaited)
  # the coroutine leaks: that is the bug shown, not one for LeakSanitizer
  ASAN_OPTIONS=handle_segv=0:detect_leaks=0 run "$buggy" never-awaited
  status 0; one
  has "coscope: coroutine 'send_email' was never awaited"
  hasE "created at .*buggy.c:[0-9]+, still unstarted when its loop ended"
  hasE "#[0-9]+ +0x[0-9a-f]+ in notify_user[+.]"
  ;;
unretrieved)
  run "$buggy" unretrieved; status 0; one
  has "coscope: Task exception was never retrieved"
  has "task 'fetch_profile'"
  has "failed with CS_EINVAL: profile is not a JSON object: '<html>'"
  hasE "#0 +0x[0-9a-f]+ in parse_profile\+"
  hasE "in fetch_profile\+"
  ;;
pending)
  run "$buggy" pending; status 0; one
  has "coscope: Task was destroyed but it is pending!"
  has "task 'heartbeat'"
  has "sleeps ("
  hasE "#0 +0x[0-9a-f]+ in heartbeat\+"
  ;;
blocking_sleep)
  # (the watchdog, where it runs, reports the 200 ms step too: not counted)
  COSCOPE_REPORT=blocking with_preload run "$buggy" blocking-sleep; status 0; one
  hasE "coscope: blocking call usleep\(\) on the event loop in task 'slow_handler' \(took [0-9.]+ ms\)"
  hasE "#0 +0x[0-9a-f]+ in load_settings\+"
  hasE "#1 +0x[0-9a-f]+ in slow_handler\+"
  ;;
blocking_read)
  COSCOPE_REPORT=blocking with_preload run "$buggy" blocking-read; status 0; one
  hasE "coscope: blocking call read\(\) on the event loop in task 'request_reader' \(took [0-9.]+ ms\)"
  hasE "#0 +0x[0-9a-f]+ in read_request\+"
  ;;
blocking_needs_preload)
  # without the interposer no blocking report (the watchdog sees the step)
  COSCOPE_REPORT=blocking run "$buggy" blocking-sleep; status 0; silent
  ;;
lock_cycle)
  run "$buggy" lock-cycle; status 1; one
  hasE "coscope: deadlock: task 'flush_cache' \(id [0-9]+\) waits for lock 0x[0-9a-f]+ held by task 'update_cache' \(id [0-9]+\), which awaits task 'flush_cache'"
  hasE "in flush_cache\+"
  hasE "in update_cache\+"
  ;;
deadlock)
  run "$buggy" deadlock; status 1; one
  hasE "coscope: deadlock: task 'worker-[ab]' \(id [0-9]+\) waits for lock 0x[0-9a-f]+ held by task 'worker-[ab]' \(id [0-9]+\), which waits for lock"
  hasE "in grab_both\+"
  ;;
crash)
  run "$buggy" crash; status 139; one
  has "coscope: task 'parser' crashed: SIGSEGV at 0x0"
  hasE "#0 +0x[0-9a-f]+ in parse_record\+"
  hasE "#1 +0x[0-9a-f]+ in parser\+"
  ;;
overflow)
  run "$buggy" overflow; status 139
  has "coscope: stack overflow in task 'deep'"
  has "coscope: task 'deep' crashed: SIGSEGV"
  hasE "in recurse\+"
  ;;
clean)
  run "$clean" 2000; status 0; silent
  ;;
clean_preload_10000)
  with_preload run "$clean" 10000; status 0; silent
  grep -q "all counts add up" "$tmp/out" || fail "wrong output"
  ;;
report_off)
  COSCOPE_REPORT=off run "$buggy" unretrieved; status 0; silent
  COSCOPE_REPORT=off with_preload run "$buggy" blocking-sleep; status 0; silent
  COSCOPE_REPORT=off run "$buggy" crash; status 139; silent
  ;;
report_classes)
  COSCOPE_REPORT=pending,deadlock run "$buggy" unretrieved; status 0; silent
  COSCOPE_REPORT=pending,deadlock run "$buggy" pending; status 0; one
  has "Task was destroyed but it is pending!"
  # "exception", the trace's older name of the class, still turns it on
  COSCOPE_REPORT=exception run "$buggy" unretrieved; status 0; one
  has "Task exception was never retrieved"
  COSCOPE_REPORT=exception run "$buggy" pending; status 0; silent
  ;;
strict)
  COSCOPE_STRICT=1 run "$buggy" unretrieved; status 134; one
  has "Task exception was never retrieved"
  has "COSCOPE_STRICT=1: aborting at the first report"
  ;;
allow)
  export COSCOPE_REPORT=blocking
  printf '# may block\nload_settings\n' > "$tmp/allow"
  COSCOPE_ALLOW="$tmp/allow" with_preload run "$buggy" blocking-sleep; status 0; silent
  printf 'buggy.c:241\n' > "$tmp/allow"
  COSCOPE_ALLOW="$tmp/allow" with_preload run "$buggy" blocking-sleep; status 0; one
  ;;
forward)
  with_preload run "$forward"; status 0; silent
  grep -q "forward: 0 failures" "$tmp/out" || fail "wrong output: $(cat "$tmp/out")"
  has "forward: a line on stderr from a task"
  ;;
forward_contended)
  COSCOPE_REPORT=blocking with_preload run "$forward" contended; status 0; one
  has "coscope: blocking call pthread_mutex_lock() on the event loop in task 'main'"
  hasE "in contended\+"
  ;;
budget)
  # 20 reports of a class, then a count at exit instead of 980 more
  run "$many" 1000; status 0
  n=$(grep -c "was never awaited" "$tmp/err")
  [ "$n" -eq 20 ] || fail "$n never-awaited reports, want 20"
  has "coscope: 980 more 'never-awaited' reports were left out (after the first 20)"
  ;;
slow)
  # the 300 ms step once, with its task and where it spun; not the 20 ms one
  run "$watchdog"; status 0; one
  hasE "coscope: Executing task 'cruncher' took 0\.[3-9][0-9]* seconds"
  hasE "#[0-9]+ +0x[0-9a-f]+ in crunch[+.]"
  COSCOPE_REPORT=pending run "$watchdog"; status 0; silent
  # the long step just before exit: reported at exit, not lost
  run "$watchdog" exit; status 0; one
  hasE "coscope: Executing task 'cruncher' took 0\.[3-9][0-9]* seconds"
  ;;
cpu_loop)
  # the watchdog runs where libcoscope has the trace segment's reader
  # (a static link carries the reader in the program)
  lib=$(ldd "$buggy" 2>/dev/null | sed -n 's/.*libcoscope\.so[^ ]* => \([^ ]*\).*/\1/p')
  if [ -n "$lib" ] && ! nm -D "$lib" 2>/dev/null | grep -q ' T cs_trace_open_pid$'; then
    skip "libcoscope has no trace segment to take steps from: no watchdog"
  fi
  run "$buggy" cpu-loop; status 0; one
  # its step begins inside a yield batch, where the watchdog knows the
  # start only to within a look or two (10 ms each): 0.29 s is right too,
  # and a slow build on a loaded machine gives a few ms less
  hasE "coscope: Executing task 'hasher' took 0\.(2[5-9]|[3-9])[0-9]* seconds"
  # the sample lands anywhere in the loop, sometimes in the clock call that
  # checksum() makes: the culprit must be in the stack, with its caller
  hasE "#[0-9]+ +0x[0-9a-f]+ in checksum\+"
  hasE "#[0-9]+ +0x[0-9a-f]+ in hasher\+"
  ;;
report_dir)
  # COSCOPE_REPORT_DIR: each report also as one JSON line in DIR/<pid>.jsonl
  mkdir "$tmp/rd"
  COSCOPE_REPORT=blocking COSCOPE_REPORT_DIR="$tmp/rd" with_preload run "$buggy" blocking-sleep
  status 0; one
  COSCOPE_REPORT_DIR="$tmp/rd" run "$buggy" unretrieved; status 0
  COSCOPE_REPORT_DIR="$tmp/rd" run "$buggy" crash
  n=$(ls "$tmp/rd" | grep -c '^[0-9]*\.jsonl$')
  [ "$n" -eq 3 ] || fail "$n files in COSCOPE_REPORT_DIR, want 3"
  cat "$tmp/rd"/*.jsonl >"$tmp/all"
  python3 - "$tmp/all" <<'PY' || fail "bad JSON lines: $(cat "$tmp/all")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
by = {r["class"]: r for r in recs}
assert len(recs) == 3, recs
b = by["blocking"]
assert b["headline"].startswith("blocking call usleep() on the event loop"), b
assert b["task"] == "slow_handler" and isinstance(b["pid"], int), b
assert b["frames"][0]["function"] == "load_settings", b
assert b["frames"][0]["file"].endswith("buggy.c") and b["frames"][0]["line"] > 0, b
assert b["frames"][0]["ip"].startswith("0x"), b
u = by["unretrieved"]
assert u["headline"] == "Task exception was never retrieved" and u["task"] == "fetch_profile", u
assert u["frames"][0]["function"] == "parse_profile", u
c = by["crash"]
assert c["headline"].startswith("task 'parser' crashed: SIGSEGV"), c
assert c["task"] == "parser", c
PY
  ;;
*) fail "unknown case" ;;
esac
echo "ok: $case"
