#!/bin/sh
# Installs the Debian packages coscope builds and tests with, when some are
# missing.  Needs root; otherwise it only says what is missing.
set -u
PKGS="cmake make gcc pkg-config libunwind-dev libelf-dev libdw-dev libcmocka-dev
libncurses-dev valgrind python3 tmux libxml2-utils gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
clang python3-dev python3-pytest"
# libFuzzer (tests/fuzz) is in the runtime package of the installed clang.
clang_v=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
[ -n "$clang_v" ] && PKGS="$PKGS libclang-rt-$clang_v-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "coscope: missing packages:$missing (run 'make deps' as root, or apt-get install them)" >&2
  exit 0
fi
echo "coscope: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
  { echo "coscope: apt-get install failed for:$missing" >&2; exit 1; }
# clang was just installed: once more, for its runtime package.
[ -z "$clang_v" ] && command -v clang >/dev/null && exec sh "$0"
exit 0
