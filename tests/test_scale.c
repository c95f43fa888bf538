/*
 * test_scale.c - the runtime at server scale, under the stock
 * vm.max_map_count: a million tasks parked in cs_sleep all spawn, the
 * process keeps under half of vm.max_map_count mappings, 100 malloc()s of
 * 1 MiB afterwards succeed, and a stack overflow in a task spawned after
 * them is still caught and named; on the mprotect-guard path of older
 * kernels (forced with COSCOPE_STACK_GUARD=mprotect) guards stop within a
 * budget with one warning and nothing runs out; after a burst of 100,000
 * tasks has ended, RSS comes back to within 10 % of its level before.
 *
 * The big runs are children that re-execute this binary (--child KIND N),
 * so that a fault ends only them; each prints "key value" lines that the
 * parent checks.  No timing is asserted.  Under AddressSanitizer, whose
 * shadow memory makes a million stacks cost far more, the counts are
 * 100,000 (the mapping limit is as far away: guards do not split maps).
 */
#include "cs_test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cs_proc.h"

#if defined(__SANITIZE_ADDRESS__)
#define CS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CS_ASAN 1
#endif
#endif
#ifdef CS_ASAN
#define MILLION 100000L
#else
#define MILLION 1000000L
#endif

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}

/* Resident KiB of this process less its shared memory (RssAnon +
 * RssFile).  The one shared memory mapping is the trace segment, of a
 * fixed size (rings and task table, resident once they wrap or fill):
 * not memory that a burst holds. */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long v, sum = 0;
    int got = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld", &v) == 1 ||
            sscanf(line, "RssFile: %ld", &v) == 1)
            sum += v, got++;
    fclose(f);
    return got == 2 ? sum : -1;
}

/* ---- the children ---------------------------------------------------------- */

struct park {
    long n;      /* tasks to park */
    long parked; /* tasks that reached cs_sleep */
};

static void *parked(void *arg)
{
    struct park *p = arg;
    p->parked++;
    cs_sleep(CS_SEC(3600)); /* until cancelled */
    return NULL;
}

#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int __attribute__((noinline)) recurse(int depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    return recurse(depth + 1) + frame[0];
}

static void *overflow(void *arg)
{
    (void)arg;
    return CS_P(recurse(0));
}

/* Parks n tasks, prints the figures, then (overflow) lets one more task
 * overflow its stack, or cancels them all and ends. */
static void *park_main(void *arg)
{
    struct park *p = arg;
    cs_task **t = malloc((size_t)p->n * sizeof(*t));
    long spawned = 0, ok = 0;
    int do_overflow = getenv("SCALE_OVERFLOW") != NULL;

    if (!t)
        return CS_P(1);
    for (; spawned < p->n; spawned++)
        if (!(t[spawned] = cs_spawn("parked", parked, p))) {
            fprintf(stderr, "spawn failed at %ld: %s\n", spawned,
                    cs_last_error() ? cs_last_error() : "(no message)");
            break;
        }
    while (p->parked < spawned)
        cs_yield(); /* each step starts more of them */
    printf("spawned %ld\nparked %ld\nmaps %ld\nmax_map_count %ld\n", spawned,
           p->parked, cs_proc_count_maps(),
           cs_proc_read_long("/proc/sys/vm/max_map_count"));
    void *m[100];
    for (int i = 0; i < 100; i++)
        if ((m[i] = malloc(1 << 20)) != NULL) {
            memset(m[i], 1, 4096);
            ok++;
        }
    for (int i = 0; i < 100; i++)
        free(m[i]);
    printf("malloc_1mib_ok %ld\n", ok);
    fflush(stdout);
    if (do_overflow) {
        cs_task *o = cs_spawn("overflower", overflow, NULL);
        cs_await(o, NULL); /* the process dies in it */
        printf("overflow not caught\n");
        fflush(stdout);
        return CS_P(1);
    }
    for (long i = 0; i < spawned; i++)
        cs_cancel(t[i]);
    cs_gather(t, (size_t)spawned, NULL);
    free(t);
    return NULL;
}

/* Each of n tasks yields once, so that all of them hold a stack at the
 * same time, then ends. */
static void *burst_task(void *arg)
{
    (void)arg;
    cs_yield();
    return NULL;
}

static void *burst_main(void *arg)
{
    long n = *(long *)arg;
    cs_task **t = malloc((size_t)n * sizeof(*t));
    long before, peak, after = 0;
    int64_t deadline;

    if (!t)
        return CS_P(1);
    cs_sleep(CS_MSEC(1)); /* the loop has polled once: its set-up is done */
    before = rss_kib();
    for (long i = 0; i < n; i++)
        if (!(t[i] = cs_spawn("burst", burst_task, NULL)))
            return CS_P(1);
    cs_gather(t, (size_t)n, NULL);
    free(t);
    peak = rss_kib();
    /* the trim is a policy in time (stack.c: two 250 ms ticks at most):
     * poll for its effect, with a generous bound */
    deadline = cs_now_ns() + CS_SEC(10);
    while (cs_now_ns() < deadline) {
        after = rss_kib();
        if (after <= before + before / 10)
            break;
        cs_sleep(CS_MSEC(50));
    }
    printf("rss_before %ld\nrss_peak %ld\nrss_after %ld\n", before, peak,
           after);
    return NULL;
}

static int child(const char *kind, long n)
{
    void *r = NULL;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(kind, "park") == 0) {
        struct park p = {.n = n};
        rc = cs_run(park_main, &p, &r);
    } else {
        rc = cs_run(burst_main, &n, &r);
    }
    if (rc != 0)
        fprintf(stderr, "cs_run: %s\n", cs_strerror(rc));
    return rc != 0 || r != NULL;
}

/* ---- the parent ------------------------------------------------------------- */

struct result {
    int status;     /* wait status */
    char out[4096]; /* stdout */
    char err[8192]; /* stderr */
};

static void slurp(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;

    while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    while (read(fd, &(char){0}, 1) > 0) /* drain the rest */
        ;
}

/* Runs --child KIND N with extra environment (NAME=VALUE or NULL). */
static void run_child(const char *kind, long n, const char *env1,
                      const char *env2, struct result *res)
{
    int out[2], err[2];
    char num[32], errpath[] = "/tmp/test_scale.XXXXXX";
    pid_t pid;

    snprintf(num, sizeof num, "%ld", n);
    assert_int_equal(pipe(out), 0);
    /* stderr to a file: whatever it holds cannot block the child */
    err[0] = mkstemp(errpath);
    assert_true(err[0] >= 0);
    unlink(errpath);
    err[1] = dup(err[0]);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        char asan[512];
        const char *old = getenv("ASAN_OPTIONS");
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        close(err[1]);
        snprintf(asan, sizeof asan, "%s%shandle_segv=0:detect_leaks=0",
                 old ? old : "", old ? ":" : "");
        setenv("ASAN_OPTIONS", asan, 1);
        if (env1)
            putenv((char *)env1);
        if (env2)
            putenv((char *)env2);
        execl("/proc/self/exe", "test_scale", "--child", kind, num,
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    slurp(out[0], res->out, sizeof res->out);
    close(out[0]);
    assert_int_equal(waitpid(pid, &res->status, 0), pid);
    lseek(err[0], 0, SEEK_SET);
    slurp(err[0], res->err, sizeof res->err);
    close(err[0]);
}

static long field(const struct result *r, const char *key)
{
    size_t k = strlen(key);

    for (const char *p = r->out; p && *p;
         p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, key, k) == 0 && p[k] == ' ')
            return strtol(p + k + 1, NULL, 10);
    fail_msg("no '%s' in the child's output:\n%s\nstderr:\n%s", key, r->out,
             r->err);
    return -1;
}

static size_t count_str(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* A million parked, then an overflow: all of it in one child, since
 * parking a million tasks is what takes the time. */
static void test_scale_million_parked_then_overflow(void **state)
{
    struct result r;
    (void)state;

    run_child("park", MILLION, "SCALE_OVERFLOW=1", NULL, &r);
    assert_int_equal(field(&r, "spawned"), MILLION);
    assert_int_equal(field(&r, "parked"), MILLION);
    assert_true(field(&r, "maps") < field(&r, "max_map_count") / 2);
    assert_int_equal(field(&r, "malloc_1mib_ok"), 100);
    if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGSEGV)
        fail_msg("child status %#x, want SIGSEGV; stdout:\n%s\nstderr:\n%s",
                 r.status, r.out, r.err);
    if (!strstr(r.err, "stack overflow in task 'overflower'"))
        fail_msg("no overflow report for 'overflower'; stderr:\n%s", r.err);
    assert_null(strstr(r.err, "no guard page"));
}

/* Older kernels' mprotect guards: 40,000 tasks go past the budget (a fifth
 * of vm.max_map_count); all spawn, the maps stay under half the limit,
 * one warning says what was given up. */
static void test_scale_mprotect_guards_within_budget(void **state)
{
    struct result r;
    long max = cs_proc_read_long("/proc/sys/vm/max_map_count");
    long n = max > 0 && max / 5 + 10000 > 40000 ? max / 5 + 10000 : 40000;
    (void)state;

    run_child("park", n, "COSCOPE_STACK_GUARD=mprotect", NULL, &r);
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
        fail_msg("child status %#x; stderr:\n%s", r.status, r.err);
    assert_int_equal(field(&r, "spawned"), n);
    assert_int_equal(field(&r, "parked"), n);
    assert_true(field(&r, "maps") < field(&r, "max_map_count") / 2);
    assert_int_equal(field(&r, "malloc_1mib_ok"), 100);
    assert_int_equal(count_str(r.err, "have no guard page"), 1);
}

/* The same budget still catches an overflow in a guarded stack. */
static void test_scale_mprotect_overflow_caught(void **state)
{
    struct result r;
    (void)state;

    run_child("park", 1000, "COSCOPE_STACK_GUARD=mprotect", "SCALE_OVERFLOW=1",
              &r);
    if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGSEGV)
        fail_msg("child status %#x, want SIGSEGV; stderr:\n%s", r.status,
                 r.err);
    if (!strstr(r.err, "stack overflow in task 'overflower'"))
        fail_msg("no overflow report; stderr:\n%s", r.err);
}

/* A burst of 100,000 tasks that all hold a stack at once; once it has
 * ended and the loop idles, RSS comes back to within 10 % of before. */
static void check_rss_after_burst(const char *env)
{
    struct result r;
    long before, peak, after;

#ifdef CS_ASAN
    /* ASan's allocator keeps freed memory in quarantine and its fake
     * stacks hold frames: RSS says nothing about the runtime there */
    print_message("skipped under AddressSanitizer\n");
    skip();
#endif
    run_child("burst", 100000, env, "COSCOPE_SLOW_MS=100000", &r);
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
        fail_msg("child status %#x; stderr:\n%s", r.status, r.err);
    before = field(&r, "rss_before");
    peak = field(&r, "rss_peak");
    after = field(&r, "rss_after");
    /* the burst really held its stacks: a 4 KiB page each at least */
    assert_true(peak - before >= 100000 * 4 * 9 / 10);
    if (after > before + before / 10)
        fail_msg("%s: RSS %ld KiB after the burst, %ld KiB before (peak "
                 "%ld KiB)",
                 env ? env : "traced", after, before, peak);
}

static void test_scale_rss_returns_after_burst(void **state)
{
    (void)state;
    check_rss_after_burst(NULL);
}

static void test_scale_rss_returns_after_burst_untraced(void **state)
{
    (void)state;
    check_rss_after_burst("COSCOPE=off");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_scale_million_parked_then_overflow, setup),
    cmocka_unit_test_setup(test_scale_mprotect_guards_within_budget, setup),
    cmocka_unit_test_setup(test_scale_mprotect_overflow_caught, setup),
    cmocka_unit_test_setup(test_scale_rss_returns_after_burst, setup),
    cmocka_unit_test_setup(test_scale_rss_returns_after_burst_untraced, setup),
};

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], strtol(argv[3], NULL, 10));
    return cs_test_run("scale", tests, sizeof(tests) / sizeof(tests[0]), argc,
                       argv);
}
