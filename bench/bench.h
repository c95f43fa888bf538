/*
 * bench.h - helpers shared by coscope's benchmarks, private to bench/.
 *
 * Every bench takes the same options (--quick, -n N, --reps R), times with
 * CLOCK_MONOTONIC, keeps the best of several repetitions (the least
 * disturbed one on a shared machine), and ends with one or more summary
 * rows that bench/run.sh collects into its table:
 *
 *   @row <TAB> figure <TAB> value <TAB> baseline <TAB> ratio <TAB> target
 *        <TAB> meets|misses|info
 *
 * Benches never fail on a figure: their exit status is 0 unless something
 * did not work (a call failed, a server died); targets are reported only.
 */
#ifndef CS_BENCH_H
#define CS_BENCH_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* Options common to every bench. */
typedef struct bench_opts {
    int quick;         /* --quick: few iterations, for the ctest smoke run */
    long n;            /* -n N: iterations per repetition (0: bench default) */
    int reps;          /* --reps R: repetitions, best kept (0: default) */
    const char *extra; /* the one bench-specific option value, if any */
} bench_opts;

/* Monotonic time in nanoseconds. */
static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Prints usage and exits 2 (the exit code for bad arguments). */
static inline void bench_usage(const char *prog, const char *extra_help)
{
    fprintf(stderr,
            "usage: %s [--quick] [-n N] [--reps R]%s\n"
            "  --quick    few iterations (smoke test; figures meaningless)\n"
            "  -n N       iterations per repetition\n"
            "  --reps R   repetitions; the best one is reported\n",
            prog, extra_help ? extra_help : "");
    exit(2);
}

/*
 * Parses the common options.  extra_name (e.g. "--peer"), if not NULL, is
 * one more option taking a value, stored in o->extra.
 */
static inline void bench_parse(int argc, char **argv, bench_opts *o,
                               const char *extra_name, const char *extra_help)
{
    memset(o, 0, sizeof *o);
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep order with stderr in logs */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            o->quick = 1;
        } else if (strcmp(a, "-n") == 0 && i + 1 < argc) {
            o->n = strtol(argv[++i], NULL, 10);
            if (o->n <= 0)
                bench_usage(argv[0], extra_help);
        } else if (strcmp(a, "--reps") == 0 && i + 1 < argc) {
            o->reps = atoi(argv[++i]);
            if (o->reps <= 0)
                bench_usage(argv[0], extra_help);
        } else if (extra_name && strcmp(a, extra_name) == 0 && i + 1 < argc) {
            o->extra = argv[++i];
        } else {
            bench_usage(argv[0], extra_help);
        }
    }
}

/* -n's value, or the bench's default for a --quick or a full run. */
static inline long bench_n(const bench_opts *o, long quick, long full)
{
    return o->n ? o->n : o->quick ? quick : full;
}

/* --reps's value, or the bench's default for a --quick or a full run. */
static inline int bench_reps(const bench_opts *o, int quick, int full)
{
    return o->reps ? o->reps : o->quick ? quick : full;
}

/* Whether side `name` runs: no --only, or --only name. */
static inline int bench_only(const bench_opts *o, const char *name)
{
    return !o->extra || strcmp(o->extra, name) == 0;
}

/* printf, for a side of the bench that ran (on), else nothing. */
static inline void bench_printf_if(int on, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void bench_printf_if(int on, const char *fmt, ...)
{
    va_list ap;
    if (!on)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/* Sets n bests to "none seen yet" (a figure every real one beats). */
static inline void bench_best_init(double *best, size_t n)
{
    for (size_t i = 0; i < n; i++)
        best[i] = 1e300;
}

/*
 * Times reps runs of rounds(n) (n round trips of what is measured),
 * printing "  <what> rep R: X ns/round trip" for each; returns the least
 * ns per round trip.
 */
static inline double bench_best_rounds(const char *what, void (*rounds)(long),
                                       long n, int reps)
{
    double best = 1e300;
    for (int rep = 0; rep < reps; rep++) {
        int64_t t0 = bench_now_ns();
        rounds(n);
        int64_t t1 = bench_now_ns();
        double ns = (double)(t1 - t0) / (double)n;
        printf("  %s rep %d: %.2f ns/round trip\n", what, rep + 1, ns);
        if (ns < best)
            best = ns;
    }
    return best;
}

/*
 * Runs cmd (a child run of a bench, through the shell) and reads the
 * count figures of its line "<tag> F1 F2 ..." into out; echoes its other
 * lines when echo is set.  0 if the child exited 0 and said its figures.
 */
static inline int bench_run_child(const char *cmd, const char *tag,
                                  double *out, int count, int echo)
{
    char line[512];
    size_t k = strlen(tag);
    int got = 0;
    FILE *p;

    fflush(stdout);
    if (!(p = popen(cmd, "r")))
        return -1;
    while (fgets(line, sizeof line, p)) {
        if (strncmp(line, tag, k) == 0 && line[k] == ' ') {
            char *s = line + k, *end;
            got = 1;
            for (int i = 0; i < count && got; i++, s = end) {
                out[i] = strtod(s, &end);
                got = end != s;
            }
        } else if (echo) {
            fputs(line, stdout);
        }
    }
    return pclose(p) == 0 && got ? 0 : -1;
}

/* Prints a summary row for bench/run.sh (see the top of this file); meets
 * is 1 or 0, or -1 for a figure that has no target. */
static inline void bench_row(const char *figure, const char *value,
                             const char *baseline, const char *ratio,
                             const char *target, int meets)
{
    printf("@row\t%s\t%s\t%s\t%s\t%s\t%s\n", figure, value, baseline, ratio,
           target,
           meets < 0 ? "info"
           : meets   ? "meets"
                     : "misses");
    fflush(stdout);
}

/* snprintf into a caller's buffer, returning it (for bench_row values). */
static inline const char *bench_fmt(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline const char *bench_fmt(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return buf;
}


/* CPU time (ns) process pid has used so far, from /proc/PID/schedstat, or
 * -1: the steadier figure for a server on a shared machine. */
static inline int64_t bench_cpu_ns(pid_t pid)
{
    char path[64];
    long long ns = -1;
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lld", &ns) != 1)
            ns = -1;
        fclose(f);
    }
    return ns;
}

#endif
