/*
 * fetch_data.c - the classic asyncio example, in coscope.
 *
 *     async def fetch_data(name, delay):
 *         await asyncio.sleep(delay)
 *         return f"{name} done"
 *
 *     async def main():
 *         results = await asyncio.gather(fetch_data("A", 3),
 *                                        fetch_data("B", 1),
 *                                        fetch_data("C", 2))
 *
 * Three tasks "fetch" for 3, 1 and 2 seconds at the same time: each prints
 * as it finishes (B, C, A) and the whole run takes about 3 s, not 6.
 * Usage: fetch_data [SCALE]   (SCALE multiplies the delays; default 1.0)
 */
#include <coscope.h>

#include <stdio.h>
#include <stdlib.h>

struct fetch {
    const char *name; /* what we pretend to fetch */
    double delay;     /* seconds it takes */
    char result[64];  /* filled in when done */
};

static int64_t t0;

static double elapsed(void)
{
    return (double)(cs_now_ns() - t0) / 1e9;
}

static void *fetch_data(void *arg)
{
    struct fetch *f = arg;

    printf("[%.2fs] %s: fetching (%.1f s)\n", elapsed(), f->name, f->delay);
    fflush(stdout);
    if (cs_sleep((int64_t)(f->delay * 1e9)) < 0)
        return NULL;
    snprintf(f->result, sizeof(f->result), "%s done", f->name);
    printf("[%.2fs] %s\n", elapsed(), f->result);
    fflush(stdout);
    return f->result;
}

static double scale = 1.0;

static void *amain(void *unused)
{
    static struct fetch jobs[] = {{"A", 3, ""}, {"B", 1, ""}, {"C", 2, ""}};
    cs_task *tasks[3];
    void *results[3];
    int r;

    (void)unused;
    for (int i = 0; i < 3; i++) {
        jobs[i].delay *= scale;
        tasks[i] = cs_create_task(CS_CORO(fetch_data, &jobs[i]));
        if (!tasks[i])
            cs_raise(CS_ENOMEM, "cannot create task %d", i);
    }
    r = cs_gather(tasks, 3, results);
    if (r < 0)
        cs_raise(r, "gather failed: %s", cs_last_error());
    printf("[%.2fs] all done: %s, %s, %s\n", elapsed(), (char *)results[0],
           (char *)results[1], (char *)results[2]);
    return NULL;
}

int main(int argc, char **argv)
{
    int r;

    if (argc > 2 || (argc == 2 && (scale = atof(argv[1])) <= 0)) {
        fprintf(stderr, "usage: fetch_data [SCALE]\n");
        return 2;
    }
    t0 = cs_now_ns();
    r = cs_run(amain, NULL, NULL);
    if (r < 0) {
        fprintf(stderr, "fetch_data: %s\n", cs_last_error());
        return 1;
    }
    return 0;
}
