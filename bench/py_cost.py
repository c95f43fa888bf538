#!/usr/bin/env python3
"""py_cost.py - what coscope's asyncio bridge costs, against plain asyncio
in the same run, with asyncio's own debug mode beside it.

Two workloads, each run in fresh interpreters, the variants interleaved
round after round (the machine's speed drifts; each round compares
neighbours), medians reported:

  spawn   100,000 asyncio.create_task() of a trivial coroutine, then one
          asyncio.gather() of them all: CPU time of the whole batch
          (time.process_time: on a shared machine wall time measures the
          neighbours)
  echo    an asyncio TCP echo server (asyncio.start_server, 64-byte
          lines) in the measured process, driven over loopback by a
          blocking client in this process: the server's CPU time
          (time.process_time) per request

Variants:  plain   no coscope on PYTHONPATH
           coscope coscope.install() (what `coscope run` does), the
                   interposer preloaded as `coscope run` does
           coscope-np  the same without the interposer (what the bridge
                   alone costs)
           debug   PYTHONASYNCIODEBUG=1, no coscope

  tasks   `coscope tasks PID --stacks` on 10,000 tasks parked in
          asyncio.sleep inside named coroutines: seconds (issue: <= 1 s)

usage: py_cost.py [--quick] [--rounds R] [--python PY] [--pythonpath DIR]
                  [--preload LIB] [--coscope BIN]
Prints one line per round and a summary with the ratios to plain.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

CHILD_SPAWN = r"""
import asyncio, os, sys, time
if os.environ.get("BENCH_COSCOPE") == "1":
    import coscope; assert coscope.install()
N = int(sys.argv[1])
async def leaf(i):
    return i
async def main():
    t0 = time.process_time()
    ts = [asyncio.create_task(leaf(i)) for i in range(N)]
    r = await asyncio.gather(*ts)
    assert len(r) == N
    return time.process_time() - t0
print("@s", asyncio.run(main()))
"""

CHILD_ECHO = r"""
import asyncio, os, sys, time
if os.environ.get("BENCH_COSCOPE") == "1":
    import coscope; assert coscope.install()
N = int(sys.argv[1])
async def echo(r, w):
    while line := await r.readline():
        w.write(line)
        await w.drain()
    w.close()
async def main():
    done = asyncio.Event()
    served = 0
    async def counted(r, w):
        nonlocal served
        await echo(r, w)
        served += 1
        if served == 4:
            done.set()
    srv = await asyncio.start_server(counted, "127.0.0.1", 0)
    print("@port", srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    c0 = time.process_time()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    c1 = time.process_time()
    print("@cpu", c1 - c0, flush=True)
    srv.close()
asyncio.run(main())
"""


def variant_env(v, a):
    e = dict(os.environ)
    for k in ("COSCOPE", "PYTHONASYNCIODEBUG", "BENCH_COSCOPE", "LD_PRELOAD"):
        e.pop(k, None)
    e.pop("PYTHONPATH", None)  # plain and debug: not even the sitecustomize
    if v.startswith("coscope"):
        e["PYTHONPATH"] = a.pythonpath
        e["BENCH_COSCOPE"] = "1"
    if v == "coscope":
        e["BENCH_COSCOPE"] = "1"
        if a.preload:
            e["LD_PRELOAD"] = a.preload
    elif v == "debug":
        e["PYTHONASYNCIODEBUG"] = "1"
        e["PYTHONWARNINGS"] = "ignore"
    return e


def run_spawn(v, a, n):
    p = subprocess.run([a.python, "-c", CHILD_SPAWN, str(n)], env=variant_env(v, a),
                       capture_output=True, text=True, timeout=600)
    for ln in p.stdout.splitlines():
        if ln.startswith("@s "):
            return float(ln.split()[1])
    raise RuntimeError("spawn child (%s) failed with status %d: %s"
                       % (v, p.returncode, p.stderr[-2000:]))


def run_echo(v, a, n):
    p = subprocess.Popen([a.python, "-c", CHILD_ECHO, str(n)], env=variant_env(v, a),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    files = [s.makefile("rwb") for s in socks]
    msg = b"x" * 63 + b"\n"

    def burst(k):
        for i in range(k):
            f = files[i % 4]
            f.write(msg)
            f.flush()
            assert f.readline() == msg
    burst(200)  # warm: connections accepted, code paths hot
    p.stdin.write("go\n")
    p.stdin.flush()
    burst(n)
    p.stdin.write("stop\n")
    p.stdin.flush()
    cpu = float(p.stdout.readline().split()[1])
    for f, s in zip(files, socks):
        f.close()
        s.close()
    p.communicate(timeout=60)
    return cpu / n


def tasks_stacks(a, n):
    """Seconds `coscope tasks PID --stacks` takes on n tasks parked in
    asyncio.sleep inside named coroutines (tests/python/progs/live.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    live = os.path.join(here, "..", "tests", "python", "progs", "live.py")
    e = variant_env("coscope", a)
    e.pop("BENCH_COSCOPE")
    e["COSCOPE_SLOW_MS"] = "0"  # making 10,000 tasks is one long step
    p = subprocess.Popen([a.python, live, str(n)], env=e, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    pid = int(p.stdout.readline().split()[1])
    t0 = time.perf_counter()
    out = subprocess.run([a.coscope, "tasks", str(pid), "--stacks"],
                         capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - t0
    p.stdin.close()
    p.wait(timeout=120)
    if out.returncode != 0 or out.stdout.count(" in nap_deep") != n:
        raise RuntimeError("tasks --stacks: %s" % out.stderr[-500:])
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--python", default="/usr/bin/python3")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--pythonpath",
                    default=os.path.join(here, "..", "build", "python", "lib"))
    ap.add_argument("--preload", default="")
    ap.add_argument("--coscope",
                    default=os.path.join(here, "..", "build", "cli", "coscope"))
    a = ap.parse_args()
    rounds = a.rounds or (1 if a.quick else 7)
    n_spawn = 2000 if a.quick else 100_000
    n_echo = 500 if a.quick else 20_000
    variants = ["plain", "coscope", "coscope-np", "debug"]
    res = {(w, v): [] for w in ("spawn", "echo") for v in variants}
    for r in range(rounds):
        for w, fn, n in (("spawn", run_spawn, n_spawn), ("echo", run_echo, n_echo)):
            order = variants if r % 2 == 0 else variants[::-1]
            for v in order:
                res[(w, v)].append(fn(v, a, n))
            print("round %d %-5s " % (r + 1, w) + "  ".join(
                "%s %s" % (v, fmt(w, res[(w, v)][-1])) for v in variants), flush=True)
    n_live = 500 if a.quick else 10_000
    took = [tasks_stacks(a, n_live) for _ in range(1 if a.quick else 3)]
    print("tasks --stacks on %d parked tasks: %s s" % (
        n_live, " ".join("%.3f" % t for t in took)))
    print("\nmedians over %d rounds (%s)" % (rounds, a.python))
    for w in ("spawn", "echo"):
        base = statistics.median(res[(w, "plain")])
        line = "%-5s plain %s" % (w, fmt(w, base))
        for v in ("coscope", "coscope-np", "debug"):
            m = statistics.median(res[(w, v)])
            line += "   %s %s (%.3fx, %+.1f%%)" % (v, fmt(w, m), m / base,
                                                  (m / base - 1) * 100)
        print(line)


def fmt(w, x):
    return ("%.3f s" % x) if w == "spawn" else ("%.2f us/req" % (x * 1e6))


if __name__ == "__main__":
    main()
