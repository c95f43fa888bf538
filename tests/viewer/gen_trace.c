/*
 * gen_trace.c - writes trace files for the viewer and export tests with
 * libtrace's own writer (libtrace/writer.h): a segment is made with a
 * monotonic clock (ticks are ns) in the output's directory, records are
 * emitted with chosen timestamps, and the flight recorder dumps it as a
 * trace file, so the files are byte for byte what a coscope program would
 * write.
 *
 *   gen_trace three OUT    tasks fetch-1..3 sleeping 1, 2 and 3 s, awaited
 *                          by main; a slow-step warning with a stack on
 *                          fetch-2 at 2 s; loop idle in between
 *   gen_trace mixed OUT    every stop reason, two loops, several warning
 *                          kinds (one without a task)
 *   gen_trace big OUT N    N records: 200 tasks on two loops, steps with
 *                          wait records, loop iterations, a few warnings
 *   gen_trace empty OUT    no records at all
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coscope/trace.h"
#include "writer.h"

#define MS 1000000ull
#define S 1000000000ull

static uint64_t t0;        /* trace clock at start; ns (monotonic clock) */
static char seg_dir[4096]; /* the segment lives next to the output file,
                              not in /dev/shm where `coscope ps` looks */
static uint64_t nrecords;  /* records emitted */

static void start(uint32_t ring_kb, uint32_t rings)
{
    cs__tr_config cfg;
    cs__tr_config_env(&cfg);
    cfg.enabled = 1;
    cfg.ring_kb = ring_kb;
    cfg.rings = rings;
    cfg.task_slots = 1024;
    cfg.strings_kb = 64;
    cfg.stacks_kb = 64;
    cfg.force_monotonic = 1;
    cfg.record = NULL;
    cfg.flight = NULL;
    cfg.dir = seg_dir;
    int rc = cs__tr_start_with(&cfg);
    if (rc != 0) {
        fprintf(stderr, "gen_trace: cannot start tracing: %d\n", rc);
        exit(1);
    }
    t0 = cs__tr_now();
}

static void emit(cs__tr_ring *r, uint64_t at, uint64_t task, unsigned type,
                 unsigned reason, uint32_t arg)
{
    cs__tr_emit(r, t0 + at, task, CS_REC_INFO(type, reason, 0), arg);
    nrecords++;
}

static void task_new(cs__tr_ring *r, uint64_t at, uint64_t id,
                     const char *name, const char *site, uint64_t parent)
{
    uint32_t n = cs__tr_intern(name), s = cs__tr_intern(site);
    cs__tr_task_alloc(id, n, s, parent, r->index, t0 + at);
    emit(r, at, id, CS_EV_TASK_CREATED, 0, s);
    emit(r, at, id, CS_EV_TASK_NAME, 0, n);
}

/* A step of task from `from` to `to` (ns since start), then reason; a wait
 * record first when the reason has a target. */
static void step(cs__tr_ring *r, uint64_t task, uint64_t from, uint64_t to,
                 unsigned reason, uint64_t target, uint32_t aux)
{
    if (reason >= CS_WAIT_SLEEP && reason <= CS_WAIT_FD_WRITE)
        emit(r, to, target, CS_EV_WAIT, reason, aux);
    uint32_t flags = 0;
    uint32_t arg = cs__tr_dur_arg(to - from, &flags);
    cs__tr_emit(r, t0 + to, task, CS_REC_INFO(CS_EV_STEP, reason, flags), arg);
    nrecords++;
    if (reason == CS_STOP_DONE)
        emit(r, to, task, CS_EV_TASK_DONE, 0, 0);
    else if (reason == CS_STOP_RAISED)
        emit(r, to, task, CS_EV_TASK_RAISED, 0, (uint32_t)-5);
    else if (reason == CS_STOP_CANCELLED)
        emit(r, to, task, CS_EV_TASK_CANCELLED, 0, 0);
}

/* The loop waited in epoll_wait from `from` to `to`. */
static void idle(cs__tr_ring *r, uint64_t from, uint64_t to)
{
    cs__tr_emit(r, t0 + to, ++r->hdr->iterations,
                CS_REC_INFO(CS_EV_LOOP_ITER, 0, 0), (uint32_t)(to - from));
    nrecords++;
}

static void warning(cs__tr_ring *r, uint64_t at, uint64_t task, unsigned kind,
                    uint64_t ip)
{
    uint64_t ips[4] = {ip, ip + 0x40, ip + 0x80, ip + 0xc0};
    uint32_t stack = ip ? cs__tr_stack_put(ips, 4) : 0;
    __atomic_fetch_add(&cs__tr_header()->warnings, 1, __ATOMIC_RELAXED);
    emit(r, at, task, CS_EV_WARNING, kind, stack);
}

static void gen_three(void)
{
    start(64, 1);
    cs__tr_ring *r = cs__tr_ring_acquire();
    task_new(r, 0, 1, "main", "fetch_data.c:40", 0);
    step(r, 1, 0, 100000, CS_WAIT_YIELD, 0, 0);
    for (uint64_t k = 1; k <= 3; k++) {
        char name[16];
        snprintf(name, sizeof name, "fetch-%llu", (unsigned long long)k);
        task_new(r, 50000, 1 + k, name, "fetch_data.c:58", 1);
    }
    step(r, 1, 100000, 200000, CS_WAIT_TASK, 4, 0);
    for (uint64_t k = 1; k <= 3; k++) {
        uint64_t from = 200000 + k * 50000;
        step(r, 1 + k, from, from + 30000, CS_WAIT_SLEEP, t0 + k * S, 0);
    }
    idle(r, 400000, 1 * S);
    step(r, 2, 1 * S, 1 * S + 40000, CS_STOP_DONE, 0, 0);
    idle(r, 1 * S + 50000, 2 * S);
    warning(r, 2 * S + 10000, 3, CS_WARN_SLOW_STEP, 0x401000);
    step(r, 3, 2 * S, 2 * S + 20000, CS_STOP_DONE, 0, 0);
    idle(r, 2 * S + 30000, 3 * S);
    step(r, 4, 3 * S, 3 * S + 25000, CS_STOP_DONE, 0, 0);
    step(r, 1, 3 * S + 30000, 3 * S + 60000, CS_STOP_DONE, 0, 0);
}

static void gen_mixed(void)
{
    start(64, 2);
    cs__tr_ring *a = cs__tr_ring_acquire();
    cs__tr_ring *b = cs__tr_ring_acquire();
    static const unsigned reasons[] = {
        CS_WAIT_SLEEP,     CS_WAIT_TASK,      CS_WAIT_LOCK,
        CS_WAIT_EVENT,     CS_WAIT_SEMAPHORE, CS_WAIT_QUEUE_PUT,
        CS_WAIT_QUEUE_GET, CS_WAIT_FD_READ,   CS_WAIT_FD_WRITE,
        CS_WAIT_THREAD,    CS_WAIT_YIELD,     CS_STOP_DONE,
    };
    task_new(a, 0, 1, "main", "mixed.c:10", 0);
    task_new(b, 0, 2, "worker \"b\"", "mixed.c:11", 1);
    task_new(a, 0, 3, "raiser", "mixed.c:12", 1);
    task_new(a, 0, 4, "cancelled one", "mixed.c:13", 1);
    uint64_t t = 1000;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        uint64_t target = reasons[i] == CS_WAIT_SLEEP     ? t0 + t + 5 * MS
                          : reasons[i] == CS_WAIT_FD_READ ? 7
                                                          : 3;
        step(a, 1, t, t + 200000, reasons[i], target,
             reasons[i] == CS_WAIT_LOCK ? 2 : 0);
        step(b, 2, t + 50000, t + 150000 + i * 10000, reasons[i], target, 0);
        idle(a, t + 200000, t + 1 * MS);
        t += 1 * MS;
    }
    step(a, 3, t, t + 10000, CS_STOP_RAISED, 0, 0);
    step(a, 4, t + 20000, t + 30000, CS_STOP_CANCELLED, 0, 0);
    warning(a, t + 40000, 3, CS_WARN_EXCEPTION, 0x402000);
    warning(b, t + 50000, 0, CS_WARN_DEADLOCK, 0);
    warning(a, t + 60000, 1, CS_WARN_BLOCKING, 0x403000);
}

static void gen_big(uint64_t n)
{
    enum { TASKS = 200, LOOPS = 2 };
    uint64_t slots = 1024;
    while (slots < n / LOOPS + 4096)
        slots *= 2;
    start((uint32_t)(slots * sizeof(cs_record) / 1024), LOOPS);
    cs__tr_ring *r[LOOPS];
    uint64_t now[LOOPS] = {0, 0};
    for (int l = 0; l < LOOPS; l++)
        r[l] = cs__tr_ring_acquire();
    for (uint64_t k = 1; k <= TASKS; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s-%03llu", k % 2 ? "conn" : "job",
                 (unsigned long long)k);
        task_new(r[(k - 1) % LOOPS], 0, k, name, "big.c:42", 0);
    }
    uint64_t seed = 42;
    for (uint64_t i = 0; nrecords + 4 < n; i++) {
        int l = (int)(i % LOOPS);
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t task =
            1 + (uint64_t)l + LOOPS * ((seed >> 33) % (TASKS / LOOPS));
        uint64_t ran = 2000 + (seed >> 20) % 50000;
        if ((seed >> 40) % 1000 == 0)
            ran *= 200; /* now and then a slow step */
        unsigned reason = 1 + (unsigned)((seed >> 45) % 11);
        step(r[l], task, now[l], now[l] + ran, reason,
             reason == CS_WAIT_SLEEP ? t0 + now[l] + 3 * MS : 1 + task % 7, 0);
        now[l] += ran;
        if ((seed >> 50) % 4 == 0) {
            idle(r[l], now[l], now[l] + 20000);
            now[l] += 20000;
        }
        if (i % 200000 == 1000)
            warning(r[l], now[l], task, CS_WARN_SLOW_STEP, 0x404000 + i);
    }
}

/* 600 tasks on one loop, each a few short steps; task 450 'slowpoke'
 * has one 83 ms step and task 520 'blocker' a blocking-call warning: the
 * viewer must open with both in sight (issue 11, point 9). */
static void gen_many(void)
{
    enum { TASKS = 600 };
    start(1024, 1);
    cs__tr_ring *r = cs__tr_ring_acquire();
    for (uint64_t k = 1; k <= TASKS; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s",
                 k == 450   ? "slowpoke"
                 : k == 520 ? "blocker"
                            : "conn");
        task_new(r, 0, k, name, "many.c:42", 0);
    }
    uint64_t now = 0;
    for (int round = 0; round < 3; round++)
        for (uint64_t k = 1; k <= TASKS; k++) {
            uint64_t ran = k == 450 && round == 1 ? 83 * MS : 5000;
            if (k == 520 && round == 2)
                warning(r, now + 1000, k, CS_WARN_BLOCKING, 0x405000);
            step(r, k, now, now + ran, CS_WAIT_FD_READ, 3, 0);
            now += ran;
        }
}

/* A yield batch (runtime/trace.h): 'a' yields once, timed; then a batch
 * of 6 steps from 1 to 10 us, 2 yields of a and 3 of b, and a's return,
 * begun inside it (its share, 1.5 us); b's return is timed again. */
static void gen_batch(void)
{
    start(64, 1);
    cs__tr_ring *r = cs__tr_ring_acquire();
    task_new(r, 0, 1, "a", "batch.c:1", 0);
    task_new(r, 0, 2, "b", "batch.c:2", 0);
    step(r, 1, 0, 1000, CS_WAIT_YIELD, 0, 0);
    emit(r, 10000, 6, CS_EV_BATCH, 0, 9000);
    emit(r, 10000, 1, CS_EV_YIELDS, CS_WAIT_YIELD, 2);
    emit(r, 10000, 2, CS_EV_YIELDS, CS_WAIT_YIELD, 3);
    cs__tr_emit(r, t0 + 10000, 1,
                CS_REC_INFO(CS_EV_STEP, CS_STOP_DONE, CS_RECF_BATCHED), 1500);
    nrecords++;
    emit(r, 10000, 1, CS_EV_TASK_DONE, 0, 0);
    step(r, 2, 10000, 11000, CS_STOP_DONE, 0, 0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: gen_trace three|mixed|empty|batch|big OUT [N]\n");
        return 2;
    }
    snprintf(seg_dir, sizeof seg_dir, "%s", argv[2]);
    char *slash = strrchr(seg_dir, '/');
    if (slash == NULL)
        snprintf(seg_dir, sizeof seg_dir, ".");
    else if (slash == seg_dir)
        seg_dir[1] = '\0';
    else
        *slash = '\0';
    if (strcmp(argv[1], "three") == 0)
        gen_three();
    else if (strcmp(argv[1], "mixed") == 0)
        gen_mixed();
    else if (strcmp(argv[1], "empty") == 0)
        start(4, 1);
    else if (strcmp(argv[1], "batch") == 0)
        gen_batch();
    else if (strcmp(argv[1], "many") == 0)
        gen_many();
    else if (strcmp(argv[1], "big") == 0 && argc > 3)
        gen_big(strtoull(argv[3], NULL, 10));
    else {
        fprintf(stderr, "gen_trace: unknown scenario '%s'\n", argv[1]);
        return 2;
    }
    int rc = cs__tr_flight_dump(argv[2], 0);
    if (rc != 0) {
        fprintf(stderr, "gen_trace: cannot write '%s': %d\n", argv[2], rc);
        return 1;
    }
    printf("%s: %llu records\n", argv[2], (unsigned long long)nrecords);
    cs__tr_stop();
    return 0;
}
