#!/bin/sh
# tests/cli/man_check.sh SOURCE_DIR - the man page is clean under
# `groff -ww` and its ENVIRONMENT section names every variable that the
# tools, the runtime, libtrace and the agent read with getenv().
set -u
src=$1
man=$src/docs/coscope.1
command -v groff >/dev/null 2>&1 || { echo "SKIP: no groff"; exit 77; }
warn=$(groff -ww -man -z "$man" 2>&1)
[ -z "$warn" ] || { echo "FAIL: groff -ww warns:"; echo "$warn"; exit 1; }
env=$(sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$man")
vars=$(grep -rhoE 'getenv\("[A-Z_]+"\)|env_u32\("[A-Z_]+"' "$src/agent" "$src/cli" \
         "$src/runtime" "$src/libtrace" | sed -E 's/.*\("([A-Z_]+)".*/\1/' | sort -u)
bad=0
for v in $vars; do
  case $v in COSCOPE_TEST_SYNC) continue ;; esac # the tests' own hook
  printf '%s\n' "$env" | grep -qx "\.B $v" ||
    { echo "FAIL: $v is read but not in the man page's ENVIRONMENT"; bad=1; }
done
[ "$bad" -eq 0 ] && echo "ok: groff -ww clean; ENVIRONMENT has $(echo $vars | wc -w) variables"
exit $bad
