/*
 * sameline.c - one blocking call, made in a function inlined into its
 * caller, for the test that every tool (the agent, check, watch, report,
 * export) names the same file:line for it, inlined caller included
 * (test_cli_lines.py, SameLine).  The test finds the lines it expects by the
 * MARK comments, not from any tool.
 *
 * It prints "ready" and waits for a line on stdin (so that `coscope watch`
 * can attach first), then makes the call and exits.  Its tasks are made
 * with plain cs_spawn and cs_run: their creation sites are the calls'
 * lines all the same (Stacks.test_every_task_has_a_site).
 */
#include <coscope.h>

#include <stdio.h>
#include <unistd.h>

static volatile int after; /* work after each call, so that the return
                              address is on the next line */

static inline __attribute__((always_inline)) void nap(void)
{
    usleep(120 * 1000); /* MARK: blocking call */
    after++;
}

__attribute__((noinline)) static void load_config(void)
{
    nap(); /* MARK: inlined call */
    after++;
}

static void *handler(void *arg)
{
    char c;
    if (cs_read(0, &c, 1) < 0) /* the go-ahead */
        return NULL;
    load_config(); /* MARK: caller */
    after++;
    return arg;
}

static void *amain(void *arg)
{
    cs_task *t = cs_spawn("handler", handler, arg); /* MARK: spawn site */
    printf("ready\n");
    fflush(stdout);
    return cs_await(t, NULL) == 0 ? NULL : NULL;
}

int main(void)
{
    return cs_run(amain, NULL, NULL) == 0 ? 0 : 1; /* MARK: run site */
}
