/*
 * coscope/agent.h - what the runtime tells an in-process agent.
 *
 * The agent (agent/, libcoscope-agent and the LD_PRELOAD library) detects
 * async bugs; the runtime only reports the moments it cannot see from the
 * outside: a coroutine created, dropped unstarted or left unstarted, a task
 * raising, a failure nobody will retrieve, a task destroyed while pending,
 * a wait that blocks on a lock or a task, every task stuck, a fatal
 * signal.  Not for applications.  Hooks run synchronously on the loop's
 * thread (fatal_signal: on the thread that got the signal); a hook must
 * not suspend (no cs_* call that waits) and must be cheap.
 */
#ifndef COSCOPE_AGENT_H
#define COSCOPE_AGENT_H

#include <coscope.h>
#include <coscope/trace_format.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Task states: the format's (enum cs_task_state), under the names agents
 * have used; a finished task is CS_AGENT_DONE whatever its status.  Wait
 * reasons are the format's enum cs_wait_reason. */
enum {
    CS_AGENT_READY = CS_TASK_READY,
    CS_AGENT_RUNNING = CS_TASK_RUNNING,
    CS_AGENT_WAITING = CS_TASK_WAITING,
    CS_AGENT_DONE = CS_TASK_DONE,
};

/* A snapshot of a task, valid until the task next runs. */
typedef struct cs_agent_task_info {
    uint64_t id;      /* cs_task_id() */
    const char *name; /* cs_task_name() */
    const char *file; /* creation site, or NULL */
    int line;
    int state;             /* CS_AGENT_* */
    int wait_reason;       /* CS_WAIT_* of trace_format.h (0: none) */
    const void *wait_obj;  /* lock/event/semaphore/queue/task waited on */
    uint64_t wait_task;    /* id of the awaited task (CS_WAIT_TASK) */
    uint64_t lock_holder;  /* id of the holder of the awaited lock */
    int wait_fd;           /* fd for CS_WAIT_FD_*, else -1 */
    int64_t deadline_ns;   /* timer deadline (CLOCK_MONOTONIC), or -1 */
    int status;            /* 0, or the error it ended with */
    const char *errmsg;    /* that error's message, or NULL */
    int detached;          /* handle given up */
    int awaited;           /* another task is suspended awaiting it */
    uintptr_t sp, fp, ip;  /* registers while parked, else 0 */
    const cs_task *holder; /* the holder of the awaited lock (CS_WAIT_LOCK),
                            * or the awaited task (CS_WAIT_TASK), or NULL */
} cs_agent_task_info;

typedef struct cs_agent_hooks {
    /* a coroutine object was made (cs_coro_new and CS_CORO) */
    void (*coro_created)(cs_coro *c, const char *name, const char *file,
                         int line);
    /* it was consumed by cs_create_task or cs_await_coro */
    void (*coro_started)(cs_coro *c);
    /* it was dropped without running (cs_coro_drop), or (leaked != 0) its
     * creating thread's cs_run ended while it was still unstarted */
    void (*coro_unstarted)(cs_coro *c, int leaked);
    /* the running task calls cs_raise; its stack is still intact */
    void (*task_raised)(cs_task *t, int code, const char *msg);
    /* t failed and nobody will ever retrieve its error: detached, or not
     * awaited when its loop ended */
    void (*task_unretrieved)(cs_task *t);
    /* the loop's main ended while t (neither awaited nor detached) was
     * unfinished; t is cancelled next */
    void (*task_pending_at_exit)(cs_task *t);
    /* t is about to suspend on a lock or on another task */
    void (*task_blocking)(cs_task *t);
    /* every task of the loop is waiting and nothing can wake one; called
     * in the loop context (cs_all_tasks lists them) before they are
     * cancelled */
    void (*loop_stuck)(void);
    /* a fatal signal (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL) on any
     * thread: called once per process from the runtime's handler, on the
     * thread's alternate signal stack, after the stack-overflow report and
     * before the flight-recorder dump (docs/runtime.md).  Async-signal-safe
     * as far as it can be; it returns, and the runtime then hands the
     * signal to the previous disposition.  Not on a loop's thread, or
     * outside a task, cs_current_task() is NULL. */
    void (*fatal_signal)(int sig, siginfo_t *si, void *uc);
} cs_agent_hooks;

/* Installs hooks (NULL removes them); the struct must outlive the runtime.
 * Call before the first cs_run. */
CS_EXTERN void cs_agent_set_hooks(const cs_agent_hooks *h);

/* Fills info for t; 0, or CS_EINVAL. */
CS_EXTERN int cs_agent_task_get(const cs_task *t, cs_agent_task_info *info);

/* The task t waits on, if it waits on a lock (its holder) or awaits a
 * task; else NULL.  Cheap: for following wait-for chains on every wait. */
CS_EXTERN const cs_task *cs_agent_task_edge(const cs_task *t);

/* Name and creation site of a coroutine object. */
CS_EXTERN const char *cs_agent_coro_name(const cs_coro *c, const char **file,
                                         int *line);

/* Records a warning of kind (CS_WARN_* of coscope/trace_format.h) about
 * task task_id (0: none) with the stack ips[0..n) (innermost first) in the
 * trace, so that coscope watch/report/view see what the agent reported.
 * Only on a loop's thread (the ring is single-writer); elsewhere, or with
 * tracing off, it does nothing (from another thread: the next function). */
CS_EXTERN void cs_agent_trace_warning(int kind, uint64_t task_id,
                                      const uintptr_t *ips, size_t n);

/* cs_agent_trace_warning for the loop that runs on thread tid, from any
 * thread (the watchdog's): on that loop's thread it is written at once;
 * elsewhere it is posted to the loop, whose thread writes it into its own
 * ring at the end of its current iteration (a ring has one writer); when
 * no traced loop runs on tid (it ended), the calling thread writes it into
 * a ring of its own.  Returns 1 if it was posted while the loop was
 * between steps (maybe asleep in its poller: the caller may wake the
 * thread, e.g. with a signal, to have it written now), 0 if written or
 * posted, CS_EAGAIN if the loop's mailbox is full, CS_ENOENT if tracing is
 * off.  kind 0 posts nothing and says whether warnings posted earlier
 * still wait in the loop's mailbox: 0 no, 1 yes and the loop is between
 * steps (wake it), 2 yes and a step runs (it ends in the loop's code). */
CS_EXTERN int cs_agent_trace_warning_to(int tid, int kind, uint64_t task_id,
                                        const uintptr_t *ips, size_t n);

/* A pointer-sized slot the agent may use for its own data per object. */
CS_EXTERN void **cs_agent_coro_slot(cs_coro *c);
CS_EXTERN void **cs_agent_task_slot(cs_task *t);
/* The calling thread's loop runs a step the watchdog found slow: the
 * trace times it on its own rather than in a batch.  Async-signal-safe
 * (the sampling signal's handler calls it on the loop's thread). */
CS_EXTERN void cs_agent_step_slow(void);

#ifdef __cplusplus
}
#endif
#endif
