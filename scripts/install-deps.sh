#!/bin/sh
# Installs the Debian packages coscope builds and tests with, when some are
# missing.  Needs root; otherwise it only says what is missing.
set -u
PKGS="cmake make gcc pkg-config libunwind-dev libelf-dev libdw-dev libcmocka-dev
libncurses-dev valgrind python3 tmux libxml2-utils gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
clang python3-dev python3-pytest zlib1g-dev"
# libFuzzer (tests/fuzz) is in the runtime package of the installed clang.
clang_v=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
[ -n "$clang_v" ] && PKGS="$PKGS libclang-rt-$clang_v-dev"
# The real servers and readers the fleet tests check coscope's output with
# (tests/fleet): installed when possible; a test whose tool is missing is
# skipped and says so, so a failure here is not fatal.
FLEET_PKGS="prometheus golang-go protobuf-compiler"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
fleet_missing=""
for p in $FLEET_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    fleet_missing="$fleet_missing $p"
done
if [ -n "$fleet_missing" ] && [ "$(id -u)" = 0 ]; then
  echo "coscope: installing (for the fleet tests)$fleet_missing" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $fleet_missing >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $fleet_missing >/dev/null 2>&1; } ||
    echo "coscope: could not install$fleet_missing; the fleet tests that need them will be skipped" >&2
fi
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
