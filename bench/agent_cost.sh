#!/bin/sh
# bench/agent_cost.sh BUILD_DIR - what the agent (interposer + watchdog)
# costs examples/echo_server, in figures that hold on a shared, noisy
# machine (issue 5, point 6).  bench_trace --agent gives the same cost as
# requests/s and CPU per request, which swing by 10-30 % between rounds
# here; this splits it into its two parts and measures each directly:
#
#  - the interposer and the runtime's agent hooks, on the loop thread:
#    instructions per request with the agent on (reports on,
#    libcoscope-preload.so in LD_PRELOAD) and off (COSCOPE_REPORT=off, no
#    preload), counted by callgrind (--separate-threads=yes; counters
#    zeroed after 500 warm-up requests, dumped after N more), and how many
#    ran in the agent's code (agent/*.c, libcoscope-preload.so);
#  - the watchdog thread: its CPU time against the whole server's, per
#    thread, from perf stat's task-clock (a software counter: it works
#    where a VM has no hardware counters), while the client runs.
#
# Tracing is on in both.  One client makes 64-byte round trips.
# KEEP=1 keeps the callgrind dumps and perf's output (the path is printed).
set -eu
if [ $# -lt 1 ] || [ ! -d "$1" ] || { [ $# -eq 2 ] && [ "$2" != --quick ]; } ||
   [ $# -gt 2 ]; then
  echo "usage: bench/agent_cost.sh BUILD_DIR [--quick]" >&2
  exit 2
fi
n=${AGENT_COST_N:-4000} native=40000
[ "${2:-}" = --quick ] && n=300 native=3000
for tool in valgrind callgrind_control callgrind_annotate perf python3; do
  command -v $tool >/dev/null ||
    { echo "bench/agent_cost.sh: $tool not found: skipped" >&2; exit 77; }
done
build=$(cd "$1" && pwd)
server="$build/examples/echo_server"
preload="$build/agent/libcoscope-preload.so"
[ -x "$server" ] && [ -f "$preload" ] ||
  { echo "bench/agent_cost.sh: build $build first" >&2; exit 1; }
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] && echo "kept $dir" >&2 || rm -rf "$dir"' EXIT

# python3 -c "$client" PORT N [PID]: N round trips after 500 warm-up ones;
# with PID, callgrind's counters are zeroed before the N, dumped after.
client='
import socket, subprocess, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def go(k):
    for _ in range(k):
        s.sendall(b"x" * 64)
        got = 0
        while got < 64:
            got += len(s.recv(4096))
def ctl(flag):
    if len(sys.argv) > 3:
        subprocess.run(["callgrind_control", flag, sys.argv[3]],
                       capture_output=True, check=True)
go(500)
ctl("-z")
go(int(sys.argv[2]))
ctl("-d")
'

# start MODE WRAPPER...: starts the server (agent on or off) under
# WRAPPER; sets $pid and $port.
start() {
  mode=$1
  shift
  rm -f "$dir/port"
  if [ "$mode" = on ]; then
    env -u COSCOPE -u COSCOPE_REPORT LD_PRELOAD="$preload" \
      "$@" "$server" 0 >"$dir/port" 2>>"$dir/log" &
  else
    env -u COSCOPE -u LD_PRELOAD COSCOPE_REPORT=off \
      "$@" "$server" 0 >"$dir/port" 2>>"$dir/log" &
  fi
  pid=$!
  i=0
  until grep -q listening "$dir/port" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 600 ] || { echo "bench/agent_cost.sh: server did not start" >&2; cat "$dir/log" >&2; exit 1; }
    sleep 0.05 # polls a file another process writes: nothing to wait on
  done
  port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/port")
}

stop() {
  kill -TERM $pid 2>/dev/null || true
  wait $pid || true
}

ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }
# Ir of one thread's dump under the agent's functions (agent/*.c,
# libcoscope-preload.so): the sum of their inclusive costs, an upper bound
# (callgrind_annotate's exclusive view of a callgrind_control dump puts
# everything in main)
agent_ir() {
  callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
    awk '/file:function/ { on = 1; next }
         /Auto-annotated source/ { exit }
         on && /^ *[0-9,]+ / && (/\/agent\// || /libcoscope-preload/) {
           v = $1; gsub(",", "", v); s += v }
         END { print s + 0 }'
}

echo "agent cost, examples/echo_server, $(valgrind --version), $(date -u '+%Y-%m-%d %H:%M UTC')"
# Which path a request takes (data already there, or EAGAIN and a wait)
# depends on timing, and valgrind's slowness moves it: three alternating
# rounds, the median of each side.
for round in 1 2 3; do
  for mode in off on; do
    start $mode valgrind --tool=callgrind --separate-threads=yes \
      --callgrind-out-file="$dir/cg.$mode.$round"
    python3 -c "$client" "$port" "$n" "$pid"
    stop
    # the loop thread is the main thread (examples/echo_server's cs_run)
    dump="$dir/cg.$mode.$round.1-01"
    [ -f "$dump" ] || { echo "bench/agent_cost.sh: no callgrind dump" >&2; exit 1; }
    echo "$(ir "$dump") $(agent_ir "$dump")" >>"$dir/ir.$mode"
  done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ir_off=$(cut -d' ' -f1 "$dir/ir.off" | median)
ir_on=$(cut -d' ' -f1 "$dir/ir.on" | median)
agent_on=$(cut -d' ' -f2 "$dir/ir.on" | sort -n | tail -1) # the most seen

start on
perf stat -e task-clock --per-thread -p $pid -o "$dir/perf" &
perf_pid=$!
python3 -c "$client" "$port" "$native"
kill -INT $perf_pid
wait $perf_pid || true
stop
# "echo_server-PID  531.20 msec task-clock": per thread, in ms
loop_ms=$(awk '/task-clock/ && $1 ~ /^echo_server-/ { s += $2 } END { print s + 0 }' "$dir/perf")
wd_ms=$(awk '/task-clock/ && $1 ~ /^coscope-watch-/ { s += $2 } END { print s + 0 }' "$dir/perf")
if [ "$loop_ms" = 0 ]; then
  echo "bench/agent_cost.sh: perf stat gave no per-thread task-clock: skipped" >&2
  exit 77
fi

awk -v n="$n" -v ioff="$ir_off" -v ion="$ir_on" -v aon="$agent_on" \
    -v loop="$loop_ms" -v wd="$wd_ms" -v native="$native" '
  BEGIN {
    printf "loop thread, instructions/request (median of 3): agent off %.1f, agent on %.1f (%+.1f), in the agent at most %.1f\n",
           ioff / n, ion / n, (ion - ioff) / n, aon / n
    printf "CPU while serving %d requests (perf task-clock): loop thread %.1f ms, watchdog %.2f ms (%.2f%%)\n",
           native, loop, wd, 100 * wd / (loop + wd)
    hooks = 100 * aon / ion
    watch = 100 * wd / (loop + wd)
    printf "@row\tagent: code on the loop thread\t%.2f%%\t\t\t<= 2%%\t%s\n",
           hooks, hooks <= 2 ? "meets" : "misses"
    printf "@row\tagent: watchdog CPU\t%.2f%%\t\t\t<= 2%%\t%s\n",
           watch, watch <= 2 ? "meets" : "misses"
    printf "@row\tagent: total\t%.2f%%\t\t\t<= 2%%\t%s\n",
           hooks + watch, hooks + watch <= 2 ? "meets" : "misses"
  }'
