/*
 * loop.c - the event loop and cs_run, the analogue of asyncio.run().
 *
 * One iteration: run ready tasks (they hand off to each other directly,
 * see internal.h) → fire expired timers → poll for I/O and worker
 * completions, with a zero timeout if tasks became ready, else until the
 * earliest timer.  The poll syscall is skipped when there is nothing to
 * poll (no fd waiter, no pending thread job) and nothing to wait for.
 */
#include "internal.h"
#include "poller.h"
#include "fatal.h"
#include "poll_timeout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__thread cs__loop *cs__tls_loop __attribute__((tls_model("initial-exec")));

static void cs__loop_timers(cs__loop *loop)
{
    if (loop->heap_len)
        cs__timer_fire(loop, cs__now());
}

/* Waits up to timeout (ns, < 0: forever) for I/O and thread completions
 * and dispatches what the poller returns: an fd's readiness to its waiters
 * (io.c), the thread pool's wake-up to its collector. */
static CS__HOT_INLINE void cs__loop_poll(cs__loop *loop, int64_t timeout)
{
    cs__poll_event evs[CS__POLL_MAX];
    int n = cs__poll_wait(loop, timeout, evs, CS__POLL_MAX);

    for (int i = 0; i < n; i++) {
        uint64_t tok = evs[i].token;
        if (tok == CS__TOKEN_JOBS)
            cs__jobs_collect(loop);
        else
            cs__io_ready(loop, (int)(uint32_t)tok, (uint32_t)(tok >> 32),
                         evs[i].mask);
    }
}

/* Warnings other threads posted (the watchdog's, warn_post.c) go into
 * the ring: at each iteration's end and before the loop sleeps. */
static inline void cs__loop_box(cs__loop *loop)
{
    if (cs_unlikely(__atomic_load_n(&loop->tr_box.posted, __ATOMIC_RELAXED) !=
                    loop->tr_box.drained))
        cs__warn_box_drain(loop);
}

/* One loop iteration ended, having spent t1 - t0 in the poller. */
static inline void cs__loop_iter_trace(cs__loop *loop, uint64_t t0,
                                       uint64_t t1)
{
    if (loop->tr_ring) {
        cs__tr_loop_iter(loop->tr_ring, t1, t1 - t0);
        cs__loop_box(loop);
    }
}

/* Runs the loop until done(loop) holds.  Returns 0, or CS_EDEADLK when
 * every task is waiting and nothing (timer, fd, thread) can wake one. */
int cs__loop_run_until(cs__loop *loop, bool (*done)(cs__loop *))
{
    for (;;) {
        int64_t timeout;
        uint64_t t0 = 0, t1 = 0;

        if (loop->ready_head)
            cs__loop_dispatch(loop);
        if (done(loop))
            return 0;
        /* a file some task waits on was closed behind our back: wake it
         * before sleeping on a registration the kernel has dropped */
        if (cs_unlikely(loop->fd_waiters &&
                        __atomic_load_n(&cs__fd_closes, __ATOMIC_RELAXED) !=
                            loop->fd_closes_seen))
            cs__fd_sweep(loop);
        cs__loop_timers(loop);
        timeout = cs__poll_timeout(loop->ready_head != NULL,
                                   loop->heap_len > 0,
                                   loop->heap_len ? cs__timer_next(loop) : 0,
                                   loop->heap_len ? cs__now() : 0);
        if (timeout == -1 && !loop->fd_waiters && !loop->jobs_pending)
            return CS_EDEADLK;
        /* idle stacks' memory goes back once they stayed idle for a tick:
         * a loop that would sleep past the tick wakes for it */
        timeout = cs__stack_tick(loop, timeout);
        if (timeout == 0 && !loop->fd_waiters && !loop->jobs_pending) {
            cs__loop_iter_trace(loop, loop->tr_t0, loop->tr_t0);
            continue; /* nothing could arrive: skip the syscall */
        }
        if (loop->tr_ring) {
            cs__loop_box(loop);
            t0 = cs__tr_now();
        }
        cs__loop_poll(loop, timeout);
        if (loop->tr_ring)
            loop->tr_t0 = t1 = cs__tr_now(); /* later records follow */
        cs__loop_iter_trace(loop, t0, t1);
        cs__loop_timers(loop);
    }
}

static bool cs__main_done(cs__loop *loop)
{
    return loop->main->state == CS__DONE;
}

static bool cs__all_done(cs__loop *loop)
{
    return loop->ntasks == 0;
}

/* Cancels every unfinished task. */
static void cs__cancel_all(cs__loop *loop)
{
    for (cs__link *l = loop->all.next; l != &loop->all; l = l->next) {
        cs_task *t = cs__container_of(l, cs_task, all);
        if (t->state != CS__DONE)
            cs_cancel(t);
    }
}

static int cs__loop_init(cs__loop *loop)
{
    pthread_attr_t at;
    void *lo;
    size_t size;
    int r;

    memset(loop, 0, sizeof(*loop));
    loop->epfd = loop->wakefd = -1;
    cs__list_init(&loop->all);
    pthread_mutex_init(&loop->done_mu, NULL);
    if (pthread_getattr_np(pthread_self(), &at) == 0) {
        if (pthread_attr_getstack(&at, &lo, &size) == 0) {
            loop->asan_stack_lo = lo;
            loop->asan_stack_size = size;
        }
        pthread_attr_destroy(&at);
    }
    if ((r = cs__poll_init(loop)) < 0)
        return r;
    /* without them an overflow is a plain SIGSEGV, a crash unreported */
    cs__fatal_install();
    cs__fatal_thread_init(loop);
    return 0;
}

static void cs__loop_fini(cs__loop *loop)
{
    cs__task_reap(loop);
    cs__jobs_drain(loop);
    /* tasks still here were never awaited (or are stuck): free them */
    while (!cs__list_empty(&loop->all)) {
        cs_task *t = cs__container_of(loop->all.next, cs_task, all);
        cs__stack_put(loop, &t->stack);
        if (t->heap_index >= 0)
            cs__timer_del(loop, t);
        cs__task_release(t);
    }
    while (loop->free_tasks) {
        cs_task *t = loop->free_tasks;
        loop->free_tasks = t->next;
        free(t);
    }
    cs__stack_pool_free(loop);
    cs__io_close(loop);
    cs__poll_close(loop);
    cs__fatal_thread_fini(loop);
    free(loop->heap);
    pthread_mutex_destroy(&loop->done_mu);
}

/* Tells the agent about tasks nobody awaits or detached that are still
 * unfinished when main ends ("Task was destroyed but it is pending!"). */
static void cs__report_pending(cs__loop *loop)
{
    if (!cs__agent)
        return;
    for (cs__link *l = loop->all.next; l != &loop->all; l = l->next) {
        cs_task *t = cs__container_of(l, cs_task, all);
        if (t->state != CS__DONE && !t->detached && !t->awaiter)
            CS__HOOK(task_pending_at_exit, t);
    }
}

/* Cancels and finishes every task left once main has ended.  Tasks that
 * wait again after being cancelled are cancelled again; if they still
 * cannot finish, they are abandoned. */
static void cs__loop_shutdown(cs__loop *loop)
{
    for (int round = 0; round < 3 && loop->ntasks; round++) {
        cs__cancel_all(loop);
        if (cs__loop_run_until(loop, cs__all_done) == 0)
            break;
    }
}

CS_EXTERN int cs_run(cs_fn fn, void *arg, void **result)
{
    cs__loop loop;
    char *msg = NULL;
    int r, status;

    if (cs__tls_loop) {
        cs_task *self = cs__tls_loop->current;
        if (self) /* cs_last_error() in the calling task must say why */
            cs__set_last_error(&self->last_error, cs_strerror(CS_ENESTED));
        else
            cs__set_run_error(cs_strerror(CS_ENESTED));
        return CS_ENESTED;
    }
    if (!fn)
        return CS_EINVAL;
    cs__trace_process_start();
    if ((r = cs__loop_init(&loop)) < 0) {
        cs__loop_fini(&loop);
        cs__set_run_error("cannot create the event loop");
        return r;
    }
    cs__trace_loop_start(&loop);
    cs__tls_loop = &loop;
    loop.spawn_ip = __builtin_return_address(0); /* main's site: our caller */
    loop.main = cs__task_new(&loop, "main", fn, arg, NULL, 0, 0);
    loop.spawn_ip = NULL;
    if (!loop.main) {
        cs__tls_loop = NULL;
        cs__loop_fini(&loop);
        cs__trace_loop_stop(&loop);
        cs__set_run_error(cs_strerror(CS_ENOMEM));
        return CS_ENOMEM;
    }
    if (cs__loop_run_until(&loop, cs__main_done) == CS_EDEADLK) {
        /* nothing can ever wake main: cancel everyone and say why */
        CS__HOOK(loop_stuck);
        cs__cancel_all(&loop);
        cs__loop_run_until(&loop, cs__main_done);
        if (loop.main->state != CS__DONE ||
            loop.main->status == CS_ECANCELLED) {
            loop.main->has_status = true;
            loop.main->status = CS_EDEADLK;
            free(loop.main->errmsg);
            loop.main->errmsg = strdup("deadlock: every task is waiting and "
                                       "nothing can wake any of them");
        }
    }
    status = loop.main->has_status ? loop.main->status : 0;
    if (result)
        *result = status == 0 ? loop.main->result : NULL;
    if (status) {
        msg = loop.main->errmsg;
        loop.main->errmsg = NULL;
        if (!msg &&
            asprintf(&msg, "task 'main' %s",
                     status == CS_ECANCELLED ? "was cancelled"
                                             : cs_strerror(status)) < 0)
            msg = NULL;
    }
    cs__report_pending(&loop);
    cs__loop_shutdown(&loop);
    cs__agent_loop_end(&loop, true);
    cs__tls_loop = NULL;
    cs__loop_fini(&loop);
    cs__trace_loop_stop(&loop);
    cs__set_run_error(msg);
    free(msg);
    return status;
}
