#!/bin/sh
# setup_browser.sh DIR - makes ready what the viewer's browser test needs:
# Debian's chromium (installed with apt-get when missing and we are root)
# and playwright-core from npm in DIR/node_modules (a driver only: it never
# downloads a browser build; the test launches /usr/bin/chromium).
# Exits 0 when both are there, 77 (ctest: skipped) with a reason when not.
set -u
dir=$1
browser=${COSCOPE_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup_browser: installing chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends chromium ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }
  } >"$dir/apt-chromium.log" 2>&1 ||
    echo "setup_browser: apt-get install chromium failed (see $dir/apt-chromium.log)" >&2
fi
if [ ! -x "$browser" ]; then
  echo "SKIPPED: no browser: $browser is missing and could not be installed (as root: apt-get install chromium)" >&2
  exit 77
fi
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  if ! command -v npm >/dev/null; then
    echo "SKIPPED: npm is missing: cannot install playwright-core" >&2
    exit 77
  fi
  echo "setup_browser: npm install playwright-core into $dir" >&2
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit \
     --no-fund --no-save --loglevel=error playwright-core >npm.log 2>&1) || {
    echo "SKIPPED: npm install playwright-core failed (see $dir/npm.log)" >&2
    exit 77
  }
fi
exit 0
