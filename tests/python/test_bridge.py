"""test_bridge.py - coscope's asyncio bridge, as an asyncio user meets it.

Every program in progs/ is unmodified asyncio code with one bug (or none,
clean_busy.py) and marks the line the report must point at with a
comment "# BUG <class> [variant]"; the tests find that line in the source
themselves and compare it with what `coscope check` and `coscope run`
say.  Needs COSCOPE_BIN (the coscope binary) and PYTHON (Debian's
/usr/bin/python3); the bridge comes through `coscope run/check`
(PYTHONPATH) exactly as for a user.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

COSCOPE = os.environ.get("COSCOPE_BIN", "coscope")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
PYLIB = os.environ.get("COSCOPE_PYTHONPATH", "")
PROGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progs")
TIMEOUT = 60


def prog(name):
    return os.path.join(PROGS, name)


def bug_line(name, tag):
    """Line number of the '# BUG <tag>' comment in progs/<name>."""
    with open(prog(name)) as f:
        for i, line in enumerate(f, 1):
            if re.search(r"#\s*BUG %s\s*$" % re.escape(tag), line):
                return i
    raise AssertionError("no '# BUG %s' in %s" % (tag, name))


def env(**kw):
    e = dict(os.environ)
    for k in ("COSCOPE", "COSCOPE_REPORT", "PYTHONASYNCIODEBUG"):
        e.pop(k, None)
    e.update(kw)
    return e


def check(*args, fmt="json", e=None):
    """coscope check --format FMT -- python3 ARGS; (exit, document)."""
    p = subprocess.run([COSCOPE, "check", "--format", fmt, "--", PYTHON] +
                       list(args), capture_output=True, text=True,
                       timeout=TIMEOUT, env=e or env())
    doc = json.loads(p.stdout) if fmt in ("json", "sarif") else p.stdout
    return p.returncode, doc, p.stderr


def culprit(report):
    """The frame check blames: the innermost one that is not a library's."""
    for f in report["frames"]:
        if f.get("file") and f.get("line", 0) > 0 and \
                "/python3." not in f["file"]:
            return f
    return None


CASES = [
    ("never_awaited.py", [], "never-awaited", "never-awaited",
     "coroutine 'fetch' was never awaited"),
    ("unretrieved.py", [], "unretrieved", "unretrieved",
     "Task exception was never retrieved"),
    ("pending.py", [], "pending", "pending",
     "Task was destroyed but it is pending!"),
    ("blocking.py", ["sleep"], "blocking", "blocking sleep",
     "blocking call time.sleep() on the event loop in task 'handler'"),
    ("blocking.py", ["fsync"], "blocking", "blocking fsync",
     "blocking call os.fsync() on the event loop in task 'handler'"),
    ("blocking.py", ["subprocess"], "blocking", "blocking subprocess",
     "blocking call subprocess.run() on the event loop in task 'handler'"),
    ("blocking.py", ["socket"], "blocking", "blocking socket",
     "blocking call socket.recv() on the event loop in task 'handler'"),
    ("blocking.py", ["getaddrinfo"], "blocking", "blocking getaddrinfo",
     "blocking call socket.getaddrinfo() on the event loop in task 'handler'"),
    ("slow_step.py", [], "slow", "slow",
     "Executing task 'reporter' took"),
    ("deadlock.py", [], "deadlock", "deadlock",
     "deadlock: tasks await each other in a cycle: 'a' -> 'b' -> 'a'"),
    ("lock_deadlock.py", [], "deadlock", "deadlock locks",
     "deadlock: tasks wait for each other's locks in a cycle: 'ba' -> 'ab' -> 'ba'"),
]


@pytest.mark.parametrize("name,args,cls,tag,headline", CASES,
                         ids=["%s-%s" % (c[0][:-3], c[3].split()[-1])
                              for c in CASES])
def test_check_reports_each_class_at_its_line(name, args, cls, tag, headline):
    rc, doc, err = check(prog(name), *args)
    assert rc == 1, err
    mine = [r for r in doc["reports"] if r["class"] == cls]
    assert mine, doc
    r = mine[0]
    assert headline in r["headline"]
    where = culprit(r)
    assert where is not None, r
    assert where["file"] == prog(name)
    assert where["line"] == bug_line(name, tag)
    # no other class fires on a one-bug program (a deadlocked pair is
    # also destroyed pending when the loop goes)
    also = {"pending"} if cls == "deadlock" else set()
    assert {x["class"] for x in doc["reports"]} - also == {cls}, doc["reports"]


def test_check_prints_each_report_once():
    # check prints the report itself; the bridge's own stderr copy stays
    # quiet under it (COSCOPE_REPORT_STDERR=off), as the C agent's does
    rc, out, err = check(prog("never_awaited.py"), fmt="text")
    assert rc == 1, err
    mine = [ln for ln in (out + err).splitlines()
            if ln == "coscope: coroutine 'fetch' was never awaited"]
    assert len(mine) == 1, out + err


def test_clean_busy_program_has_no_report():
    # a slow step is its own test (slow_step.py); on a loaded 2-core CI
    # machine a busy step may pass 100 ms, which is not what this checks
    rc, doc, err = check(prog("clean_busy.py"), e=env(COSCOPE_SLOW_MS="1000"))
    assert doc["reports"] == [], doc["reports"]
    assert rc == 0 and doc["exit_status"] == 0, err


def test_sarif_location_is_the_py_line():
    rc, doc, _ = check(prog("unretrieved.py"), fmt="sarif")
    assert rc == 1
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["unretrieved"]
    loc = results[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "file://" + prog("unretrieved.py")
    assert loc["region"]["startLine"] == bug_line("unretrieved.py", "unretrieved")


def test_fail_on_other_class_keeps_programs_status():
    p = subprocess.run([COSCOPE, "check", "--fail-on", "deadlock", "--",
                        PYTHON, prog("never_awaited.py")], capture_output=True,
                       text=True, timeout=TIMEOUT, env=env())
    assert p.returncode == 0, p.stderr
    assert "never awaited" in p.stdout


def test_run_reports_on_stderr_with_python_stack():
    p = subprocess.run([COSCOPE, "run", "--", PYTHON, prog("pending.py")],
                       capture_output=True, text=True, timeout=TIMEOUT,
                       env=env())
    assert p.returncode == 0
    head = "coscope: Task was destroyed but it is pending! (task 'orphan')"
    assert head in p.stderr
    block = p.stderr[p.stderr.index(head):]
    assert "created at %s:11 in <module>" % prog("pending.py") in block
    assert "%s:%d in wait_forever" % (prog("pending.py"),
                                      bug_line("pending.py", "pending")) in block
    # asyncio's own message is still there: we add, we do not replace
    assert "\nTask was destroyed but it is pending!\n" in p.stderr


def test_two_loops_in_two_threads():
    rc, doc, err = check(prog("two_loops.py"))
    assert rc == 1, err
    [r] = doc["reports"]
    assert r["class"] == "blocking" and r["task"] == "rude"
    assert culprit(r)["line"] == bug_line("two_loops.py", "blocking two-loops")


def test_in_code_install():
    e = env(PYTHONPATH=PYLIB)
    p = subprocess.run([PYTHON, prog("in_code.py")], capture_output=True,
                       text=True, timeout=TIMEOUT, env=e)
    assert p.returncode == 0, p.stderr
    assert "installed True" in p.stdout
    line = bug_line("in_code.py", "never-awaited in-code")
    assert "coscope: coroutine 'lost' was never awaited" in p.stderr
    # outside check, no origin tracking (its cost): the drop site, which
    # for a call statement is the creation site
    assert "dropped at %s:%d in main" % (prog("in_code.py"), line) in p.stderr


@pytest.mark.parametrize("name,args", [("never_awaited.py", []),
                                       ("clean_busy.py", []),
                                       ("blocking.py", ["sleep"]),
                                       ("pending.py", [])])
def test_off_changes_nothing(name, args):
    plain = subprocess.run([PYTHON, prog(name)] + args, capture_output=True,
                           text=True, timeout=TIMEOUT, env=env())
    off = subprocess.run([COSCOPE, "run", "--", PYTHON, prog(name)] + args,
                         capture_output=True, text=True, timeout=TIMEOUT,
                         env=env(COSCOPE="off"))
    assert (off.returncode, off.stdout, off.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr)
    # check under COSCOPE=off saw nothing: it says so and fails (exit 3),
    # unless told that is expected
    summary = ("coscope: check: 0 reports (0 failing, 0 suppressed); "
               "'%s' exited with status %d" % (PYTHON, plain.returncode))
    unseen = ("check: the command started no coscope process: nothing was "
              "checked (--allow-untraced if that is expected)")
    for flags, rc, line in (([], 3, "coscope: " + unseen),
                            (["--allow-untraced"], plain.returncode,
                             "coscope: warning: " + unseen)):
        p = subprocess.run([COSCOPE, "check"] + flags +
                           ["--", PYTHON, prog(name)] + args,
                           capture_output=True, text=True, timeout=TIMEOUT,
                           env=env(COSCOPE="off"))
        assert p.returncode == rc, p.stderr
        said = [ln for ln in p.stderr.splitlines()
                if ln.startswith("coscope: ")]
        assert said == [summary, line]
    off_in_code = subprocess.run([PYTHON, "-c", "import coscope, sys; "
                                  "sys.exit(0 if coscope.install() is False "
                                  "and coscope.segment() is None else 1)"],
                                 env=env(COSCOPE="off", PYTHONPATH=PYLIB),
                                 timeout=TIMEOUT)
    assert off_in_code.returncode == 0


def test_child_python_processes_are_instrumented():
    code = ("import subprocess, sys; sys.exit(subprocess.call([sys.executable, "
            "%r]))" % prog("never_awaited.py"))
    rc, doc, err = check("-c", code)
    assert rc == 1, err
    assert [r["class"] for r in doc["reports"]] == ["never-awaited"]


class Live:
    """progs/live.py under `coscope run`; says 'ready PID' when parked."""

    def __init__(self, n=3, *more):
        self.p = subprocess.Popen([COSCOPE, "run", "--", PYTHON,
                                   prog("live.py"), str(n)] + list(more),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env())
        line = self.p.stdout.readline().split()
        assert line[:1] == ["ready"], line
        self.pid = int(line[1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.out, self.err = self.p.communicate("", timeout=TIMEOUT)
        assert self.p.returncode == 0, self.err


def tasks(pid, *args):
    p = subprocess.run([COSCOPE, "tasks", str(pid)] + list(args),
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_tasks_stacks_name_the_awaiting_coroutines():
    live = prog("live.py")
    with Live(3) as t:
        out = tasks(t.pid, "--stacks")
        doc = json.loads(tasks(t.pid, "--stacks", "--format", "json"))
        tree = tasks(t.pid, "--format", "tree")
    assert t.err == "", t.err  # a clean program: no report
    by_name = {x["name"]: x for x in doc["tasks"]}
    for i in range(3):
        x = by_name["napper-%d" % i]
        assert x["state"] == "waiting" and x["waits_on"]["reason"] == "sleep"
        # asyncio.sleep(3600): about an hour left
        assert 3000e9 < x["waits_on"]["remaining_ns"] <= 3600e9
        chain = [(f["function"], f["file"], f["line"]) for f in x["stack"]]
        assert chain[0][0] == "sleep" and chain[0][1].endswith("asyncio/tasks.py")
        assert chain[1:] == [("nap_deep", live, bug_line_live("sleep")),
                             ("nap", live, bug_line_live("sleep") + 4)]
        assert x["site"].startswith(live + ":")
    holder = by_name["holder"]
    assert holder["waits_on"]["reason"] == "event"
    assert [f["function"] for f in holder["stack"]] == ["Event.wait", "hold"]
    assert "%s:%d in nap_deep" % (live, bug_line_live("sleep")) in out
    assert "'napper-2': waiting on timer (sleep)" in tree


def py_version():
    """sys.version_info[:3] of PYTHON (not necessarily pytest's own)."""
    out = subprocess.run([PYTHON, "-c", "import sys; print(*sys.version_info[:3])"],
                         capture_output=True, text=True, timeout=TIMEOUT).stdout
    return tuple(int(x) for x in out.split())


def test_eager_tasks_are_listed_where_they_wait():
    # 3.12+'s eager tasks run their first step inside create_task, not
    # through Handle._run: they must still be listed, with their names
    # (set after the factory returns) and await chains
    if py_version() < (3, 12):
        pytest.skip("eager tasks are Python 3.12+")
    live = prog("live.py")
    with Live(2, "eager") as t:
        doc = json.loads(tasks(t.pid, "--stacks", "--format", "json"))
    assert t.err == "", t.err
    by_name = {x["name"]: x for x in doc["tasks"]}
    for i in range(2):
        x = by_name["napper-%d" % i]
        assert x["state"] == "waiting" and x["waits_on"]["reason"] == "sleep"
        assert 3000e9 < x["waits_on"]["remaining_ns"] <= 3600e9
        chain = [(f["function"], f["file"], f["line"]) for f in x["stack"]]
        assert chain[1:] == [("nap_deep", live, bug_line_live("sleep")),
                             ("nap", live, bug_line_live("sleep") + 4)]
        assert x["site"].startswith(live + ":")
    assert by_name["holder"]["waits_on"]["reason"] == "event"


def test_task_names_are_the_programs_own():
    # the bridge's task factory must not change what get_name() says
    # (3.13.0-3.13.2 name unnamed tasks "None" once any factory is set)
    plain = subprocess.run([PYTHON, prog("names.py")], capture_output=True,
                           text=True, timeout=TIMEOUT, env=env())
    under = subprocess.run([COSCOPE, "run", "--", PYTHON, prog("names.py")],
                           capture_output=True, text=True, timeout=TIMEOUT,
                           env=env())
    assert plain.returncode == 0 and under.returncode == 0, under.stderr
    assert under.stdout == plain.stdout
    assert "unnamed Task-2" in plain.stdout


def test_a_bridge_built_for_another_python_is_refused():
    # the CMake build's directory (one _coscope.so, no ABI tag) put on
    # PYTHONPATH for another interpreter: refused, the program runs on
    other = os.environ.get("COSCOPE_OTHER_PYTHONPATH", "")
    if not other:
        pytest.skip("COSCOPE_OTHER_PYTHONPATH (a bridge built for another "
                    "Python version) is not set")
    p = subprocess.run([COSCOPE, "run", "--", PYTHON, prog("never_awaited.py")],
                       capture_output=True, text=True, timeout=TIMEOUT,
                       env=env(COSCOPE_PYTHONPATH=other))
    assert p.returncode == 0, p.stderr
    assert "coscope: not installed:" in p.stderr
    assert "RuntimeWarning: coroutine 'fetch' was never awaited" in p.stderr


def bug_line_live(tag):
    with open(prog("live.py")) as f:
        for i, line in enumerate(f, 1):
            if line.rstrip().endswith("# LIVE %s" % tag):
                return i
    raise AssertionError(tag)


def test_hostile_task_name_is_shown_harmless():
    with Live(1) as t:
        out = tasks(t.pid, "--stacks")
        doc = json.loads(tasks(t.pid, "--format", "json"))
    assert "\x1b" not in out
    evil = [x for x in doc["tasks"] if x["name"].startswith("evil")]
    assert len(evil) == 1
    assert "\x1b" not in evil[0]["name"] and "\n" not in evil[0]["name"]
    assert [ln for ln in out.splitlines() if "evil" in ln][0].split()[0].isdigit()


def test_ps_lists_the_asyncio_process():
    with Live(2) as t:
        p = subprocess.run([COSCOPE, "ps"], capture_output=True, text=True,
                           timeout=TIMEOUT)
    row = [ln.split() for ln in p.stdout.splitlines()
           if ln.split()[:1] == [str(t.pid)]]
    assert row and row[0][2] == "5", p.stdout  # main, 2 nappers, 2 holders


def test_pip_install_into_a_venv(tmp_path):
    """pip install ./python for a user's own interpreter (offline: the
    system's setuptools, no build isolation), then the in-code way."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    tree = tmp_path / "src"
    for d in ("python", "libtrace", "include", "agent"):
        shutil.copytree(os.path.join(src, d), tree / d,
                        ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                      "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=TIMEOUT)
    py = str(venv / "bin" / "python")
    if subprocess.run([py, "-c", "import setuptools"],
                      capture_output=True, timeout=TIMEOUT).returncode != 0:
        # e.g. a CPython 3.12+ built from source: ensurepip no longer
        # brings setuptools, and offline there is none to install
        pytest.skip("no setuptools for %s: pip cannot build offline" % PYTHON)
    p = subprocess.run([py, "-m", "pip", "install", "-q", "--no-build-isolation",
                        "--no-index", str(tree / "python")],
                       capture_output=True, text=True, timeout=300)
    if "externally-managed" in p.stderr or "No module named pip" in p.stderr:
        pytest.skip("pip cannot install here: " + p.stderr.strip()[-200:])
    assert p.returncode == 0, p.stderr
    e = env()
    e.pop("PYTHONPATH", None)
    r = subprocess.run([py, prog("in_code.py")], capture_output=True,
                       text=True, timeout=TIMEOUT, env=e)
    assert r.returncode == 0, r.stderr
    assert "coscope: coroutine 'lost' was never awaited" in r.stderr
    assert str(venv) in subprocess.run(
        [py, "-c", "import coscope; print(coscope.__file__)"],
        capture_output=True, text=True, env=e).stdout


def test_record_and_report_an_asyncio_program(tmp_path):
    """COSCOPE_RECORD and `coscope report` / `export` on an asyncio
    program: task names, the warning with its Python stack."""
    trace = tmp_path / "t.cst"
    p = subprocess.run([COSCOPE, "run", "--", PYTHON, prog("blocking.py"),
                        "sleep"], capture_output=True, text=True,
                       timeout=TIMEOUT, env=env(COSCOPE_RECORD=str(trace)))
    assert p.returncode == 0, p.stderr
    r = subprocess.run([COSCOPE, "report", str(trace)], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    line = bug_line("blocking.py", "blocking sleep")
    assert "blocking: task" in r.stdout and "'handler'" in r.stdout
    assert "#0  %s:%d in block" % (prog("blocking.py"), line) in r.stdout
    assert re.search(r"task \d+ 'handler', then done", r.stdout), r.stdout
    # the selector's select is timed: loop iterations and busy %
    assert re.search(r"loop 0: \d+ iterations, busy [\d.]+%", r.stdout), r.stdout
    out = tmp_path / "t.json"
    x = subprocess.run([COSCOPE, "export", str(trace), "-o", str(out)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert x.returncode == 0, x.stderr
    doc = json.loads(out.read_text())
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    warn = [e for e in events if e.get("cat") == "warning"]
    assert any(("%s:%d in block" % (prog("blocking.py"), line)) in s
               for e in warn for s in e["args"].get("stack", []))
