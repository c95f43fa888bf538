/*
 * internal.h - private to the coscope runtime; nothing here is API.
 *
 * The pieces: a loop per thread (cs__loop), tasks (struct cs_task) that each
 * own a stack and a saved context, a ready FIFO, a 4-ary timer heap, an
 * epoll poller behind cs__poll_* (poller.h; poll_epoll.c is the only file
 * that knows epoll), and a worker pool for cs_to_thread.
 *
 * Scheduling: a task that suspends picks the next ready task and switches
 * to it directly; only when the ready queue is empty, or after
 * CS__BUDGET direct hand-offs, does it switch back to the loop's own context
 * (the thread's stack in cs_run), which runs timers and polls.  This is
 * tokio's "event interval" idea: I/O and timers are still checked every
 * few dozen steps, but a yield costs one switch, not two plus a syscall.
 *
 * A task and its stack:
 *
 *   heap (task pool)                 mmap'ed stack, grows down
 *   +---------------------+          +-------------------------+ hi
 *   | struct cs_task      |  stack   | trampoline frame        |
 *   |  ctx.sp ------------+--------->| ... task frames ...     |
 *   |  stack.lo/size      |          | saved regs (parked)     |
 *   +---------------------+          |          ...            |
 *                                    +-------------------------+
 *                                    | guard page (PROT_NONE)  | lo
 *                                    +-------------------------+
 *
 * The task struct outlives the stack: the stack goes back to the pool when
 * the task ends, the struct when its handle is released (awaited or
 * detached) and it has ended.
 */
#ifndef CS_RUNTIME_INTERNAL_H
#define CS_RUNTIME_INTERNAL_H

#include "coscope.h"
#include "coscope/agent.h"
#include "switch.h"
#include "trace.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* AddressSanitizer is told about stack switches (task.c) and about stacks
 * reused after cs_raise abandoned frames on them (stack.c). */
#if defined(__SANITIZE_ADDRESS__)
#define CS__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CS__ASAN 1
#endif
#endif
#ifdef CS__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* Forced inlining on the switch path; not under ASan, whose Debug builds
 * must keep the switch in a frame of its own (stack poisoning). */
#ifdef CS__ASAN
#define CS__HOT_INLINE inline
#else
#define CS__HOT_INLINE inline __attribute__((always_inline))
#endif

/* Whether the traced switch reaches cs__switch by a tail call, so that
 * the parked frame is its caller's and the parked registers can be
 * predicted before the switch (trace_batch.h): optimised builds without
 * ASan.  Elsewhere the switch returns into cs__jump, which records them
 * after it (cs__trace_settle). */
#if defined(__OPTIMIZE__) && !defined(CS__ASAN)
#define CS__TAIL_SWITCH 1
#endif

#define cs_likely(x) __builtin_expect(!!(x), 1)
#define cs_unlikely(x) __builtin_expect(!!(x), 0)

/* Largest stack a task may ask for (1 GiB). */
#define CS__STACK_MAX ((size_t)1 << 30)

/* Ended task structs idle for a whole trim tick are freed but this many. */
#define CS__FREE_TASKS_KEEP 16

/* Direct task-to-task hand-offs before the loop polls I/O and timers. */
#define CS__BUDGET 61

typedef struct cs__loop cs__loop;

/* A task's state: the format's values (enum cs_task_state), so that the
 * task slot, the trace and cs_agent_task_info carry it as it is.  The
 * runtime has no RAISED/CANCELLED: an ended task is DONE with a status. */
enum cs__state {
    CS__READY = CS_TASK_READY,     /* in the ready queue */
    CS__RUNNING = CS_TASK_RUNNING, /* the loop's current task */
    CS__WAITING = CS_TASK_WAITING, /* suspended on wait.reason */
    CS__DONE = CS_TASK_DONE,       /* ended; status and result are final */
};

/* Takes a waiting task off what it waits on, before a wake that the
 * object did not cause (cancellation, timeout): each waitable kind
 * brings its own (libdill's clause cancel). */
typedef void cs__wait_cancel_fn(struct cs_task *t);

/* A doubly linked list node/head; a waiting task sits in one wait list. */
typedef struct cs__link {
    struct cs__link *prev, *next;
} cs__link;

typedef struct cs__stack {
    void *lo;              /* lowest usable byte (just above the guard page) */
    size_t size;           /* usable bytes */
    bool guarded;          /* the page below lo is a guard (stack.c) */
    struct cs__slab *slab; /* the slab it was carved from, or NULL: a
                              mapping of its own */
    unsigned vg_id;        /* valgrind's id for the stack, if registered */
} cs__stack;

/* A jump target for cs_raise inside cs_await_coro; innermost first. */
typedef struct cs__catch {
    jmp_buf env;          /* where cs_raise lands */
    struct cs__catch *up; /* enclosing cs_await_coro of the same task */
} cs__catch;

struct cs_task {
    cs__ctx ctx;          /* saved registers while not running */
    cs__loop *loop;       /* loop the task belongs to */
    struct cs_task *next; /* ready queue or free-list link */
    cs__link all;         /* node in loop->all (unfinished tasks) */
    uint64_t id;          /* unique, never reused */
    cs_fn fn;             /* body and its argument */
    void *arg;
    char name[32];    /* short names live here... */
    char *long_name;  /* ...longer ones are malloc'ed */
    const char *file; /* creation site (static string) or NULL */
    int line;
    uint8_t state;           /* enum cs__state */
    bool cancel_pending;     /* cancel requested, not yet delivered */
    bool cancelled;          /* cs_cancel was called (sticky) */
    bool cancel_delivered;   /* a call returned CS_ECANCELLED to the task */
    bool detached;           /* handle given up: free itself on end */
    bool shielded;           /* current wait ignores cancellation */
    bool ran;                /* its first step has begun (trace.h) */
    bool has_status;         /* ended by cs_raise/cancel, see status */
    int status;              /* 0, or the error the task ended with */
    char *errmsg;            /* message of that error (malloc'ed) */
    void *result;            /* return value of fn */
    struct cs_task *awaiter; /* task suspended in cs_await on us */
    /* What the task is suspended on (valid while state == WAITING). */
    struct {
        uint8_t reason; /* enum cs_wait_reason (trace_format.h) */
        void *obj;      /* task/lock/event/semaphore/queue waited on */
        cs__wait_cancel_fn *cancel; /* takes it off obj; NULL: no need */
        int fd;                     /* fd for CS_WAIT_FD_* */
        int events;                 /* CS_READABLE|CS_WRITABLE wanted on fd */
        cs__link node;              /* node in the object's wait list */
        int result;                 /* what the suspended call returns */
    } wait;
    int64_t deadline;   /* timer deadline (ns), valid if heap_index>=0 */
    int32_t heap_index; /* position in the timer heap, -1 if none */
    size_t stack_size;  /* requested stack size (0: default) */
    cs__stack stack;    /* stack while the task has one */
    cs__catch *catcher; /* innermost cs_await_coro */
    char *last_error;   /* cs_last_error() for this task (malloc'ed) */
    void *fake_stack;   /* ASan fake-stack handle across switches */
    void *agent;        /* the agent's slot (cs_agent_task_slot) */
    uint32_t tr_ref;    /* slot in the trace task table, 0 if none */
    uint32_t tr_bk;     /* its steps in the loop's yield batch, 0 if
                               not in it (trace.h) */
};

struct cs_coro {
    uint64_t id; /* trace id, never reused */
    cs_fn fn;
    void *arg;
    char name[32];
    char *long_name;
    const char *file;
    int line;
    size_t stack_size;
    void *agent;   /* the agent's slot (cs_agent_coro_slot) */
    cs__link live; /* in the thread's unstarted list (agent on) */
};

/* Per-fd state of the poller; fds are registered once, edge-triggered. */
typedef struct cs__fd {
    cs_task *reader; /* task waiting to read, or NULL */
    cs_task *writer; /* task waiting to write, or NULL */
    uint32_t gen;    /* the fd's generation when registered
                               (fd_close.c) */
    bool registered; /* added to the poller */
    bool readable;   /* an edge said readable since the last EAGAIN */
    bool writable;
} cs__fd;

struct cs__loop {
    cs_task *current;    /* running task, NULL in the loop context */
    cs__ctx ctx;         /* the loop's own context (cs_run's stack) */
    cs_task *ready_head; /* ready FIFO */
    cs_task *ready_tail;
    int budget; /* hand-offs left before the loop must poll */
    /* tracing (trace.h): ring of this loop's thread, NULL when untraced */
    cs__tr_ring *tr_ring;
    cs_task *tr_prev;          /* parked by the last switch, registers not
                               recorded yet (trace.h), or NULL */
    uint64_t tr_t0;            /* trace clock when the current step began */
    void *spawn_ip;            /* cs_spawn's caller, for the task it makes:
                               its creation site when it has no file:line */
    cs__trace_cache *tr_cache; /* interned names and sites */
    /* yield batching (trace.h): short yield steps counted, not timed */
    cs_ring_header *tr_hdr; /* the ring's header, for the fast path */
    uint32_t tr_hot;        /* the last timed step (or batch) was short */
    uint64_t tr_hot_ticks;  /* "short": below this; 0 never batches */
    uint32_t tr_nbt;        /* tasks in tr_bt: a batch is open if any */
    struct cs_task *tr_bt[CS__TRACE_BATCH_TASKS]; /* the batch's tasks */
    /* task-lifetime batching (trace.h): awaits and ends kept, not timed */
    uint32_t tr_life_hot; /* the last timed such step (or batch) was short */
    uint32_t tr_nlife;    /* steps kept in tr_cache->life: open if any */
    uint64_t tr_life_est; /* ticks per step of the last lifetime batch */
    volatile sig_atomic_t tr_slow; /* the running step was found slow
                               (cs_agent_step_slow): its switch is timed */
    cs__warn_box tr_box;           /* warnings posted by other threads */
    cs_task *reap;                 /* ended task whose stack awaits release */
    cs__link all;                  /* every unfinished task */
    size_t ntasks;                 /* unfinished tasks */
    cs_task *main;                 /* cs_run's task */
    /* timers: 4-ary min-heap of tasks keyed by deadline */
    cs_task **heap;
    uint32_t heap_len, heap_cap;
    /* poller */
    int epfd;                /* -1 until first needed */
    cs__fd *fds;             /* indexed by fd */
    int nfds;                /* size of fds */
    int fd_waiters;          /* tasks waiting in cs_read/write/wait_fd */
    uint32_t fd_closes_seen; /* cs__fd_closes at the last sweep */
    /* cs_to_thread completions */
    int wakefd;              /* eventfd the workers signal, -1 until needed */
    pthread_mutex_t done_mu; /* guards done_head */
    struct cs__job *done_head;
    int jobs_pending; /* submitted and not yet collected */
    /* ASan: the thread stack of the loop context */
    const void *asan_stack_lo;
    size_t asan_stack_size;
    void *fake_stack; /* ASan fake-stack handle of the loop context */
    /* stacks (stack.c): slabs of default-size stacks, and the idle ones
     * in a LIFO pool, oldest first, their memory still resident */
    size_t stack_default;   /* default stack size, rounded; 0 until known */
    struct cs__slab *slabs; /* newest first */
    struct cs__slab *slab_free; /* slabs that may have free slots */
    cs__stack *pool;
    size_t pool_len, pool_cap;
    size_t pool_low; /* least pool_len since the trim tick began */
    int64_t trim_at; /* end of the trim tick (cs__now), 0: none */
    /* task ids come from a process-wide counter in blocks, so a spawn
     * does not pay for a locked add */
    uint64_t next_id, end_id;
    /* task structs kept for reuse, LIFO; trimmed with the stacks */
    cs_task *free_tasks;
    size_t free_len;
    size_t free_low; /* least free_len since the trim tick began */
    /* alternate signal stack for the fatal-signal handler (fatal.c), if
     * we installed one, and the thread's previous one, restored at the end */
    void *altstack;
    stack_t old_altstack;
};

/* Waitable objects (lock, event, semaphore, queue) start with their trace
 * id, so that a task's wait target can be named from wait.obj. */
typedef struct cs__obj {
    uint64_t id;
} cs__obj;
uint64_t cs__obj_id_next(void);

/* A cs_to_thread job: lives on the heap so a cancelled task can leave it. */
typedef struct cs__job {
    cs_fn fn;
    void *arg;
    void *result;
    cs_task *task; /* waiting task, NULL once abandoned */
    cs__loop *loop;
    struct cs__job *next;
} cs__job;

/* agent_hooks.c: the installed hooks, NULL when no agent is loaded. */
extern const cs_agent_hooks *cs__agent;
#define CS__HOOK(name, ...)                                                   \
    do {                                                                      \
        const cs_agent_hooks *h_ = cs__agent;                                 \
        if (cs_unlikely(h_ != NULL) && h_->name != NULL)                      \
            h_->name(__VA_ARGS__);                                            \
    } while (0)
void cs__agent_coro_created(cs_coro *c);
void cs__agent_coro_forget(cs_coro *c);
void cs__agent_loop_end(cs__loop *loop, bool outermost);
bool cs__task_failed(const cs_task *t);
cs_task *cs__lock_holder(const cs_lock *l);

/* loop.c */
extern __thread cs__loop *cs__tls_loop
    __attribute__((tls_model("initial-exec")));
int cs__loop_run_until(cs__loop *loop, bool (*done)(cs__loop *));
void cs__loop_dispatch(cs__loop *loop);
int64_t cs__now(void);

/* task.c */
cs_task *cs__task_new(cs__loop *loop, const char *name, cs_fn fn, void *arg,
                      const char *file, int line, size_t stack_size);
void cs__task_release(cs_task *t);
void cs__task_reap(cs__loop *loop);
void cs__task_trim(cs__loop *loop);
void cs__make_ready(cs__loop *loop, cs_task *t);
void cs__suspend(cs__loop *loop, cs_task *self);
void cs__wait_unlink(cs_task *t);
void cs__task_end(cs_task *t) __attribute__((noreturn));
int cs__wait(cs_task *self, enum cs_wait_reason reason, void *obj,
             cs__wait_cancel_fn *cancel, int64_t timeout);
void cs__wake(cs_task *t, int result);
void cs__set_last_error(char **slot, const char *msg);
void cs__set_name(char *buf, size_t cap, char **long_name, const char *name);
const char *cs__coro_name(const cs_coro *c);

/* await.c */
void cs__set_run_error(const char *msg);

/* timer.c */
int cs__timer_add(cs__loop *loop, cs_task *t, int64_t deadline);
void cs__timer_del(cs__loop *loop, cs_task *t);
int64_t cs__timer_next(cs__loop *loop);
void cs__timer_fire(cs__loop *loop, int64_t now);

/* poll_epoll.c: the poller, behind poller.h */

/* io.c */
void cs__io_close(cs__loop *loop);
cs__fd *cs__fd_get(cs__loop *loop, int fd);

/* thread_pool.c */
void cs__jobs_collect(cs__loop *loop); /* on a CS__TOKEN_JOBS event */
void cs__jobs_drain(cs__loop *loop);

/* stack.c */
size_t cs__stack_default(void);
int cs__stack_get(cs__loop *loop, cs__stack *s, size_t size);
void cs__stack_put(cs__loop *loop, cs__stack *s);
void cs__stack_pool_free(cs__loop *loop);
/* Returns idle stacks' memory that stayed unused for a whole tick; gives
 * the poll timeout capped to the tick's end while there is some. */
int64_t cs__stack_tick(cs__loop *loop, int64_t timeout);

/* fd_close.c: per-fd generations, bumped when a registered fd is closed
 * or replaced by the program's close/dup2/dup3/close_range. */
#define CS__FD_GEN_MAX (1 << 20)
extern uint32_t *cs__fd_gen;
extern uint32_t cs__fd_closes;
/* Marks fd registered; its generation to keep, 0 if not tracked. */
uint32_t cs__fd_gen_register(int fd);
/* f's file is gone: wakes its waiters with CS_EBADF, forgets f. */
void cs__fd_renew(cs__fd *f);
/* Renews every waited-on fd whose file is gone. */
void cs__fd_sweep(cs__loop *loop);
/* Whether f's registration is still for the file fd names. */
static inline bool cs__fd_current(int fd, const cs__fd *f)
{
    const uint32_t *g = __atomic_load_n(&cs__fd_gen, __ATOMIC_RELAXED);

    return !g || fd >= CS__FD_GEN_MAX ||
           f->gen == __atomic_load_n(&g[fd], __ATOMIC_RELAXED);
}

/* io.c: forget a task waiting on an fd (also its wait's cancel). */
void cs__fd_unlink(cs_task *t);

/* sync.c: the task holding a lock (NULL if free). */
cs_task *cs__lock_holder(const cs_lock *l);


/* now + timeout, saturated so that a huge timeout means "far away". */
static inline int64_t cs__deadline(int64_t timeout)
{
    int64_t now = cs__now();
    return timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
}

/* Delivers a pending cancellation: the suspending call that checks it
 * returns CS_ECANCELLED instead of waiting. */
static inline int cs__cancel_check(cs_task *self)
{
    if (__builtin_expect(self->cancel_pending && !self->shielded, 0)) {
        self->cancel_pending = false;
        self->cancel_delivered = true;
        return CS_ECANCELLED;
    }
    return 0;
}

/* Wait lists */
static inline void cs__list_init(cs__link *h)
{
    h->prev = h->next = h;
}
static inline bool cs__list_empty(const cs__link *h)
{
    return h->next == h;
}
static inline void cs__list_push(cs__link *h, cs__link *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}
static inline void cs__list_del(cs__link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}
#define cs__container_of(p, type, member)                                     \
    ((type *)((char *)(p)-offsetof(type, member)))
#define cs__waiter_of(l) cs__container_of(l, cs_task, wait.node)

#endif
