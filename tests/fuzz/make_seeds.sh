#!/bin/sh
# tests/fuzz/make_seeds.sh OUT BUGGY REAL_TARGET COSCOPE [PRELOAD]
# The fuzzers' seed corpora, from real recordings: every mode of the buggy
# example recorded with COSCOPE_RECORD and COSCOPE_FLIGHT (trace files with
# events, warnings, stacks, tasks and module tables), its agent reports
# (COSCOPE_REPORT_DIR: `coscope check`'s input), a live segment of
# real_target copied while its tasks are parked, and `coscope record` of it.
# Small ring and table sizes keep each input a few kilobytes.  Writes
# OUT/<harness>/ for every harness; never fails the build: what cannot be
# made is left out with a warning.
set -u
out=$1 buggy=$2 real=$3 coscope=$4 preload=${5:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT
warn() { echo "make_seeds: $*" >&2; }
rm -rf "$out"
for h in file file_crc segment symbols check; do mkdir -p "$out/$h"; done
export COSCOPE_RING_KB=4 COSCOPE_RINGS=2 COSCOPE_TASKS=32 \
  COSCOPE_STRINGS_KB=4 COSCOPE_STACKS_KB=4 ASAN_OPTIONS=detect_leaks=0
mkdir "$tmp/reports"
for mode in never-awaited unretrieved pending deadlock lock-cycle raise \
            blocking-sleep; do
  pre=
  case $mode in blocking-*) [ -n "$preload" ] || continue; pre=$preload;; esac
  COSCOPE_RECORD="$tmp/$mode.cst" COSCOPE_FLIGHT="$tmp/$mode.flight.cst" \
    COSCOPE_REPORT_DIR="$tmp/reports" LD_PRELOAD=$pre \
    "$buggy" "$mode" >/dev/null 2>&1
  for f in "$tmp/$mode.cst" "$tmp/$mode.flight.cst"; do
    [ -s "$f" ] || { warn "no $(basename "$f")"; continue; }
    for h in file file_crc symbols; do cp "$f" "$out/$h/"; done
  done
done
# check: all reports in one file, then a NUL and a suppression file.
n=0
for r in "$tmp"/reports/*.jsonl; do
  [ -s "$r" ] || continue
  n=$((n + 1))
  { cat "$r"; printf '\0'; printf '# ours\nblocking:usleep\n*:main\n'; } \
    >"$out/check/report$n"
done
[ $n -gt 0 ] || warn "no agent reports"
# segment: real_target's own, while every task is parked.
mkfifo "$tmp/ready"
"$real" sleep >"$tmp/ready" 2>/dev/null &
pid=$!
read -r line <"$tmp/ready" # "ready", or EOF if it died
if cp "/dev/shm/coscope.$pid" "$out/segment/real_target.seg" 2>/dev/null; then
  "$coscope" record "$pid" -d 0.1 -o "$tmp/remote.cst" >/dev/null 2>&1 &&
    for h in file file_crc symbols; do cp "$tmp/remote.cst" "$out/$h/"; done
else
  warn "no segment from real_target"
fi
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
for h in file file_crc segment symbols check; do
  echo "make_seeds: $h: $(ls "$out/$h" | wc -l) inputs"
done
exit 0
