#!/bin/sh
# bench/callgrind.sh BUILD_DIR - instructions per op of the switch round
# trip, of spawn+await and of an fd round trip between two tasks (the echo
# server's I/O path: EAGAIN, wait, poll, wake), counted by valgrind's
# callgrind.  Unlike times, instruction counts repeat exactly on a shared,
# noisy machine (run with COSCOPE=off for that: tracing batches short
# yields by their measured duration, which valgrind stretches).
#
# Each bench runs twice with different N; (Ir(N2) - Ir(N1)) / (N2 - N1)
# cancels start-up and loop set-up, leaving the cost of one op.  The
# per-function profile of the larger run is kept in BUILD_DIR/bench/out/
# (callgrind_annotate shows where the instructions go).
set -eu
. "$(dirname "$0")/script_args.sh"
bench_script_args bench/callgrind.sh valgrind "$@"
out="$build/bench/out"
mkdir -p "$out"

ir() { # callgrind output file -> total instructions
  awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

count() { # name, N1, N2, bench command without -n
  name=$1 n1=$2 n2=$3
  shift 3
  for n in "$n1" "$n2"; do
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$name.$n" \
      "$@" -n "$n" --reps 1 >/dev/null 2>"$out/callgrind.$name.$n.log"
  done
  i1=$(ir "$out/callgrind.$name.$n1")
  i2=$(ir "$out/callgrind.$name.$n2")
  echo "$name $n1 $i1 $n2 $i2" | awk '{ printf "%-8s %12.1f instructions/op   (Ir %s at N=%s, %s at N=%s)\n",
      $1, ($5 - $3) / ($4 - $2), $3, $2, $5, $4 }'
  callgrind_annotate --inclusive=no "$out/callgrind.$name.$n2" 2>/dev/null |
    sed -n '/^-* *$/,$p' | head -40 >"$out/callgrind.$name.top.txt" || true
}

echo "callgrind, $(valgrind --version), $(date -u '+%Y-%m-%d %H:%M UTC')"
count switch 100000 200000 "$build/bench/bench_switch" --only symmetric
# Under valgrind every step is slower than COSCOPE_BATCH_NS's 1 us, so
# nothing would be batched: count with the threshold that real speed gives.
# The agent's reports are off: under valgrind a step can pass the
# watchdog's threshold, and symbolising its warning costs millions.
export COSCOPE_BATCH_NS=100000 COSCOPE_REPORT=off
count spawn 50000 100000 "$build/bench/bench_spawn" --child --one
export COSCOPE=off
count spawn_off 50000 100000 "$build/bench/bench_spawn" --child --one
unset COSCOPE COSCOPE_BATCH_NS COSCOPE_REPORT
count fdpair 20000 40000 "$build/bench/bench_fdpair" --only coscope
echo "profiles: $out/callgrind.{switch,spawn,spawn_off,fdpair}.top.txt"
