/*
 * buggy.c - async bugs, one per argument, to show what coscope says.
 *
 *   buggy nested     cs_run() inside a running loop (asyncio: "asyncio.run()
 *                    cannot be called from a running event loop")
 *   buggy deadlock   two tasks each wait for the other's lock forever
 *   buggy overflow   a task recurses until it hits its stack's guard page
 *   buggy raise      a gathered task fails; the error reaches main
 *
 * and one per bug class the agent reports (docs/agent.md):
 *
 *   buggy never-awaited   a coroutine made and forgotten
 *   buggy unretrieved     a detached task fails; nobody sees its error
 *   buggy pending         main returns while a task still runs
 *   buggy blocking-sleep  usleep() in a task freezes the loop (needs
 *                         LD_PRELOAD=libcoscope-preload.so to be seen)
 *   buggy blocking-read   read() on a blocking pipe in a task (idem)
 *   buggy blocking-service  a service: one handler blocks the loop with
 *                         usleep() (as blocking-sleep), then 5 workers idle
 *                         in cs_sleep; prints "ready" once the handler is
 *                         done and runs until killed (for `coscope
 *                         metrics` and Prometheus to look at); each line
 *                         read on stdin runs the handler again ("blocked")
 *   buggy cpu-loop        300 ms of computation in one step (seen by the
 *                         watchdog, once it exists)
 *   buggy lock-cycle      a task holding a lock awaits a task that wants it
 *   buggy crash           a task dereferences NULL
 *
 * Exit status: what cs_run returned, as a positive number (0 if none), or
 * death by SIGSEGV for "overflow" and "crash".
 */
#include <coscope.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The functions a report must name: kept out of line and uncloned, so that
 * they appear in stacks as written. */
#if defined(__clang__)
#define CULPRIT __attribute__((noinline))
#else
#define CULPRIT __attribute__((noipa))
#endif

static void *nothing(void *arg)
{
    return arg;
}

static void *nested_main(void *arg)
{
    (void)arg;
    int r = cs_run(nothing, NULL, NULL); /* the bug */
    if (r < 0)
        cs_raise(r, "nested cs_run: %s", cs_last_error());
    return NULL;
}

struct pair {
    cs_lock *mine, *theirs;
};

static void *grab_both(void *arg)
{
    struct pair *p = arg;
    if (cs_lock_acquire(p->mine) < 0)
        return NULL;
    cs_yield(); /* let the other task take its first lock */
    if (cs_lock_acquire(p->theirs) < 0) {
        cs_lock_release(p->mine);
        return NULL;
    }
    cs_lock_release(p->theirs);
    cs_lock_release(p->mine);
    return NULL;
}

static void *deadlock_main(void *arg)
{
    (void)arg;
    cs_lock *a = cs_lock_new(), *b = cs_lock_new();
    struct pair pa = {a, b}, pb = {b, a};
    cs_task *t[2] = {cs_spawn("worker-a", grab_both, &pa),
                     cs_spawn("worker-b", grab_both, &pb)};
    int r = cs_gather(t, 2, NULL);
    cs_lock_free(a);
    cs_lock_free(b);
    if (r < 0)
        cs_raise(r, "%s", cs_last_error());
    return NULL;
}

static int __attribute__((noinline)) recurse(volatile char *prev, long n)
{
    volatile char frame[512];
    frame[0] = prev ? prev[0] : 1;
    if (n == 0)
        return frame[0];
    return recurse(frame, n - 1) + frame[0];
}

static void *deep(void *arg)
{
    (void)arg;
    return (void *)(long)recurse(NULL, 1L << 30);
}

static void *overflow_main(void *arg)
{
    (void)arg;
    cs_task *t = cs_create_task(CS_CORO(deep, NULL));
    return cs_await(t, NULL) == 0 ? NULL : NULL;
}

static void *fetch(void *arg)
{
    const char *url = arg;
    cs_sleep(CS_MSEC(10));
    if (strstr(url, "bad"))
        cs_raise(CS_ETIMEDOUT, "fetching '%s' timed out", url);
    return arg;
}

static void *raise_main(void *arg)
{
    (void)arg;
    cs_task *t[3] = {cs_create_task(CS_CORO(fetch, "http://good/1")),
                     cs_create_task(CS_CORO(fetch, "http://bad/2")),
                     cs_create_task(CS_CORO(fetch, "http://good/3"))};
    int r = cs_gather(t, 3, NULL);
    if (r < 0)
        cs_raise(r, "gather: %s", cs_last_error());
    return NULL;
}

/* ---- never-awaited: the coroutine is made, then forgotten ------------ */

static void *send_email(void *arg)
{
    return arg;
}

static volatile int notified;

static void CULPRIT notify_user(const char *who)
{
    cs_coro *c = CS_CORO(send_email, (void *)who);
    (void)c; /* the bug: neither awaited nor scheduled */
    notified++;
}

static void *never_awaited_main(void *arg)
{
    (void)arg;
    notify_user("ada@example.org");
    return NULL;
}

/* ---- unretrieved: a detached task fails -------------------------------- */

static void CULPRIT parse_profile(const char *json)
{
    if (json[0] != '{')
        cs_raise(CS_EINVAL, "profile is not a JSON object: '%s'", json);
}

static void *fetch_profile(void *arg)
{
    cs_sleep(CS_MSEC(1));
    parse_profile(arg);
    return NULL;
}

static void *unretrieved_main(void *arg)
{
    (void)arg;
    cs_detach(cs_spawn("fetch_profile", fetch_profile, "<html>"));
    cs_sleep(CS_MSEC(20)); /* it fails meanwhile; nobody looks */
    return NULL;
}

/* ---- pending: main ends first ------------------------------------------- */

static void *heartbeat(void *arg)
{
    (void)arg;
    for (;;)
        if (cs_sleep(CS_SEC(1)) < 0)
            return NULL;
}

static void *pending_main(void *arg)
{
    (void)arg;
    cs_spawn("heartbeat", heartbeat, NULL); /* the bug: never awaited */
    cs_sleep(CS_MSEC(10));
    return NULL;
}

/* ---- blocking calls in a task -------------------------------------------- */

static int other_ticks;

static void *ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        other_ticks++;
        cs_sleep(CS_MSEC(5));
    }
    return NULL;
}

static volatile int settings_loaded;

static void CULPRIT load_settings(void)
{
    if (usleep(200 * 1000) == 0) /* the bug: the whole loop sleeps */
        settings_loaded = 1;
}

static void *slow_handler(void *arg)
{
    (void)arg;
    load_settings();
    return NULL;
}

static void *blocking_sleep_main(void *arg)
{
    (void)arg;
    cs_task *t[2] = {cs_spawn("ticker", ticker, NULL),
                     cs_spawn("slow_handler", slow_handler, NULL)};
    return cs_gather(t, 2, NULL) == 0 ? NULL : NULL;
}

static void *late_writer(void *arg)
{
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
    (void)!write(*(int *)arg, "GET /\n", 6);
    return NULL;
}

static size_t bytes_read;

static ssize_t CULPRIT read_request(int fd, char *buf, size_t n)
{
    ssize_t r = read(fd, buf, n); /* the bug: a blocking fd, read directly */
    if (r > 0)
        bytes_read += (size_t)r;
    return r;
}

static void *request_reader(void *arg)
{
    char buf[64];
    return read_request(*(int *)arg, buf, sizeof(buf)) > 0 ? arg : NULL;
}

static void *blocking_read_main(void *arg)
{
    (void)arg;
    static int p[2];
    pthread_t th;
    if (pipe(p) < 0 || pthread_create(&th, NULL, late_writer, &p[1]) != 0)
        cs_raise(CS_ENOMEM, "no pipe or thread");
    pthread_detach(th);
    cs_task *t[2] = {cs_spawn("ticker", ticker, NULL),
                     cs_spawn("request_reader", request_reader, &p[0])};
    cs_gather(t, 2, NULL);
    return NULL; /* the pipe lives until exit: the writer may still run */
}

/* ---- blocking-service: a long-running process that blocked once -------- */

static void *idle_worker(void *arg)
{
    (void)arg;
    while (cs_sleep(CS_SEC(3600)) >= 0)
        ; /* until cancelled */
    return NULL;
}

/* Each line on standard input is a request that blocks the loop again:
 * the test can make it happen once Prometheus has seen the process. */
static void *requests(void *arg)
{
    char buf[64];
    ssize_t n;
    (void)arg;
    while ((n = cs_read(0, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\n') {
                cs_await(cs_spawn("slow_handler", slow_handler, NULL), NULL);
                printf("blocked\n");
                fflush(stdout);
            }
    return NULL;
}

static void *blocking_service_main(void *arg)
{
    (void)arg;
    cs_task *h = cs_spawn("slow_handler", slow_handler, NULL);
    cs_await(h, NULL);
    cs_task *w[6];
    for (int i = 0; i < 5; i++)
        w[i] = cs_spawn("idle_worker", idle_worker, NULL);
    w[5] = cs_spawn("requests", requests, NULL);
    cs_yield(); /* every worker runs once and parks */
    printf("ready\n");
    fflush(stdout);
    return cs_gather(w, 6, NULL) == 0 ? NULL : NULL;
}

/* ---- cpu-loop: one long step ------------------------------------------- */

static unsigned CULPRIT checksum(int64_t ns)
{
    int64_t end = cs_now_ns() + ns;
    volatile unsigned h = 0;
    while (cs_now_ns() < end)
        for (int i = 0; i < 1000; i++)
            h = h * 31 + (unsigned)i;
    return h;
}

/* Quick yields first (with `spinner`): the long step begins where the
 * trace counts steps in a batch instead of timing each. */
static void *hasher(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++)
        cs_yield();
    return (void *)(uintptr_t)checksum(CS_MSEC(300));
}

static void *spinner(void *arg) /* still yielding when hasher computes */
{
    (void)arg;
    for (int i = 0; i < 600; i++)
        cs_yield();
    return NULL;
}

static void *cpu_loop_main(void *arg)
{
    (void)arg;
    cs_task *t[3] = {cs_spawn("ticker", ticker, NULL),
                     cs_spawn("spinner", spinner, NULL),
                     cs_spawn("hasher", hasher, NULL)};
    return cs_gather(t, 3, NULL) == 0 ? NULL : NULL;
}

/* ---- lock-cycle: a lock holder awaits a task that wants the lock ------- */

static void *flush_cache(void *arg)
{
    if (cs_lock_acquire(arg) == 0) /* held by our awaiter: never */
        cs_lock_release(arg);
    return NULL;
}

static void *update_cache(void *arg)
{
    cs_lock *l = arg;
    if (cs_lock_acquire(l) < 0)
        return NULL;
    cs_task *t = cs_spawn("flush_cache", flush_cache, l);
    cs_await(t, NULL); /* the bug: awaited while holding the lock */
    cs_lock_release(l);
    return NULL;
}

static void *lock_cycle_main(void *arg)
{
    (void)arg;
    cs_lock *l = cs_lock_new();
    /* update_cache takes l, then awaits flush_cache, which wants l */
    int r = cs_await(cs_spawn("update_cache", update_cache, l), NULL);
    cs_lock_free(l);
    if (r < 0)
        cs_raise(r, "%s", cs_last_error());
    return NULL;
}

/* ---- crash: NULL dereference in a task ----------------------------------- */

struct record {
    const char *name;
};

/* no_sanitize: under UBSan the NULL access must still fault, as it does
 * in a normal build, rather than end the run as a UBSan finding. */
static size_t CULPRIT __attribute__((no_sanitize("null")))
parse_record(const struct record *r)
{
    return strlen(r->name); /* the bug: r is NULL */
}

/* A lookup that finds nothing; volatile so that the compiler cannot see
 * the NULL and turn the faulting load into a trap of its own. */
static const struct record *volatile found;

static void *parser(void *arg)
{
    (void)arg;
    return (void *)(parse_record(found) + 1);
}

static void *crash_main(void *arg)
{
    (void)arg;
    cs_task *t = cs_spawn("parser", parser, NULL);
    return cs_await(t, NULL) == 0 ? NULL : NULL;
}

/* Each bug this program can show: buggy MODE runs main. */
struct bug {
    const char *mode; /* the command-line argument */
    cs_fn main;       /* the loop's main task */
};

static const struct bug bugs[] = {
    {"deadlock", deadlock_main},
    {"nested", nested_main},
    {"overflow", overflow_main},
    {"raise", raise_main},
    {"never-awaited", never_awaited_main},
    {"unretrieved", unretrieved_main},
    {"pending", pending_main},
    {"blocking-sleep", blocking_sleep_main},
    {"blocking-read", blocking_read_main},
    {"blocking-service", blocking_service_main},
    {"cpu-loop", cpu_loop_main},
    {"lock-cycle", lock_cycle_main},
    {"crash", crash_main},
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc == 2 && i < sizeof(bugs) / sizeof(bugs[0]); i++) {
        if (strcmp(argv[1], bugs[i].mode) != 0)
            continue;
        int r = cs_run(bugs[i].main, NULL, NULL);
        if (r < 0) {
            fprintf(stderr, "buggy %s: cs_run returned %s: %s\n", argv[1],
                    cs_err_name(r), cs_last_error());
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: buggy MODE\nmodes:");
    for (size_t i = 0; i < sizeof(bugs) / sizeof(bugs[0]); i++)
        fprintf(stderr, " %s", bugs[i].mode);
    fprintf(stderr, "\n");
    return 2;
}
