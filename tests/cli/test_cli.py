#!/usr/bin/env python3
"""test_cli.py - the `coscope` command, run as a user runs it.

Each test starts the processes it inspects (fake_target, which publishes a
segment through libtrace's writer; `sleep` as a process that is not
coscope's), runs the real binary and asserts what a user reads: names,
states, wait descriptions, stack frames, exit statuses, one-line errors.
No sleeps for synchronisation: fake_target says "ready" on a pipe, watch
says "watching" on stderr, and COSCOPE_TEST_SYNC pauses coscope at named
points so a test can kill the target at a known moment.

Groups (one ctest each, cli_<group>): Basics, Ps, Tasks, Stacks, Top,
Watch, Record, Real, Symbols, Errors.  Needs COSCOPE_BIN and FAKE_TARGET in
the environment; Real uses REAL_TARGET and FETCH_DATA (real coscope
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


# ---- Basics: help, version, colour ---------------------------------------

class Basics(Case):
    def test_help_lists_every_command(self):
        r = coscope("--help")
        self.assertEqual(r.returncode, 0)
        for cmd in ("help", "ps", "record", "report", "tasks", "top",
                    "watch"):
            self.assertRegex(r.stdout, r"\n\s+%s\s" % cmd)

    def test_help_command_shows_its_usage(self):
        for cmd in ("ps", "tasks", "watch", "help", "record", "report",
                    "top"):
            r = coscope("help", cmd)
            self.assertEqual(r.returncode, 0)
            self.assertTrue(r.stdout.startswith("usage: coscope %s" % cmd))
            self.assertEqual(coscope(cmd, "--help").stdout, r.stdout)

    # every command of the table (options.c: cli_getopt, cli_setup)
    ALL = ("check", "export", "help", "metrics", "ps", "record", "report",
           "run", "tasks", "top", "view", "watch")

    def test_every_command_answers_help_and_h_alike(self):
        for cmd in self.ALL:
            r = coscope(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            self.assertTrue(r.stdout.startswith("usage: coscope %s" % cmd),
                            (cmd, r.stdout[:80]))
            self.assertEqual(coscope(cmd, "-h").stdout, r.stdout, cmd)
            self.assertEqual(coscope("help", cmd).stdout, r.stdout, cmd)

    def test_every_command_refuses_an_unknown_flag_alike(self):
        for cmd in self.ALL:
            self.assert_error(coscope(cmd, "--frob"),
                              "%s: unknown or incomplete option '--frob' "
                              "(see 'coscope help %s')" % (cmd, cmd))

    def test_one_operand_commands_refuse_a_second_alike(self):
        for cmd in ("export", "report", "view", "tasks", "top", "watch"):
            self.assert_error(coscope(cmd, "1", "2"),
                              "%s: unexpected argument '2' (see 'coscope "
                              "help %s')" % (cmd, cmd))
        for cmd in ("ps", "metrics"):
            self.assert_error(coscope(cmd, "x"),
                              "%s: unexpected argument 'x' (see 'coscope "
                              "help %s')" % (cmd, cmd))

    def test_version(self):
        r = coscope("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^coscope \d+\.\d+\.\d+\n$")

    def test_no_colour_on_a_pipe(self):
        with Target("park") as t:
            self.assertNotIn("\033[", coscope("tasks", t.pid).stdout)

    def run_on_tty(self, env):
        master, slave = pty.openpty()
        e = dict(os.environ, TERM="xterm")
        e.pop("NO_COLOR", None)
        e.update(env)
        p = subprocess.Popen([COSCOPE, "ps"], stdout=slave,
                             stderr=subprocess.PIPE, env=e)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        err = p.stderr.read()
        p.stderr.close()
        self.assertEqual(p.wait(TIMEOUT), 0, err)
        return out.decode(errors="replace")

    def test_colour_on_a_terminal_unless_no_color(self):
        self.assertIn("\033[", self.run_on_tty({}))
        self.assertNotIn("\033[", self.run_on_tty({"NO_COLOR": "1"}))


# ---- ps ----------------------------------------------------------------------

class Ps(Case):
    def ps_row(self, out, pid):
        for line in out.splitlines()[1:]:
            if line.split() and line.split()[0] == str(pid):
                return line
        return None

    def test_lists_a_live_process(self):
        with Target("park") as t:
            r = coscope("ps")
            self.assertEqual(r.returncode, 0, r.stderr)
            line = self.ps_row(r.stdout, t.pid)
            self.assertIsNotNone(line, r.stdout)
            f = line.split()
            self.assertEqual(f[1], "1")   # one loop (ring in use)
            self.assertEqual(f[2], "12")  # tasks in the table
            self.assertEqual(f[3], "0")   # no warnings yet
            self.assertRegex(f[4], r"^\d+$")       # records per second
            self.assertRegex(f[5], r"^\d+\.\d\d%$")  # overhead
            self.assertEqual(f[6], "live")
            self.assertIn("fake_target park", line)

    def test_counts_warnings(self):
        with Target("park") as t:
            self.assertEqual(t.send("warn"), "warned")
            f = self.ps_row(coscope("ps").stdout, t.pid).split()
            self.assertEqual(f[3], "1")

    def test_marks_and_cleans_stale_segments(self):
        with Target("park") as live, Target("park") as gone:
            gone.vanish()
            self.assertTrue(os.path.exists(SEG % gone.pid))
            line = self.ps_row(coscope("ps").stdout, gone.pid)
            self.assertIn("stale (exited)", line)
            self.assertIn("fake_target", line)  # exe path from the header
            r = coscope("ps", "--clean")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("removed %s" % (SEG % gone.pid), r.stdout)
            self.assertFalse(os.path.exists(SEG % gone.pid))
            self.assertTrue(os.path.exists(SEG % live.pid))
            self.assertIn("live", self.ps_row(r.stdout, live.pid))
            self.assertIsNone(self.ps_row(r.stdout, gone.pid))

    def test_marks_a_reused_pid(self):
        with Target("park") as t, Sleeper() as s:
            forge_reused(t.pid, s.pid)
            line = self.ps_row(coscope("ps").stdout, s.pid)
            self.assertIn("stale (pid reused)", line)
            coscope("ps", "--clean")
            self.assertFalse(os.path.exists(SEG % s.pid))

    def test_corrupt_segment_is_one_line(self):
        with Sleeper() as s:
            write_segment(s.pid, b"\xff" * 4096)
            r = coscope("ps")
            self.assertEqual(r.returncode, 0)
            self.assertIn("corrupt", self.ps_row(r.stdout, s.pid))
            # the process lives: --clean keeps it
            coscope("ps", "--clean")
            self.assertTrue(os.path.exists(SEG % s.pid))

    @unittest.skipUnless(can_run_as_nobody(), "needs root and setpriv")
    def test_another_users_segment_is_one_line(self):
        with Target("park") as t:
            r = coscope("ps", prefix=NOBODY)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("other user (uid 0)", self.ps_row(r.stdout, t.pid))

    def test_columns_whatever_the_status(self):
        # "not a regular file, stale": longer than the other statuses
        pid = free_pid()
        os.mkdir(SEG % pid)
        try:
            with Target("park") as t:
                r = coscope("ps")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("not a regular file, stale",
                              self.ps_row(r.stdout, pid))
                lines = r.stdout.splitlines()
                col = lines[0].index("COMMAND")
                line = self.ps_row(r.stdout, t.pid)
                self.assertEqual(line[col:].split()[0], FAKE, r.stdout)
                self.assertEqual(line[col - 1], " ", r.stdout)
        finally:
            os.rmdir(SEG % pid)

    def test_rejects_arguments(self):
        self.assert_error(coscope("ps", "--bogus"), "'--bogus'")
        self.assert_error(coscope("ps", "42"), "'42'")


# ---- tasks -------------------------------------------------------------------

class Tasks(Case):
    def test_table_says_what_each_task_waits_on(self):
        with Target("park") as t:
            # fake_target's main thread (the spinner's loop thread) blocks
            # in read() just after it says ready
            r = eventually(lambda: coscope("tasks", t.pid),
                           lambda r: "blocking the loop" in r.stdout)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "")
            out = r.stdout
            self.assertEqual(len(rows(out)), 12)
            main = row_of(out, "main")
            self.assertEqual(main[2], "waiting")
            self.assertEqual(main[3], "task 2 'fetch_user'")
            self.assertEqual(main[-1], "app.c:10")
            fetch = row_of(out, "fetch_user")
            self.assertRegex(fetch[3], r"^fd 7 \(read\), (9m5\d|10m00)s left$")
            self.assertEqual(fetch[5], "3")  # steps
            self.assertEqual(row_of(out, "db-writer")[3],
                             "lock 100 held by task 4 'lock-holder'")
            self.assertRegex(row_of(out, "lock-holder")[3],
                             r"^timer \(sleep\), (4m5\d|5m00)s left$")
            self.assertEqual(row_of(out, "consumer")[3], "queue 200 (empty)")
            self.assertEqual(row_of(out, "producer")[3], "queue 200 (full)")
            self.assertEqual(row_of(out, "notifier")[3], "event 300")
            self.assertEqual(row_of(out, "limiter")[3], "semaphore 400")
            self.assertEqual(row_of(out, "hasher")[3], "worker thread")
            self.assertEqual(row_of(out, "yielder")[2], "ready")
            spin = row_of(out, "spinner")
            self.assertEqual(spin[2], "running")
            # its loop thread (fake_target's main) is parked in read()
            self.assertTrue(spin[3].startswith("blocking the loop in read "),
                            spin)
            self.assertEqual(row_of(out, "finished")[2], "done")

    def test_json_is_valid_and_complete(self):
        with Target("park") as t:
            r = coscope("tasks", t.pid, "--format", "json")
            self.assertEqual(r.returncode, 0, r.stderr)
            check = subprocess.run(
                [sys.executable, "-c",
                 "import json,sys; json.load(sys.stdin)"],
                input=r.stdout, text=True, timeout=TIMEOUT)
            self.assertEqual(check.returncode, 0)
            doc = json.loads(r.stdout)
            self.assertEqual(doc["pid"], t.pid)
            self.assertIn("fake_target", doc["command"])
            by = {x["name"]: x for x in doc["tasks"]}
            self.assertEqual(len(by), 12)
            self.assertEqual(by["main"]["waits_on"],
                             {"reason": "task", "task": 2, "tasks": [2]})
            self.assertEqual(by["fetch_user"]["awaiter"], 1)
            self.assertEqual(by["db-writer"]["waits_on"],
                             {"reason": "lock", "lock": 100, "holder": 4})
            sleep = by["lock-holder"]["waits_on"]
            self.assertEqual(sleep["reason"], "sleep")
            self.assertGreater(sleep["remaining_ns"], 200 * 10**9)
            self.assertEqual(by["fetch_user"]["waits_on"]["fd"], 7)
            self.assertEqual(by["consumer"]["waits_on"],
                             {"reason": "queue-get", "queue": 200})
            self.assertEqual(by["spinner"]["state"], "running")
            self.assertIsNone(by["spinner"]["waits_on"])
            self.assertEqual(by["lock-holder"]["steps"], 5)
            self.assertEqual(by["lock-holder"]["site"], "db.c:40")
            self.assertEqual(doc["deadlocks"], [])

    def test_tree_puts_each_task_above_what_it_waits_on(self):
        with Target("park") as t:
            r = coscope("tasks", t.pid, "--format", "tree")
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            i = next(k for k, l in enumerate(lines)
                     if l.startswith("task 1 'main'"))
            self.assertTrue(lines[i + 1].startswith(
                "└── task 2 'fetch_user': waiting on fd 7"), lines[i + 1])
            i = next(k for k, l in enumerate(lines)
                     if l.startswith("task 3 'db-writer'"))
            self.assertTrue(lines[i + 1].startswith(
                "└── task 4 'lock-holder': waiting on timer"), lines[i + 1])
            self.assertNotIn("deadlock", r.stdout)
            # every task once
            self.assertEqual(len(lines), 12)

    def test_deadlock_is_printed_and_exits_1(self):
        with Target("deadlock") as t:
            for fmt in ("tree", "table", "json"):
                r = coscope("tasks", t.pid, "--format", fmt)
                self.assertEqual(r.returncode, 1, (fmt, r))
                if fmt == "json":
                    cyc = json.loads(r.stdout)["deadlocks"]
                    self.assertEqual(len(cyc), 1)
                    self.assertEqual(sorted(cyc[0]), [2, 3, 4])
                    continue
                dl = [l for l in r.stdout.splitlines()
                      if l.startswith("deadlock:")]
                self.assertEqual(len(dl), 1, r.stdout)
                for name in ("worker-a", "worker-b", "worker-c"):
                    self.assertIn("'%s'" % name, dl[0])
                self.assertNotIn("bystander", dl[0])
                self.assertNotIn("'main'", dl[0])
            tree = coscope("tasks", t.pid, "--format", "tree").stdout
            self.assertIn("task 1 'main': waiting on task 2 'worker-a'", tree)
            self.assertIn("(shown above)", tree)

    def test_no_tasks(self):
        with Target("many", "0") as t:
            r = coscope("tasks", t.pid)
            self.assertEqual((r.returncode, len(r.stdout.splitlines())),
                             (0, 1), r)
            r = coscope("tasks", t.pid, "--format", "json")
            self.assertEqual(json.loads(r.stdout)["tasks"], [])
            r = coscope("tasks", t.pid, "--format", "tree", "--stacks")
            self.assertEqual((r.returncode, r.stdout), (0, ""))

    def test_hostile_names_are_shown_not_obeyed(self):
        with Target("evil") as t:
            for fmt in ("table", "tree", "json"):
                r = coscope("tasks", t.pid, "-f", fmt)
                self.assertNotIn("\033", r.stdout)
                self.assertNotIn("\007", r.stdout)
                self.assertIn("?]0;pwned?bad?name?", r.stdout)
                # strict UTF-8: only well-formed characters pass
                self.assertIn("u\u00e9\u20ac\U0001F600|???|???|???|????|????",
                              r.stdout)
            self.assertIn("x?[2Jy.c:1", coscope("tasks", t.pid).stdout)
            # it waits on itself: a deadlock of one
            self.assertEqual(coscope("tasks", t.pid).returncode, 1)

    def test_many_tasks(self):
        with Target("many", "20000") as t:
            r = coscope("tasks", t.pid, "--format", "json")
            self.assertEqual(r.returncode, 0, r.stderr)
            names = {x["name"] for x in json.loads(r.stdout)["tasks"]}
            self.assertEqual(len(names), 20000)
            self.assertIn("sleeper-20000", names)


# ---- --stacks ----------------------------------------------------------------

class Stacks(Case):
    def frames_under(self, out, name):
        """The frame lines printed under a task's row."""
        lines = out.splitlines()
        i = next(k for k, l in enumerate(lines)
                 if re.match(r"\s*\d+\s+%s\s" % re.escape(name), l))
        got = []
        for l in lines[i + 1:]:
            if not l.startswith(" " * 10):
                break
            got.append(l.strip())
        return got

    def test_table_shows_the_culprit_function_and_line(self):
        with Target("park") as t:
            r = coscope("tasks", t.pid, "--stacks")
            self.assertEqual(r.returncode, 0, r.stderr)
            holder = self.frames_under(r.stdout, "lock-holder")
            funcs = [f.split()[2] for f in holder]
            # (under ASan, swapcontext's interceptor is frame #0)
            i = funcs.index("park_task")
            self.assertEqual(funcs[i:i + 3],
                             ["park_task", "holder_naps", "holder_entry"])
            self.assertRegex(holder[i + 1], r"\(fake_target\.c:\d+\)$")
            writer = [f.split()[2] for f in
                      self.frames_under(r.stdout, "db-writer")]
            self.assertEqual(writer[i + 1], "writer_waits_for_lock")
            self.assertTrue(self.frames_under(r.stdout, "spinner")[0]
                            .startswith("(no stack: running"))
            # the target was not stopped: it still answers
            self.assertEqual(t.send("emit 1").split()[0], "emitted")

    def test_json_stacks(self):
        with Target("park") as t:
            r = coscope("tasks", t.pid, "--stacks", "--format=json")
            self.assertEqual(r.returncode, 0, r.stderr)
            by = {x["name"]: x for x in json.loads(r.stdout)["tasks"]}
            st = by["lock-holder"]["stack"]
            i = [f["function"] for f in st].index("holder_naps")
            self.assertTrue(st[i]["file"].endswith("fake_target.c"))
            self.assertGreater(st[i]["line"], 0)
            self.assertRegex(st[i]["ip"], r"^0x[0-9a-f]+$")
            self.assertIsNone(by["main"]["stack"])

    def test_tree_stacks(self):
        with Target("park") as t:
            r = coscope("tasks", t.pid, "-s", "-f", "tree")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"\n\s+#\d\s+0x[0-9a-f]+ holder_naps ")

    @unittest.skipUnless(can_run_as_nobody(), "needs root and setpriv")
    def test_permission_error_says_what_is_needed(self):
        with Target("nodump", prefix=NOBODY) as t:
            ok = coscope("tasks", t.pid, prefix=NOBODY)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            r = coscope("tasks", t.pid, "--stacks", prefix=NOBODY)
            self.assert_error(r, "process %d" % t.pid, "permission denied",
                              "same user", "CAP_SYS_PTRACE")

    def test_process_exits_while_unwinding(self):
        with Target("park") as t:
            s = Sync("tasks", t.pid, "--stacks")
            s.at("opened")
            s.resume()
            s.at("stacks")
            t.vanish()
            s.resume()
            r = s.finish()
            self.assert_error(r, "process %d exited while it was being read"
                              % t.pid)


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


class Watch(Case):
    def test_streams_steps_until_the_process_exits(self):
        with Target("park") as t:
            w = Watcher(t.pid)
            self.assertIn("watching process %d" % t.pid, w.ready)
            self.assertTrue(t.send("emit 3").startswith("emitted"))
            lines = [w.p.stdout.readline() for _ in range(3)]
            for l in lines:
                self.assertIn("task 2 'fetch_user'  ran ", l)
                self.assertIn("waits on fd-read", l)
            t.stop()
            rc, out, err = w.finish()
            self.assertEqual(rc, 0)
            self.assertIn("process %d exited" % t.pid, err)

    def test_ends_when_the_process_is_killed_and_not_reaped(self):
        with Target("park") as t:
            w = Watcher(t.pid)
            self.assertIn("watching", w.ready)
            t.p.kill()  # a zombie until Target's exit reaps it
            rc, out, err = w.finish()
            self.assertEqual(rc, 0, err)
            self.assertIn("process %d exited" % t.pid, err)

    def test_ctrl_c_ends_cleanly(self):
        with Target("park") as t:
            w = Watcher(t.pid)
            self.assertIn("watching", w.ready)
            w.p.send_signal(signal.SIGINT)
            rc, out, err = w.finish()
            self.assertEqual(rc, 0, err)

    def test_reports_losses_exactly(self):
        with Target("park") as t:
            head = int(t.send("emit 5000").split()[1])
            w = Watcher(t.pid, "--all", "--format", "json")
            t.stop()
            rc, out, err = w.finish()
            self.assertEqual(rc, 0, err)
            evs = [json.loads(l) for l in out.splitlines()]
            steps = sum(1 for e in evs if e["type"] == "step")
            lost = sum(e["count"] for e in evs if e["type"] == "lost")
            self.assertGreater(lost, 0)
            # every record of ring 0 was either shown or counted lost
            # (the park scenario wrote no records itself)
            self.assertEqual(steps + lost, head)
            self.assertEqual(evs[-1], {"type": "exited", "pid": t.pid})

    def test_text_loss_line(self):
        with Target("park") as t:
            t.send("emit 5000")
            w = Watcher(t.pid, "--all")
            t.stop()
            rc, out, err = w.finish()
            self.assertRegex(out, r"lost \d+ events of loop 0")

    def test_warning_with_its_stack(self):
        with Target("park") as t:
            w = Watcher(t.pid)
            self.assertEqual(t.send("warn"), "warned")
            first = w.p.stdout.readline()
            second = w.p.stdout.readline()
            t.stop()
            w.finish()
            self.assertIn("task 4 'lock-holder'  warning: slow", first)
            self.assertIn(" slow_handler", second)

    def test_bad_input(self):
        self.assert_error(coscope("watch"), "missing process id")
        self.assert_error(coscope("watch", "1", "--format", "xml"), "'xml'")
        self.assert_error(coscope("watch", free_pid()), "no process")


# ---- top ---------------------------------------------------------------------

def table_names(snapshot):
    """Task names of one plain-text top snapshot, in order."""
    lines = snapshot.splitlines()
    i = next(k for k, l in enumerate(lines) if l.lstrip().startswith("ID "))
    return [l.split()[1] for l in lines[i + 1:] if l.strip()]


class Top(Case):
    def test_plain_text_when_not_a_terminal(self):
        with Target("park") as t:
            r = coscope("top", t.pid, "--iterations", "2", "--interval",
                        "0.1")
            self.assertEqual(r.returncode, 0, r.stderr)
            snaps = r.stdout.strip().split("\n\n")
            self.assertEqual(len(snaps), 2)
            self.assertIn("coscope top - process %d" % t.pid, snaps[0])
            self.assertIn("12 tasks: 1 running, 1 ready, 9 waiting",
                          snaps[0])
            names = table_names(snaps[1])
            self.assertEqual(len(names), 12)
            # sorted by run time, the default
            self.assertEqual(names[0], "spinner")
            self.assertNotIn("\033", r.stdout)

    def test_sort_and_filter(self):
        with Target("park") as t:
            r = coscope("top", t.pid, "-n", "1", "--sort", "name")
            names = table_names(r.stdout)
            self.assertEqual(names, sorted(names))
            r = coscope("top", t.pid, "-n", "1", "--filter", "lock")
            self.assertEqual(table_names(r.stdout), ["lock-holder"])
            r = coscope("top", t.pid, "-n", "1", "--sort", "id")
            self.assertEqual(table_names(r.stdout)[:2], ["main",
                                                         "fetch_user"])

    def test_ends_when_the_process_exits_or_on_ctrl_c(self):
        with Target("park") as t:
            p = subprocess.Popen([COSCOPE, "top", str(t.pid), "-d", "0.05"],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            self.assertIn("coscope top", p.stdout.readline())
            t.stop()
            out, err = p.communicate(timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn("process %d exited" % t.pid, err)
        with Target("park") as t:
            p = subprocess.Popen([COSCOPE, "top", str(t.pid)],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            self.assertIn("coscope top", p.stdout.readline())
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, err)

    def test_bad_input(self):
        self.assert_error(coscope("top"), "missing process id")
        self.assert_error(coscope("top", "1", "--sort", "size"), "'size'")
        self.assert_error(coscope("top", "1", "-d", "0"), "'0'")
        self.assert_error(coscope("top", "1", "-n", "x"), "'x'")
        self.assert_error(coscope("top", free_pid()), "no process")

    @unittest.skipUnless(shutil.which("tmux"), "needs tmux")
    def test_full_screen_keys(self):
        """Driven through tmux: start, sort, filter, a stack, quit."""
        with Target("park") as t:
            session = "coscope-test-%d" % os.getpid()
            status = os.path.join(tempfile.mkdtemp(), "status")
            cmd = "%s top %d -d 0.2; echo $? > %s" % (COSCOPE, t.pid, status)
            tmux = ["tmux", "-L", session]
            subprocess.run(tmux + ["new-session", "-d", "-s", session, "-x",
                                   "150", "-y", "40", cmd], check=True,
                           timeout=TIMEOUT)
            try:
                def screen():
                    return subprocess.run(
                        tmux + ["capture-pane", "-p", "-t", session],
                        capture_output=True, text=True,
                        timeout=TIMEOUT).stdout

                def until(pred, what):
                    for _ in range(500):  # the view redraws every 0.2 s
                        s = screen()
                        if pred(s):
                            return s
                        time.sleep(0.02)
                    self.fail("never saw %s in:\n%s" % (what, screen()))

                def keys(*k):
                    subprocess.run(tmux + ["send-keys", "-t", session] +
                                   list(k), check=True, timeout=TIMEOUT)

                until(lambda s: "coscope top - process %d" % t.pid in s,
                      "the view")
                def rows(s):
                    return [l.split()[1] for l in s.splitlines()
                            if re.match(r"\s+\d+\s", l)]

                keys("n")
                # (a capture may catch a screen half redrawn: wait for it)
                until(lambda s: "sort: name" in s and rows(s)[:3] ==
                      ["consumer", "db-writer", "fetch_user"], "by name")
                keys("/", "holder", "Enter")
                until(lambda s: "filter: 'holder'" in s, "the filter")
                keys("Enter")
                s = until(lambda s: "holder_naps" in s, "the stack")
                self.assertIn("stack of task 4 'lock-holder'", s)
                def exit_status():
                    try:
                        with open(status) as f:
                            return f.read().strip()
                    except FileNotFoundError:
                        return ""

                keys("q")
                until(lambda s: exit_status() != "", "the exit")
                self.assertEqual(exit_status(), "0")
            finally:
                subprocess.run(tmux + ["kill-server"], capture_output=True,
                               timeout=TIMEOUT)


# ---- record and report --------------------------------------------------------

class Record(Case):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="coscope-cli-")
        self.file = os.path.join(self.dir, "t.cst")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def report(self, path=None):
        r = coscope("report", path or self.file)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def counts(self, out):
        m = re.search(r"^events: (\d+) recorded, (\d+) lost$", out, re.M)
        self.assertIsNotNone(m, out)
        return int(m.group(1)), int(m.group(2))

    def test_record_a_process_for_a_while(self):
        with Target("park") as t:
            t.send("emit 300")
            self.assertEqual(t.send("warn"), "warned")
            head = int(t.send("emit 0").split()[1])
            r = coscope("record", t.pid, "-o", self.file, "--duration", "0.1")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("recorded process %d" % t.pid, r.stderr)
            self.assertIn("duration reached", r.stderr)
            out = self.report()
            got, lost = self.counts(out)
            self.assertEqual(got + lost, head)  # what the rings had
            self.assertGreater(lost, 0)         # 301 records, 256 slots
            self.assertIn("process %d" % t.pid, out)
            self.assertIn(", complete", out)
            self.assertRegex(out, r"tasks: 12 at the end \(")
            self.assertIn("warnings: 1 (slow 1)", out)
            self.assertIn("slow: task 4 'lock-holder' (before the recording)",
                          out)
            self.assertRegex(out, r"#0 +0x[0-9a-f]+ slow_handler ")
            # all of it was in the rings before: said apart from the
            # recording, which saw nothing (issue 11, point 5)
            self.assertRegex(out, r"no events while recorded \(before it, "
                             r"the rings still held %d events over " % got)
            self.assertNotIn("slowest steps", out)

    def test_recording_window_apart_from_the_backlog(self):
        with Target("park") as t:
            t.send("emit 50")
            s = Sync("record", t.pid, "-o", self.file)
            s.at("recording")
            s.resume()
            t.send("emit 7")
            t.stop()
            r = s.finish()
            self.assertEqual(r.returncode, 0, r.stderr)
            out = self.report()
            got, lost = self.counts(out)
            m = re.search(r"\), (\S+) of events while recorded \(before it, "
                          r"the rings still held (\d+) events over ", out)
            self.assertIsNotNone(m, out)
            self.assertEqual(int(m.group(2)) + 7, got + lost)

    def test_record_until_the_process_exits(self):
        with Target("park") as t:
            s = Sync("record", t.pid, "-o", self.file)
            s.at("recording")
            s.resume()
            t.send("emit 100")
            t.stop()
            r = s.finish()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("process exited", r.stderr)
            self.assertEqual(self.counts(self.report()), (100, 0))

    def test_ctrl_c_stops_recording(self):
        with Target("park") as t:
            s = Sync("record", t.pid, "-o", self.file)
            s.at("recording")
            s.p.send_signal(signal.SIGINT)
            s.resume()
            r = s.finish()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("interrupted", r.stderr)
            self.assertIn(", complete", self.report())

    def test_record_a_command(self):
        r = coscope("record", "-o", self.file, *NO_PRELOAD, "--", FAKE, "park",
                    input="emit 40\nwarn\nexit\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("recorded '%s'" % FAKE, r.stderr)
        out = self.report()
        self.assertEqual(self.counts(out), (41, 0))
        self.assertIn("warnings: 1 (slow 1)", out)

    def test_truncated_file_reads_up_to_its_last_chunk(self):
        with Target("park") as t:
            t.send("emit 100")
            coscope("record", t.pid, "-o", self.file, "--duration", "0.05")
        with open(self.file, "rb") as f:
            data = f.read()
        full, _ = self.counts(self.report())
        cut = os.path.join(self.dir, "cut.cst")
        size = len(data) // 2
        with open(cut, "wb") as f:
            f.write(data[:size])
        # refused, as export and view refuse it, with where it is cut
        r = coscope("report", cut)
        self.assert_error(r, "'%s' is truncated or damaged after byte "
                          % cut, "of %d (use --partial" % size)
        for cmd in ("export", "view"):
            self.assertIn("truncated or damaged after byte",
                          coscope(cmd, cut, "--html", os.path.join(
                              self.dir, "v.html")).stderr
                          if cmd == "view" else coscope(cmd, cut).stderr)
        r = coscope("report", "--partial", cut)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"cut or damaged after byte \d+ of %d"
                         % size)
        got, lost = self.counts(r.stdout)
        self.assertLess(got, full)  # what it decoded, not what was written
        self.assertLessEqual(got, 100)

    def test_bad_input(self):
        self.assert_error(coscope("report"), "missing trace file")
        self.assert_error(coscope("report", os.path.join(self.dir, "none")),
                          "cannot read", "none'")
        junk = os.path.join(self.dir, "junk")
        with open(junk, "wb") as f:
            f.write(os.urandom(4096))
        self.assert_error(coscope("report", junk),
                          "'%s' is not a valid coscope trace file" % junk)
        self.assert_error(coscope("report", self.dir), "cannot read")
        self.assert_error(coscope("record", "1"), "missing '-o <file>'")
        self.assert_error(coscope("record", "-o", self.file), "missing")
        self.assert_error(coscope("record", "1", "-o", self.file, "-d", "x"),
                          "'x' is not a duration")
        self.assert_error(coscope("record", "-o", self.file, *NO_PRELOAD,
                                  "--", "/nonexistent/cmd"),
                          "cannot run '/nonexistent/cmd'")
        self.assert_error(coscope("record", "-o", self.file, *NO_PRELOAD,
                                  "--", "true"),
                          "'true' wrote no trace")
        self.assert_error(coscope("record", free_pid(), "-o", self.file),
                          "no process")
        with Target("park") as t:
            self.assert_error(coscope("record", t.pid, "-o",
                                      "/nonexistent/dir/t.cst"),
                              "cannot write '/nonexistent/dir/t.cst'")

    def test_command_output_checked_before_it_starts(self):
        # the command would leave a mark; a bad -o must stop it first
        mark = os.path.join(self.dir, "ran")
        for path, why in (("/nonexistent/dir/t.cst", "no such file or "
                           "directory"), (self.dir, "is a directory")):
            with self.subTest(path=path):
                r = coscope("record", "-o", path, *NO_PRELOAD, "--", "sh",
                            "-c", "touch '%s'" % mark)
                self.assert_error(r, "cannot write '%s': %s" % (path, why))
                self.assertFalse(os.path.exists(mark))

    @unittest.skipUnless(os.environ.get("PRELOAD"),
                         "no interposer under the sanitizers")
    def test_record_a_command_with_the_interposer(self):
        # `record -- CMD` catches the blocking call `run -- CMD` catches
        if not BUGGY:
            self.skipTest("examples not built")
        r = coscope("record", "-o", self.file, "--", BUGGY, "blocking-sleep",
                    env={"COSCOPE_REPORT": "blocking"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("coscope: blocking call usleep()", r.stderr)
        out = self.report()
        self.assertRegex(out, r"warnings: \d+ \(.*blocking 1")
        self.assertIn("load_settings", out)
        # how long the call held the loop, as the agent said (usleep of
        # 100 ms in buggy.c)
        self.assertRegex(out, r"blocking: task \d+ 'slow_handler': usleep\(\) "
                         r"held the loop for (1\d\d|[2-9]\d\d)(\.\d+)?ms")
        # and without it, as asked, none
        r = coscope("record", "-o", self.file, "--no-preload", "--", BUGGY,
                    "blocking-sleep", env={"COSCOPE_REPORT": "blocking"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("blocking 1", self.report())


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


class Real(Case):
    def need_segment(self, prog):
        if not os.path.exists(SEG % prog.pid):
            self.skipTest("this runtime does not publish a segment yet")

    def tasks(self, pid, *args):
        r = coscope("tasks", pid, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    @unittest.skipUnless(REAL, "REAL_TARGET not built")
    def test_spinning_task_and_the_lock_it_holds(self):
        with Program([REAL, "spin"]) as p:
            self.need_segment(p)
            out = self.tasks(p.pid)
            spin = row_of(out, "spinner")
            self.assertEqual(spin[2], "running")
            self.assertTrue(spin[3].startswith("on cpu for "), spin)
            lock = row_of(out, "locker")
            self.assertEqual(lock[2], "waiting")
            self.assertRegex(lock[3],
                             r"^lock \d+ held by task %s 'spinner'$" % spin[0])
            self.assertTrue(row_of(out, "waiter")[3].startswith("timer"))
            tree = self.tasks(p.pid, "--format", "tree")
            # main gathers all three; the locker's lock holder under it
            self.assertRegex(tree, r"task \d+ 'main': waiting on task \d+ "
                             r"'waiter' and 2 more \(gather\)\n")
            self.assertRegex(tree, r"\n├── task \d+ 'spinner': running, on "
                             r"cpu")
            self.assertRegex(tree, r"\n└── task \d+ 'locker': waiting on "
                             r"lock \d+ held by task \d+ 'spinner'\n    └── "
                             r"task \d+ 'spinner': running \(shown above\)")
            st = Stacks.frames_under(self, self.tasks(p.pid, "--stacks"),
                                     "locker")
            funcs = [f.split()[2] for f in st]
            self.assertIn("locker_wants_lock", funcs)

    @unittest.skipUnless(REAL, "REAL_TARGET not built")
    def test_the_whole_gather(self):
        # main in cs_gather over 300 tasks: every one is awaited, in the
        # table, the tree (folded past 10) and JSON (issue 11, point 6)
        with Program([REAL, "gather"]) as p:
            self.need_segment(p)
            out = self.tasks(p.pid)
            self.assertRegex(row_of(out, "main")[3],
                             r"^task \d+ 'sleeper' and 299 more \(gather\)$")
            tree = self.tasks(p.pid, "--format", "tree").splitlines()
            self.assertRegex(tree[0], r"^task 1 'main': waiting on task \d+ "
                             r"'sleeper' and 299 more \(gather\)$")
            kids = [l for l in tree[1:] if l.startswith(("├── ", "└── "))]
            self.assertEqual(len(kids), 11, tree)
            self.assertEqual(kids[-1], "└── ... and 290 more awaited tasks")
            self.assertTrue(all("'sleeper': waiting on timer" in l
                                for l in kids[:-1]), kids)
            # no sleeper is a root of its own
            self.assertEqual([l for l in tree if l.startswith("task ")],
                             tree[:1])
            doc = json.loads(coscope("tasks", p.pid, "-f", "json").stdout)
            main = [t for t in doc["tasks"] if t["name"] == "main"][0]
            sleepers = sorted(t["id"] for t in doc["tasks"]
                              if t["name"] == "sleeper")
            self.assertEqual(len(sleepers), 300)
            self.assertEqual(sorted(main["waits_on"]["tasks"]), sleepers)
            self.assertIn(main["waits_on"]["task"], sleepers)

    @unittest.skipUnless(REAL, "REAL_TARGET not built")
    def test_task_blocked_in_sleep(self):
        with Program([REAL, "sleep"]) as p:
            self.need_segment(p)
            # the blocker calls sleep() just after it says ready
            out = eventually(lambda: self.tasks(p.pid, "--stacks"),
                             lambda out: "blocking the loop" in out)
            b = row_of(out, "blocker")
            self.assertEqual(b[2], "running")
            self.assertRegex(b[3], r"^blocking the loop in (clock_)?nanosleep "
                             r"for ")
            waiter = [f.split()[2] for f in Stacks.frames_under(self, out,
                                                                "waiter")]
            self.assertIn("waiter_naps", waiter)
            line = [l for l in coscope("ps").stdout.splitlines()
                    if l.split() and l.split()[0] == str(p.pid)]
            self.assertEqual(len(line), 1)
            f = line[0].split()
            self.assertEqual(f[1:4] + f[6:7], ["1", "3", "0", "live"])

    @unittest.skipUnless(FETCH, "examples not built")
    def test_fetch_data(self):
        with Program([FETCH, "100"], lines=3) as p:
            self.need_segment(p)
            for _ in range(100):  # the last task prints, then parks
                doc = json.loads(coscope("tasks", p.pid, "-f", "json",
                                         "--stacks").stdout)
                fetch = [x for x in doc["tasks"] if x["name"] == "fetch_data"]
                if all(x["state"] == "waiting" for x in fetch):
                    break
            self.assertEqual(len(fetch), 3)
            left = sorted(x["waits_on"]["remaining_ns"] // 10**9 for x in fetch)
            self.assertEqual([x["waits_on"]["reason"] for x in fetch],
                             ["sleep"] * 3)
            self.assertTrue(90 <= left[0] <= 100 and 290 <= left[2] <= 300,
                            left)
            for x in fetch:
                self.assertIn("fetch_data",
                              [f["function"] for f in x["stack"]])
            main = [x for x in doc["tasks"] if x["name"] == "main"][0]
            self.assertEqual(main["waits_on"]["reason"], "task")
            self.assertIn("amain", [f["function"] for f in main["stack"]])

    @unittest.skipUnless(REAL, "REAL_TARGET not built")
    def test_top_shows_the_spinner_on_the_cpu(self):
        with Program([REAL, "spin"]) as p:
            self.need_segment(p)
            r = coscope("top", p.pid, "-n", "2", "-d", "0.2")
            self.assertEqual(r.returncode, 0, r.stderr)
            last = r.stdout.strip().split("\n\n")[-1]
            self.assertEqual(table_names(last)[0], "spinner")
            row = [l for l in last.splitlines() if " spinner " in l][0]
            cpu = float(row.split()[3])
            self.assertGreater(cpu, 50.0, row)
            self.assertIn("loop 0: busy 100%", last)

    @unittest.skipUnless(FETCH, "examples not built")
    def test_record_and_report_fetch_data(self):
        d = tempfile.mkdtemp(prefix="coscope-cli-")
        try:
            path = os.path.join(d, "fetch.cst")
            r = coscope("record", "-o", path, *NO_PRELOAD, "--", FETCH, "0.01")
            if "wrote no trace" in r.stderr:
                self.skipTest("this runtime does not record yet")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("exit status 0", r.stderr)
            rep = coscope("report", path)
            self.assertEqual(rep.returncode, 0, rep.stderr)
            out = rep.stdout
            self.assertIn(", complete", out)
            self.assertRegex(out, r"while recorded: [4-9] created, [4-9] done")
            self.assertRegex(out, r"loop 0: \d+ iterations, busy \d+\.\d%")
            self.assertRegex(out, r"task \d+ 'fetch_data', then sleep")
            got, lost = Record.counts(self, out)
            self.assertEqual(lost, 0)
        finally:
            shutil.rmtree(d)

    @unittest.skipUnless(FETCH, "examples not built")
    def test_watch_fetch_data_until_it_is_killed(self):
        with Program([FETCH, "100"], lines=3) as p:
            self.need_segment(p)
            w = Watcher(p.pid, "--all")
            self.assertIn("watching", w.ready)
            p.p.kill()
            rc, out, err = w.finish()
            self.assertEqual(rc, 0, err)
            self.assertIn("process %d exited" % p.pid, err)
            self.assertRegex(out, r"task \d+ 'fetch_data'  created at "
                             r".*fetch_data\.c:\d+")
            # one line per creation, its name included: no "named" echo
            self.assertNotIn("named '", out)
            self.assertRegex(out, r"task \d+ 'fetch_data'  ran \S+, waits on "
                             r"sleep")


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


@unittest.skipUnless(os.environ.get("PRELOAD"),
                     "no interposer under the sanitizers")
class SameLine(Case):
    """Every tool names the same file:line for the same warning: the line
    of the call (not the one after it), inlined callers included (issue
    11, point 3)."""

    def setUp(self):
        if not SAMELINE:
            self.skipTest("sameline_target not built")
        self.dir = tempfile.mkdtemp(prefix="coscope-line-")
        self.addCleanup(shutil.rmtree, self.dir)
        src = os.path.basename(SAMELINE_SRC)
        self.want = [("nap", True, src, marked_line(SAMELINE_SRC,
                                                    "blocking call")),
                     ("load_config", False, src,
                      marked_line(SAMELINE_SRC, "inlined call")),
                     ("handler", False, src, marked_line(SAMELINE_SRC,
                                                         "caller"))]

    def env(self, **kw):
        return dict(os.environ, COSCOPE_REPORT="blocking",
                    LD_PRELOAD=PRELOAD, **kw)

    def ours(self, frames):
        return [f for f in frames if f[0] in ("nap", "load_config",
                                              "handler")]

    def test_every_tool_names_the_same_lines(self):
        trace = os.path.join(self.dir, "t.cst")
        p = subprocess.Popen([SAMELINE], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=self.env(COSCOPE_RECORD=trace))
        self.assertEqual(p.stdout.readline(), "ready\n")
        w = Watcher(p.pid, "--all")
        self.assertIn("watching", w.ready)
        p.stdin.write("x\n")
        p.stdin.close()
        agent = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(p.wait(TIMEOUT), 0, agent)
        rc, watched, err = w.finish()
        self.assertEqual(rc, 0, err)
        got = {"agent": self.ours(frames_in(agent)),
               "watch": self.ours(frames_in(watched))}
        r = coscope("report", trace)
        self.assertEqual(r.returncode, 0, r.stderr)
        got["report"] = self.ours(frames_in(r.stdout))
        out = os.path.join(self.dir, "t.json")
        r = coscope("export", trace, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            doc = json.load(f)
        evs = doc["traceEvents"] if isinstance(doc, dict) else doc
        stacks = ["\n".join(e["args"]["stack"]) for e in evs
                  if "stack" in e.get("args", {})]
        self.assertEqual(len(stacks), 1, stacks)
        got["export"] = self.ours(frames_in(stacks[0]))
        r = subprocess.run([COSCOPE, "check", "--format", "json", "--",
                            SAMELINE], input="x\n", capture_output=True,
                           text=True, timeout=TIMEOUT,
                           env=dict(os.environ, COSCOPE_REPORT="blocking"))
        self.assertEqual(r.returncode, 1, r.stderr)
        rep = json.loads(r.stdout)["reports"]
        self.assertEqual(len(rep), 1, rep)
        got["check"] = self.ours([(f["function"], bool(f.get("inlined")),
                                   os.path.basename(f["file"] or ""),
                                   f["line"]) for f in rep[0]["frames"]])
        for tool, frames in got.items():
            with self.subTest(tool=tool):
                self.assertEqual(frames, self.want)


class UserStacks(Case):
    """--stacks shows the user's frames, every task has a creation site,
    and JSON says null, never "" (issue 11, point 7)."""

    def setUp(self):
        if not SAMELINE:
            self.skipTest("sameline_target not built")
        self.p = subprocess.Popen([SAMELINE], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.finish)
        self.assertEqual(self.p.stdout.readline(), "ready\n")
        # "ready" comes before main parks in its await and maybe before
        # handler first runs (its stack comes with its first step): wait
        # until the table shows both parked
        for _ in range(500):
            r = coscope("tasks", self.p.pid, "-f", "json")
            if r.returncode == 0:
                states = [t["state"] for t in json.loads(r.stdout)["tasks"]]
                if states == ["waiting", "waiting"]:
                    return
            time.sleep(0.01)
        self.fail("the target's tasks never both parked: %s" % r.stdout)

    def finish(self):
        self.p.kill()  # before its blocking call: nothing to report
        self.p.stdin.close()
        self.p.stdout.close()
        self.p.wait(TIMEOUT)
        remove(SEG % self.p.pid)  # killed: its atexit did not run

    def test_runtime_frames_hidden_unless_asked(self):
        r = coscope("tasks", self.p.pid, "--stacks")
        self.assertEqual(r.returncode, 0, r.stderr)
        funcs = re.findall(r"#\d+ +0x[0-9a-f]+ (\S+)", r.stdout)
        self.assertIn("handler", funcs)
        self.assertIn("amain", funcs)
        self.assertFalse([f for f in funcs if f.startswith("cs_")], funcs)
        r = coscope("tasks", self.p.pid, "--stacks", "--runtime-frames")
        self.assertEqual(r.returncode, 0, r.stderr)
        funcs = re.findall(r"#\d+ +0x[0-9a-f]+ (\S+)", r.stdout)
        for f in ("cs__wait", "cs__task_entry", "handler"):
            self.assertIn(f, funcs)

    def test_every_task_has_a_site(self):
        src = os.path.basename(SAMELINE_SRC)
        r = coscope("tasks", self.p.pid, "-f", "json", "--stacks")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        sites = {t["name"]: t["site"] for t in doc["tasks"]}
        self.assertEqual(sites, {
            "main": "%s:%d" % (SAMELINE_SRC, marked_line(SAMELINE_SRC,
                                                         "run site")),
            "handler": "%s:%d" % (SAMELINE_SRC, marked_line(SAMELINE_SRC,
                                                            "spawn site"))})
        self.assertTrue(all(src in v for v in sites.values()))
        # the table too
        out = coscope("tasks", self.p.pid).stdout
        self.assertIn("%s:%d" % (SAMELINE_SRC, marked_line(SAMELINE_SRC,
                                                           "spawn site")),
                      out)

        def strings(v):
            if isinstance(v, dict):
                for x in v.values():
                    yield from strings(x)
            elif isinstance(v, list):
                for x in v:
                    yield from strings(x)
            else:
                yield v
        self.assertNotIn("", list(strings(doc)))
        for t in doc["tasks"]:
            self.assertGreater(t["runtime_frames_hidden"], 0, t)
            self.assertFalse([f for f in t["stack"]
                              if (f["function"] or "").startswith("cs_")])


class Symbols(Case):
    """Warning stacks of a trace file whose writer has exited are named
    from the file's module table: the right function while the binary is
    the one that ran, "buggy+0xoffset" once it is rebuilt or gone."""

    def setUp(self):
        if not BUGGY:
            self.skipTest("examples not built")
        self.dir = tempfile.mkdtemp(prefix="coscope-sym-")
        self.addCleanup(shutil.rmtree, self.dir)
        # A copy, so that the test can replace the file afterwards.
        self.exe = os.path.join(self.dir, "buggy")
        shutil.copy2(BUGGY, self.exe)

    def record(self):
        mode, culprit, caller, env = buggy_warning_mode()
        path = os.path.join(self.dir, mode + ".cst")
        p = subprocess.Popen([self.exe, mode], env=dict(
            os.environ, COSCOPE_RECORD=path, **env),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p.wait(TIMEOUT)
        self.assertFalse(os.path.exists("/proc/%d" % p.pid))  # reaped
        self.assertTrue(os.path.exists(path), "buggy wrote no trace file")
        return path, culprit, caller

    def warning_frames(self, path):
        r = coscope("report", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.split("\nwarnings:\n", 1)
        self.assertEqual(len(out), 2, r.stdout)
        return re.findall(r"^ +#\d+ +0x([0-9a-f]+) (.*)$", out[1], re.M)

    def test_report_names_the_culprit_after_the_process_exited(self):
        path, culprit, caller = self.record()
        frames = self.warning_frames(path)
        self.assertRegex(frames[0][1],
                         r"^%s \(.*buggy\.c:\d+\)$" % culprit, frames)
        self.assertIn(caller, [f[1].split()[0] for f in frames])

    def test_rebuilt_or_missing_binary_gives_module_offsets(self):
        path, culprit, _ = self.record()
        orig = self.exe + ".orig"
        shutil.copy2(self.exe, orig)
        lo, hi = function_range(orig, culprit)
        # Another program at the same path: another build id.
        shutil.copy2(FAKE, self.exe)
        for state in ("rebuilt", "gone"):
            frames = self.warning_frames(path)
            self.assertNotIn(culprit, str(frames), state)
            m = re.match(r"^buggy\+0x([0-9a-f]+)$", frames[0][1])
            self.assertTrue(m, (state, frames))
            # The offset is the address in the file: inside the culprit.
            self.assertTrue(lo <= int(m.group(1), 16) < hi,
                            (state, frames[0], hex(lo), hex(hi)))
            if state == "rebuilt":
                os.unlink(self.exe)


# ---- bad input everywhere ---------------------------------------------------

class Errors(Case):
    def test_usage_errors(self):
        self.assert_error(coscope(), "no command")
        self.assert_error(coscope("frobnicate"), "'frobnicate'",
                          "not a coscope command")
        self.assert_error(coscope("--frob"), "'--frob'")
        self.assert_error(coscope("tasks"), "missing process id")
        self.assert_error(coscope("tasks", "1", "2"), "'2'")
        self.assert_error(coscope("tasks", "--frob", "1"), "'--frob'")
        self.assert_error(coscope("tasks", "-q", "1"), "'-q'")
        self.assert_error(coscope("tasks", "1", "--format"), "'--format'")
        self.assert_error(coscope("tasks", "1", "--format", "xml"), "'xml'")
        self.assert_error(coscope("help", "frob"), "'frob'")
        for bad in ("abc", "-5", "0", "12x", "99999999999"):
            self.assert_error(coscope("tasks", "--", bad),
                              "'%s' is not a process id" % bad)

    def test_pid_that_does_not_exist(self):
        pid = free_pid()
        self.assert_error(coscope("tasks", pid), "no process with pid %d" % pid)

    def test_not_a_coscope_process(self):
        with Sleeper() as s:
            self.assert_error(coscope("tasks", s.pid),
                              "process %d ('sleep 600')" % s.pid,
                              "not a coscope process")

    def test_stale_segment(self):
        with Target("park") as t:
            t.vanish()
            self.assert_error(coscope("tasks", t.pid), "process %d has exited"
                              % t.pid, "stale", "coscope ps --clean")

    def test_reused_pid(self):
        with Target("park") as t, Sleeper() as s:
            forge_reused(t.pid, s.pid)
            self.assert_error(coscope("tasks", s.pid), "stale",
                              "pid %d now belongs to another process" % s.pid)

    def test_corrupt_segments(self):
        with Target("park") as t, Sleeper() as s:
            write_segment(s.pid, b"\x00" * 8192)
            self.assert_error(coscope("tasks", s.pid),
                              "'%s' is not a valid coscope segment" %
                              (SEG % s.pid), "magic")
            with open(SEG % t.pid, "rb") as f:
                data = bytearray(f.read())
            struct.pack_into("<I", data, 24, s.pid)
            write_segment(s.pid, bytes(data[:3000]))  # truncated
            self.assert_error(coscope("tasks", s.pid),
                              "not a valid coscope segment")
            for cmd in ("tasks", "watch"):
                write_segment(s.pid, os.urandom(100))
                self.assert_error(coscope(cmd, s.pid), "not a valid")

    def test_garbage_tables_never_crash(self):
        """A valid header over random tables (task slots, strings, stacks,
        rings): every command ends with 0, 1 or 2, never a signal."""
        with Target("park") as t, Sleeper() as s:
            t.send("emit 50")
            t.send("warn")
            with open(SEG % t.pid, "rb") as f:
                seg = bytearray(f.read())
            rnd = random.Random(6)
            for _ in range(8):
                data = bytearray(seg)
                struct.pack_into("<I", data, 24, s.pid)
                struct.pack_into("<Q", data, 32, start_time(s.pid))
                for _ in range(len(data) // 16):  # scribble on the tables
                    data[rnd.randrange(1024, len(data))] = rnd.randrange(256)
                write_segment(s.pid, bytes(data))
                for args in (["tasks"], ["tasks", "-f", "json"],
                             ["tasks", "-f", "tree", "--stacks"], ["ps"],
                             ["record", s.pid, "-o", os.devnull, "-d",
                              "0.02"]):
                    if args[0] == "tasks":
                        args = args + [s.pid]
                    r = coscope(*args)
                    self.assertIn(r.returncode, (0, 1, 2), (args, r))
                    if r.returncode == 2:
                        self.assertEqual(len(r.stderr.splitlines()), 1, r)
                    if "json" in args and r.returncode != 2:
                        json.loads(r.stdout)
                w = Watcher(s.pid, "--all", "--format", "json")
                self.assertIn("watching", w.ready)
                w.p.send_signal(signal.SIGINT)
                rc, out, err = w.finish()
                self.assertIn(rc, (0, 2), err)
                for line in out.splitlines():
                    json.loads(line)

    def test_segment_with_wrong_mode_or_a_symlink(self):
        with Target("park") as t, Sleeper() as s:
            write_segment(s.pid, b"\x00" * 4096, mode=0o644)
            self.assert_error(coscope("tasks", s.pid), "mode 644")
            remove(SEG % s.pid)
            os.symlink(SEG % t.pid, SEG % s.pid)
            self.assert_error(coscope("tasks", s.pid), "symbolic link")
            self.assertIn("symbolic link",
                          Ps.ps_row(self, coscope("ps").stdout, s.pid))
            remove(SEG % s.pid)
            os.mkdir(SEG % s.pid, 0o700)
            try:
                self.assert_error(coscope("tasks", s.pid),
                                  "not a regular file")
                self.assertIn("not a regular file",
                              Ps.ps_row(self, coscope("ps").stdout, s.pid))
            finally:
                os.rmdir(SEG % s.pid)

    @unittest.skipUnless(can_run_as_nobody(), "needs root and setpriv")
    def test_another_users_process(self):
        with Target("park") as t:
            self.assert_error(coscope("tasks", t.pid, prefix=NOBODY),
                              "belongs to another user (uid 0)")
            self.assert_error(coscope("watch", t.pid, prefix=NOBODY),
                              "belongs to another user (uid 0)")

    def test_process_exits_mid_read(self):
        with Target("park") as t:
            s = Sync("tasks", t.pid)
            s.at("opened")
            t.vanish()
            s.resume()
            r = s.finish()
            self.assert_error(r, "process %d exited while it was being read"
                              % t.pid)


if __name__ == "__main__":
    unittest.main()
