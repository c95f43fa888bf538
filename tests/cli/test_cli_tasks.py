#!/usr/bin/env python3
"""test_cli_tasks.py - the `coscope` command's Tasks, Stacks groups (helpers and
the environment they need: cli_common.py)."""

from cli_common import *  # noqa: F401,F403 (the shared helpers)


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


if __name__ == "__main__":
    unittest.main()
