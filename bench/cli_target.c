/*
 * cli_target.c - target processes for bench/bench_cli.sh (issue 6, point
 * 10).
 *
 *   cli_target park N   N tasks parked in cs_sleep; prints "ready" once
 *                       they all are, then stays until killed
 *   cli_target ping S   two tasks yield to each other for S seconds (after
 *                       printing "ready"), then print round trips per
 *                       second
 */
#include <coscope.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long ntasks;
static double seconds;

/* Parks for an hour, longer than any run: what `coscope tasks` lists.
 * Its result: whether its sleep was cut short. */
static void *napper(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)(cs_sleep(CS_SEC(3600)) != 0);
}

static void *park_main(void *arg)
{
    (void)arg;
    for (long i = 0; i < ntasks; i++)
        if (!cs_spawn("napper", napper, NULL)) {
            fprintf(stderr, "cli_target: spawn %ld failed\n", i);
            return NULL;
        }
    cs_yield(); /* every napper runs once and parks */
    printf("ready\n");
    fflush(stdout);
    cs_sleep(CS_SEC(3600));
    return NULL;
}

static volatile int stop;
static long trips;

static void *pinger(void *arg)
{
    long *count = arg;
    while (!stop) {
        cs_yield();
        (*count)++;
    }
    return NULL;
}

static void *ping_main(void *arg)
{
    (void)arg;
    long a = 0, b = 0;
    cs_task *t[2] = {cs_spawn("ping", pinger, &a),
                     cs_spawn("pong", pinger, &b)};
    printf("ready\n");
    fflush(stdout);
    int64_t end = cs_now_ns() + (int64_t)(seconds * 1e9);
    while (cs_now_ns() < end)
        cs_sleep(CS_MSEC(10));
    stop = 1;
    cs_gather(t, 2, NULL);
    trips = a < b ? a : b;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "park") == 0) {
        ntasks = atol(argv[2]);
        return cs_run(park_main, NULL, NULL) != 0;
    }
    if (argc == 3 && strcmp(argv[1], "ping") == 0) {
        seconds = atof(argv[2]);
        if (cs_run(ping_main, NULL, NULL) != 0)
            return 1;
        printf("%.0f\n", (double)trips / seconds);
        return 0;
    }
    fprintf(stderr, "usage: cli_target park N | ping SECONDS\n");
    return 2;
}
