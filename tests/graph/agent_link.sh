#!/bin/sh
# agent_link.sh on|off LIBCOSCOPE.so LIBCOSCOPE.a: the build graph's promise
# about the agent (cmake -DCOSCOPE_AGENT=...).  on: libcoscope carries the
# agent (its exported report function, agent.c's object in the archive)
# and needs libunwind and libdw.  off: none of that, and no libunwind,
# libdw or libelf among the shared library's NEEDED entries.
mode=$1 so=$2 ar=$3
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$so" ] && [ -f "$ar" ] || fail "usage: $0 on|off LIB.so LIB.a"
needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
[ -n "$needed" ] || fail "readelf found no NEEDED entry in '$so'"
if nm -D --defined-only "$so" | grep -q ' cs_agent_blocking_report$'; then
  so_agent=1
else
  so_agent=0
fi
if ar t "$ar" | grep -qx 'agent\.c\.o'; then ar_agent=1; else ar_agent=0; fi
case $mode in
on)
  [ $so_agent = 1 ] || fail "'$so' does not export the agent's report function"
  [ $ar_agent = 1 ] || fail "'$ar' has no agent.c object"
  case " $needed" in *" libunwind"*) ;; *) fail "'$so' needs no libunwind: $needed" ;; esac
  case " $needed" in *" libdw"*) ;; *) fail "'$so' needs no libdw: $needed" ;; esac
  ;;
off)
  [ $so_agent = 0 ] || fail "'$so' exports the agent's report function"
  [ $ar_agent = 0 ] || fail "'$ar' has the agent.c object"
  case " $needed" in
  *" libunwind"* | *" libdw"* | *" libelf"*) fail "'$so' needs $needed" ;;
  esac
  ;;
*) fail "mode '$mode': on or off" ;;
esac
echo "ok: agent $mode; $so needs $needed"
