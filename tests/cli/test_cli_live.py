#!/usr/bin/env python3
"""test_cli_live.py - the `coscope` command's Watch, Top groups (helpers and
the environment they need: cli_common.py)."""

from cli_common import *  # noqa: F401,F403 (the shared helpers)


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


if __name__ == "__main__":
    unittest.main()
