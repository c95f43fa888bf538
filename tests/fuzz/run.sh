#!/bin/sh
# tests/fuzz/run.sh BINDIR HARNESS WORK runs=N|time=SECONDS SEEDS REGRESS CRASHES
# Runs libFuzzer binary BINDIR/fuzz_HARNESS on the seed corpus SEEDS/HARNESS
# and the regression inputs REGRESS/HARNESS, new inputs going to
# WORK/HARNESS, for N inputs (deterministic: seed 1, WORK emptied first:
# the smoke in `make test`) or SECONDS (WORK kept: `make fuzz`).  Prints
# one line: executions, coverage (edges, features), corpus size.  A crash,
# leak or timeout (an input taking over 10 s: a hang) is saved under
# CRASHES/HARNESS/ and fails the run; `make fuzz` saves it straight into
# tests/fuzz/regress/, where the normal suite replays it from then on.
# FUZZ_FLAGS adds libFuzzer options (-use_value_profile=1, -jobs=N ...).
set -u
bindir=$1 h=$2 work=$3/$2 mode=$4 seeds=$5 regress=$6 crashes=$7/$2
bin=$bindir/fuzz_$h
[ -x "$bin" ] || { echo "run.sh: no $bin" >&2; exit 2; }
case $mode in
  runs=*) rm -rf "$work"; opt="-runs=${mode#runs=} -seed=1" ;;
  time=*) opt="-max_total_time=${mode#time=}" ;;
  *) echo "run.sh: want runs=N or time=SECONDS, not '$mode'" >&2; exit 2 ;;
esac
mkdir -p "$work" "$crashes"
dirs=$work
[ -n "$seeds" ] && [ -d "$seeds/$h" ] && dirs="$dirs $seeds/$h"
[ -d "$regress/$h" ] && dirs="$dirs $regress/$h"
log=$work.log
# shellcheck disable=SC2086 # $opt and $dirs are lists
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$bin" $opt ${FUZZ_FLAGS:-} -print_final_stats=1 \
  -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
  -artifact_prefix="$crashes/" $dirs >"$log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\) .*/\1/p')
ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\) .*/\1/p')
corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p')
edges=$(sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -n 1)
echo "fuzz_$h: ${execs:-?} executions, cov ${cov:-?} of ${edges:-?} edges, ft ${ft:-?} features, corpus ${corp:-?} inputs"
if [ $rc -ne 0 ]; then
  tail -n 60 "$log"
  echo "fuzz_$h: failed (exit $rc); input saved in $crashes/:" >&2
  ls "$crashes" >&2
  exit 1
fi
