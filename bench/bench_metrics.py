#!/usr/bin/env python3
"""bench_metrics.py COSCOPE METRICS_TARGET [--quick] - the cost of one
`coscope metrics` scrape (issue 14, point 1): 50 processes x 10,000 tasks
each (metrics_target), target <= 100 ms.

Figures, each the best of the repetitions (the least disturbed run):
  - a warm scrape: GET /metrics from a running `coscope metrics --listen`
    (segments already open, rings read since the previous scrape), the way
    Prometheus sees it; and its median;
  - a cold scrape: `coscope metrics --once` as a whole process (opens and
    reads every segment, as the first scrape after a start does);
  - baseline, same run: `coscope ps` as a whole process over the same
    segments (it reads the same task tables).
--quick: 5 processes x 1,000 tasks, 3 repetitions (a smoke test).
"""
import re
import statistics
import subprocess
import sys
import time
import urllib.request


def row(*cols):
    print("@row\t" + "\t".join(cols))


def main():
    coscope, target = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv[3:]
    nproc, ntasks, reps = (5, 1000, 3) if quick else (50, 10000, 10)
    procs = []
    try:
        for _ in range(nproc):
            p = subprocess.Popen([target, str(ntasks)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            procs.append(p)
        for p in procs:
            if p.stdout.readline() != "ready\n":
                sys.exit("bench_metrics: a target did not start")

        def wall(args):
            best = None
            for _ in range(reps):
                t0 = time.perf_counter()
                r = subprocess.run([coscope] + args, capture_output=True)
                t = time.perf_counter() - t0
                if r.returncode != 0:
                    sys.exit("bench_metrics: coscope %s failed: %s" %
                             (args[0], r.stderr.decode()))
                best = t if best is None else min(best, t)
            return best, r.stdout.decode()

        cold, text = wall(["metrics", "--once"])
        live = int(re.search(r'coscope_exporter_segments\{status="live"\} '
                             r'(\d+)', text).group(1))
        if live < nproc:
            sys.exit("bench_metrics: %d of %d targets scraped" % (live, nproc))
        ps, _ = wall(["ps"])
        srv = subprocess.Popen([coscope, "metrics", "--listen", "127.0.0.1:0"],
                               stderr=subprocess.PIPE, text=True)
        port = re.search(r":(\d+)/metrics", srv.stderr.readline()).group(1)
        url = "http://127.0.0.1:%s/metrics" % port
        warm, inside = [], []
        for i in range(reps + 1):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as r:
                body = r.read().decode()
            t = time.perf_counter() - t0
            if i == 0:
                continue  # the first opens the segments: that is "cold"
            warm.append(t)
            inside.append(float(re.search(
                r"^coscope_exporter_scrape_duration_seconds (\S+)$",
                body, re.M).group(1)))
        srv.terminate()
        srv.wait()
        srv.stderr.close()
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()
            p.stdout.close()
    ms = lambda s: "%.1f ms" % (s * 1e3)
    what = "%d processes x %d tasks" % (nproc, ntasks)
    print("scrape of %s (%d bytes of metrics)" % (what, len(body)))
    print("  warm GET /metrics: best %s, median %s (reading the segments: "
          "best %s)" % (ms(min(warm)), ms(statistics.median(warm)),
                        ms(min(inside))))
    print("  cold coscope metrics --once: %s" % ms(cold))
    print("  baseline coscope ps: %s" % ms(ps))
    for name, v in (("warm scrape, " + what, min(warm)),
                    ("cold scrape (--once), " + what, cold)):
        row(name, ms(v), "ps " + ms(ps), "%.2fx ps" % (v / ps), "<= 100 ms",
            "meets" if v <= 0.1 else "misses")


if __name__ == "__main__":
    main()
