#!/bin/sh
# tests/agent/resume.sh GROUP EXE COSCOPE - the watchdog's signal does not
# change what the program does, and its slow-step warnings reach the trace.
#   calls   every sleep/wait of agent_resume runs its full time under a
#           20 ms threshold (the sample signal lands in it), and the slow
#           report still comes, sampled in the call
#   alarm   the program's own SIGALRM still ends those calls with EINTR
#   trace   the slow warning lands in the loop's ring (agent_resume checks
#           its own segment), in the files of `coscope record -- CMD`,
#           COSCOPE_RECORD and `coscope record PID` as `coscope report`
#           reads them, and in `coscope metrics --once`
set -u
group=$1 exe=$2 coscope=$3
tmp=$(mktemp -d)
trap 'exec 3>&-; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export COSCOPE_SLOW_MS=20

report_has_slow() { # trace file, what made it
  "$coscope" report "$1" >"$tmp/r" 2>&1 || fail "$2: report failed: $(cat "$tmp/r")"
  [ "$(grep -c "slow: task 2 'hasher'" "$tmp/r")" = 1 ] ||
    fail "$2: report: not one slow warning for 'hasher': $(cat "$tmp/r")"
  grep -A8 "slow: task 2 'hasher'" "$tmp/r" | grep -q "crunch" ||
    fail "$2: report: no slow warning for 'hasher' in crunch: $(cat "$tmp/r")"
  echo "ok: $2: $(grep -A5 "slow: task" "$tmp/r" | tr -s ' ' | tr '\n' ' ')"
}

calls="usleep nanosleep clock_nanosleep poll ppoll select pselect epoll_wait"
case $group in
calls)
  for c in $calls sleep; do
    "$exe" "$c" >"$tmp/out" 2>"$tmp/err" ||
      fail "$c: $(cat "$tmp/out" "$tmp/err")"
    grep -q "Executing task 'main' took" "$tmp/err" ||
      fail "$c: no slow report: $(cat "$tmp/err")"
    grep -q "in wait_in" "$tmp/err" ||
      fail "$c: the sample is not in the call: $(cat "$tmp/err")"
    echo "ok: $(cat "$tmp/out")"
  done ;;
alarm)
  for c in $calls sleep; do
    "$exe" "alarm-$c" >"$tmp/out" 2>"$tmp/err" ||
      fail "alarm-$c: $(cat "$tmp/out" "$tmp/err")"
    grep -q "Executing task 'main' took" "$tmp/err" ||
      fail "alarm-$c: no slow report (the watchdog did not signal): $(cat "$tmp/err")"
    echo "ok: $(cat "$tmp/out")"
  done ;;
trace)
  # the 300 ms step is slow; the others (thread starts, under load) not
  export COSCOPE_SLOW_MS=100
  # the command recorded by coscope record (interposer preloaded, but not
  # under ASan, whose runtime must come first: the normal build has it)
  nopre=""
  [ "${COSCOPE_SANITIZE:-0}" = 1 ] && nopre=--no-preload
  "$coscope" record -o "$tmp/t.cst" $nopre -- "$exe" trace >"$tmp/out" 2>"$tmp/err" ||
    fail "trace: $(cat "$tmp/out" "$tmp/err")"
  grep -q "in the loop's ring" "$tmp/out" || fail "trace: $(cat "$tmp/out")"
  report_has_slow "$tmp/t.cst" record
  # the program's own COSCOPE_RECORD, without the interposer
  COSCOPE_RECORD="$tmp/t2.cst" "$exe" trace >"$tmp/out" 2>"$tmp/err" ||
    fail "trace: $(cat "$tmp/out" "$tmp/err")"
  report_has_slow "$tmp/t2.cst" COSCOPE_RECORD
  # live: the warning counted by the exporter while the process runs
  mkfifo "$tmp/in"
  "$exe" trace hold <"$tmp/in" >"$tmp/out2" 2>/dev/null &
  pid=$!
  exec 3>"$tmp/in"
  i=0
  until grep -q '^ready' "$tmp/out2"; do # the program says when
    kill -0 $pid 2>/dev/null || fail "hold: exited: $(cat "$tmp/out2")"
    i=$((i + 1)); [ $i -lt 3000 ] || fail "hold: never ready"
    sleep 0.01
  done
  "$coscope" metrics --once >"$tmp/m" 2>&1 || fail "metrics: $(cat "$tmp/m")"
  # and recorded from the outside: the warning is among the events its
  # rings still hold when the recording starts, however long it lasts
  "$coscope" record $pid -o "$tmp/t3.cst" --duration 1 >/dev/null 2>"$tmp/rec" ||
    fail "record PID: $(cat "$tmp/rec")"
  exec 3>&-
  wait $pid || fail "hold: exit $?"
  report_has_slow "$tmp/t3.cst" "record PID"
  line=$(grep "^coscope_warnings_total{.*pid=\"$pid\".*kind=\"slow\"" "$tmp/m" ||
         grep "^coscope_warnings_total{.*kind=\"slow\".*pid=\"$pid\"" "$tmp/m")
  [ "${line##* }" -ge 1 ] 2>/dev/null ||
    fail "metrics: slow warnings of $pid: '$line'"
  echo "ok: metrics: $line" ;;
*) fail "unknown group $group" ;;
esac
