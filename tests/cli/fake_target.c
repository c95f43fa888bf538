/*
 * fake_target.c - a process for the CLI tests that publishes a coscope
 * segment through libtrace's writer (libtrace/writer.h), the way the
 * runtime does, with a known set of tasks, then parks so that the tests
 * can look at it.
 *
 *   fake_target park      the scenario below; two tasks have real parked
 *                         stacks (ucontext), saved in their slots like the
 *                         runtime's switch saves them
 *   fake_target deadlock  three tasks waiting on each other in a cycle
 *                         (lock, task, lock) and one outside waiting on it
 *   fake_target many N    N sleeping tasks
 *   fake_target nodump    "park", after prctl(PR_SET_DUMPABLE, 0)
 *   fake_target evil      a task whose name and site hold terminal escape
 *                         sequences, a newline and bytes that are not UTF-8
 *
 * When ready it prints "ready <pid>" on stdout.  Then it reads commands on
 * stdin, one a line, and answers each on stdout:
 *   emit N      N step records on ring 0    -> "emitted <ring 0 head>"
 *   warn        a slow-step warning with a stack naming slow_handler()
 *                                           -> "warned"
 *   exit        exits normally (the segment is removed)
 *   vanish      _exit(0): the segment is left behind, stale
 * and exits normally at end of input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "writer.h"

static cs__tr_ring *ring;
static ucontext_t main_ctx;
static volatile int sink;

/* ---- tasks with real stacks --------------------------------------------- */

struct fake_task {
    ucontext_t ctx;
    char stack[64 * 1024];
    uint32_t ref;
};
static struct fake_task holder, writer;
static struct fake_task *running;

/* Switches back to main, as the runtime's cs__switch does: the saved
 * context is just after this call. */
static __attribute__((noinline)) int park_task(void)
{
    swapcontext(&running->ctx, &main_ctx);
    return sink;
}

static __attribute__((noinline)) void holder_naps(void)
{
    sink += park_task(); /* not a tail call: keep this frame */
    sink++;
}

static __attribute__((noinline)) void writer_waits_for_lock(void)
{
    sink += park_task();
    sink += 2; /* unlike holder_naps, so the two are not folded into one */
}

static void holder_entry(void)
{
    holder_naps();
    for (;;)
        swapcontext(&holder.ctx, &main_ctx);
}

static void writer_entry(void)
{
    writer_waits_for_lock();
    for (;;)
        swapcontext(&writer.ctx, &main_ctx);
}

/* Starts t on its own stack until it parks, then saves its registers in
 * its slot (sp/fp/ip of the frame that called swapcontext). */
static void run_until_parked(struct fake_task *t, void (*entry)(void))
{
    getcontext(&t->ctx);
    t->ctx.uc_stack.ss_sp = t->stack;
    t->ctx.uc_stack.ss_size = sizeof t->stack;
    t->ctx.uc_link = &main_ctx;
    makecontext(&t->ctx, entry, 0);
    running = t;
    swapcontext(&main_ctx, &t->ctx);
    running = NULL;
    const greg_t *g = t->ctx.uc_mcontext.gregs;
    cs__tr_task_park(t->ref, (uint64_t)g[REG_RSP], (uint64_t)g[REG_RBP],
                     (uint64_t)g[REG_RIP]);
}

/* ---- scenarios ---------------------------------------------------------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A task that ran `steps` steps and now waits for reason on target/aux. */
static uint32_t task(uint64_t id, const char *name, const char *site,
                     unsigned state, unsigned reason, uint64_t target,
                     uint64_t aux, int steps)
{
    uint64_t now = cs__tr_now();
    uint32_t ref = cs__tr_task_alloc(id, cs__tr_intern(name),
                                     cs__tr_intern(site), 0, 0, now);
    if (ref == 0) {
        fprintf(stderr, "fake_target: no task slot for %s\n", name);
        exit(3);
    }
    for (int i = 0; i < steps; i++) {
        uint64_t t0 = cs__tr_now();
        cs__tr_task_running(ref, t0);
        cs__tr_task_stopped(ref, state, reason, target, aux, t0, cs__tr_now());
    }
    return ref;
}

static void set_awaiter(uint32_t ref, uint64_t awaiter)
{
    cs_task_slot *s = cs__tr_task_begin(ref);
    CS__TRACE_SET(s->awaiter, awaiter);
    cs__tr_task_end(s);
}

static void scenario_park(void)
{
    uint64_t now = mono_ns();
    task(1, "main", "app.c:10", CS_TASK_WAITING, CS_WAIT_TASK, 2, 0, 1);
    uint32_t fetch = task(2, "fetch_user", "app.c:20", CS_TASK_WAITING,
                          CS_WAIT_FD_READ, 7, now + 600000000000ull, 3);
    set_awaiter(fetch, 1);
    writer.ref = task(3, "db-writer", "db.c:30", CS_TASK_WAITING, CS_WAIT_LOCK,
                      100, 4, 2);
    holder.ref = task(4, "lock-holder", "db.c:40", CS_TASK_WAITING,
                      CS_WAIT_SLEEP, now + 300000000000ull, 0, 5);
    task(5, "consumer", "queue.c:50", CS_TASK_WAITING, CS_WAIT_QUEUE_GET, 200,
         0, 1);
    task(6, "producer", "queue.c:60", CS_TASK_WAITING, CS_WAIT_QUEUE_PUT, 200,
         0, 1);
    task(7, "notifier", "ev.c:70", CS_TASK_WAITING, CS_WAIT_EVENT, 300, 0, 1);
    task(8, "limiter", "ev.c:80", CS_TASK_WAITING, CS_WAIT_SEMAPHORE, 400, 0,
         1);
    task(9, "hasher", "pool.c:90", CS_TASK_WAITING, CS_WAIT_THREAD, 0, 0, 1);
    task(10, "yielder", "app.c:100", CS_TASK_READY, CS_WAIT_YIELD, 0, 0, 4);
    uint32_t spin = task(11, "spinner", "cpu.c:110", CS_TASK_READY,
                         CS_WAIT_YIELD, 0, 0, 1);
    uint64_t t = cs__tr_now();
    cs__tr_task_running(spin, t);
    cs__tr_step_begin(ring, 11, t);
    task(12, "finished", "app.c:120", CS_TASK_DONE, CS_WAIT_NONE, 0, 0, 2);
    run_until_parked(&holder, holder_entry);
    run_until_parked(&writer, writer_entry);
}

static void scenario_deadlock(void)
{
    task(1, "main", "app.c:10", CS_TASK_WAITING, CS_WAIT_TASK, 2, 0, 1);
    task(2, "worker-a", "app.c:20", CS_TASK_WAITING, CS_WAIT_LOCK, 501, 3, 2);
    task(3, "worker-b", "app.c:30", CS_TASK_WAITING, CS_WAIT_TASK, 4, 0, 2);
    task(4, "worker-c", "app.c:40", CS_TASK_WAITING, CS_WAIT_LOCK, 502, 2, 2);
    task(5, "bystander", "app.c:50", CS_TASK_WAITING, CS_WAIT_SLEEP,
         mono_ns() + 60000000000ull, 0, 1);
}

static void scenario_many(long n)
{
    uint64_t deadline = mono_ns() + 600000000000ull;
    for (long i = 1; i <= n; i++) {
        char name[32];
        snprintf(name, sizeof name, "sleeper-%ld", i);
        task((uint64_t)i, name, "many.c:1", CS_TASK_WAITING, CS_WAIT_SLEEP,
             deadline, 0, 1);
    }
}

static void scenario_evil(void)
{
    task(1, "\033]0;pwned\007bad\nname\xff", "x\033[2Jy.c:1", CS_TASK_WAITING,
         CS_WAIT_TASK, 1, 0, 1);
    /* valid UTF-8 kept; overlong, surrogate, U+FFFE, past U+10FFFF and a
     * bad lead byte each become one '?' a byte */
    task(2,
         "u\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\xe0\x80\xaf|\xed\xa0\x80|"
         "\xef\xbf\xbe|\xf4\x90\x80\x80|\xf5\x80\x80\x80",
         "evil.c:2", CS_TASK_WAITING, CS_WAIT_TASK, 1, 0, 1);
}

/* ---- commands ----------------------------------------------------------- */

static __attribute__((noinline)) void slow_handler(void)
{
    sink++;
}

static void emit(long n)
{
    for (long i = 0; i < n; i++) {
        uint64_t t1 = cs__tr_now();
        cs__tr_step(ring, 2, CS_WAIT_FD_READ, t1 - 1000, t1);
    }
    printf("emitted %llu\n", (unsigned long long)ring->head);
}

static void warn(void)
{
    uint64_t ips[2] = {(uint64_t)(uintptr_t)slow_handler + 1,
                       (uint64_t)(uintptr_t)emit + 1};
    cs__tr_warning(ring, 4, CS_WARN_SLOW_STEP, cs__tr_stack_put(ips, 2));
    printf("warned\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fake_target park|deadlock|many N|nodump\n");
        return 2;
    }
    cs__tr_config cfg;
    cs__tr_config_env(&cfg);
    cfg.enabled = 1;
    cfg.ring_kb = 8;
    cfg.rings = 2;
    cfg.task_slots = strcmp(argv[1], "many") == 0 ? 131072 : 256;
    cfg.strings_kb = strcmp(argv[1], "many") == 0 ? 8192 : 64;
    cfg.flight = NULL; /* cfg.record: COSCOPE_RECORD, for coscope record */
    if (strcmp(argv[1], "nodump") == 0)
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    int rc = cs__tr_start_with(&cfg);
    if (rc != 0) {
        fprintf(stderr, "fake_target: cs__tr_start_with: %d\n", rc);
        return 3;
    }
    ring = cs__tr_ring_acquire();
    if (strcmp(argv[1], "park") == 0 || strcmp(argv[1], "nodump") == 0)
        scenario_park();
    else if (strcmp(argv[1], "deadlock") == 0)
        scenario_deadlock();
    else if (strcmp(argv[1], "evil") == 0)
        scenario_evil();
    else if (strcmp(argv[1], "many") == 0 && argc > 2)
        scenario_many(atol(argv[2]));
    else
        return 2;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[128];
    while (fgets(line, sizeof line, stdin) != NULL) {
        if (strncmp(line, "emit ", 5) == 0)
            emit(atol(line + 5));
        else if (strcmp(line, "warn\n") == 0)
            warn();
        else if (strcmp(line, "exit\n") == 0)
            break;
        else if (strcmp(line, "vanish\n") == 0)
            _exit(0);
        fflush(stdout);
    }
    return 0;
}
