#!/usr/bin/env python3
"""test_cli_lines.py - the `coscope` command's SameLine, UserStacks groups (helpers and
the environment they need: cli_common.py)."""

from cli_common import *  # noqa: F401,F403 (the shared helpers)


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


if __name__ == "__main__":
    unittest.main()
