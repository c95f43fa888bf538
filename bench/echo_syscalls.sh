#!/bin/sh
# bench/echo_syscalls.sh BUILD_DIR - system calls per request of the two
# echo servers of bench_echo, counted with strace.  Unlike requests/s,
# these counts hardly move on a shared, noisy machine; they show whether
# coscope's server asks the kernel for more than the plain epoll server.
# (strace slows both servers down, which changes batching a little: read
# the counts as close estimates, not exact figures.)
set -eu
. "$(dirname "$0")/script_args.sh"
bench_script_args bench/echo_syscalls.sh strace "$@"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
strace -ff -o "$dir/t" "$build/bench/bench_echo" -n 1000 --reps 2 >"$dir/out" 2>&1 ||
  { cat "$dir/out" >&2; exit 1; }
for f in "$dir"/t.*; do
  if grep -q '^execve(.*bench_echo_server' "$f"; then
    name=coscope
  elif grep -q '^epoll_wait' "$f" && ! grep -q '^execve' "$f"; then
    name=epoll
  else
    continue
  fi
  # requests = successful writes (each echo is one write of 64 bytes)
  awk -v name="$name" '
    { call = $0; sub(/\(.*/, "", call)
      ok = ($0 !~ /= -1 /)
      if (call == "read" && !ok) call = "read (EAGAIN)"
      n[call]++; if (call == "write" && ok) req++ }
    END {
      printf "%-8s %6d requests:", name, req
      split("read|read (EAGAIN)|write|epoll_wait|epoll_ctl|accept4|mmap|munmap", k, "|")
      tot = 0
      for (i = 1; i <= 8; i++) { printf "  %s %.2f", k[i], n[k[i]] / req; if (i <= 4) tot += n[k[i]] }
      printf "  | per request (read+write+epoll_wait) %.2f\n", tot / req
    }' "$f"
done
