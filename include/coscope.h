/*
 * coscope.h - the coscope coroutine runtime.
 *
 * Stackful coroutines on an epoll event loop, with asyncio's vocabulary:
 * cs_run ~ asyncio.run, cs_create_task ~ asyncio.create_task, cs_await ~
 * await task, cs_gather ~ asyncio.gather, cs_wait_for ~ asyncio.wait_for,
 * cs_to_thread ~ asyncio.to_thread.  Every blocking-looking call in this
 * header suspends the calling task, never the loop.
 *
 * Conventions (as in libuv): functions that can fail return 0 or a negative
 * CS_E* code; pointers returned by _new functions are NULL on allocation
 * failure.  All types are opaque.  Unless a function says otherwise it must
 * be called from a task running on a loop (inside cs_run).
 */
#ifndef COSCOPE_H
#define COSCOPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "coscope/export.h" /* CS_EXTERN */

#ifdef __cplusplus
extern "C" {
#endif


#define CS_VERSION_MAJOR 0
#define CS_VERSION_MINOR 1
#define CS_VERSION_PATCH 0
#define CS_VERSION_STRING "0.1.0"

/* Errors: negative errno values where one fits, our own below -4000. */
#define CS_ERRNO_MAP(XX)                                                      \
    XX(ECANCELLED, -125, "task was cancelled")                                \
    XX(ETIMEDOUT, -110, "timed out")                                          \
    XX(ENOMEM, -12, "out of memory")                                          \
    XX(EINVAL, -22, "invalid argument")                                       \
    XX(EAGAIN, -11, "resource temporarily unavailable")                       \
    XX(EBADF, -9, "bad file descriptor")                                      \
    XX(EPERM, -1, "operation not permitted")                                  \
    XX(ENOENT, -2, "no such file or directory")                               \
    XX(ESRCH, -3, "no such process")                                          \
    XX(EACCES, -13, "permission denied")                                      \
    XX(EBUSY, -16, "resource busy")                                           \
    XX(ENESTED, -4001, "cs_run() cannot be called from a running event loop") \
    XX(ENOLOOP, -4002, "no running event loop on this thread")                \
    XX(ERAISED, -4003, "task raised an error")                                \
    XX(ECORRUPT, -4004, "data is corrupt")                                    \
    XX(EVERSION, -4005, "unsupported format version")                         \
    XX(EDEADLK, -35, "resource deadlock would occur")

enum {
#define CS__ERR_ENUM(name, value, text) CS_##name = (value),
    CS_ERRNO_MAP(CS__ERR_ENUM)
#undef CS__ERR_ENUM
};

/* Human-readable text for a CS_E* code or any negative errno value. */
CS_EXTERN const char *cs_strerror(int code);
/* Symbolic name of a code ("CS_ECANCELLED"), or "CS_EUNKNOWN". */
CS_EXTERN const char *cs_err_name(int code);

/* ---- tasks and coroutines --------------------------------------------- */

typedef void *(*cs_fn)(void *arg);
typedef struct cs_coro cs_coro;
typedef struct cs_task cs_task;

/*
 * Runs an event loop on the calling thread until main's task ends, then
 * cancels every task still pending and waits for them.  Stores main's
 * return value in *result (if result is not NULL).  Returns 0, main's error
 * if it raised or was cancelled, CS_ENESTED if a loop already runs on this
 * thread, or CS_ENOMEM.
 */
CS_EXTERN int cs_run(cs_fn main, void *arg, void **result);

/*
 * Creates a lazy coroutine: nothing runs until it is awaited with
 * cs_await_coro() or scheduled with cs_create_task().  name is copied.
 * May be called outside a loop.  Prefer CS_CORO(), which records the site.
 */
CS_EXTERN cs_coro *cs_coro_new(const char *name, cs_fn fn, void *arg);
/* cs_coro_new() recording file and line as the creation site. */
CS_EXTERN cs_coro *cs_coro_new_at(const char *name, cs_fn fn, void *arg,
                                  const char *file, int line);
#define CS_CORO(fn, arg) cs_coro_new_at(#fn, (fn), (arg), __FILE__, __LINE__)

/* Sets the stack size of the task the coroutine will run in (before it is
 * scheduled); 0 means the default (64 KiB, or COSCOPE_STACK_KB).  Sizes
 * are rounded up to whole pages, at least 16 KiB; over 1 GiB: CS_EINVAL. */
CS_EXTERN int cs_coro_set_stack_size(cs_coro *c, size_t bytes);

/* Runs c inside the calling task, like `await coro()`; consumes c.
 * Returns 0 or the error c raised. */
CS_EXTERN int cs_await_coro(cs_coro *c, void **result);
/* Schedules c as a new task on the current loop; consumes c.
 * Returns NULL (and drops c) if out of memory or no loop runs here. */
CS_EXTERN cs_task *cs_create_task(cs_coro *c);
/* Discards a coroutine that will never run. */
CS_EXTERN void cs_coro_drop(cs_coro *c);

/* cs_create_task(cs_coro_new(name, fn, arg)). */
CS_EXTERN cs_task *cs_spawn(const char *name, cs_fn fn, void *arg);
/* cs_spawn() recording the creation site; used by CS_SPAWN(). */
CS_EXTERN cs_task *cs_spawn_at(const char *name, cs_fn fn, void *arg,
                               const char *file, int line);
#define CS_SPAWN(fn, arg) cs_spawn_at(#fn, (fn), (arg), __FILE__, __LINE__)

/*
 * Waits for t to finish and releases the handle (t is invalid afterwards).
 * Returns 0 with t's return value in *result, t's error if it raised, or
 * CS_ECANCELLED if t was cancelled.  If the caller itself is cancelled
 * while waiting, t is cancelled too (as in asyncio), and cs_await returns
 * CS_ECANCELLED once t has ended; the handle is released either way.
 */
CS_EXTERN int cs_await(cs_task *t, void **result);
/* Awaits every task; results[i] gets each value (results may be NULL).
 * Returns the first error in argument order, or 0.  Always awaits all. */
CS_EXTERN int cs_gather(cs_task *const *tasks, size_t n, void **results);
/* Like cs_await, but after timeout_ns cancels t, waits until it has
 * finished, releases it and returns CS_ETIMEDOUT. */
CS_EXTERN int cs_wait_for(cs_task *t, int64_t timeout_ns, void **result);
/* Gives up the handle: t runs on and frees itself when it ends. */
CS_EXTERN void cs_detach(cs_task *t);

/* Suspends the calling task for ns nanoseconds (<= 0: just yields).
 * Returns 0 or CS_ECANCELLED. */
CS_EXTERN int cs_sleep(int64_t ns);
/* Lets every other ready task run, then resumes the caller. */
CS_EXTERN void cs_yield(void);
/*
 * Requests cancellation of t: the call t is suspended in (or its next
 * suspending call) returns CS_ECANCELLED.  No-op on a finished task.
 * Returns 0, or CS_EINVAL for NULL.
 */
CS_EXTERN int cs_cancel(cs_task *t);
/* True once cs_cancel() was called on the current task; the flag stays set. */
CS_EXTERN int cs_cancelled(void);

/* The running task, or NULL outside a task. */
CS_EXTERN cs_task *cs_current_task(void);
CS_EXTERN const char *cs_task_name(const cs_task *t);
/* Unique per process, never reused, starting at 1. */
CS_EXTERN uint64_t cs_task_id(const cs_task *t);
/* True once t has finished (returned, raised or was cancelled). */
CS_EXTERN int cs_task_done(const cs_task *t);
/* Stores up to cap unfinished tasks of the current loop in out; returns how
 * many unfinished tasks there are (may exceed cap). 0 outside a loop. */
CS_EXTERN size_t cs_all_tasks(cs_task **out, size_t cap);

/*
 * Ends the current task with error code (negative; positive values are
 * negated, 0 becomes CS_ERAISED) and a printf-style message.  The task's
 * stack is abandoned: nothing after the call runs, no cleanup is unwound.
 * Outside a task it aborts the process.
 */
CS_EXTERN _Noreturn void cs_raise(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The message of the last error an await (cs_await, cs_await_coro,
 * cs_gather, cs_wait_for) returned to the calling task, or that cs_run
 * returned to this thread; NULL if that status was 0. */
CS_EXTERN const char *cs_last_error(void);

/* Runs fn(arg) on a worker thread while the calling task is suspended and
 * the loop keeps running.  Returns 0 (fn's value in *result), CS_ENOMEM,
 * or CS_ECANCELLED (the worker still finishes fn; its result is dropped). */
CS_EXTERN int cs_to_thread(cs_fn fn, void *arg, void **result);

/* ---- I/O ---------------------------------------------------------------- */

#define CS_READABLE 1
#define CS_WRITABLE 2

/* These make fd non-blocking and suspend the task until they can proceed.
 * They return what read/write/accept/connect return, with -errno on error
 * (never -EAGAIN), or CS_ECANCELLED. */
CS_EXTERN ssize_t cs_read(int fd, void *buf, size_t n);
CS_EXTERN ssize_t cs_write(int fd, const void *buf, size_t n);
/* Writes all n bytes unless an error occurs; returns n or a negative code. */
CS_EXTERN ssize_t cs_write_all(int fd, const void *buf, size_t n);
/* Returns the new fd (non-blocking, close-on-exec) or a negative code. */
CS_EXTERN int cs_accept(int fd, struct sockaddr *addr, socklen_t *len);
CS_EXTERN int cs_connect(int fd, const struct sockaddr *addr, socklen_t len);
/* Waits until fd is readable/writable (events: CS_READABLE|CS_WRITABLE).
 * timeout_ns < 0 waits forever.  Returns the ready subset of events,
 * CS_ETIMEDOUT or CS_ECANCELLED. */
CS_EXTERN int cs_wait_fd(int fd, int events, int64_t timeout_ns);
/* Forgets fd in the loop (waiters get CS_EBADF); call it before close() on
 * an fd used with cs_*, or use cs_close(). */
CS_EXTERN void cs_forget_fd(int fd);
/* cs_forget_fd(fd) then close(fd); returns 0 or -errno. */
CS_EXTERN int cs_close(int fd);

/* ---- synchronisation ---------------------------------------------------- */

typedef struct cs_lock cs_lock;
typedef struct cs_event cs_event;
typedef struct cs_semaphore cs_semaphore;
typedef struct cs_queue cs_queue;

/* A non-reentrant mutex for tasks of one loop; waiters are served FIFO. */
CS_EXTERN cs_lock *cs_lock_new(void);
CS_EXTERN void cs_lock_free(cs_lock *l);
/* Returns 0, CS_ECANCELLED, or CS_EDEADLK if the caller already holds l. */
CS_EXTERN int cs_lock_acquire(cs_lock *l);
/* Returns 0 if acquired, CS_EBUSY if held. */
CS_EXTERN int cs_lock_try_acquire(cs_lock *l);
CS_EXTERN void cs_lock_release(cs_lock *l);

/* A flag tasks can wait for, like asyncio.Event. */
CS_EXTERN cs_event *cs_event_new(void);
CS_EXTERN void cs_event_free(cs_event *e);
CS_EXTERN void cs_event_set(cs_event *e);
CS_EXTERN void cs_event_clear(cs_event *e);
CS_EXTERN int cs_event_is_set(const cs_event *e);
CS_EXTERN int cs_event_wait(cs_event *e);

/* A counting semaphore, like asyncio.Semaphore. */
CS_EXTERN cs_semaphore *cs_semaphore_new(unsigned value);
CS_EXTERN void cs_semaphore_free(cs_semaphore *s);
CS_EXTERN int cs_semaphore_acquire(cs_semaphore *s);
CS_EXTERN void cs_semaphore_release(cs_semaphore *s);

/* A bounded FIFO of pointers (capacity >= 1), like asyncio.Queue(maxsize).
 * put waits while full, get waits while empty. */
CS_EXTERN cs_queue *cs_queue_new(size_t capacity);
CS_EXTERN void cs_queue_free(cs_queue *q);
CS_EXTERN int cs_queue_put(cs_queue *q, void *item);
CS_EXTERN int cs_queue_get(cs_queue *q, void **item);
CS_EXTERN size_t cs_queue_size(const cs_queue *q);

/* ---- time --------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. Callable anywhere. */
CS_EXTERN int64_t cs_now_ns(void);

#define CS_MSEC(n) ((int64_t)(n)*1000000LL)
#define CS_SEC(n) ((int64_t)(n)*1000000000LL)

#ifdef __cplusplus
}
#endif
#endif /* COSCOPE_H */
