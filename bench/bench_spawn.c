/*
 * bench_spawn.c - spawn + run + await of an empty task, against asyncio.
 *
 * coscope: inside cs_run, a loop of cs_spawn() of a task that returns at
 * once, then cs_await() of it; one op is the pair.  Baseline: the same with
 * asyncio.create_task() + await of an empty coroutine, measured by
 * bench/peers/asyncio_spawn.py, which this bench runs (--peer PATH) after
 * its own measurement so that both figures come from the same run.
 *
 * Targets (issue 3): <= 150 ns per op and >= 8x asyncio.
 *
 * Options: --quick, -n N (ops per repetition, default 1 million), --reps R
 * (default 5), --peer PATH (the Python peer; without it no ratio).
 */
#include "bench.h"

#include <coscope.h>

static const char *prog = "bench_spawn";

static void *empty(void *arg)
{
    return arg;
}

typedef struct spawn_run {
    long n;      /* ops per repetition */
    int reps;    /* repetitions */
    double best; /* best ns per op */
    int error;   /* first error seen, or 0 */
} spawn_run;

static void *spawn_main(void *arg)
{
    spawn_run *r = arg;
    r->best = 1e300;
    for (int rep = 0; rep < r->reps; rep++) {
        int64_t t0 = bench_now_ns();
        for (long i = 0; i < r->n; i++) {
            cs_task *t = cs_spawn("empty", empty, NULL);
            if (!t) {
                r->error = CS_ENOMEM;
                return NULL;
            }
            int rc = cs_await(t, NULL);
            if (rc != 0) {
                r->error = rc;
                return NULL;
            }
        }
        int64_t t1 = bench_now_ns();
        double ns = (double)(t1 - t0) / (double)r->n;
        printf("  coscope rep %d: %.1f ns/op\n", rep + 1, ns);
        if (ns < r->best)
            r->best = ns;
    }
    return NULL;
}

/* Runs the Python peer and returns its ns/op, or a negative value. */
static double run_peer(const char *path, int quick)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 '%s'%s", path, quick ? " --quick" : "");
    printf("running %s\n", cmd);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    double ns = -1;
    while (fgets(line, sizeof line, p)) {
        fputs(line, stdout);
        if (strncmp(line, "@asyncio_ns ", 12) == 0)
            ns = strtod(line + 12, NULL);
    }
    int st = pclose(p);
    return st == 0 ? ns : -1;
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_parse(argc, argv, &o, "--peer", " [--peer asyncio_spawn.py]");
    spawn_run r = {
        .n = o.n ? o.n : o.quick ? 10000 : 1000000,
        .reps = o.reps ? o.reps : o.quick ? 1 : 5,
    };

    printf("spawn + await of an empty task: %ld ops, best of %d\n", r.n,
           r.reps);
    int rc = cs_run(spawn_main, &r, NULL);
    if (rc != 0 || r.error != 0) {
        fprintf(stderr, "%s: %s\n", prog, cs_strerror(rc ? rc : r.error));
        return 1;
    }
    printf("coscope spawn+await: %.1f ns/op\n", r.best);

    char v[64], b[64], x[64];
    bench_fmt(v, sizeof v, "%.1f ns", r.best);
    double py = o.extra ? run_peer(o.extra, o.quick) : -1;
    if (py <= 0) {
        if (o.extra)
            fprintf(stderr, "%s: python peer '%s' failed; no ratio\n", prog,
                    o.extra);
        bench_row("spawn+await", v, "asyncio n/a", "n/a", "<= 150 ns, >= 8x",
                  0);
        return o.extra ? 1 : 0;
    }
    double ratio = py / r.best;
    printf("asyncio create_task+await: %.1f ns/op\n", py);
    printf("ratio asyncio/coscope: %.1fx\n", ratio);
    bench_row("spawn+await", v, bench_fmt(b, sizeof b, "asyncio %.0f ns", py),
              bench_fmt(x, sizeof x, "%.1fx faster", ratio), "<= 150 ns, >= 8x",
              r.best <= 150.0 && ratio >= 8.0);
    return 0;
}
