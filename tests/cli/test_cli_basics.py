#!/usr/bin/env python3
"""test_cli_basics.py - the `coscope` command's Basics, Ps, Errors groups (helpers and
the environment they need: cli_common.py)."""

from cli_common import *  # noqa: F401,F403 (the shared helpers)


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
