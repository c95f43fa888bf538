/*
 * many.c - drops N coroutines unstarted (default 1000): the agent reports
 * the first CS__REPORTS_MAX of them and says at exit how many it left out.
 */
#include <coscope.h>

#include <stdlib.h>

static void *nothing(void *arg)
{
    return arg;
}

static void *amain(void *arg)
{
    for (long i = 0; i < (long)arg; i++)
        cs_coro_drop(CS_CORO(nothing, NULL));
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    return cs_run(amain, (void *)n, NULL) == 0 ? 0 : 1;
}
