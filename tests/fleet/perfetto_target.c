/*
 * perfetto_target.c - a program whose trace holds each thing the Perfetto
 * export (cli/export_perfetto.c) draws, in numbers the test knows from
 * this source, not from the exporter.  tests/fleet/test_fleet.py
 * (Perfetto) records it with `coscope record` and decodes the export:
 *
 *   child-K (K < 3)   sleeps K + 1 times, then returns: K + 2 steps
 *   awaiter-K         awaits child-K: a flow from child-K's last step to
 *                     awaiter-K's second (and last) step
 *   holder, waiter    holder takes the lock and sleeps; waiter blocks on
 *                     it: a flow from holder's releasing step to waiter
 *   burst-K (K < 5)   spawned together, then main sleeps: the 5 run
 *                     between two polls (ready tasks >= 5)
 *   hog               one step that keeps the loop HOG_MS in nanosleep
 *                     (no interposer): a loop lag of at least HOG_MS, and
 *                     with COSCOPE_SLOW_MS below it, a slow warning whose
 *                     stack holds hog()
 *
 * Prints "pid P tid T" (the loop thread) before anything runs.
 */
#include <coscope.h>

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define NCHILD 3
#define NBURST 5
#define HOG_MS 60

static void *child(void *arg)
{
    long k = (long)arg;
    for (long i = 0; i <= k; i++)
        cs_sleep(CS_MSEC(1));
    return NULL;
}

static void *awaiter(void *arg)
{
    cs_await(arg, NULL);
    return NULL;
}

static void *holder(void *arg)
{
    if (cs_lock_acquire(arg) < 0)
        return NULL;
    cs_sleep(CS_MSEC(2));
    cs_lock_release(arg);
    return NULL;
}

static void *waiter(void *arg)
{
    if (cs_lock_acquire(arg) == 0)
        cs_lock_release(arg);
    return NULL;
}

static void *burst(void *arg)
{
    (void)arg;
    return NULL;
}

/* Out of line so that the watchdog's stack names it. */
__attribute__((noinline, noclone)) static void *hog(void *arg)
{
    struct timespec ts = {0, HOG_MS * 1000000L};
    (void)arg;
    while (nanosleep(&ts, &ts) != 0)
        ;
    return NULL;
}

static void *amain(void *unused)
{
    char name[32];
    cs_task *c[NCHILD], *a[NCHILD], *b[NBURST];
    (void)unused;
    for (long k = 0; k < NCHILD; k++) {
        snprintf(name, sizeof name, "child-%ld", k);
        c[k] = cs_spawn(name, child, (void *)k);
        snprintf(name, sizeof name, "awaiter-%ld", k);
        a[k] = cs_spawn(name, awaiter, c[k]);
    }
    cs_gather(a, NCHILD, NULL);

    /* main awaits only waiter, so that holder's last step starts one flow,
     * the one to waiter; holder has ended when waiter has */
    cs_lock *l = cs_lock_new();
    cs_task *h = cs_spawn("holder", holder, l);
    cs_task *w = cs_spawn("waiter", waiter, l);
    cs_await(w, NULL);
    cs_await(h, NULL);
    cs_lock_free(l);

    for (long k = 0; k < NBURST; k++) {
        snprintf(name, sizeof name, "burst-%ld", k);
        b[k] = cs_spawn(name, burst, NULL);
    }
    cs_sleep(CS_MSEC(5)); /* the bursts run alone in the next iteration */
    cs_gather(b, NBURST, NULL);

    cs_await(cs_spawn("hog", hog, NULL), NULL);
    cs_sleep(CS_MSEC(1)); /* a poll after hog's step ends its iteration */
    return NULL;
}

int main(void)
{
    printf("pid %d tid %d\n", (int)getpid(), (int)gettid());
    fflush(stdout);
    return cs_run(amain, NULL, NULL) == 0 ? 0 : 1;
}
