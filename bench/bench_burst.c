/*
 * bench_burst.c - spawn + gather of bursts of tasks, against one at a time.
 *
 * A burst of B is B cs_spawn() calls of an empty task, then one
 * cs_gather() of all B; its figure is the time per task.  B = 1 is the
 * one-at-a-time figure (spawn + await), the baseline every other size is
 * divided by.  The sizes run after a warm-up burst of the largest size,
 * so that stacks and task structs are pooled, as in a server that has
 * seen its first burst.
 *
 * Traced (the default) and untraced (COSCOPE=off) runs are child
 * processes of this bench, run in alternating pairs, so that both
 * configurations meet the same machine; the traced/untraced ratio of each
 * size is printed too.  Targets (issue 10): every size <= 1.2x the B = 1
 * figure of its configuration; spawn + await <= 120 ns traced and <= 1.3x
 * untraced.
 *
 * Options: --quick, -n N (tasks per repetition and size, default 200,000),
 * --reps R (pairs of child runs, default 5; the best of each is kept).
 */
#include "bench_tasks.h"

static const int sizes[] = {1, 64, 1000, 10000};
#define NSIZES 4
#define BMAX 10000


typedef struct burst_run {
    long n;            /* tasks per size */
    double ns[NSIZES]; /* ns per task, per size */
    int error;         /* first error seen, or 0 */
} burst_run;


static void *burst_main(void *arg)
{
    static cs_task *t[BMAX];
    burst_run *r = arg;

    if ((r->error = bench_burst(t, BMAX)) != 0) /* warm-up */
        return NULL;
    for (int s = 0; s < NSIZES; s++) {
        int b = sizes[s];
        long rounds = r->n / b > 0 ? r->n / b : 1;
        int64_t t0 = bench_now_ns();
        for (long i = 0; i < rounds; i++)
            if ((r->error = bench_burst(t, b)) != 0)
                return NULL;
        r->ns[s] = (double)(bench_now_ns() - t0) / (double)(rounds * b);
    }
    return NULL;
}

/* The child: measures once, prints one line of figures. */
static int child(long n)
{
    burst_run r = {.n = n};
    int rc = cs_run(burst_main, &r, NULL);

    if (rc < 0 || r.error) {
        fprintf(stderr, "bench_burst: %s\n",
                cs_strerror(r.error ? r.error : rc));
        return 1;
    }
    printf("@burst");
    for (int s = 0; s < NSIZES; s++)
        printf(" %.2f", r.ns[s]);
    printf("\n");
    return 0;
}

/* Runs one child with tracing on or off; fills ns[].  0 on success. */
static int run_child(const char *self, long n, int traced, double *ns)
{
    char cmd[4200];

    snprintf(cmd, sizeof cmd, "%s'%s' --child %ld",
             traced ? "" : "COSCOPE=off ", self, n);
    return bench_run_child(cmd, "@burst", ns, NSIZES, 0);
}

static void row(const char *fig, double v, double base, const char *target,
                double limit)
{
    char a[32], b[32], q[32];
    double ratio = v / base;

    bench_row(fig, bench_fmt(a, sizeof a, "%.1f", v),
              bench_fmt(b, sizeof b, "%.1f", base),
              bench_fmt(q, sizeof q, "%.2fx", ratio), target, ratio <= limit);
}

int main(int argc, char **argv)
{
    static const char *cfg[2] = {"COSCOPE=off", "traced"};
    double best[2][NSIZES];
    bench_opts o;
    char fig[80];

    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child(strtol(argv[2], NULL, 10));
    bench_parse(argc, argv, &o, NULL, NULL);
    long n = bench_n(&o, 20000, 200000);
    int reps = bench_reps(&o, 1, 5);
    bench_best_init(&best[0][0], 2 * NSIZES);
    printf("bench_burst: spawn + gather of bursts, %ld tasks per size, "
           "%d pairs of runs\n",
           n, reps);
    for (int rep = 0; rep < reps; rep++)
        for (int c = 0; c < 2; c++) {
            double ns[NSIZES];
            if (run_child(argv[0], n, c, ns) < 0) {
                fprintf(stderr, "bench_burst: the %s run failed\n", cfg[c]);
                return 1;
            }
            printf("  %-11s rep %d:", cfg[c], rep + 1);
            for (int s = 0; s < NSIZES; s++) {
                printf("  B=%d %.1f ns", sizes[s], ns[s]);
                if (ns[s] < best[c][s])
                    best[c][s] = ns[s];
            }
            printf("\n");
        }
    printf("\n%-8s %12s %12s %10s %10s %11s\n", "burst", "off ns/task",
           "traced", "off/B=1", "traced/B=1", "traced/off");
    for (int s = 0; s < NSIZES; s++)
        printf("B=%-6d %12.1f %12.1f %9.2fx %9.2fx %10.2fx\n", sizes[s],
               best[0][s], best[1][s], best[0][s] / best[0][0],
               best[1][s] / best[1][0], best[1][s] / best[0][s]);
    for (int c = 0; c < 2; c++)
        for (int s = 1; s < NSIZES; s++) {
            snprintf(fig, sizeof fig, "burst of %d, %s (ns/task vs B=1)",
                     sizes[s], cfg[c]);
            row(fig, best[c][s], best[c][0], "<= 1.2x", 1.2);
        }
    row("spawn+await traced vs COSCOPE=off (ns)", best[1][0], best[0][0],
        "<= 1.3x", 1.3);
    snprintf(fig, sizeof fig, "%.1f", best[1][0]);
    bench_row("spawn+await traced (ns)", fig, "-", "-", "<= 120 ns",
              best[1][0] <= 120);
    return 0;
}
