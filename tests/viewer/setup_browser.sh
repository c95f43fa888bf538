#!/bin/sh
# setup_browser.sh DIR - makes ready what the viewer's browser test needs:
# Debian's chromium and nodejs/npm (installed with apt-get when missing and
# we are root) and playwright-core from npm in DIR/node_modules (a driver
# only: it never downloads a browser build; the test launches
# /usr/bin/chromium).  Exits 0 when all are there, 77 (ctest: skipped) with
# the reason when not.
set -u
dir=$1
mkdir -p "$dir"
browser=${COSCOPE_CHROMIUM:-/usr/bin/chromium}

# apt_install PACKAGE...: as root, when apt-get exists; quiet, logged.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  echo "setup_browser: installing $* (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends "$@" ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; }
  } >>"$dir/apt.log" 2>&1 ||
    { echo "setup_browser: apt-get install $* failed (see $dir/apt.log)" >&2; return 1; }
}

[ -x "$browser" ] || apt_install chromium
if [ ! -x "$browser" ]; then
  echo "SKIPPED: no browser: $browser is missing and could not be installed (as root: apt-get install chromium)" >&2
  exit 77
fi
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
if ! command -v node >/dev/null; then
  echo "SKIPPED: node is missing and could not be installed (as root: apt-get install nodejs npm)" >&2
  exit 77
fi
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  if ! command -v npm >/dev/null; then
    echo "SKIPPED: npm is missing: cannot install playwright-core" >&2
    exit 77
  fi
  echo "setup_browser: npm install playwright-core into $dir" >&2
  [ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit \
     --no-fund --no-save --loglevel=error playwright-core >npm.log 2>&1) || {
    echo "SKIPPED: npm install playwright-core failed (see $dir/npm.log)" >&2
    exit 77
  }
fi
exit 0
