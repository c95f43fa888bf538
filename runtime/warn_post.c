/*
 * warn_post.c - warnings about a loop made on another thread: the
 * watchdog (agent/watchdog.c) sees a slow step end from its own thread,
 * and a ring has exactly one writer, the loop's thread.  So the warning's
 * stack is stored from the poster (the stack table is lock-free, any
 * thread) and {task, kind, stack} is posted to a small mailbox in the
 * loop (cs__warn_box, trace.h), which the loop's thread copies into its
 * ring at the end of each iteration that finds it non-empty: one relaxed
 * load per iteration on the loop's side, no lock.
 *
 * Posters find a loop by its thread id in a registry of traced loops.
 * The registry lock serialises posters (the mailbox is single-producer,
 * single-consumer) and keeps the loop alive while one posts: a loop
 * unlists itself under the lock and drains what is left before it gives
 * its ring back.
 */
#include "internal.h"

#include <sys/syscall.h>
#include <unistd.h>

#define CS__BOXES_MAX                                                         \
    64 /* traced loops at once: the segment has fewer rings */

static pthread_mutex_t cs__boxes_mu = PTHREAD_MUTEX_INITIALIZER;
static cs__loop *cs__boxes[CS__BOXES_MAX];

/* A forked child has one thread: the lock may have been held by another
 * of the parent's, and the parent's loops are not the child's. */
static void cs__boxes_child(void)
{
    pthread_mutex_init(&cs__boxes_mu, NULL);
    memset(cs__boxes, 0, sizeof(cs__boxes));
}

void cs__warn_box_open(cs__loop *loop)
{
    static int atfork;

    if (!__atomic_exchange_n(&atfork, 1, __ATOMIC_ACQ_REL))
        pthread_atfork(NULL, NULL, cs__boxes_child);
    pthread_mutex_lock(&cs__boxes_mu);
    for (int i = 0; i < CS__BOXES_MAX; i++)
        if (!cs__boxes[i]) {
            cs__boxes[i] = loop;
            break;
        }
    pthread_mutex_unlock(&cs__boxes_mu);
}

void cs__warn_box_close(cs__loop *loop)
{
    pthread_mutex_lock(&cs__boxes_mu);
    for (int i = 0; i < CS__BOXES_MAX; i++)
        if (cs__boxes[i] == loop)
            cs__boxes[i] = NULL;
    pthread_mutex_unlock(&cs__boxes_mu);
    cs__warn_box_drain(loop); /* no poster can reach it any more */
}

void cs__warn_box_drain(cs__loop *loop)
{
    cs__warn_box *b = &loop->tr_box;
    uint32_t p = __atomic_load_n(&b->posted, __ATOMIC_ACQUIRE);

    for (uint32_t d = b->drained; d != p; d++) {
        const uint32_t k = d % CS__WARN_BOX;
        cs__tr_warning(loop->tr_ring, b->e[k].task, b->e[k].kind,
                       b->e[k].stack);
    }
    __atomic_store_n(&b->drained, p, __ATOMIC_RELEASE);
}

uint32_t cs__warn_stack_put(const uintptr_t *ips, size_t n)
{
    uint64_t buf[CS_STACK_MAX];
    uint32_t stack;

    if (n == 0)
        return 0;
    if (n > CS_STACK_MAX)
        n = CS_STACK_MAX;
    for (size_t i = 0; i < n; i++)
        buf[i] = ips[i];
    stack = cs__tr_stack_put(buf, n);
    /* the stack may point into an object dlopen'ed since the last
     * refresh: list it, so that a reader can name the frames after we
     * exit (one loader callback when nothing changed; never runs in a
     * signal handler: agent reports are made in task context or on the
     * watchdog's thread) */
    cs__tr_modules_refresh(0);
    return stack;
}

/* The loop traced on thread tid, or NULL; under cs__boxes_mu. */
static cs__loop *cs__box_find(int tid)
{
    for (int i = 0; i < CS__BOXES_MAX; i++)
        if (cs__boxes[i] && cs__boxes[i]->tr_hdr &&
            (int)__atomic_load_n(&cs__boxes[i]->tr_hdr->tid,
                                 __ATOMIC_RELAXED) == tid)
            return cs__boxes[i];
    return NULL;
}

/* True if the loop runs no step now: it is in its own code or poller. */
static bool cs__box_idle(const cs__loop *loop)
{
    return __atomic_load_n(&loop->tr_hdr->step_start, __ATOMIC_ACQUIRE) == 0;
}

/* Posts to loop's mailbox (under cs__boxes_mu). */
static int cs__box_post(cs__loop *loop, unsigned kind, uint64_t task,
                        uint32_t stack)
{
    cs__warn_box *b = &loop->tr_box;
    uint32_t p = __atomic_load_n(&b->posted, __ATOMIC_RELAXED);

    if (p - __atomic_load_n(&b->drained, __ATOMIC_ACQUIRE) >= CS__WARN_BOX)
        return CS_EAGAIN;
    b->e[p % CS__WARN_BOX].task = task;
    b->e[p % CS__WARN_BOX].kind = kind;
    b->e[p % CS__WARN_BOX].stack = stack;
    __atomic_store_n(&b->posted, p + 1, __ATOMIC_RELEASE);
    return cs__box_idle(loop) ? 1 : 0;
}

/* A loop gone: the calling thread writes into a ring of its own. */
static int cs__warn_own_ring(unsigned kind, uint64_t task, uint32_t stack)
{
    cs__tr_ring *r = cs__tr_ring_acquire();

    if (!r)
        return CS_ENOENT;
    cs__tr_warning(r, task, kind, stack);
    cs__tr_ring_release(r);
    return 0;
}

CS_EXTERN int cs_agent_trace_warning_to(int tid, int kind, uint64_t task_id,
                                        const uintptr_t *ips, size_t n)
{
    cs__loop *own = cs__tls_loop, *loop;
    uint32_t stack;
    int r;

    if (kind < 0 || kind >= CS_WARN_COUNT)
        return CS_EINVAL;
    if (kind == 0) { /* still waiting in an idle loop's mailbox? */
        pthread_mutex_lock(&cs__boxes_mu);
        loop = cs__box_find(tid);
        r = !loop || __atomic_load_n(&loop->tr_box.drained,
                                     __ATOMIC_ACQUIRE) == loop->tr_box.posted
                ? 0
            : cs__box_idle(loop) ? 1
                                 : 2;
        pthread_mutex_unlock(&cs__boxes_mu);
        return r;
    }
    if (own && own->tr_ring && (int)syscall(SYS_gettid) == tid) {
        cs_agent_trace_warning(kind, task_id, ips, n);
        return 0;
    }
    if (!cs__tr_active())
        return CS_ENOENT;
    stack = cs__warn_stack_put(ips, n);
    pthread_mutex_lock(&cs__boxes_mu);
    loop = cs__box_find(tid);
    r = loop ? cs__box_post(loop, (unsigned)kind, task_id, stack) : 1;
    pthread_mutex_unlock(&cs__boxes_mu);
    if (!loop)
        r = cs__warn_own_ring((unsigned)kind, task_id, stack);
    return r;
}
