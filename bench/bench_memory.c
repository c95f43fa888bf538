/*
 * bench_memory.c - resident memory of 100,000 tasks parked in cs_sleep().
 *
 * Reads /proc/self/statm before spawning and once every task has started
 * and is parked in a long cs_sleep(); the RSS difference divided by the
 * number of tasks is the cost of a parked task, stack pages, task struct
 * and loop bookkeeping included.  The tasks are then cancelled and awaited.
 *
 * Stacks come from slabs whose guard pages do not split them (stack.c),
 * so the bench runs under the stock vm.max_map_count (65,530) and prints
 * how many mappings the process has with every task parked.
 *
 * Target (issue 3): <= 8 KiB RSS per task.  The baseline is that budget.
 *
 * Options: --quick (1,000 tasks), -n N (tasks), --reps is ignored.
 */
#include "bench.h"

#include <coscope.h>
#include <errno.h>
#include <unistd.h>
#include "../tests/helpers/cs_proc.h"

static const char *prog = "bench_memory";
static const char map_count_path[] = "/proc/sys/vm/max_map_count";

enum { MAP_MARGIN = 2000 }; /* VMAs kept free for libc, the loop, ... */

typedef struct mem_run {
    long n;           /* tasks to park */
    long spawned;     /* tasks actually spawned */
    long parked;      /* tasks that reached cs_sleep() */
    long rss_before;  /* pages */
    long rss_after;   /* pages */
    long vsz_before;  /* pages */
    long vsz_after;   /* pages */
    long maps_before; /* VMAs */
    long maps_after;  /* VMAs */
    int64_t spawn_ns; /* time to spawn and park every task */
    int error;        /* first unexpected error, or 0 */
} mem_run;

static int read_statm(long *vsz, long *rss)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%ld %ld", vsz, rss) == 2;
    fclose(f);
    return ok ? 0 : -1;
}

static void *sleeper(void *arg)
{
    mem_run *r = arg;
    r->parked++;
    int rc = cs_sleep(CS_SEC(3600));
    if (rc != CS_ECANCELLED && r->error == 0)
        r->error = rc ? rc : CS_EINVAL; /* woke up without being cancelled */
    return NULL;
}

static void *memory_main(void *arg)
{
    mem_run *r = arg;
    cs_task **tasks = calloc((size_t)r->n, sizeof *tasks);
    if (!tasks) {
        r->error = CS_ENOMEM;
        return NULL;
    }
    memset(tasks, 0xff, (size_t)r->n * sizeof *tasks); /* fault it in now */
    read_statm(&r->vsz_before, &r->rss_before);
    r->maps_before = cs_proc_count_maps();

    int64_t t0 = bench_now_ns();
    for (r->spawned = 0; r->spawned < r->n; r->spawned++) {
        tasks[r->spawned] = cs_spawn("sleeper", sleeper, r);
        if (!tasks[r->spawned])
            break;
    }
    for (int i = 0; i < 100 && r->parked < r->spawned; i++)
        cs_yield();
    r->spawn_ns = bench_now_ns() - t0;

    read_statm(&r->vsz_after, &r->rss_after);
    r->maps_after = cs_proc_count_maps();

    for (long i = 0; i < r->spawned; i++)
        cs_cancel(tasks[i]);
    for (long i = 0; i < r->spawned; i++) {
        int rc = cs_await(tasks[i], NULL);
        if (rc != 0 && rc != CS_ECANCELLED && r->error == 0)
            r->error = rc;
    }
    free(tasks);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_parse(argc, argv, &o, NULL, NULL);
    mem_run r = {.n = bench_n(&o, 1000, 100000)};
    long page_kib = sysconf(_SC_PAGESIZE) / 1024;

    const char *env = getenv("COSCOPE_STACK_KB");
    if (env && *env)
        printf("stack size configured: %s KiB (COSCOPE_STACK_KB)\n", env);
    else
        printf("stack size configured: 64 KiB (default; COSCOPE_STACK_KB "
               "unset)\n");
    long max_maps = cs_proc_read_long(map_count_path);
    printf("vm.max_map_count = %ld (left as it is)\n", max_maps);

    int rc = cs_run(memory_main, &r, NULL);
    if (rc != 0 || r.error != 0) {
        fprintf(stderr, "%s: %s\n", prog, cs_strerror(rc ? rc : r.error));
        return 1;
    }
    if (r.spawned < r.n)
        printf("cs_spawn failed after %ld of %ld tasks (out of memory or "
               "mappings): measured with %ld\n",
               r.spawned, r.n, r.spawned);
    if (r.spawned == 0 || r.parked < r.spawned) {
        fprintf(stderr, "%s: only %ld of %ld tasks started\n", prog, r.parked,
                r.spawned);
        return 1;
    }

    double n = (double)r.spawned;
    double rss_kib = (double)(r.rss_after - r.rss_before) * page_kib / n;
    double vsz_kib = (double)(r.vsz_after - r.vsz_before) * page_kib / n;
    double vmas = (double)(r.maps_after - r.maps_before) / n;
    printf("tasks parked in cs_sleep: %ld\n", r.spawned);
    printf("RSS before %ld KiB, after %ld KiB\n", r.rss_before * page_kib,
           r.rss_after * page_kib);
    printf("RSS per task:     %.2f KiB\n", rss_kib);
    printf("virtual per task: %.2f KiB, VMAs per task: %.2f\n", vsz_kib, vmas);
    printf("mappings with every task parked: %ld (%.1f %% of "
           "vm.max_map_count)\n",
           r.maps_after,
           max_maps > 0 ? 100.0 * (double)r.maps_after / (double)max_maps : 0);
    printf("spawn and park:   %.0f ns per task\n", (double)r.spawn_ns / n);
    printf("ratio to the 8 KiB budget: %.2f\n", rss_kib / 8.0);

    char v[64], x[64], fig[64];
    bench_row(bench_fmt(fig, sizeof fig, "RSS per parked task (%ld)",
                        r.spawned),
              bench_fmt(v, sizeof v, "%.2f KiB", rss_kib), "budget 8 KiB",
              bench_fmt(x, sizeof x, "%.2f of budget", rss_kib / 8.0),
              "<= 8 KiB", rss_kib <= 8.0);
    return 0;
}
