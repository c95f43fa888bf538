#!/bin/sh
# bench/run.sh BUILD_DIR [--quick] - runs every coscope benchmark in one go
# and prints a table: figure, value, baseline measured in the same run,
# ratio, target, and whether the target is met.  Each bench's own output is
# kept in BUILD_DIR/bench/out/<name>.txt.  Exit status: 0 if every bench
# ran, 1 if one failed (a figure off its target is not a failure).
set -u
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: bench/run.sh BUILD_DIR [--quick]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
out="$build/bench/out"
mkdir -p "$out"
rows="$out/rows.tsv"
: >"$rows"
status=0

run() { # name, then the command line
  name=$1
  shift
  echo "== $name: $*"
  "$@" >"$out/$name.txt" 2>&1
  rc=$?
  grep -v '^@row' "$out/$name.txt" | sed 's/^/   /'
  if [ $rc -ne 0 ]; then
    echo "bench/run.sh: '$name' failed (exit $rc), see $out/$name.txt" >&2
    status=1
  fi
  grep '^@row' "$out/$name.txt" | cut -f2- >>"$rows"
}

echo "coscope benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m)," \
  "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
# The runtime's own figures (issue 3) are measured untraced: what tracing
# adds on top is bench_trace's figure, traced against COSCOPE=off in the
# same run (issue 4).  The agent, which a static link now carries too, is
# off as well (COSCOPE_REPORT=off): bench_trace --agent measures it.
echo "runtime benches run with COSCOPE=off COSCOPE_REPORT=off; bench_trace measures tracing's cost"
run switch env COSCOPE=off COSCOPE_REPORT=off "$build/bench/bench_switch" "$@"
run spawn env COSCOPE=off COSCOPE_REPORT=off "$build/bench/bench_spawn" --peer "$here/peers/asyncio_spawn.py" "$@"
run memory env COSCOPE=off COSCOPE_REPORT=off "$build/bench/bench_memory" "$@"
run echo env COSCOPE=off COSCOPE_REPORT=off "$build/bench/bench_echo" "$@"
run fdpair env COSCOPE=off COSCOPE_REPORT=off "$build/bench/bench_fdpair" "$@"
if [ -x "$build/bench/bench_trace" ]; then
  run trace "$build/bench/bench_trace" "$@"
  run agent "$build/bench/bench_trace" --agent "$@"
  run agent_cost sh "$here/agent_cost.sh" "$build" "$@"
  run trace_cost sh "$here/agent_cost.sh" "$build" --tracing "$@"
fi
if [ -x "$build/cli/coscope" ] && [ -x "$build/bench/cli_target" ]; then
  run cli sh "$here/bench_cli.sh" "$build" "$@"
fi
if [ -x "$build/cli/coscope" ] && [ -x "$build/bench/metrics_target" ]; then
  run metrics python3 "$here/bench_metrics.py" "$build/cli/coscope" "$build/bench/metrics_target" "$@"
fi

echo
awk -F '\t' '
  BEGIN { printf "%-28s %-14s %-22s %-16s %-18s %s\n", "figure", "value",
          "baseline (same run)", "ratio", "target", "";
          printf "%-28s %-14s %-22s %-16s %-18s %s\n", "------", "-----",
          "-------------------", "-----", "------", "" }
  { printf "%-28s %-14s %-22s %-16s %-18s %s\n", $1, $2, $3, $4, $5, $6 }
' "$rows"
exit $status
