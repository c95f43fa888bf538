/*
 * clean.c - a busy, correct coscope program: the agent must stay silent on
 * it, with or without LD_PRELOAD=libcoscope-preload.so.
 *
 *   clean [TASKS]    (default 1000)
 *
 * TASKS workers each take a shared lock, bump a counter, sleep a little,
 * push their number through a bounded queue to a consumer, and hand a
 * blocking computation to a worker thread with cs_to_thread; an echo pair
 * talks over a socketpair with cs_write_all/cs_read; an event releases a
 * group of waiters; detached tasks finish on their own; coroutines are
 * awaited in place.  Everything that is started is awaited.  Last, two
 * tasks yield to each other, first in quick steps, then in 25 ms ones:
 * no step is slow.  Prints one line and exits 0 if every
 * count adds up.
 */
#include <coscope.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static cs_lock *lock;
static cs_queue *queue;
static cs_event *go;
static long counter, consumed, echoed, released, detached_done;
static pthread_mutex_t thread_mu = PTHREAD_MUTEX_INITIALIZER;
static long thread_calls;
static long chunked; /* chunker tasks that ran to the end */

/* Runs on a cs_to_thread worker: blocking is allowed there. */
static void *blocking_work(void *arg)
{
    usleep(200);
    pthread_mutex_lock(&thread_mu);
    thread_calls++;
    pthread_mutex_unlock(&thread_mu);
    return arg;
}

static void *square(void *arg)
{
    return (void *)((long)arg * (long)arg);
}

static void *worker(void *arg)
{
    long i = (long)arg;
    void *r = NULL;

    if (cs_lock_acquire(lock) < 0)
        return NULL;
    counter++;
    cs_sleep(i % 20 == 0 ? CS_MSEC(1) : 0); /* hold it across a suspension */
    cs_lock_release(lock);
    if (cs_queue_put(queue, (void *)i) < 0)
        return NULL;
    if (i % 16 == 0 && cs_to_thread(blocking_work, arg, &r) < 0)
        return NULL;
    if (cs_await_coro(CS_CORO(square, arg), &r) < 0 || (long)r != i * i)
        cs_raise(CS_EINVAL, "square(%ld) = %ld", i, (long)r);
    return arg;
}

static void *consumer(void *arg)
{
    long n = (long)arg;
    for (long k = 0; k < n; k++) {
        void *item;
        if (cs_queue_get(queue, &item) < 0)
            return NULL;
        consumed++;
    }
    return NULL;
}

static void *echo_peer(void *arg)
{
    int fd = *(int *)arg;
    char buf[256];
    ssize_t n;

    while ((n = cs_read(fd, buf, sizeof(buf))) > 0)
        if (cs_write_all(fd, buf, (size_t)n) < 0)
            break;
    return NULL;
}

static void *echo_client(void *arg)
{
    int fd = *(int *)arg;
    char msg[64], back[64];

    for (int k = 0; k < 200; k++) {
        int len = snprintf(msg, sizeof(msg), "message %d", k);
        size_t got = 0;
        if (cs_write_all(fd, msg, (size_t)len) < 0)
            return NULL;
        while (got < (size_t)len) {
            ssize_t n = cs_read(fd, back + got, (size_t)len - got);
            if (n <= 0)
                return NULL;
            got += (size_t)n;
        }
        if (memcmp(msg, back, (size_t)len) == 0)
            echoed++;
    }
    shutdown(fd, SHUT_WR); /* the peer sees EOF and ends */
    return NULL;
}

static void *waiter(void *arg)
{
    (void)arg;
    if (cs_event_wait(go) == 0)
        released++;
    return NULL;
}

static void *short_lived(void *arg)
{
    (void)arg;
    cs_sleep(CS_MSEC(1));
    detached_done++;
    return NULL;
}

/* Quick yields, then yields after 25 ms of work each: 250 ms of steps,
 * each far below the 100 ms threshold.  (The quick ones are counted in
 * batches, not timed one by one; a watchdog that took a batch for one
 * step would call four of these steps one slow step.) */
static void *chunker(void *arg)
{
    long *rounds = arg;
    for (int i = 0; i < 500; i++)
        cs_yield();
    for (int i = 0; i < 5; i++) {
        int64_t until = cs_now_ns() + CS_MSEC(25);
        while (cs_now_ns() < until)
            ;
        cs_yield();
    }
    ++*rounds;
    return NULL;
}

static void *amain(void *arg)
{
    long n = (long)arg, nwait = 50;
    int sv[2];
    cs_task **t = calloc((size_t)n, sizeof(*t));
    cs_task *w[50];

    if (!t || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        cs_raise(CS_ENOMEM, "setup failed");
    lock = cs_lock_new();
    queue = cs_queue_new(8);
    go = cs_event_new();
    for (long k = 0; k < nwait; k++)
        w[k] = cs_spawn("waiter", waiter, NULL);
    for (long k = 0; k < 20; k++)
        cs_detach(cs_spawn("short_lived", short_lived, NULL));
    cs_task *cons = cs_spawn("consumer", consumer, (void *)n);
    cs_task *peer = cs_spawn("echo_peer", echo_peer, &sv[0]);
    cs_task *client = cs_spawn("echo_client", echo_client, &sv[1]);
    for (long k = 0; k < n; k++) {
        t[k] = cs_create_task(CS_CORO(worker, (void *)k));
        if (k % 256 == 255)
            cs_yield(); /* 10,000 stacks in one step would be a slow step */
    }
    int r = cs_gather(t, (size_t)n, NULL);
    cs_event_set(go);
    r = r ? r : cs_gather(w, (size_t)nwait, NULL);
    r = r ? r : cs_await(client, NULL);
    r = r ? r : cs_await(peer, NULL);
    r = r ? r : cs_await(cons, NULL);
    cs_sleep(CS_MSEC(5)); /* the detached ones end */
    cs_task *ch[2] = {cs_spawn("chunker", chunker, &chunked),
                      cs_spawn("chunker", chunker, &chunked)};
    r = r ? r : cs_gather(ch, 2, NULL);
    cs_sleep(CS_MSEC(30)); /* a watchdog looks again before we exit */
    cs_close(sv[0]);
    cs_close(sv[1]);
    cs_lock_free(lock);
    cs_queue_free(queue);
    cs_event_free(go);
    free(t);
    if (r < 0)
        cs_raise(r, "%s", cs_last_error());
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    int r;

    if (n < 1) {
        fprintf(stderr, "usage: clean [TASKS]\n");
        return 2;
    }
    r = cs_run(amain, (void *)n, NULL);
    if (r < 0) {
        fprintf(stderr, "clean: %s: %s\n", cs_err_name(r), cs_last_error());
        return 1;
    }
    if (counter != n || consumed != n || echoed != 200 || released != 50 ||
        detached_done != 20 || thread_calls != (n + 15) / 16 || chunked != 2) {
        fprintf(stderr,
                "clean: counts do not add up: %ld %ld %ld %ld %ld %ld %ld\n",
                counter, consumed, echoed, released, detached_done,
                thread_calls, chunked);
        return 1;
    }
    printf("clean: %ld tasks, all counts add up\n", n);
    return 0;
}
