#!/usr/bin/env python3
"""test_cli_real.py - the `coscope` command's Real, Symbols groups (helpers and
the environment they need: cli_common.py)."""

from cli_common import *  # noqa: F401,F403 (the shared helpers)
import test_cli_record
import test_cli_tasks

# Helpers of other groups' classes (functions, so that unittest does not
# run those classes here too).
frames_under = test_cli_tasks.Stacks.frames_under
record_counts = test_cli_record.Record.counts


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
            st = frames_under(self, self.tasks(p.pid, "--stacks"),
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
            waiter = [f.split()[2] for f in frames_under(self, out, "waiter")]
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
            got, lost = record_counts(self, out)
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


if __name__ == "__main__":
    unittest.main()
