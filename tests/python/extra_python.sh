#!/bin/sh
# extra_python.sh - the bridge's pytest suite under another interpreter
# (opt-in; `make test` keeps to Debian's python3): COSCOPE_EXTRA_PYTHON
# names it, e.g. a CPython 3.12 or 3.13 built from source.  Builds the
# extension for it in a build directory of its own (the CMake build with
# -DPython3_EXECUTABLE), then runs tests/python/test_bridge.py with it.
#
#   extra_python.sh SRC_DIR WORK_DIR COSCOPE_BIN PRELOAD_SO DEFAULT_PYLIB DEFAULT_PYTHON
#
# COSCOPE_EXTRA_PYTHONPATH: put first on PYTHONPATH for pytest when that
# interpreter has none of its own (e.g. Debian's pure-Python pytest:
# a directory of links to _pytest, pytest, pluggy, iniconfig, packaging,
# attr, py).  Exit 77 (skip) when the variable is unset or pytest is
# missing; the reason on stdout.
set -u
src=$1 work=$2 bin=$3 preload=$4 default_lib=$5 default_py=$6
X=${COSCOPE_EXTRA_PYTHON:-}
if [ -z "$X" ]; then
    echo "skip: COSCOPE_EXTRA_PYTHON is not set (an interpreter to test the bridge with, besides $default_py)"
    exit 77
fi
if ! "$X" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "COSCOPE_EXTRA_PYTHON=$X: not a Python 3.11+ interpreter" >&2
    exit 1
fi
ver=$("$X" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
# COSCOPE_EXTRA_CFLAGS: for the extension's build, e.g. -DCS_PY_PUBLIC (the
# public attributes' way, 3.14's, tested on 3.12/3.13)
flags=${COSCOPE_EXTRA_CFLAGS:-}
work=$work/$ver${flags:+-$(echo "$flags" | tr -c 'A-Za-z0-9_\n' _)} # one per version (and flags)
mkdir -p "$work"
echo "bridge for Python $ver ($X) in $work"
if [ -n "${COSCOPE_EXTRA_PYTHONPATH:-}" ]; then
    PYTHONPATH=$COSCOPE_EXTRA_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}
    export PYTHONPATH
fi
if ! "$X" -c 'import pytest' 2>/dev/null; then
    echo "skip: no pytest for $X (COSCOPE_EXTRA_PYTHONPATH can point at one)"
    exit 77
fi
cmake -S "$src" -B "$work" -DPython3_EXECUTABLE="$X" -DCOSCOPE_TESTS=OFF \
      -DCMAKE_C_FLAGS="$flags" \
      -DCOSCOPE_BENCH=OFF -DCOSCOPE_EXAMPLES=OFF >"$work.configure.log" 2>&1 ||
    { cat "$work.configure.log" >&2; exit 1; }
grep 'coscope python bridge' "$work.configure.log"
cmake --build "$work" --target coscope_python >"$work.build.log" 2>&1 ||
    { cat "$work.build.log" >&2; exit 1; }
COSCOPE_BIN=$bin PYTHON=$X COSCOPE_PYTHONPATH=$work/python/lib \
COSCOPE_PRELOAD=$preload
export COSCOPE_BIN PYTHON COSCOPE_PYTHONPATH COSCOPE_PRELOAD
# the default build's bridge, when it is for another version, must be
# refused by this one (test_a_bridge_built_for_another_python_is_refused)
mm='import sys; print("%d.%d" % sys.version_info[:2])'
if [ "$("$X" -c "$mm")" != "$("$default_py" -c "$mm" 2>/dev/null)" ]; then
    COSCOPE_OTHER_PYTHONPATH=$default_lib
    export COSCOPE_OTHER_PYTHONPATH
fi
# Debian's pytest 7.2 on 3.12+: its assertion rewriter's own ast warnings
exec "$X" -m pytest -q -p no:cacheprovider \
     -W "ignore::DeprecationWarning:_pytest.assertion.rewrite" \
     "$src/tests/python/test_bridge.py"
