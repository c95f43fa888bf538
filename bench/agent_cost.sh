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
#
# --tracing compares tracing itself the same way (issue 4, point 8):
# the server traced (agent reports off, no preload) against COSCOPE=off,
# loop-thread instructions per request and the system calls of each.
# KEEP=1 keeps the callgrind dumps and perf's output (the path is printed).
set -eu
usage() {
  echo "usage: bench/agent_cost.sh BUILD_DIR [--quick] [--tracing]" >&2
  exit 2
}
[ $# -ge 1 ] && [ -d "$1" ] || usage
build_arg=$1
shift
n=${AGENT_COST_N:-4000} native=40000 tracing=""
for a in "$@"; do
  case $a in
  --quick) n=300 native=3000 ;;
  --tracing) tracing=1 ;;
  *) usage ;;
  esac
done
for tool in valgrind callgrind_control callgrind_annotate perf python3; do
  command -v $tool >/dev/null ||
    { echo "bench/agent_cost.sh: $tool not found: skipped" >&2; exit 77; }
done
build=$(cd "$build_arg" && pwd)
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
  if [ -n "$tracing" ]; then # --tracing: traced against COSCOPE=off
    if [ "$mode" = on ]; then
      env -u COSCOPE -u LD_PRELOAD COSCOPE_REPORT=off \
        "$@" "$server" 0 >"$dir/port" 2>>"$dir/log" &
    else
      env -u LD_PRELOAD COSCOPE=off COSCOPE_REPORT=off \
        "$@" "$server" 0 >"$dir/port" 2>>"$dir/log" &
    fi
  elif [ "$mode" = on ]; then
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

if [ -n "$tracing" ]; then
  # the system calls of each, per request (strace -f -c, all threads)
  for mode in off on; do
    start $mode strace -f -qq -c -o "$dir/st.$mode"
    python3 -c "$client" "$port" "$n"
    kill -TERM $(pgrep -P $pid -f echo_server || echo $pid) 2>/dev/null || true
    wait $pid || true
  done
  # writes (one per request), reads (one per request, plus EAGAIN ones)
  # and epoll waits: the last two depend on timing (whether the next
  # request is already there), which strace and tracing both change
  calls() {
    awk '$NF == "write" { w = $4 } $NF == "read" { r = $4; e = $5 }
         $NF == "epoll_pwait" || $NF == "epoll_wait" { p += $4 }
         END { printf "write %d, read %d (%d EAGAIN), epoll_wait %d", w, r, e, p }' "$1"
  }
  awk -v n="$n" -v ioff="$ir_off" -v ion="$ir_on" '
    BEGIN {
      printf "tracing, loop thread, instructions/request (median of 3): COSCOPE=off %.1f, traced %.1f (%+.1f)\n",
             ioff / n, ion / n, (ion - ioff) / n
      printf "@row\ttracing: instructions/request\t%+.1f\tCOSCOPE=off %.1f\t%.2fx\t\t\n",
             (ion - ioff) / n, ioff / n, ion / ioff
    }'
  echo "tracing, system calls for $((n + 500)) requests (strace -f):"
  echo "  COSCOPE=off: $(calls "$dir/st.off")"
  echo "  traced:      $(calls "$dir/st.on")"
  exit 0
fi

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
