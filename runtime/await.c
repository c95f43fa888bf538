/*
 * await.c - waiting for tasks: cs_await, cs_gather, cs_wait_for, cs_detach,
 * and the error message handed to the awaiter (cs_last_error).
 *
 * Cancellation follows asyncio: cancelling a task that awaits another
 * cancels the awaited one too, and the awaiter returns only once that task
 * has ended, so a handle never outlives the await that consumed it.
 */
#include "trace_batch.h" /* cs__trace_task_gone */

#include <stdio.h>
#include <stdlib.h>

/* Thread's last cs_run error message, for cs_last_error() outside tasks. */
static __thread char *cs__run_error;

CS_EXTERN const char *cs_last_error(void)
{
    cs_task *self = cs_current_task();
    return self ? self->last_error : cs__run_error;
}

void cs__set_run_error(const char *msg)
{
    cs__set_last_error(&cs__run_error, msg);
}

/* A wait on a task ends without it: t is no longer awaited. */
static void cs__await_cancel(cs_task *self)
{
    ((cs_task *)self->wait.obj)->awaiter = NULL;
}

/* Waits, ignoring cancellation, until t has ended. */
static void cs__wait_ended(cs_task *self, cs_task *t)
{
    bool was = self->shielded;

    self->shielded = true;
    while (t->state != CS__DONE) {
        t->awaiter = self;
        cs__wait(self, CS_WAIT_TASK, t, cs__await_cancel, -1);
    }
    self->shielded = was;
}

/* The status an await of ended task t reports, with its message in
 * *msg (NULL, a malloc'ed string, or t's own message moved out). */
static int cs__task_outcome(cs_task *t, char **msg)
{
    *msg = NULL;
    if (!t->has_status)
        return 0;
    if (t->status == CS_ECANCELLED && !t->errmsg) {
        if (asprintf(msg, "task '%s' was cancelled", cs_task_name(t)) < 0)
            *msg = NULL;
    } else {
        *msg = t->errmsg;
        t->errmsg = NULL;
    }
    return t->status;
}

/* Reports the outcome of ended task t to self and releases t. */
static int cs__collect(cs_task *self, cs_task *t, void **result)
{
    char *msg;
    int r = cs__task_outcome(t, &msg);

    if (result)
        *result = r == 0 ? t->result : NULL;
    free(self->last_error);
    self->last_error = msg;
    t->detached = true; /* the handle is consumed */
    if (t->loop->reap != t)
        cs__task_release(t);
    else if (t->tr_ref) /* its struct waits for its stack; its slot not */
        cs__trace_task_gone(t);
    return r;
}

static int cs__await_check(cs_task *self, cs_task *t)
{
    if (!self)
        return CS_ENOLOOP;
    if (!t || t == self || t->awaiter || t->detached || t->loop != self->loop)
        return CS_EINVAL;
    return 0;
}

/* Awaits t with an optional timeout; timed_out tells why it gave up. */
static int cs__await(cs_task *t, int64_t timeout, void **result)
{
    cs_task *self = cs_current_task();
    int r = cs__await_check(self, t);

    if (r)
        return r;
    if (t->state != CS__DONE) {
        r = cs__cancel_check(self);
        if (r == 0 && timeout == 0)
            r = CS_ETIMEDOUT;
        if (r == 0) {
            t->awaiter = self;
            r = cs__wait(self, CS_WAIT_TASK, t, cs__await_cancel, timeout);
        }
        if (r < 0) { /* cancelled or timed out: take t down with us */
            char buf[128];
            cs_cancel(t);
            cs__wait_ended(self, t);
            if (result)
                *result = NULL;
            if (r == CS_ETIMEDOUT)
                snprintf(buf, sizeof(buf), "task '%s' timed out after %lld ms",
                         cs_task_name(t), (long long)(timeout / 1000000));
            else
                snprintf(buf, sizeof(buf), "awaiting task '%s' was cancelled",
                         cs_task_name(t));
            cs__collect(self, t, NULL);
            cs__set_last_error(&self->last_error, buf);
            return r;
        }
    }
    return cs__collect(self, t, result);
}

CS_EXTERN int cs_await(cs_task *t, void **result)
{
    return cs__await(t, -1, result);
}

CS_EXTERN int cs_wait_for(cs_task *t, int64_t timeout_ns, void **result)
{
    return cs__await(t, timeout_ns < 0 ? -1 : timeout_ns, result);
}

CS_EXTERN int cs_gather(cs_task *const *tasks, size_t n, void **results)
{
    cs_task *self = cs_current_task();
    char *first_msg = NULL;
    int first = 0;

    if (!self)
        return CS_ENOLOOP;
    if (n && !tasks)
        return CS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int r = cs__await_check(self, tasks[i]);
        if (r)
            return r;
    }
    if (self->loop->tr_ring) /* all of them awaited, for readers */
        cs__trace_task_awaited(tasks, n, self);
    for (size_t i = 0; i < n; i++) {
        bool was_cancelled = self->cancel_delivered;
        int r = cs__await(tasks[i], -1, results ? &results[i] : NULL);
        if (r && !first) {
            first = r;
            first_msg = self->last_error;
            self->last_error = NULL;
        }
        if (!was_cancelled && self->cancel_delivered) {
            /* we were cancelled: cancel the rest, as asyncio.gather does */
            for (size_t j = i + 1; j < n; j++)
                cs_cancel(tasks[j]);
        }
    }
    free(self->last_error);
    self->last_error = first_msg;
    return first;
}

CS_EXTERN void cs_detach(cs_task *t)
{
    if (!t || t->detached)
        return;
    t->detached = true;
    if (t->state == CS__DONE && cs__task_failed(t))
        CS__HOOK(task_unretrieved, t);
    if (t->tr_ref)
        cs__trace_task_flag(t, CS_TASKF_DETACHED);
    if (t->state == CS__DONE && t->loop->reap != t)
        cs__task_release(t);
}
