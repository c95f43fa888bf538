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
 *   second-K (K < 2)  on a second loop, in a thread of its own, running
 *                     while main's does: second-0 sleeps once, second-1
 *                     waits for main's loop to end; 2 steps each
 *
 * Prints "pid P tid T" (the main loop's thread) before anything runs.
 */
#include <coscope.h>

#include <pthread.h>
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

static int wake[2]; /* main's loop ends the second loop through it */

static void *second(void *arg)
{
    char c;
    if (arg)
        cs_read(wake[0], &c, 1);
    else
        cs_sleep(CS_MSEC(1));
    return NULL;
}

static void *second_main(void *unused)
{
    (void)unused;
    cs_task *t[2] = {cs_spawn("second-0", second, NULL),
                     cs_spawn("second-1", second, wake)};
    cs_gather(t, 2, NULL);
    return NULL;
}

static void *second_loop(void *arg)
{
    (void)arg;
    return (void *)(long)cs_run(second_main, NULL, NULL);
}

int main(void)
{
    pthread_t th;
    void *r2;
    printf("pid %d tid %d\n", (int)getpid(), (int)gettid());
    fflush(stdout);
    /* the second loop lives until the first is done (a loop that ended
     * gives its ring to the next one, and so its track) */
    if (pipe(wake) != 0 || pthread_create(&th, NULL, second_loop, NULL) != 0)
        return 1;
    int r = cs_run(amain, NULL, NULL);
    if (write(wake[1], "x", 1) != 1 || pthread_join(th, &r2) != 0)
        return 1;
    return r == 0 && r2 == NULL ? 0 : 1;
}
