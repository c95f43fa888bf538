#!/usr/bin/env python3
"""Tests of `coscope export` (Chrome Trace Event Format) and of the bad-input
errors of `coscope export` and `coscope view`.

usage: test_export.py export|errors|serve|real|symbols COSCOPE GEN_TRACE WORKDIR

`serve` talks HTTP to `coscope view`: the page, its files and the data
are served to 127.0.0.1 only, nothing else is, Ctrl-C ends it with 0.
`data` hands damaged copies of the viewer's data to viewer/data.js in node
(data_test.mjs): each is read or refused in words, nothing else.

`real` records examples/fetch_data ($COSCOPE_FETCH_DATA) with
COSCOPE_RECORD and checks its three fetch_data tracks end at about 1, 2
and 3 s; it is skipped (exit 77) while the runtime writes no trace file.

`symbols` records examples/buggy ($COSCOPE_BUGGY; blocking-sleep with
$COSCOPE_PRELOAD, else never-awaited) with COSCOPE_RECORD, lets it exit,
and checks that the exported warning's stack names the culprit function
from the file's module table, and names "buggy+0x..." (an address inside
the culprit) once the binary at the recorded path is another program.

Trace files are written by gen_trace (libtrace's own writer).  The JSON is
checked against the Trace Event Format's required fields: every event has
ph, pid, tid and (but for metadata) ts in microseconds; complete events a
non-negative dur; instant events a scope; metadata a name and args.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

COSCOPE, GEN, WORK = sys.argv[2], sys.argv[3], sys.argv[4]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True,
                          timeout=120, **kw)


def gen(tmp, scenario, *extra):
    path = os.path.join(tmp, scenario + ".cst")
    r = run(GEN, scenario, path, *extra)
    assert r.returncode == 0, r.stderr
    return path


def export(path, out):
    r = run(COSCOPE, "export", path, "--format", "chrome", "-o", out)
    check(r.returncode == 0, "export %s: exit %d: %s" % (path, r.returncode,
                                                          r.stderr))
    with open(out) as f:
        return json.load(f)


def validate(doc, name):
    """The Trace Event Format's required fields, event by event."""
    check(isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list),
          name + ": a JSON object with a traceEvents array")
    for i, e in enumerate(doc["traceEvents"]):
        where = "%s: event %d %r" % (name, i, e)
        ph = e.get("ph")
        check(ph in ("X", "i", "M"), where + ": ph")
        check(isinstance(e.get("pid"), int), where + ": pid")
        check(isinstance(e.get("tid"), int), where + ": tid")
        check(isinstance(e.get("name"), str) and e["name"], where + ": name")
        if ph == "M":
            check(isinstance(e.get("args"), dict) and e["args"],
                  where + ": metadata args")
            continue
        check(isinstance(e.get("ts"), (int, float)) and e["ts"] >= 0,
              where + ": ts")
        if ph == "X":
            check(isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0,
                  where + ": dur")
        if ph == "i":
            check(e.get("s") in ("g", "p", "t"), where + ": scope")


def test_batch(tmp):
    # a yield batch: each task's yields are one slice over the batch's
    # span, flagged; a step begun in it keeps its estimated share
    doc = export(gen(tmp, "batch"), os.path.join(tmp, "batch.json"))
    validate(doc, "batch")
    ev = doc["traceEvents"]
    tids = {e["args"]["name"].split(" ")[0]: e["tid"] for e in ev
            if e["ph"] == "M" and e["name"] == "thread_name"}
    def slices(name):
        return sorted(((round(e["ts"], 3), round(e["dur"], 3), e["args"])
                       for e in ev if e["ph"] == "X" and
                       e["tid"] == tids.get(name)), key=lambda x: x[0])
    a, b = slices("a"), slices("b")
    check([(t, d) for t, d, _ in a] == [(0, 1), (1, 9), (8.5, 1.5)],
          "a: timed yield, batch slice, batched return: %r" % a)
    check([(t, d) for t, d, _ in b] == [(1, 9), (10, 1)],
          "b: batch slice, timed return: %r" % b)
    check(len(a) == 3 and a[1][2].get("batched") and
          a[1][2].get("waited_on", "").startswith("2 yields in a batch") and
          a[2][2].get("batched") and a[2][2]["reason"] == "done" and
          not a[0][2].get("batched"), "a's slices say which: %r" % a)
    check(len(b) == 2 and b[0][2].get("waited_on", "").startswith(
          "3 yields in a batch") and not b[1][2].get("batched"),
          "b's slices say which: %r" % b)


def test_export(tmp):
    test_batch(tmp)
    # three tasks whose last steps end at 1, 2 and 3 s
    doc = export(gen(tmp, "three"), os.path.join(tmp, "three.json"))
    validate(doc, "three")
    ev = doc["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in ev
             if e["ph"] == "M" and e["name"] == "thread_name"}
    for k in (1, 2, 3):
        tid = [t for t, n in names.items() if n.startswith("fetch-%d " % k)]
        check(len(tid) == 1, "a track for fetch-%d: %r" % (k, names))
        steps = [e for e in ev if e["ph"] == "X" and e["tid"] in tid]
        check(len(steps) == 2, "fetch-%d has two steps" % k)
        end = max(e["ts"] + e["dur"] for e in steps) / 1e6
        check(abs(end - k) < 0.01, "fetch-%d ends at %d s, not %f" % (k, k,
                                                                      end))
        check(steps[0]["args"]["reason"] == "sleep" and
              "deadline" in steps[0]["args"]["waited_on"],
              "fetch-%d sleeps first: %r" % (k, steps[0]["args"]))
        check(steps[-1]["args"]["reason"] == "done", "fetch-%d ends" % k)
    warn = [e for e in ev if e["ph"] == "i"]
    check(len(warn) == 1 and warn[0]["args"]["kind"] == "slow" and
          len(warn[0]["args"]["stack"]) == 4 and
          warn[0]["args"]["stack"][0].startswith("0x000000401000"),
          "one slow-step warning with its stack: %r" % warn)
    check(names.get(warn[0]["tid"], "").startswith("fetch-2"),
          "the warning is on fetch-2's track")
    idle = [e for e in ev if e["ph"] == "X" and e.get("cat") == "loop"]
    check(len(idle) == 3 and all(e["dur"] > 900000 for e in idle),
          "three long idle slices on the loop track: %r" % idle)

    # every stop reason, two loops, quotes in a name, a warning with no task
    doc = export(gen(tmp, "mixed"), os.path.join(tmp, "mixed.json"))
    validate(doc, "mixed")
    ev = doc["traceEvents"]
    reasons = {e["args"]["reason"] for e in ev if e["ph"] == "X" and
               e.get("cat") == "step"}
    want = {"sleep", "task", "lock", "event", "semaphore", "queue-put",
            "queue-get", "fd-read", "fd-write", "thread", "yield", "done",
            "raised", "cancelled"}
    check(reasons == want, "every reason: %r" % (want ^ reasons))
    lock = [e for e in ev if e["ph"] == "X" and e["tid"] == 1 and
            e["args"]["reason"] == "lock"]
    check(lock and lock[0]["args"]["waited_on"] ==
          "lock 3 held by task 2 'worker \"b\"'", "lock holder: %r" % lock)
    loops = [e for e in ev if e["ph"] == "M" and e["name"] == "thread_name"
             and e["args"]["name"].startswith("loop ")]
    check(len(loops) == 2, "two loop tracks")
    dl = [e for e in ev if e["ph"] == "i" and e["args"]["kind"] == "deadlock"]
    check(len(dl) == 1 and dl[0]["tid"] == 2000000001 and
          dl[0]["args"]["stack"] == [], "taskless warning on loop 1: %r" % dl)

    # a trace with no events: tracks of nothing, still valid
    empty = gen(tmp, "empty")
    doc = export(empty, os.path.join(tmp, "empty.json"))
    validate(doc, "empty")
    check(all(e["ph"] == "M" for e in doc["traceEvents"]), "empty: only metadata")
    r = run(COSCOPE, "view", empty, "--html", os.path.join(tmp, "empty.html"))
    check(r.returncode == 0, "view of an empty trace: %s" % r.stderr)

    # output to stdout, and a large file
    r = run(COSCOPE, "export", gen(tmp, "three"))
    check(r.returncode == 0 and json.loads(r.stdout)["traceEvents"],
          "export to stdout")
    big = gen(tmp, "big", "200000")
    doc = export(big, os.path.join(tmp, "big.json"))
    validate(doc, "big")
    steps = sum(1 for e in doc["traceEvents"] if e["ph"] == "X")
    check(steps > 50000, "big: %d slices" % steps)


def test_errors(tmp):
    good = gen(tmp, "three")
    data = open(good, "rb").read()

    def bad(name, content):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(content)
        return p

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xff
    cases = {
        "missing": os.path.join(tmp, "no-such.cst"),
        "empty": bad("empty.cst", b""),
        "foreign": bad("foreign.cst", b"GIF89a" + bytes(2000)),
        "text": bad("text.cst", b"hello, world\n" * 200),
        "header-cut": bad("header-cut.cst", data[:500]),
        "chunk-cut": bad("chunk-cut.cst", data[:len(data) - 40]),
        "flipped": bad("flipped.cst", bytes(flipped)),
        "directory": tmp,
    }
    for case, path in cases.items():
        for cmd in (["export", path, "-o", os.path.join(tmp, "x.json")],
                    ["view", path, "--html", os.path.join(tmp, "x.html")],
                    ["view", path, "--port", "0"]):
            r = run(COSCOPE, *cmd)
            what = "%s %s" % (cmd[0], case)
            check(r.returncode == 2, what + ": exit 2, got %d" % r.returncode)
            lines = r.stderr.strip().splitlines()
            check(len(lines) == 1 and lines[0].startswith("coscope: ") and
                  not lines[0].endswith("."),
                  what + ": one git-style line: %r" % r.stderr)
            check(r.stdout == "", what + ": nothing on stdout (no server)")
        check(not os.path.exists(os.path.join(tmp, "x.json")) and
              not os.path.exists(os.path.join(tmp, "x.html")),
              case + ": no output file left")
    # --partial reads what comes before the damage
    r = run(COSCOPE, "export", cases["chunk-cut"], "--partial")
    check(r.returncode == 0 and json.loads(r.stdout)["traceEvents"],
          "--partial: %s" % r.stderr)
    for args in (["export", good, "--frob"], ["export", good, "--format",
                                              "svg"],
                 ["export"], ["export", good, good], ["view", good, "--port",
                                                      "70000"],
                 ["view", good, "--port", "x"], ["view", "--zap", good],
                 ["view", good, "--from", "x"], ["view", good, "--from", "-1"],
                 ["view", good, "--max-steps", "0"]):
        r = run(COSCOPE, *args)
        check(r.returncode == 2 and r.stderr.startswith("coscope: ") and
              len(r.stderr.strip().splitlines()) == 1,
              "%r: exit 2 with one line, got %d %r" % (args, r.returncode,
                                                      r.stderr))
    for cmd in ("export", "view"):
        r = run(COSCOPE, cmd, "--help")
        check(r.returncode == 0 and r.stdout.startswith("usage: coscope " +
                                                        cmd), cmd + " --help")
        r = run(COSCOPE, "help", cmd)
        check(r.returncode == 0 and "usage: coscope " + cmd in r.stdout,
              "help " + cmd)


def http(port, path, host=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest("GET", path, skip_host=True)
    c.putheader("Host", host or "127.0.0.1:%d" % port)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), body


def test_serve(tmp):
    import re
    import signal
    p = subprocess.Popen([COSCOPE, "view", gen(tmp, "three"), "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        m = re.match(r"viewing '.*three.cst' at http://127\.0\.0\.1:(\d+)/ "
                     r"\(press Ctrl-C to stop\)$", line)
        check(m is not None, "the URL is printed: %r" % line)
        port = int(m.group(1))
        st, ct, body = http(port, "/")
        check(st == 200 and ct.startswith("text/html") and
              b'src="main.js"' in body, "/ is the viewer's page")
        for name, ctype in (("main.js", "text/javascript"),
                            ("viewer.css", "text/css")):
            st, ct, body = http(port, "/" + name)
            check(st == 200 and ct.startswith(ctype), "/%s served" % name)
        st, ct, body = http(port, "/trace.bin?x=1")
        check(st == 200 and body[:8] == b"CSVIEW01", "/trace.bin is the data")
        st, _, _ = http(port, "/", host="localhost:%d" % port)
        check(st == 200, "localhost is this host too")
        for path in ("/../../etc/passwd", "/%2e%2e/etc/passwd", "/CMakeLists.txt",
                     "/README.md", "/nope.js", "/sub/main.js"):
            st, _, _ = http(port, path)
            check(st == 404, "%s is not served (%d)" % (path, st))
        st, _, _ = http(port, "/trace.bin", host="evil.example:%d" % port)
        check(st == 403, "another Host is refused (DNS rebinding): %d" % st)
        import socket
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GARBAGE\r\n\r\n")
        check(s.recv(100).startswith(b"HTTP/1.0 400"), "garbage gets 400")
        s.close()
        st, _, _ = http(port, "/")
        check(st == 200, "still serving after a bad request")
        # a connection that says nothing (a browser's preconnect) does not
        # hold up the others
        import time
        idle = socket.create_connection(("127.0.0.1", port))
        t = time.monotonic()
        st, _, _ = http(port, "/trace.bin")
        check(st == 200 and time.monotonic() - t < 2,
              "served at once next to an idle connection")
        idle.close()
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=30)
    check(rc == 0, "Ctrl-C ends coscope view with 0, got %d" % rc)
    # a port in use is an error before anything else
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    r = run(COSCOPE, "view", gen(tmp, "three"), "--port",
            str(s.getsockname()[1]))
    s.close()
    check(r.returncode == 2 and "cannot listen on 127.0.0.1:" in r.stderr,
          "a port in use: %r" % r.stderr)


def test_data(tmp):
    import re
    import signal
    node = shutil.which("node")
    if node is None:
        print("SKIPPED: no node to run viewer/data.js")
        sys.exit(77)
    here = os.path.dirname(os.path.abspath(__file__))
    viewer = os.path.join(os.path.dirname(os.path.dirname(here)), "viewer")
    for scenario in ("mixed", "three"):
        p = subprocess.Popen([COSCOPE, "view", gen(tmp, scenario), "--port",
                              "0"], stdout=subprocess.PIPE, text=True)
        try:
            port = int(re.search(r":(\d+)/", p.stdout.readline()).group(1))
            _, _, body = http(port, "/trace.bin")
        finally:
            p.send_signal(signal.SIGINT)
            p.wait(timeout=30)
        data = os.path.join(tmp, scenario + ".bin")
        with open(data, "wb") as f:
            f.write(body)
        r = run(node, os.path.join(here, "data_test.mjs"), viewer, data)
        print(r.stdout.strip().splitlines()[-1] if r.stdout else r.stderr)
        check(r.returncode == 0, "%s: damaged data is read or refused: %s"
              % (scenario, r.stdout[-2000:] + r.stderr[-2000:]))


def test_real(tmp):
    exe = os.environ.get("COSCOPE_FETCH_DATA", "")
    if not os.access(exe, os.X_OK):
        print("SKIPPED: no examples/fetch_data to record")
        sys.exit(77)
    path = os.path.join(tmp, "fetch_data.cst")
    env = dict(os.environ, COSCOPE_RECORD=path)
    r = run(exe, env=env)
    check(r.returncode == 0, "fetch_data runs: %s" % r.stderr)
    if not os.path.exists(path):
        print("SKIPPED: fetch_data wrote no trace file with COSCOPE_RECORD "
              "(the runtime is not wired to libtrace in this build)")
        sys.exit(77)
    doc = export(path, os.path.join(tmp, "fetch_data.json"))
    validate(doc, "fetch_data")
    ev = doc["traceEvents"]
    tids = [e["tid"] for e in ev if e["ph"] == "M" and
            e["name"] == "thread_name" and
            e["args"]["name"].startswith("fetch_data (task ")]
    check(len(tids) == 3, "three fetch_data tracks: %r" % tids)
    ends = sorted(max(e["ts"] + e["dur"] for e in ev
                      if e["ph"] == "X" and e["tid"] == t) / 1e6
                  for t in tids)
    check(len(ends) == 3 and all(abs(e - k) < 0.25
                                 for e, k in zip(ends, (1, 2, 3))),
          "fetch_data tracks end at about 1, 2 and 3 s: %r" % ends)


def nm_range(exe, name):
    """[start, end) of function name in ELF file exe, from nm."""
    out = run("nm", "-S", "--defined-only", exe).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[3] == name:
            return int(f[0], 16), int(f[0], 16) + int(f[1], 16)
    raise AssertionError("%s not in nm %s" % (name, exe))


def warning_stack(path, out):
    doc = export(path, out)
    validate(doc, out)
    warn = [e for e in doc["traceEvents"]
            if e["ph"] == "i" and e["args"].get("stack")]
    check(len(warn) >= 1, "%s: a warning with a stack" % out)
    return warn[0]["args"]["stack"] if warn else [""]


def test_symbols(tmp):
    buggy = os.environ.get("COSCOPE_BUGGY", "")
    if not os.access(buggy, os.X_OK):
        print("SKIPPED: no examples/buggy to record")
        sys.exit(77)
    preload = os.environ.get("COSCOPE_PRELOAD")
    mode, culprit, env = "never-awaited", "notify_user", {}
    if preload:
        mode, culprit, env = "blocking-sleep", "load_settings", \
            {"LD_PRELOAD": preload}
    exe = os.path.join(tmp, "buggy")  # a copy: replaced below
    shutil.copy2(buggy, exe)
    path = os.path.join(tmp, mode + ".cst")
    p = subprocess.Popen([exe, mode], env=dict(os.environ, COSCOPE_RECORD=path,
                                               **env),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.wait(timeout=120)
    check(not os.path.exists("/proc/%d" % p.pid), "buggy has exited")
    stack = warning_stack(path, os.path.join(tmp, "same.json"))
    check(re.match(r"^0x[0-9a-f]+ %s \(.*buggy\.c:\d+\)$" % culprit,
                   stack[0]) is not None,
          "the warning's first frame names %s: %r" % (culprit, stack))
    lo, hi = nm_range(exe, culprit)
    shutil.copy2(GEN, exe)  # another program at the path: another build id
    stack = warning_stack(path, os.path.join(tmp, "rebuilt.json"))
    m = re.match(r"^0x[0-9a-f]+ buggy\+0x([0-9a-f]+)$", stack[0])
    check(m is not None and lo <= int(m.group(1), 16) < hi,
          "a rebuilt binary gives buggy+offset inside %s [%#x, %#x): %r"
          % (culprit, lo, hi, stack))
    check(culprit not in json.dumps(stack), "no symbol from the other file")


def main():
    group = sys.argv[1]
    os.makedirs(WORK, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="viewer-" + group + "-", dir=WORK)
    try:
        {"export": test_export, "errors": test_errors, "serve": test_serve,
         "data": test_data, "real": test_real,
         "symbols": test_symbols}[group](tmp)
    finally:
        if not failures:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failure(s); files kept in %s" % (len(failures), tmp))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
