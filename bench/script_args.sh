# bench/script_args.sh - sourced by bench/callgrind.sh and
# bench/echo_syscalls.sh: bench_script_args NAME TOOL "$@" checks that
# the one argument is a build directory (usage, exit 2) and that TOOL is
# installed (exit 1), and sets build to the directory's absolute path.
bench_script_args() {
  name=$1 tool=$2
  shift 2
  if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $name BUILD_DIR" >&2
    exit 2
  fi
  command -v "$tool" >/dev/null || { echo "$name: $tool not found" >&2; exit 1; }
  build=$(cd "$1" && pwd)
}
