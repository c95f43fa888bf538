#!/usr/bin/env python3
"""cli_common.py - what the `coscope` command's tests share (test_cli_*.py).

Each test starts the processes it inspects (fake_target, which publishes a
segment through libtrace's writer; `sleep` as a process that is not
coscope's), runs the real binary and asserts what a user reads: names,
states, wait descriptions, stack frames, exit statuses, one-line errors.
No sleeps for synchronisation: fake_target says "ready" on a pipe, watch
says "watching" on stderr, and COSCOPE_TEST_SYNC pauses coscope at named
points so a test can kill the target at a known moment.

Groups (one ctest each, cli_<group>), by file: test_cli_basics.py (Basics,
Ps, Errors), test_cli_tasks.py (Tasks, Stacks), test_cli_live.py (Watch,
Top), test_cli_record.py (Record), test_cli_real.py (Real, Symbols),
test_cli_lines.py (SameLine, UserStacks).  Needs COSCOPE_BIN and
FAKE_TARGET in the environment; Real uses REAL_TARGET and FETCH_DATA (real coscope
programs) and skips while the runtime publishes no segment; Symbols uses
BUGGY (examples/buggy) and PRELOAD (libcoscope-preload.so, optional).
"""
import json
import os
import pty
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

COSCOPE = os.environ.get("COSCOPE_BIN", "coscope")
FAKE = os.environ.get("FAKE_TARGET", "fake_target")
TIMEOUT = 60
# `record -- CMD` preloads the interposer; under the sanitizers (PRELOAD
# unset) an ASan interposer cannot be preloaded without libasan first.
NO_PRELOAD = [] if os.environ.get("PRELOAD") else ["--no-preload"]
SEG = "/dev/shm/coscope.%d"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def coscope(*args, env=None, prefix=(), **kw):
    """Runs coscope; returns the CompletedProcess (text, both captured)."""
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    return subprocess.run(list(prefix) + [COSCOPE] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env=e, **kw)


class Target:
    """A fake_target process; `with Target("park") as t:` ... t.pid."""

    def __init__(self, *args, prefix=()):
        self.p = subprocess.Popen(list(prefix) + [FAKE] + list(args),
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("ready "):
            self.p.kill()
            self.p.wait()
            raise RuntimeError("fake_target did not start: %r" % line)
        self.pid = int(line.split()[1])

    def send(self, cmd):
        """Sends a command and returns its one-line answer."""
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def vanish(self):
        """Exits without removing the segment: it becomes stale."""
        self.p.stdin.write("vanish\n")
        self.p.stdin.flush()
        self.p.wait(TIMEOUT)

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("exit\n")
                self.p.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.p.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except BrokenPipeError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        remove(SEG % self.pid)


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Sleeper:
    """A live process that is not a coscope process."""

    def __enter__(self):
        self.p = subprocess.Popen(["sleep", "600"])
        self.pid = self.p.pid
        return self

    def __exit__(self, *exc):
        self.p.kill()
        self.p.wait()
        remove(SEG % self.pid)


def free_pid():
    """A pid that no process has (one just reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def write_segment(pid, data, mode=0o600):
    path = SEG % pid
    remove(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, data)
    os.fchmod(fd, mode)
    os.close(fd)
    return path


def start_time(pid):
    """Field 22 of /proc/PID/stat (clock ticks since boot)."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def forge_reused(src_pid, pid):
    """Copies src_pid's segment as pid's, with a start time one tick before
    pid's process: the segment of a process that had this pid before."""
    with open(SEG % src_pid, "rb") as f:
        data = bytearray(f.read())
    struct.pack_into("<I", data, 24, pid)
    struct.pack_into("<Q", data, 32, start_time(pid) - 1)
    return write_segment(pid, bytes(data))


def rows(out):
    """Table lines after the header, split on runs of 2+ spaces."""
    lines = out.splitlines()
    return [re.split(r"\s{2,}", l.strip()) for l in lines[1:]
            if l.strip() and not l.startswith(" " * 10)]


def row_of(out, name):
    for r in rows(out):
        if len(r) > 1 and r[1] == name:
            return r
    raise AssertionError("no row for %r in:\n%s" % (name, out))


def eventually(run, ok, tries=500):
    """Runs run() until ok(result) or tries are spent; returns the last
    result.  For states that follow "ready" by a few instructions (a
    thread about to block in read())."""
    for _ in range(tries):
        r = run()
        if ok(r):
            break
    return r


def can_run_as_nobody():
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run(NOBODY + [FAKE], capture_output=True,
                              timeout=TIMEOUT).returncode == 2
    except (OSError, subprocess.TimeoutExpired):
        return False


class Case(unittest.TestCase):
    def assert_error(self, r, *needles):
        """Exit 2, nothing on stdout, exactly one line on stderr in git's
        form, containing each needle."""
        self.assertEqual(r.returncode, 2, r)
        self.assertEqual(r.stdout, "", r)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("coscope: "), lines[0])
        self.assertFalse(lines[0].endswith("."), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])


class Sync:
    """Runs coscope paused at each COSCOPE_TEST_SYNC point; at(point)
    waits for it, resume() lets it go on."""

    def __init__(self, *args):
        self.r1, self.w1 = os.pipe()
        self.r2, self.w2 = os.pipe()
        env = dict(os.environ, COSCOPE_TEST_SYNC="%d,%d" % (self.w1, self.r2))
        self.p = subprocess.Popen([COSCOPE] + [str(a) for a in args],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env,
                                  pass_fds=(self.w1, self.r2))
        os.close(self.w1)
        os.close(self.r2)

    def at(self, point):
        got = b""
        while not got.endswith(b"\n"):
            c = os.read(self.r1, 1)
            if not c:
                raise AssertionError("coscope ended before %r" % point)
            got += c
        assert got.decode().strip() == point, got

    def resume(self):
        os.write(self.w2, b"x")

    def finish(self):
        out, err = self.p.communicate(timeout=TIMEOUT)
        os.close(self.r1)
        os.close(self.w2)
        return subprocess.CompletedProcess(self.p.args, self.p.returncode,
                                           out, err)


# ---- watch -------------------------------------------------------------------

class Watcher:
    def __init__(self, *args):
        self.p = subprocess.Popen([COSCOPE, "watch"] + [str(a) for a in args],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.ready = self.p.stderr.readline()

    def finish(self):
        out, err = self.p.communicate(timeout=TIMEOUT)
        return self.p.returncode, out, self.ready + err


# ---- top ---------------------------------------------------------------------

def table_names(snapshot):
    """Task names of one plain-text top snapshot, in order."""
    lines = snapshot.splitlines()
    i = next(k for k, l in enumerate(lines) if l.lstrip().startswith("ID "))
    return [l.split()[1] for l in lines[i + 1:] if l.strip()]


# ---- real coscope programs (the runtime publishes the segment) -------------

class Program:
    """A real coscope program; waits for its n-th line of output."""

    def __init__(self, argv, lines=1):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.pid = self.p.pid
        self.out = [self.p.stdout.readline() for _ in range(lines)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.p.stdout.close()
        remove(SEG % self.pid)  # killed: its atexit did not run


REAL = os.environ.get("REAL_TARGET")
FETCH = os.environ.get("FETCH_DATA")
BUGGY = os.environ.get("BUGGY")
PRELOAD = os.environ.get("PRELOAD")  # unset under the sanitizers


def buggy_warning_mode():
    """(mode, culprit, its caller, env) of a buggy mode whose warning has a
    stack: blocking-sleep (load_settings calls usleep) when the blocking
    detector can be preloaded, else never-awaited (notify_user)."""
    if PRELOAD:
        return ("blocking-sleep", "load_settings", "slow_handler",
                {"LD_PRELOAD": PRELOAD})
    return "never-awaited", "notify_user", "never_awaited_main", {}


def function_range(exe, name):
    """[start, end) of function name in ELF file exe, from nm."""
    out = subprocess.run(["nm", "-S", "--defined-only", exe],
                         capture_output=True, text=True,
                         timeout=TIMEOUT).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[3] == name:
            return int(f[0], 16), int(f[0], 16) + int(f[1], 16)
    raise AssertionError("%s not in nm %s" % (name, exe))


SAMELINE = os.environ.get("SAMELINE_TARGET")
SAMELINE_SRC = os.environ.get("SAMELINE_SOURCE")


def marked_line(path, mark):
    """The line number of the line of path holding 'MARK: mark'."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if "MARK: " + mark in line:
                return n
    raise AssertionError("no MARK %r in %s" % (mark, path))


FRAME_RE = re.compile(r"(?:in )?([A-Za-z_][\w.]*)(?:\+0x[0-9a-f]+)?"
                      r"( \[inlined\])? \(([^():]+):(\d+)\)")


def frames_in(text):
    """[(function, inlined, basename, line)] of every frame line in text."""
    out = []
    for line in text.splitlines():
        m = FRAME_RE.search(line) if re.search(r"0x[0-9a-f]+", line) else None
        if m:
            out.append((m.group(1), bool(m.group(2)),
                        os.path.basename(m.group(3)), int(m.group(4))))
    return out
