#!/usr/bin/env python3
"""Tests of `coscope run` and `coscope check` against the buggy and clean
examples, as a user (or a CI job) would see them."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

COSCOPE = os.environ["COSCOPE_BIN"]
BUGGY = os.environ["BUGGY"]
CLEAN = os.environ["CLEAN"]


def cs(*args, env=None):
    e = dict(os.environ)
    e.pop("COSCOPE_REPORT_DIR", None)
    e.update(env or {})
    return subprocess.run([COSCOPE, *args], capture_output=True, text=True,
                          timeout=60, env=e)


def one_error_line(t, p):
    t.assertEqual(p.returncode, 2, p.stderr)
    lines = p.stderr.splitlines()
    t.assertEqual(len(lines), 1, p.stderr)
    t.assertTrue(lines[0].startswith("coscope: "), p.stderr)


class Run(unittest.TestCase):
    def test_blocking_report_shown(self):
        p = cs("run", "--", BUGGY, "blocking-sleep")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"coscope: blocking call usleep\(\) on "
                         r"the event loop in task 'slow_handler'")
        self.assertRegex(p.stderr, r"#0 +0x[0-9a-f]+ in load_settings\+")

    def test_no_preload_no_blocking_report(self):
        p = cs("run", "--no-preload", "--", BUGGY, "blocking-sleep",
               env={"COSCOPE_REPORT": "blocking"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("blocking call", p.stderr)

    def test_exit_status_is_the_commands(self):
        self.assertEqual(cs("run", "--", "sh", "-c", "exit 7").returncode, 7)
        p = cs("run", "--", BUGGY, "crash")
        self.assertEqual(p.returncode, 128 + 11, p.stderr)
        self.assertIn("coscope: task 'parser' crashed: SIGSEGV", p.stderr)

    def test_missing_command(self):
        one_error_line(self, cs("run"))
        one_error_line(self, cs("run", "--"))
        one_error_line(self, cs("run", "--", "/nonexistent/program"))

    def test_unknown_flag(self):
        p = cs("run", "--frob", "--", BUGGY, "clean")
        one_error_line(self, p)
        self.assertIn("'--frob'", p.stderr)

    def test_help(self):
        p = cs("help", "run")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: coscope run", p.stdout)


def check_json(t, *args, env=None):
    p = cs("check", "--format", "json", *args, env=env)
    t.assertIn(p.returncode, (0, 1), p.stderr)
    return p, json.loads(p.stdout)


class Check(unittest.TestCase):
    def test_each_mode_fails_with_its_class(self):
        for mode, cls, func in [("never-awaited", "never-awaited", "notify_user"),
                                ("unretrieved", "unretrieved", "parse_profile"),
                                ("pending", "pending", "heartbeat"),
                                ("blocking-sleep", "blocking", "load_settings"),
                                ("lock-cycle", "deadlock", "flush_cache"),
                                ("crash", "crash", "parse_record")]:
            with self.subTest(mode=mode):
                p = cs("check", "--", BUGGY, mode)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("  %s in process" % cls, p.stdout)
                self.assertRegex(p.stdout, r"#\d+ +0x[0-9a-f]+ in %s " % func)

    def test_clean_passes(self):
        p = cs("check", "--", CLEAN)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("coscope", p.stdout)
        self.assertIn("0 reports", p.stderr)

    def test_command_status_when_no_failing_report(self):
        p = cs("check", "--", "sh", "-c", "exit 3")
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_fail_on_restricts(self):
        p = cs("check", "--fail-on", "deadlock,crash", "--", BUGGY,
               "never-awaited")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("(not failing)", p.stdout)
        p = cs("check", "--fail-on", "never-awaited", "--", BUGGY,
               "never-awaited")
        self.assertEqual(p.returncode, 1, p.stderr)
        p = cs("check", "--fail-on", "exception", "--", BUGGY, "unretrieved")
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_suppress(self):
        with tempfile.NamedTemporaryFile("w", suffix=".supp") as f:
            f.write("# known\nnever-awaited:notify_user\n")
            f.flush()
            p = cs("check", "--suppress", f.name, "--", BUGGY, "never-awaited")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertIn("1 suppressed", p.stderr)
            # another class's report is kept
            p = cs("check", "--suppress", f.name, "--", BUGGY, "unretrieved")
            self.assertEqual(p.returncode, 1, p.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".supp") as f:
            f.write("*:parse_*\n")
            f.flush()
            p = cs("check", "--suppress", f.name, "--", BUGGY, "unretrieved")
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_child_processes_followed(self):
        p, doc = check_json(self, "--", "sh", "-c",
                            "%s never-awaited; true" % BUGGY)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual([r["class"] for r in doc["reports"]],
                         ["never-awaited"])
        self.assertEqual(doc["exit_status"], 0)
        self.assertNotEqual(doc["reports"][0]["pid"], 0)

    def test_several_processes(self):
        p, doc = check_json(self, "--", "sh", "-c",
                            "%s unretrieved; %s pending" % (BUGGY, BUGGY))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(sorted(r["class"] for r in doc["reports"]),
                         ["pending", "unretrieved"])
        self.assertEqual(len({r["pid"] for r in doc["reports"]}), 2)

    def test_malformed_lines_skipped(self):
        # a command that writes garbage into the report directory
        script = ('d="$COSCOPE_REPORT_DIR"; printf \'not json\\n{"class":"x"}\\n'
                  '{"class":"crash","headline":"h","frames":[]}\\n\' > "$d/1.jsonl";'
                  ' head -c 100000 /dev/zero | tr "\\0" a >> "$d/1.jsonl"; echo >> "$d/1.jsonl";'
                  ' ln -s /etc/passwd "$d/2.jsonl"')
        p, doc = check_json(self, "--no-preload", "--", "sh", "-c", script)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual([r["headline"] for r in doc["reports"]], ["h"])
        self.assertEqual(p.stderr.count("coscope: warning: check: skipping"), 4,
                         p.stderr)


class Formats(unittest.TestCase):
    def test_json(self):
        p, doc = check_json(self, "--", BUGGY, "blocking-sleep",
                            env={"COSCOPE_REPORT": "blocking"})
        self.assertEqual(p.returncode, 1)
        r = doc["reports"][0]
        self.assertEqual(r["class"], "blocking")
        self.assertEqual(r["task"], "slow_handler")
        self.assertTrue(r["failing"])
        self.assertEqual(r["frames"][0]["function"], "load_settings")

    def test_junit(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "junit.xml")
            p = cs("check", "--format", "junit", "-o", out, "--", "sh", "-c",
                   "%s unretrieved; %s crash" % (BUGGY, BUGGY))
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertEqual(p.stdout, "")
            root = ET.parse(out).getroot()
        self.assertEqual(root.tag, "testsuites")
        suites = root.findall("testsuite")
        self.assertEqual(len(suites), 1)
        cases = suites[0].findall("testcase")
        self.assertEqual(len(cases), 2)
        self.assertEqual(suites[0].get("failures"), "2")
        self.assertEqual(suites[0].get("tests"), "2")
        msgs = sorted(c.find("failure").get("message") for c in cases)
        self.assertRegex(msgs[0], r"Task exception was never retrieved at "
                         r".*buggy\.c:\d+$")
        self.assertRegex(msgs[1], r"crashed: SIGSEGV .* at .*buggy\.c:\d+$")
        self.assertIn("parse_record", cases[1].find("failure").text
                      + cases[0].find("failure").text)

    def test_junit_clean(self):
        p = cs("check", "--format", "junit", "--", CLEAN)
        self.assertEqual(p.returncode, 0, p.stderr)
        suite = ET.fromstring(p.stdout).find("testsuite")
        self.assertEqual(suite.get("failures"), "0")
        self.assertEqual(len(suite.findall("testcase")), 1)

    def test_sarif(self):
        p = cs("check", "--format", "sarif", "--fail-on", "crash", "--", "sh",
               "-c", "%s never-awaited; %s crash" % (BUGGY, BUGGY))
        self.assertEqual(p.returncode, 1, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["version"], "2.1.0")
        self.assertIn("sarif-2.1.0", doc["$schema"])
        run = doc["runs"][0]
        self.assertEqual(run["tool"]["driver"]["name"], "coscope")
        rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
        results = run["results"]
        self.assertEqual(sorted(r["ruleId"] for r in results),
                         ["crash", "never-awaited"])
        for r in results:
            self.assertIsInstance(r["message"]["text"], str)
            self.assertEqual(rules[r["ruleIndex"]], r["ruleId"])
            self.assertIn(r["level"], ("error", "warning"))
            loc = r["locations"][0]["physicalLocation"]
            self.assertTrue(loc["artifactLocation"]["uri"].endswith("buggy.c"))
            self.assertIsInstance(loc["region"]["startLine"], int)
            self.assertGreater(loc["region"]["startLine"], 0)
        by = {r["ruleId"]: r for r in results}
        self.assertEqual(by["crash"]["level"], "error")
        self.assertEqual(by["never-awaited"]["level"], "warning")


class Errors(unittest.TestCase):
    def test_no_command(self):
        one_error_line(self, cs("check"))
        one_error_line(self, cs("check", "--format", "json", "--"))

    def test_unknown_format(self):
        p = cs("check", "--format", "yaml", "--", CLEAN)
        one_error_line(self, p)
        self.assertIn("'yaml'", p.stderr)

    def test_unknown_class(self):
        one_error_line(self, cs("check", "--fail-on", "oops", "--", CLEAN))

    def test_unreadable_suppress_file(self):
        p = cs("check", "--suppress", "/nonexistent/supp", "--", CLEAN)
        one_error_line(self, p)
        with tempfile.NamedTemporaryFile("w", suffix=".supp") as f:
            f.write("nonsense-class:foo\n")
            f.flush()
            one_error_line(self, cs("check", "--suppress", f.name, "--", CLEAN))

    def test_unknown_flag(self):
        one_error_line(self, cs("check", "--frob", "--", CLEAN))

    def test_command_not_found(self):
        one_error_line(self, cs("check", "--", "/nonexistent/program"))

    def test_unwritable_output(self):
        one_error_line(self, cs("check", "-o", "/nonexistent/dir/out", "--",
                                CLEAN))


if __name__ == "__main__":
    unittest.main()
