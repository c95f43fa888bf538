/*
 * buggy.c - async bugs, one per argument, to show what coscope says.
 *
 *   buggy nested     cs_run() inside a running loop (asyncio: "asyncio.run()
 *                    cannot be called from a running event loop")
 *   buggy deadlock   two tasks each wait for the other's lock forever
 *   buggy overflow   a task recurses until it hits its stack's guard page
 *   buggy raise      a gathered task fails; the error reaches main
 *
 * Exit status: what cs_run returned, as a positive number (0 if none), or
 * death by SIGSEGV for "overflow".
 */
#include <coscope.h>

#include <stdio.h>
#include <string.h>

static void *nothing(void *arg) { return arg; }

static void *nested_main(void *arg)
{
    (void)arg;
    int r = cs_run(nothing, NULL, NULL); /* the bug */
    if (r < 0)
        cs_raise(r, "nested cs_run: %s", cs_last_error());
    return NULL;
}

struct pair {
    cs_lock *mine, *theirs;
};

static void *grab_both(void *arg)
{
    struct pair *p = arg;
    if (cs_lock_acquire(p->mine) < 0)
        return NULL;
    cs_yield(); /* let the other task take its first lock */
    if (cs_lock_acquire(p->theirs) < 0) {
        cs_lock_release(p->mine);
        return NULL;
    }
    cs_lock_release(p->theirs);
    cs_lock_release(p->mine);
    return NULL;
}

static void *deadlock_main(void *arg)
{
    (void)arg;
    cs_lock *a = cs_lock_new(), *b = cs_lock_new();
    struct pair pa = {a, b}, pb = {b, a};
    cs_task *t[2] = {cs_spawn("worker-a", grab_both, &pa),
                     cs_spawn("worker-b", grab_both, &pb)};
    int r = cs_gather(t, 2, NULL);
    cs_lock_free(a);
    cs_lock_free(b);
    if (r < 0)
        cs_raise(r, "%s", cs_last_error());
    return NULL;
}

static int __attribute__((noinline)) recurse(volatile char *prev, long n)
{
    volatile char frame[512];
    frame[0] = prev ? prev[0] : 1;
    if (n == 0)
        return frame[0];
    return recurse(frame, n - 1) + frame[0];
}

static void *deep(void *arg)
{
    (void)arg;
    return (void *)(long)recurse(NULL, 1L << 30);
}

static void *overflow_main(void *arg)
{
    (void)arg;
    cs_task *t = cs_create_task(CS_CORO(deep, NULL));
    return cs_await(t, NULL) == 0 ? NULL : NULL;
}

static void *fetch(void *arg)
{
    const char *url = arg;
    cs_sleep(CS_MSEC(10));
    if (strstr(url, "bad"))
        cs_raise(CS_ETIMEDOUT, "fetching '%s' timed out", url);
    return arg;
}

static void *raise_main(void *arg)
{
    (void)arg;
    cs_task *t[3] = {cs_create_task(CS_CORO(fetch, "http://good/1")),
                     cs_create_task(CS_CORO(fetch, "http://bad/2")),
                     cs_create_task(CS_CORO(fetch, "http://good/3"))};
    int r = cs_gather(t, 3, NULL);
    if (r < 0)
        cs_raise(r, "gather: %s", cs_last_error());
    return NULL;
}

static const struct {
    const char *name;
    cs_fn main;
} bugs[] = {
    {"deadlock", deadlock_main},
    {"nested", nested_main},
    {"overflow", overflow_main},
    {"raise", raise_main},
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc == 2 && i < sizeof(bugs) / sizeof(bugs[0]); i++) {
        if (strcmp(argv[1], bugs[i].name) != 0)
            continue;
        int r = cs_run(bugs[i].main, NULL, NULL);
        if (r < 0) {
            fprintf(stderr, "buggy %s: cs_run returned %s: %s\n", argv[1],
                    cs_err_name(r), cs_last_error());
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: buggy deadlock|nested|overflow|raise\n");
    return 2;
}
