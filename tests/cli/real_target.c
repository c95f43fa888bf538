/*
 * real_target.c - a real coscope program (linked with the runtime) for the
 * CLI tests: the runtime itself publishes its segment.
 *
 *   real_target spin    "waiter" parked in cs_sleep, "locker" waiting for
 *                       a lock that "spinner" holds while it spins on the
 *                       CPU forever
 *   real_target sleep   "waiter" as above, and "blocker" blocked in libc's
 *                       sleep() on the loop thread
 *   real_target gather  main in cs_gather over 300 "sleeper" tasks
 *
 * It prints "ready" on stdout once every task is where it says, then runs
 * until killed.
 */
#include <coscope.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile unsigned long sink;
static cs_lock *lock;

static __attribute__((noinline)) void waiter_naps(void)
{
    cs_sleep(600 * 1000000000ll);
    sink++;
}

static void *waiter(void *arg)
{
    (void)arg;
    waiter_naps();
    return NULL;
}

static __attribute__((noinline)) void locker_wants_lock(void)
{
    if (cs_lock_acquire(lock) == 0)
        cs_lock_release(lock);
    sink++;
}

static void *locker(void *arg)
{
    (void)arg;
    locker_wants_lock();
    return NULL;
}

static __attribute__((noinline)) void spin_forever(void)
{
    for (;;)
        sink++;
}

static void *spinner(void *arg)
{
    (void)arg;
    cs_lock_acquire(lock);
    cs_yield(); /* the locker runs and parks on the lock */
    printf("ready\n");
    fflush(stdout);
    spin_forever();
    return NULL;
}

static __attribute__((noinline)) void block_in_libc(void)
{
    printf("ready\n");
    fflush(stdout);
    for (;;)
        sleep(600);
}

static void *blocker(void *arg)
{
    (void)arg;
    cs_yield(); /* the waiter parks first */
    block_in_libc();
    return NULL;
}

static void *sleeper(void *arg)
{
    if (arg) { /* the last to run: main and the others wait already */
        printf("ready\n");
        fflush(stdout);
    }
    cs_sleep(600 * 1000000000ll);
    return NULL;
}

#define GATHERED 300

static void *gather_main(void)
{
    static cs_task *t[GATHERED];
    for (int i = 0; i < GATHERED; i++)
        t[i] = cs_spawn("sleeper", sleeper, i == GATHERED - 1 ? t : NULL);
    cs_gather(t, GATHERED, NULL);
    return NULL;
}

static void *amain(void *arg)
{
    const char *mode = arg;
    if (strcmp(mode, "gather") == 0)
        return gather_main();
    lock = cs_lock_new();
    cs_task *t[3];
    t[0] = cs_spawn("waiter", waiter, NULL);
    if (strcmp(mode, "spin") == 0) {
        t[1] = cs_spawn("spinner", spinner, NULL);
        t[2] = cs_spawn("locker", locker, NULL);
    } else {
        t[1] = cs_spawn("blocker", blocker, NULL);
        t[2] = NULL;
    }
    cs_gather(t, t[2] ? 3 : 2, NULL);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "spin") && strcmp(argv[1], "sleep") &&
                      strcmp(argv[1], "gather"))) {
        fprintf(stderr, "usage: real_target spin|sleep|gather\n");
        return 2;
    }
    return cs_run(amain, argv[1], NULL) < 0;
}
