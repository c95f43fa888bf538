#!/usr/bin/env python3
"""test_fleet.py - coscope's data in the systems a fleet runs (issue 14).

Groups (one ctest each, fleet_<group>):
  Metrics     `coscope metrics` against fake_target (tests/cli): counts,
              counters that grow between scrapes, processes coming and
              going, OpenMetrics, the textfile, label escaping, errors
  Prometheus  Debian's real prometheus server scraping `coscope metrics`,
              checked through its HTTP query API (skipped, exit 77, when
              prometheus cannot be installed)
  Pprof       `coscope export --format pprof` read back by `go tool pprof`
(test_perfetto.py has the Perfetto and ExportErrors groups.)

Environment: COSCOPE_BIN, FAKE_TARGET, BUGGY, PERFETTO_TARGET, PRELOAD
(optional),
FLEET_DIR (this directory, for the .proto subset).  No sleeps for
synchronisation: targets say "ready"; the Prometheus test polls the query
API until the sample arrives, with a deadline.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

COSCOPE = os.environ.get("COSCOPE_BIN", "coscope")
FAKE = os.environ.get("FAKE_TARGET", "fake_target")
BUGGY = os.environ.get("BUGGY")
PRELOAD = os.environ.get("PRELOAD")
HERE = os.environ.get("FLEET_DIR", os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 60
SEG = "/dev/shm/coscope.%d"


def coscope(*args, **kw):
    return subprocess.run([COSCOPE] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          **kw)


class Target:
    """A fake_target process (see tests/cli/fake_target.c)."""

    def __init__(self, *args, exe=FAKE):
        self.p = subprocess.Popen([exe] + list(args), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("ready "):
            self.p.kill()
            self.p.wait()
            raise RuntimeError("fake_target did not start: %r" % line)
        self.pid = int(line.split()[1])

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def stop(self):
        if self.p.poll() is None:
            self.p.stdin.write("exit\n")
            self.p.stdin.flush()
            self.p.wait(TIMEOUT)
        self.p.stdin.close()
        self.p.stdout.close()
        try:
            os.unlink(SEG % self.pid)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- the text format, parsed independently of the code under test -------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), v)


def parse(text):
    """[(name, {labels}, float)] and {family: type}; asserts the grammar."""
    samples, types = [], {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ", 3)
            types[fam] = typ
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = {}
        if m.group(2):
            rest = m.group(2)
            for lm in LABEL.finditer(rest):
                labels[lm.group(1)] = unescape(lm.group(2))
            assert LABEL.sub("", rest).replace(",", "") == "", line
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples, types


def value(samples, name, **labels):
    """The value of the one sample of name with these labels (str)."""
    want = {k: str(v) for k, v in labels.items()}
    found = [v for n, l, v in samples
             if n == name and all(l.get(k) == x for k, x in want.items())]
    assert len(found) == 1, "%s%s: %d samples" % (name, want, len(found))
    return found[0]


def has_pid(samples, pid):
    return any(l.get("pid") == str(pid) for _, l, _ in samples)


def scrape_once(*extra):
    r = coscope("metrics", "--once", *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout


class Server:
    """`coscope metrics --listen 127.0.0.1:0`; .port once it listens."""

    def __init__(self):
        self.p = subprocess.Popen([COSCOPE, "metrics", "--listen",
                                   "127.0.0.1:0"], stderr=subprocess.PIPE,
                                  text=True)
        line = self.p.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        if not m:
            self.p.kill()
            raise RuntimeError("coscope metrics did not start: %r" % line)
        self.port = int(m.group(1))

    def get(self, path="/metrics", accept=None, method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port,
                                                                path),
                                     method=method)
        if accept:
            req.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                return r.status, r.headers.get("Content-Type"), \
                    r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), ""

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(TIMEOUT)
        self.p.stderr.close()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.close()


def promtool_ok(test, text):
    """Lints text with Debian's promtool when it is installed."""
    tool = shutil.which("promtool")
    if tool:
        r = subprocess.run([tool, "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=TIMEOUT)
        test.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class Metrics(unittest.TestCase):
    def test_tasks_by_state_and_wait_reason(self):
        with Target("park") as t:
            s, types = parse(scrape_once())
        self.assertEqual(types["coscope_tasks"], "gauge")
        pid = t.pid
        self.assertEqual(value(s, "coscope_tasks", pid=pid, state="waiting",
                               command="fake_target"), 9)
        self.assertEqual(value(s, "coscope_tasks", pid=pid, state="done"), 1)
        for reason in ("sleep", "task", "lock", "fd-read", "queue-get",
                       "queue-put", "event", "semaphore", "thread"):
            self.assertEqual(value(s, "coscope_tasks_waiting", pid=pid,
                                   reason=reason), 1, reason)
        self.assertEqual(value(s, "coscope_tasks_waiting", pid=pid,
                               reason="yield"), 0)

    def test_counters_grow_by_what_was_written(self):
        with Target("park") as t, Server() as srv:
            _, _, body = srv.get()
            s0, types = parse(body)
            self.assertEqual(types["coscope_steps_total"], "counter")
            self.assertEqual(types["coscope_step_duration_seconds"],
                             "histogram")
            head = int(t.send("emit 100").split()[1])
            self.assertEqual(t.send("warn"), "warned")
            _, _, body = srv.get()
            s1, _ = parse(body)
            promtool_ok(self, body)
        pid = t.pid

        def grew(name, **kw):
            return value(s1, name, pid=pid, **kw) - \
                value(s0, name, pid=pid, **kw)
        self.assertEqual(grew("coscope_steps_total"), 100)
        self.assertEqual(grew("coscope_step_duration_seconds_count"), 100)
        # fake_target's steps last 1000 clock ticks: under 10 us
        self.assertEqual(grew("coscope_step_duration_seconds_bucket",
                              le="1e-05"), 100)
        self.assertEqual(grew("coscope_step_duration_seconds_bucket",
                              le="+Inf"), 100)
        self.assertEqual(grew("coscope_warnings_total", kind="slow"), 1)
        self.assertEqual(grew("coscope_warnings_total", kind="blocking"), 0)
        # the 100 steps, then the warning's record
        self.assertEqual(value(s1, "coscope_events_written_total", pid=pid),
                         head + 1)
        self.assertEqual(value(s1, "coscope_events_lost_total", pid=pid), 0)

    def test_lost_records_are_counted(self):
        # fake_target's rings hold 128 records: 1128 more than that are
        # overwritten before the second scrape reads them
        with Target("park") as t, Server() as srv:
            s0, _ = parse(srv.get()[2])
            head = int(t.send("emit 1256").split()[1])
            s1, _ = parse(srv.get()[2])
        pid = t.pid
        lost = value(s1, "coscope_events_lost_total", pid=pid)
        got = value(s1, "coscope_steps_total", pid=pid) - \
            value(s0, "coscope_steps_total", pid=pid)
        self.assertEqual(value(s1, "coscope_events_written_total", pid=pid),
                         head)
        self.assertGreaterEqual(lost, 1000)
        self.assertEqual(got + lost, 1256)

    def test_processes_come_and_go(self):
        with Server() as srv:
            with Target("park") as a:
                s, _ = parse(srv.get()[2])
                self.assertTrue(has_pid(s, a.pid))
                with Target("deadlock") as b:
                    s, _ = parse(srv.get()[2])
                    self.assertTrue(has_pid(s, b.pid))
                    self.assertEqual(value(s, "coscope_tasks", pid=b.pid,
                                           state="waiting"), 5)
                s, _ = parse(srv.get()[2])
                self.assertTrue(has_pid(s, a.pid))
                self.assertFalse(has_pid(s, b.pid))
            s, _ = parse(srv.get()[2])
            self.assertFalse(has_pid(s, a.pid))

    def test_stale_segment_is_counted_not_shown(self):
        t = Target("park")
        t.p.stdin.write("vanish\n")
        t.p.stdin.flush()
        t.p.wait(TIMEOUT)
        try:
            s, _ = parse(scrape_once())
            self.assertFalse(has_pid(s, t.pid))
            self.assertGreaterEqual(value(s, "coscope_exporter_segments",
                                          status="stale"), 1)
        finally:
            t.stop()

    def test_hostile_segments_are_counted_not_read(self):
        # segments named for live processes that are no coscope programs:
        # garbage, and a real segment's first page only
        sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(2)]
        paths = [SEG % p.pid for p in sleepers]
        try:
            with Target("park") as t:
                with open(SEG % t.pid, "rb") as f:
                    page = f.read(4096)
                for path, data in zip(paths, [os.urandom(65536), page]):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                 0o600)
                    os.write(fd, data)
                    os.close(fd)
                r = coscope("metrics", "--once")
                self.assertEqual(r.returncode, 0, r.stderr)
                s, _ = parse(r.stdout)
                self.assertEqual(value(s, "coscope_tasks", pid=t.pid,
                                       state="waiting"), 9)
            for p in sleepers:
                self.assertFalse(has_pid(s, p.pid))
            self.assertGreaterEqual(value(s, "coscope_exporter_segments",
                                          status="unreadable"), 2)
        finally:
            for p, path in zip(sleepers, paths):
                p.kill()
                p.wait()
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def test_openmetrics_when_asked(self):
        with Target("park") as t, Server() as srv:
            code, ctype, body = srv.get(
                accept="application/openmetrics-text;version=1.0.0,"
                       "text/plain;version=0.0.4;q=0.5")
            self.assertEqual(code, 200)
            self.assertTrue(ctype.startswith("application/openmetrics-text"),
                            ctype)
            self.assertTrue(body.endswith("# EOF\n"))
            self.assertIn("# TYPE coscope_steps counter\n", body)
            self.assertNotIn("# TYPE coscope_steps_total", body)
            s, _ = parse(body)
            self.assertEqual(value(s, "coscope_tasks", pid=t.pid,
                                   state="waiting"), 9)
            code, ctype, body = srv.get()
            self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
            self.assertNotIn("# EOF", body)
            self.assertIn("# TYPE coscope_steps_total counter\n", body)
            self.assertTrue(scrape_once("--openmetrics").endswith("# EOF\n"))

    def test_http_paths_and_methods(self):
        with Server() as srv:
            self.assertEqual(srv.get("/nothing")[0], 404)
            self.assertEqual(srv.get("/metrics", method="POST")[0], 405)
            code, _, body = srv.get("/metrics", method="HEAD")
            self.assertEqual((code, body), (200, ""))
            self.assertEqual(srv.get("/")[0], 200)
            # a client that sends nothing does not stop the others
            with socket.create_connection(("127.0.0.1", srv.port)):
                pass
            self.assertEqual(srv.get()[0], 200)
            self.assertEqual(srv.close(), 0)

    def test_textfile_is_replaced_whole(self):
        d = tempfile.mkdtemp()
        path = os.path.join(d, "coscope.prom")
        try:
            with Target("park") as t:
                r = coscope("metrics", "--textfile", path, "--once")
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(path) as f:
                    body = f.read()
                s, _ = parse(body)
                self.assertEqual(value(s, "coscope_tasks", pid=t.pid,
                                       state="done"), 1)
                self.assertEqual(os.listdir(d), ["coscope.prom"])
                # periodic mode: the file is rewritten until SIGTERM
                os.unlink(path)
                p = subprocess.Popen([COSCOPE, "metrics", "--textfile", path,
                                      "--interval", "0.1"],
                                     stderr=subprocess.PIPE, text=True)
                deadline = time.monotonic() + TIMEOUT
                while not os.path.exists(path) and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)  # polling for a file, not a sync point
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(TIMEOUT), 0, p.stderr.read())
                p.stderr.close()
                self.assertEqual(os.listdir(d), ["coscope.prom"])
            r = coscope("metrics", "--textfile",
                        os.path.join(d, "no", "such.prom"), "--once")
            self.assertEqual(r.returncode, 2)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn("cannot create", r.stderr)
        finally:
            shutil.rmtree(d)

    def test_label_values_are_escaped(self):
        d = tempfile.mkdtemp()
        exe = os.path.join(d, 'fa"ke\\tar\nget')
        shutil.copy(FAKE, exe)
        try:
            with Target("park", exe=exe) as t:
                body = scrape_once()
            promtool_ok(self, body)
            s, _ = parse(body)
            self.assertEqual(value(s, "coscope_tasks", pid=t.pid,
                                   state="done", command='fa"ke\\tar?get'), 1)
        finally:
            shutil.rmtree(d)

    def test_bad_usage(self):
        for args, msg in [(["--listen", "nowhere"], "ADDR:PORT"),
                          (["--listen", "1.2.3.4.5:80"], "bad --listen"),
                          (["--interval", "0"], "--interval"),
                          (["--bogus"], "unknown"),
                          (["--listen", "127.0.0.1:1", "--once"], "one or"),
                          (["extra"], "unexpected")]:
            r = coscope("metrics", *args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(msg, r.stderr)
        with Server() as srv:
            r = coscope("metrics", "--listen", "127.0.0.1:%d" % srv.port)
            self.assertEqual(r.returncode, 2)
            self.assertIn("cannot listen", r.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip(msg):
    """Skips the test (or class) calling it; a group all skipped exits 77
    (main below: a SystemExit inside a test would count as an error)."""
    print("SKIP: " + msg)
    raise unittest.SkipTest(msg)


class Prometheus(unittest.TestCase):
    """Debian's prometheus scrapes `coscope metrics`; we ask it what it
    stored, through its HTTP API, about a real buggy program."""

    def query(self, port, q):
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (
            port, urllib.parse.quote(q))
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
        self.assertEqual(doc["status"], "success", doc)
        return doc["data"]["result"]

    def wait_value(self, port, q, proc, until=None):
        """The query's result once it has one (and until(value) holds)."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), "prometheus exited")
            try:
                res = self.query(port, q)
            except (urllib.error.URLError, ConnectionError):
                res = []  # not listening yet
            if res and (until is None or until(float(res[0]["value"][1]))):
                return res
            time.sleep(0.25)  # polling the server's API, with a deadline
        self.fail("prometheus never had %s" % q)

    def test_blocking_warnings_and_tasks_arrive(self):
        prom = shutil.which("prometheus")
        if prom is None:
            skip("Debian's prometheus is not installed (scripts/"
                 "install-deps.sh installs it as root)")
        if BUGGY is None or PRELOAD is None:
            skip("needs examples/buggy and libcoscope-preload.so "
                 "(not built in the sanitizer build)")
        d = tempfile.mkdtemp()
        procs = []
        try:
            env = dict(os.environ, LD_PRELOAD=PRELOAD, COSCOPE_REPORT_DIR=d)
            bug = subprocess.Popen([BUGGY, "blocking-service"], env=env,
                                   stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
            procs.append(bug)
            self.assertEqual(bug.stdout.readline(), "ready\n")
            # what the agent reported, independently of the trace
            with open(os.path.join(d, "%d.jsonl" % bug.pid)) as f:
                classes = [json.loads(l)["class"] for l in f]
            blocking = classes.count("blocking")
            self.assertEqual(blocking, 1, classes)
            srv = Server()
            procs.append(srv.p)
            port = free_port()
            with open(os.path.join(d, "prometheus.yml"), "w") as f:
                f.write("global:\n  scrape_interval: 1s\n"
                        "scrape_configs:\n  - job_name: coscope\n"
                        "    static_configs:\n"
                        "      - targets: ['127.0.0.1:%d']\n" % srv.port)
            p = subprocess.Popen([prom, "--config.file=%s/prometheus.yml" % d,
                                  "--storage.tsdb.path=%s/data" % d,
                                  "--web.listen-address=127.0.0.1:%d" % port],
                                 stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(d, "prom.log"), "w"))
            procs.append(p)
            sel = 'pid="%d",command="buggy"' % bug.pid
            res = self.wait_value(port, 'coscope_warnings_total{%s,kind='
                                  '"blocking"}' % sel, p)
            self.assertEqual(float(res[0]["value"][1]), blocking)
            self.assertEqual(res[0]["metric"]["job"], "coscope")
            res = self.wait_value(port, 'coscope_tasks{%s,state="waiting"}'
                                  % sel, p)
            # main, the 5 workers and the one reading requests
            self.assertEqual(float(res[0]["value"][1]), 7)
            res = self.wait_value(port, 'coscope_tasks_waiting{%s,reason='
                                  '"sleep"}' % sel, p)
            self.assertEqual(float(res[0]["value"][1]), 5)
            res = self.wait_value(port, 'coscope_step_duration_seconds_count'
                                  '{%s} - ignoring(le) coscope_step_duration'
                                  '_seconds_bucket{%s,le="0.1"}' % (sel, sel),
                                  p)
            self.assertEqual(float(res[0]["value"][1]), 1)  # the 200 ms step
            res = self.wait_value(port, 'up{job="coscope"}', p)
            self.assertEqual(res[0]["value"][1], "1")
            # docs/fleet.md's "loops blocked more than 100 ms per minute by
            # service" (restricted to our pid: other coscope processes on
            # this host are scraped too): 0 while nothing blocks, 1 once a
            # request blocks the loop again after Prometheus saw the series
            blocked = ('sum by (command) (increase(coscope_step_duration_'
                       'seconds_bucket{le="+Inf",%s}[1m])) - sum by (command)'
                       ' (increase(coscope_step_duration_seconds_bucket{le='
                       '"0.1",%s}[1m]))' % (sel, sel))
            res = self.wait_value(port, blocked, p)
            self.assertEqual(float(res[0]["value"][1]), 0)
            self.assertEqual(res[0]["metric"], {"command": "buggy"})
            bug.stdin.write("request\n")
            bug.stdin.flush()
            self.assertEqual(bug.stdout.readline(), "blocked\n")
            # increase() extrapolates to the window's edges: 1 or a little
            # more, never 2 for the one step
            res = self.wait_value(port, blocked, p, until=lambda v: v > 0)
            self.assertTrue(1 <= float(res[0]["value"][1]) < 2, res)
        finally:
            for q in reversed(procs):
                q.terminate()
                q.wait(TIMEOUT)
            shutil.rmtree(d)


def record_bug(test, mode, d):
    """Records `buggy MODE` under the interposer into d; the file path."""
    if BUGGY is None or PRELOAD is None:
        skip("needs examples/buggy and libcoscope-preload.so (not built in "
             "the sanitizer build)")
    path = os.path.join(d, mode + ".cst")
    r = coscope("record", "-o", path, "--", BUGGY, mode,
                env=dict(os.environ, LD_PRELOAD=PRELOAD))
    test.assertEqual(r.returncode, 0, r.stderr)
    return path


def top_rows(text):
    """The rows of `pprof -top`: [(flat, cum, name)]."""
    rows, started = [], False
    for line in text.splitlines():
        if re.match(r"\s*flat\s+flat%", line):
            started = True
            continue
        cols = line.split(None, 5)
        if started and len(cols) == 6:
            rows.append((cols[0], cols[3], cols[5]))
    return rows


class Pprof(unittest.TestCase):
    def setUp(self):
        self.go = shutil.which("go")
        if self.go is None:
            skip("Debian's golang-go (go tool pprof) is not installed "
                 "(scripts/install-deps.sh installs it as root)")
        self.d = tempfile.mkdtemp()
        self.env = dict(os.environ, HOME=self.d,
                        GOCACHE=os.path.join(self.d, "gocache"))

    def tearDown(self):
        shutil.rmtree(self.d)

    def pprof(self, *args):
        r = subprocess.run([self.go, "tool", "pprof"] + list(args),
                           capture_output=True, text=True, timeout=120,
                           env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_blocking_culprit_leads_top(self):
        trace = record_bug(self, "blocking-sleep", self.d)
        out = os.path.join(self.d, "profile.pb.gz")
        r = coscope("export", trace, "--format", "pprof", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(2), b"\x1f\x8b")  # gzip
        rows = top_rows(self.pprof("-top", out))
        self.assertTrue(rows, "no rows")
        self.assertEqual(rows[0][2], "load_settings", rows)
        # the blocked step is 100 ms or more of loop time
        self.assertTrue(rows[0][0].endswith("ms") and
                        float(rows[0][0][:-2]) >= 100, rows[0])
        names = [n for _, _, n in rows]
        self.assertIn("[task slow_handler]", names)
        # per task: the ticker's steps (20 ending in cs_sleep, then the one
        # that returns) are there, under its own frame
        steps = top_rows(self.pprof("-top", "-sample_index=steps", out))
        cum = {n: c for _, c, n in steps}
        self.assertEqual(cum.get("[task ticker]"), "21", steps)
        traces = self.pprof("-traces", out)
        self.assertRegex(traces, r"warning:\s*blocking\n")
        self.assertRegex(traces, r"load_settings\n\s+slow_handler\n"
                         r"\s+\[task slow_handler\]")
        # file and line: the usleep() call's, as buggy.c has it
        src = os.path.join(HERE, "..", "..", "examples", "buggy.c")
        with open(src) as f:
            line = [i for i, l in enumerate(f, 1)
                    if "usleep(200 * 1000)" in l]
        self.assertEqual(len(line), 1)
        rows = top_rows(self.pprof("-top", "-lines", out))
        self.assertRegex(rows[0][2], r"^load_settings \S*/examples/buggy\.c:"
                         r"%d$" % line[0])

    def test_bad_format_and_file(self):
        r = coscope("export", "/nonexistent.cst", "--format", "pprof",
                    "-o", os.path.join(self.d, "x"))
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        r = coscope("export", "/nonexistent.cst", "--format", "svg")
        self.assertEqual(r.returncode, 2)
        self.assertIn("pprof, perfetto", r.stderr)



def main():
    """Runs the groups named on the command line; exit 0, 1 (a failure) or
    77 when every test was skipped (a setUpClass skip counts once)."""
    result = unittest.main(exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if len(result.skipped) >= max(result.testsRun, 1) else 0)


if __name__ == "__main__":
    main()
