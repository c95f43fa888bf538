/*
 * coro.c - lazy coroutine objects, the analogue of calling an `async def`:
 * a cs_coro holds what to run and where it was created; nothing runs until
 * it is awaited in place (cs_await_coro) or scheduled (cs_create_task).
 */
#include "internal.h"

#include <stdlib.h>

const char *cs__coro_name(const cs_coro *c)
{
    return c->long_name ? c->long_name : c->name;
}

CS_EXTERN cs_coro *cs_coro_new_at(const char *name, cs_fn fn, void *arg,
                                  const char *file, int line)
{
    cs_coro *c;

    if (!fn)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fn = fn;
    c->arg = arg;
    c->file = file;
    c->line = line;
    c->id = cs__trace_coro_new(file, line);
    cs__set_name(c->name, sizeof(c->name), &c->long_name, name);
    cs__list_init(&c->live);
    cs__agent_coro_created(c);
    return c;
}

CS_EXTERN cs_coro *cs_coro_new(const char *name, cs_fn fn, void *arg)
{
    return cs_coro_new_at(name, fn, arg, NULL, 0);
}

CS_EXTERN int cs_coro_set_stack_size(cs_coro *c, size_t bytes)
{
    if (!c || bytes > CS__STACK_MAX)
        return CS_EINVAL;
    c->stack_size = bytes;
    return 0;
}

/* Frees c; never_ran: it is discarded without having run (the trace
 * flags it, as asyncio warns about a coroutine never awaited). */
static void cs__coro_free(cs_coro *c, int never_ran)
{
    if (c->id)
        cs__trace_coro_dropped(c->id, never_ran);
    cs__agent_coro_forget(c);
    free(c->long_name);
    free(c);
}

/* c is about to run: it no longer counts as unstarted. */
static void cs__coro_started(cs_coro *c)
{
    CS__HOOK(coro_started, c);
    cs__agent_coro_forget(c);
}

CS_EXTERN void cs_coro_drop(cs_coro *c)
{
    if (!c)
        return;
    CS__HOOK(coro_unstarted, c, 0);
    cs__coro_free(c, 1);
}

CS_EXTERN cs_task *cs_create_task(cs_coro *c)
{
    cs__loop *loop = cs__tls_loop;
    cs_task *t = NULL;

    if (!c)
        return NULL;
    if (loop)
        t = cs__task_new(loop, cs__coro_name(c), c->fn, c->arg, c->file,
                         c->line, c->stack_size);
    if (!t) {
        cs_coro_drop(c);
        return NULL;
    }
    cs__coro_started(c);
    cs__coro_free(c, 0);
    return t;
}

/* Runs c on the caller's stack.  cs_raise inside it lands here through
 * longjmp and becomes this call's return value, as an exception raised in
 * `await coro()` propagates to the awaiting coroutine. */
CS_EXTERN int cs_await_coro(cs_coro *c, void **result)
{
    cs_task *self = cs_current_task();
    cs_coro *volatile coro = c;
    cs__catch k;

    if (!c)
        return CS_EINVAL;
    if (!self) {
        cs_coro_drop(c);
        return CS_ENOLOOP;
    }
    cs__coro_started(c);
    k.up = self->catcher;
    self->catcher = &k;
    if (setjmp(k.env) == 0) {
        void *r = coro->fn(coro->arg);
        self->catcher = k.up;
        cs__coro_free(coro, 0);
        if (result)
            *result = r;
        cs__set_last_error(&self->last_error, NULL);
        return 0;
    } else {
        int code = self->status;
        self->catcher = k.up;
        self->has_status = false;
        self->status = 0;
        free(self->last_error);
        self->last_error = self->errmsg;
        self->errmsg = NULL;
        cs__coro_free(coro, 0);
        if (result)
            *result = NULL;
        return code;
    }
}
