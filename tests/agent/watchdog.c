/*
 * watchdog.c - the watchdog (agent/watchdog.c) over a step source that the
 * tasks here feed by hand, as the runtime's trace words will: a 300 ms step
 * is reported once with its task and the function it spun in; a 20 ms step
 * is not.  `watchdog exit`: the 300 ms step is the last thing the program
 * does, and is reported at exit.  Linked with libcoscope.a, where the agent's hidden functions
 * are reachable.  tests/agent/check.sh reads what it writes.
 */
#include "agent.h"

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile pid_t loop_tid;
static int at_exit; /* argv[1] "exit": end right after the long step */
static volatile int64_t step_start;
static volatile uint64_t step_task;

static size_t by_hand(cs__ag_step *out, size_t cap, void *arg)
{
    (void)arg;
    if (!loop_tid || cap < 1)
        return 0;
    out[0].tid = loop_tid;
    out[0].task_id = step_task;
    out[0].start_ns = step_start;
    out[0].seq = 0;
    return 1;
}

static unsigned __attribute__((noinline)) crunch(int64_t ns)
{
    int64_t end = cs_now_ns() + ns;
    volatile unsigned h = 0;
    while (cs_now_ns() < end)
        h = h * 31 + 7;
    return h;
}

/* One step of ms milliseconds, published as the runtime would. */
static void *step(void *arg)
{
    step_task = cs_task_id(cs_current_task());
    step_start = cs_now_ns();
    crunch(CS_MSEC((long)arg));
    step_start = 0;
    if (!at_exit)
        cs_sleep(CS_MSEC(60)); /* the watchdog sees the step end */
    return NULL;
}

static void *amain(void *arg)
{
    (void)arg;
    cs_await(cs_spawn("quick", step, (void *)20L), NULL);
    cs_await(cs_spawn("cruncher", step, (void *)300L), NULL);
    return NULL;
}

int main(int argc, char **argv)
{
    at_exit = argc > 1 && strcmp(argv[1], "exit") == 0;
    loop_tid = (pid_t)syscall(SYS_gettid);
    if (cs__ag_watchdog_start(by_hand, NULL) != 0)
        return 1;
    int r = cs_run(amain, NULL, NULL);
    if (!at_exit)
        cs__ag_watchdog_stop();
    printf("watchdog: done\n");
    return r == 0 ? 0 : 1;
}
