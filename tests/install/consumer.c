/* A program built against an installed coscope, by pkg-config and by
 * find_package(coscope): proves the header, libraries and package files. */
#include <coscope.h>

static void *twice(void *arg)
{
    return (void *)((long)arg * 2);
}

static void *amain(void *arg)
{
    void *r = NULL;
    cs_task *t = cs_create_task(CS_CORO(twice, arg));
    return cs_await(t, &r) == 0 ? r : NULL;
}

int main(void)
{
    void *r = NULL;
    return cs_run(amain, (void *)21L, &r) == 0 && (long)r == 42 ? 0 : 1;
}
