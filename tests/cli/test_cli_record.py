#!/usr/bin/env python3
"""test_cli_record.py - the `coscope` command's Record groups (helpers and
the environment they need: cli_common.py)."""

from cli_common import *  # noqa: F401,F403 (the shared helpers)


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


if __name__ == "__main__":
    unittest.main()
