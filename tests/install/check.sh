#!/bin/sh
# tests/install/check.sh BUILD_DIR [on|off] - installs the build into a
# scratch prefix, then builds and runs a consumer through pkg-config and
# through find_package(coscope), shared and static.  off: a build without
# the agent (COSCOPE_AGENT=OFF), whose programs link and run, -static too,
# without libunwind or libdw, and report nothing.
set -eu
build=$1
agent=${2:-on}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n1)
libdir=${libdir%/pkgconfig}
test -f "$tmp/prefix/include/coscope.h"

PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --exists coscope
cc -o "$tmp/pc" "$here/consumer.c" $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs coscope)
LD_LIBRARY_PATH="$libdir" "$tmp/pc"
echo "pkg-config consumer: ok"

cmake -S "$here" -B "$tmp/cb" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cb" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/cb/consumer_shared"
"$tmp/cb/consumer_static"
echo "find_package consumer (shared, static): ok"

# The agent comes with the runtime in every link mode (issue 11): shared,
# libcoscope.a in a dynamic program (CMake), fully static through
# `pkg-config --static` alone.
reported() {
  "$@" 2>"$tmp/err" || { echo "FAIL: $1 exited $?" >&2; exit 1; }
  if [ "$agent" = off ]; then
    if grep -q "never awaited" "$tmp/err"; then
      echo "FAIL: $1: a report from a build without the agent" >&2; exit 1
    fi
    return
  fi
  grep -q "coscope: coroutine 'send_email' was never awaited" "$tmp/err" ||
    { echo "FAIL: $1: no never-awaited report" >&2; cat "$tmp/err" >&2; exit 1; }
}
cc -o "$tmp/leak_pc" "$here/leak.c" $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs coscope)
LD_LIBRARY_PATH="$libdir" reported "$tmp/leak_pc"
reported "$tmp/cb/leak_static"
cc -static -o "$tmp/leak_full" "$here/leak.c" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --static --cflags --libs coscope) 2>"$tmp/ld" ||
  { cat "$tmp/ld" >&2; echo "FAIL: cc -static with pkg-config --static" >&2; exit 1; }
reported "$tmp/leak_full"
echo "agent $agent in every link mode (shared, libcoscope.a, -static): ok"

# `coscope run` finds the installed interposer next to the installed binary
# (../lib...), not the build tree's.
if [ -x "$tmp/prefix/bin/coscope" ]; then
  got=$("$tmp/prefix/bin/coscope" run -- sh -c 'echo "$LD_PRELOAD"')
  case $got in
  "$libdir/libcoscope-preload.so"|"$tmp/prefix/bin/../${libdir#$tmp/prefix/}/libcoscope-preload.so") ;;
  *) echo "FAIL: coscope run preloaded '$got', want the installed library" >&2; exit 1 ;;
  esac
  echo "coscope run, installed interposer: ok"
fi
