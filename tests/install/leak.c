/* A program with one bug the agent reports (a coroutine never awaited),
 * built against an installed coscope in each link mode: the agent must
 * come with the runtime in all of them. */
#include <coscope.h>

static void *send_email(void *arg)
{
    return arg;
}

static void *amain(void *arg)
{
    cs_coro *c = CS_CORO(send_email, arg); /* made, never awaited */
    (void)c;
    return NULL;
}

int main(void)
{
    return cs_run(amain, NULL, NULL) == 0 ? 0 : 1;
}
