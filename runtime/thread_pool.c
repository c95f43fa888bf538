/*
 * thread_pool.c - cs_to_thread: run a blocking function on a worker thread
 * while the calling task is suspended and its loop keeps running.
 *
 * One process-wide pool, grown on demand up to min(32, cpus + 4) threads
 * (asyncio's default executor size).  A worker that finishes a job puts it
 * on its loop's done list and bumps the loop's eventfd, which the loop
 * polls like any fd; the loop then wakes the waiting task.  A task
 * cancelled while its job runs abandons the job; the loop frees it when
 * the worker hands it back.
 */
#include "internal.h"
#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cs__job *head, *tail; /* queued jobs, FIFO */
    int threads;          /* started workers */
    int idle;             /* workers waiting for a job */
    int queued;           /* jobs in the queue, not yet taken */
    int max;              /* upper bound on threads */
} cs__pool = {PTHREAD_MUTEX_INITIALIZER,
              PTHREAD_COND_INITIALIZER,
              NULL,
              NULL,
              0,
              0,
              0,
              0};

/* Tells the worker's thread it is a pool worker (the agent's interposer
 * will not report blocking calls made here). */
__thread int cs__in_worker;

static void *cs__worker(void *unused)
{
    (void)unused;
    cs__in_worker = 1;
    pthread_mutex_lock(&cs__pool.mu);
    for (;;) {
        cs__job *j;
        uint64_t one = 1;
        while (!(j = cs__pool.head)) {
            cs__pool.idle++;
            pthread_cond_wait(&cs__pool.cv, &cs__pool.mu);
            cs__pool.idle--;
        }
        cs__pool.head = j->next;
        if (!cs__pool.head)
            cs__pool.tail = NULL;
        cs__pool.queued--;
        pthread_mutex_unlock(&cs__pool.mu);

        j->result = j->fn(j->arg);

        /* Push and signal under done_mu: once the loop has seen its last
         * job it takes done_mu before closing wakefd, so no worker can be
         * between the two and write to a closed (maybe reused) fd. */
        cs__loop *loop = j->loop;
        pthread_mutex_lock(&loop->done_mu);
        j->next = loop->done_head;
        loop->done_head = j;
        while (write(loop->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
        pthread_mutex_unlock(&loop->done_mu);
        pthread_mutex_lock(&cs__pool.mu);
    }
    return NULL;
}

static int cs__pool_submit(cs__job *j)
{
    int r = 0;

    pthread_mutex_lock(&cs__pool.mu);
    if (!cs__pool.max) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cs__pool.max = n > 0 && n + 4 < 32 ? (int)n + 4 : 32;
    }
    j->next = NULL;
    if (cs__pool.tail)
        cs__pool.tail->next = j;
    else
        cs__pool.head = j;
    cs__pool.tail = j;
    cs__pool.queued++;
    /* A signalled worker stays counted as idle until it runs, so compare
     * with the queue length, not with zero. */
    if (cs__pool.queued > cs__pool.idle && cs__pool.threads < cs__pool.max) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (cs__tr_thread_start(&th, &at, cs__worker, NULL) == 0)
            cs__pool.threads++;
        else if (cs__pool.threads == 0)
            r = CS_ENOMEM; /* nobody would ever run the job */
        pthread_attr_destroy(&at);
    }
    pthread_cond_signal(&cs__pool.cv);
    if (r) { /* unqueue: it is the tail and, with no threads, the head */
        cs__pool.head = cs__pool.tail = NULL;
        cs__pool.queued = 0;
    }
    pthread_mutex_unlock(&cs__pool.mu);
    return r;
}

/* Creates the loop's eventfd on first use, watched level-triggered: the
 * loop collects whenever its count is not zero. */
static int cs__jobs_init(cs__loop *loop)
{
    int e;

    if (loop->wakefd >= 0)
        return 0;
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd < 0)
        return -errno;
    e = cs__poll_add(loop, loop->wakefd, CS__TOKEN_JOBS, CS_READABLE);
    if (e < 0) {
        close(loop->wakefd);
        loop->wakefd = -1;
    }
    return e;
}

void cs__jobs_collect(cs__loop *loop)
{
    uint64_t n;
    cs__job *j, *rev = NULL;

    while (read(loop->wakefd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&loop->done_mu);
    j = loop->done_head;
    loop->done_head = NULL;
    pthread_mutex_unlock(&loop->done_mu);
    while (j) { /* reverse: wake in completion order */
        cs__job *next = j->next;
        j->next = rev;
        rev = j;
        j = next;
    }
    for (j = rev; j;) {
        cs__job *next = j->next;
        loop->jobs_pending--;
        if (j->task)
            cs__wake(j->task, 0); /* the task frees j */
        else
            free(j);
        j = next;
    }
}

/* Waits (blocking the thread) for every job still out: they point at loop. */
void cs__jobs_drain(cs__loop *loop)
{
    while (loop->jobs_pending > 0) {
        cs__poll_event ev;
        if (cs__poll_wait(loop, -1, &ev, 1) > 0 && ev.token == CS__TOKEN_JOBS)
            cs__jobs_collect(loop);
    }
    pthread_mutex_lock(&loop->done_mu); /* no worker is mid-signal now */
    pthread_mutex_unlock(&loop->done_mu);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    loop->wakefd = -1;
}

/* The wait's cancel: the task leaves its job to the loop. */
static void cs__job_abandon(cs_task *t)
{
    cs__job *j = t->wait.obj;
    j->task = NULL;
}

CS_EXTERN int cs_to_thread(cs_fn fn, void *arg, void **result)
{
    cs_task *self = cs_current_task();
    cs__job *j;
    int r;

    if (!fn)
        return CS_EINVAL;
    if (!self) { /* no loop: just call it */
        void *v = fn(arg);
        if (result)
            *result = v;
        return 0;
    }
    if ((r = cs__cancel_check(self)) != 0)
        return r;
    if ((r = cs__jobs_init(self->loop)) < 0)
        return r;
    j = malloc(sizeof(*j));
    if (!j)
        return CS_ENOMEM;
    *j = (cs__job){.fn = fn, .arg = arg, .task = self, .loop = self->loop};
    if ((r = cs__pool_submit(j)) < 0) {
        free(j);
        return r;
    }
    self->loop->jobs_pending++;
    r = cs__wait(self, CS_WAIT_THREAD, j, cs__job_abandon, -1);
    if (r < 0) /* cancelled: j now belongs to the loop */
        return r;
    if (result)
        *result = j->result;
    free(j);
    return 0;
}
