/*
 * test_stack.c - task stacks: a task that recurses without bound hits the
 * guard page and the process dies of SIGSEGV after the runtime names the
 * task on stderr; sizes set per coroutine and by COSCOPE_STACK_KB are
 * honoured; deep but bounded use of the default stack is fine.  The
 * fatal-signal handler (runtime/fatal.c) reports in its fixed order, for
 * every fatal signal, and does not loop with a handler that hands the
 * signal back to it.
 *
 * Each victim runs in a child that re-executes this binary with --victim,
 * so that it starts with no cmocka signal handlers and no runtime state
 * inherited from the test process.  Under AddressSanitizer the child runs
 * with handle_segv=0, so that the fault reaches the runtime's handler and
 * then the default action, as it does in a normal build.
 */
#include "cs_test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ASan's allocator cannot be replaced by a calloc of the program's. */
#if defined(__SANITIZE_ADDRESS__)
#define CS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CS_TEST_ASAN 1
#endif
#endif

static int setup(void **state)
{
    (void)state;
    cs_test_reset();
    return 0;
}

/*
 * Recurses until `bytes` of the real stack are used below the first
 * frame (SIZE_MAX: without bound), touching each frame so that a stack too
 * small meets the guard page first.  Measured with frame addresses, so it
 * holds whatever frame sizes the compiler and sanitizers choose.
 */
static int __attribute__((noinline)) recurse(uintptr_t base, size_t bytes)
{
    volatile char frame[256];
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    frame[0] = (char)here;
    frame[255] = frame[0];
    if (base == 0)
        base = here;
    if (bytes != SIZE_MAX && base - here >= bytes)
        return frame[255];
    return recurse(base, bytes) + frame[255];
}

/* ---- the child ---------------------------------------------------------- */

struct victim {
    const char *name; /* task name */
    size_t stack;     /* bytes; 0: the default */
    long depth;       /* stack bytes to use; < 0: without bound */
    int mode;         /* VICTIM_IN_* flags */
};

/* Where and how the victim runs. */
enum {
    VICTIM_IN_THREAD = 1,  /* the loop runs on a second thread */
    VICTIM_IN_HANDLER = 2, /* the program has its own SIGSEGV handler */
    VICTIM_IN_MAIN = 4,    /* main itself recurses, no extra task */
    VICTIM_SENT = 8,       /* the task raise()s SIGSEGV, no fault; tracing
                               and the agent off: only the overflow handler
                               stands in front of the default action */
    VICTIM_ABORT = 16,     /* the task calls abort() */
    VICTIM_HANG = 64,      /* calloc() hangs on the alternate signal stack,
                               as a crash inside malloc holding its lock
                               makes the agent's symboliser hang */
    VICTIM_HANDBACK = 32,  /* after a first cs_run, the program installs a
                               SIGSEGV handler that calls the one it
                               replaced (ours); a second cs_run, which puts
                               ours in front again, runs the victim */
};

/* Exit status of the program's own SIGSEGV handler. */
#define VICTIM_HANDLED 42

/* Exit codes of the victim child. */
enum {
    VICTIM_OK = 0,       /* the task returned */
    VICTIM_FAILED = 3,   /* something else went wrong */
    VICTIM_NO_TASK = 4,  /* cs_create_task refused the coroutine */
    VICTIM_BAD_SIZE = 5, /* cs_coro_set_stack_size refused the size */
};

/* VICTIM_HANG: the program's calloc, which the agent's symboliser calls
 * (libdw), waits forever when called in a signal handler on the
 * alternate stack once armed; else it is libc's. */
static volatile sig_atomic_t calloc_hangs;
#ifndef CS_TEST_ASAN
extern void *__libc_calloc(size_t n, size_t size);

void *calloc(size_t n, size_t size)
{
    stack_t ss;
    if (calloc_hangs && sigaltstack(NULL, &ss) == 0 &&
        (ss.ss_flags & SS_ONSTACK))
        for (;;)
            pause();
    return __libc_calloc(n, size);
}
#endif

static void *victim_body(void *arg)
{
    const struct victim *v = arg;
    if (v->mode & VICTIM_HANG)
        calloc_hangs = 1;
    if (v->mode & VICTIM_SENT)
        raise(SIGSEGV);
    else if (v->mode & VICTIM_ABORT)
        abort();
    else
        recurse(0, v->depth < 0 ? SIZE_MAX : (size_t)v->depth);
    return CS_P(1);
}

static void *victim_main(void *arg)
{
    struct victim *v = arg;
    if (v->mode & VICTIM_IN_MAIN) {
        victim_body(v);
        return CS_P(VICTIM_OK);
    }
    cs_coro *c = cs_coro_new(v->name, victim_body, v);
    if (c == NULL)
        return CS_P(VICTIM_FAILED);
    if (v->stack != 0 && cs_coro_set_stack_size(c, v->stack) != 0) {
        cs_coro_drop(c);
        return CS_P(VICTIM_BAD_SIZE);
    }
    cs_task *t = cs_create_task(c);
    void *r = NULL;
    if (t == NULL)
        return CS_P(VICTIM_NO_TASK);
    if (cs_await(t, &r) != 0 || r != CS_P(1))
        return CS_P(VICTIM_FAILED);
    return CS_P(VICTIM_OK);
}

static void *victim_thread(void *arg)
{
    void *r = CS_P(VICTIM_FAILED);
    if (cs_run(victim_main, arg, &r) != 0)
        r = CS_P(VICTIM_FAILED);
    return r;
}

/* A program's own handler, installed before cs_run: async-signal-safe. */
static void program_segv_handler(int sig)
{
    static const char msg[] = "program handler ran\n";
    (void)sig;
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(VICTIM_HANDLED);
}

/* The handler VICTIM_HANDBACK's program replaced, and its own, which
 * hands every signal back to it: async-signal-safe. */
static struct sigaction handback_old;

static void program_handback_handler(int sig, siginfo_t *si, void *uc)
{
    static const char msg[] = "program handler handed it back\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    if ((handback_old.sa_flags & SA_SIGINFO) && handback_old.sa_sigaction)
        handback_old.sa_sigaction(sig, si, uc);
}

static void *noop_main(void *arg)
{
    (void)arg;
    return NULL;
}

/* argv: --victim NAME STACK_BYTES DEPTH MODE; exits VICTIM_*. */
static int victim_child(char **argv)
{
    struct victim v = {argv[2], strtoul(argv[3], NULL, 10),
                       strtol(argv[4], NULL, 10), atoi(argv[5])};
    void *r = CS_P(VICTIM_FAILED);
    if (v.mode & VICTIM_IN_HANDLER) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = program_segv_handler;
        sa.sa_flags = SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
    }
    if (v.mode & VICTIM_HANDBACK) {
        struct sigaction sa;
        alarm(30); /* a bouncing signal spins: die of SIGALRM instead */
        if (cs_run(noop_main, NULL, NULL) != 0)
            return VICTIM_FAILED;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = program_handback_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &handback_old);
    }
    if (v.mode & VICTIM_IN_THREAD) {
        pthread_t th;
        if (pthread_create(&th, NULL, victim_thread, &v) != 0 ||
            pthread_join(th, &r) != 0)
            return VICTIM_FAILED;
    } else {
        r = victim_thread(&v);
    }
    return (int)CS_I(r);
}

/* ---- the parent --------------------------------------------------------- */

/*
 * Runs v in a fresh child (env_kb, if not NULL, as COSCOPE_STACK_KB);
 * returns its wait status and stores what it wrote to stderr in err.
 */
static int run_victim(const struct victim *v, const char *env_kb, char *err,
                      size_t cap)
{
    char stack[32], depth[32], mode[8];
    snprintf(stack, sizeof(stack), "%zu", v->stack);
    snprintf(depth, sizeof(depth), "%ld", v->depth);
    snprintf(mode, sizeof(mode), "%d", v->mode);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        char asan[512];
        const char *old = getenv("ASAN_OPTIONS");
        snprintf(asan, sizeof(asan), "%s%shandle_segv=0:handle_sigbus=0",
                 old ? old : "", old ? ":" : "");
        setenv("ASAN_OPTIONS", asan, 1);
        if (v->mode & VICTIM_SENT) {
            setenv("COSCOPE", "off", 1);
            setenv("COSCOPE_REPORT", "off", 1);
        }
        if (env_kb != NULL)
            setenv("COSCOPE_STACK_KB", env_kb, 1);
        else
            unsetenv("COSCOPE_STACK_KB");
        char *args[] = {"test_stack", "--victim", (char *)v->name,
                        stack,        depth,      mode,
                        NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(p[0], err + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    err[len] = '\0';
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void expect_overflow_report(int status, const char *err,
                                   const char *name)
{
    if (!WIFSIGNALED(status))
        fail_msg("child exited with %d instead of dying; stderr: %s",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
    if (WTERMSIG(status) != SIGSEGV)
        fail_msg("child died of signal %d, not SIGSEGV; stderr: %s",
                 WTERMSIG(status), err);
    char quoted[128];
    snprintf(quoted, sizeof(quoted), "'%s'", name);
    if (strstr(err, "stack overflow") == NULL || strstr(err, quoted) == NULL)
        fail_msg("stderr does not report a stack overflow in %s: %s", quoted,
                 err);
}

static void expect_clean_exit(int status, const char *err)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child status %#x; stderr: %s", status, err);
}

static void test_stack_overflow_hits_guard_page(void **state)
{
    (void)state;
    char err[4096];
    struct victim v = {"runaway_recursion", 16 * 1024, -1, 0};
    expect_overflow_report(run_victim(&v, NULL, err, sizeof(err)), err,
                           v.name);
}

static void test_stack_overflow_with_default_size(void **state)
{
    (void)state;
    char err[4096];
    struct victim v = {"deep_default", 0, -1, 0};
    expect_overflow_report(run_victim(&v, NULL, err, sizeof(err)), err,
                           v.name);
}

/* 32 KiB of stack: fits the 64 KiB default, not a 16 KiB stack. */
#define DEPTH_32K (32 * 1024)

static void test_stack_overflow_on_second_thread(void **state)
{
    (void)state;
    char err[4096];
    struct victim v = {"threaded_runaway", 32 * 1024, -1, VICTIM_IN_THREAD};
    expect_overflow_report(run_victim(&v, NULL, err, sizeof(err)), err,
                           v.name);
}

static void test_stack_overflow_in_main_task(void **state)
{
    (void)state;
    /* cs_run's own task is named "main". */
    char err[4096];
    struct victim v = {"main", 0, -1, VICTIM_IN_MAIN};
    expect_overflow_report(run_victim(&v, NULL, err, sizeof(err)), err,
                           v.name);
}

static void test_stack_overflow_chains_to_program_handler(void **state)
{
    (void)state;
    /* A SIGSEGV handler the program installed first still runs, after the
     * report. */
    char err[4096];
    struct victim v = {"handled_runaway", 32 * 1024, -1, VICTIM_IN_HANDLER};
    int status = run_victim(&v, NULL, err, sizeof(err));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != VICTIM_HANDLED)
        fail_msg("child status %#x, not the program handler's exit; "
                 "stderr: %s",
                 status, err);
    const char *report = strstr(err, "stack overflow");
    const char *handler = strstr(err, "program handler ran");
    if (report == NULL || strstr(err, "'handled_runaway'") == NULL ||
        handler == NULL || handler < report)
        fail_msg("expected the report, then the program handler: %s", err);
}

/* A SIGSEGV that was sent, not a fault, is not swallowed by the overflow
 * handler: returning from it would not bring the signal back. */
static void test_stack_sent_sigsegv_still_kills(void **state)
{
    (void)state;
    char err[4096];
    struct victim v = {"sender", 0, 0, VICTIM_SENT};
    int status = run_victim(&v, NULL, err, sizeof(err));
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV)
        fail_msg("child status %#x, not death by SIGSEGV; stderr: %s", status,
                 err);
}

/* How many times needle occurs in hay. */
static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* The fatal handler's order: the overflow report, then the agent's crash
 * report, each once. */
static void test_stack_overflow_reported_before_crash(void **state)
{
    (void)state;
    char err[8192];
    struct victim v = {"ordered", 32 * 1024, -1, 0};
    expect_overflow_report(run_victim(&v, NULL, err, sizeof(err)), err,
                           v.name);
    const char *overflow = strstr(err, "stack overflow in task 'ordered'");
    const char *crash = strstr(err, "task 'ordered' crashed: SIGSEGV");
    if (crash == NULL || crash < overflow)
        fail_msg("expected the overflow report, then the crash report: %s",
                 err);
    assert_int_equal(count_of(err, "stack overflow in task"), 1);
    assert_int_equal(count_of(err, "crashed: SIGSEGV"), 1);
}

/* SIGABRT is fatal like the others: reported in the task, then the
 * process dies of it. */
static void test_stack_abort_in_task_is_reported(void **state)
{
    (void)state;
    char err[8192];
    struct victim v = {"aborter", 0, 0, VICTIM_ABORT};
    int status = run_victim(&v, NULL, err, sizeof(err));
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child status %#x, not death by SIGABRT; stderr: %s", status,
                 err);
    if (strstr(err, "task 'aborter' crashed: SIGABRT") == NULL)
        fail_msg("no crash report for the abort: %s", err);
    assert_null(strstr(err, "stack overflow"));
}

/* A handler installed after ours that calls ours would bounce the signal
 * between the two: the runtime takes the default action the second time
 * round, so each reports once and the process dies of the fault. */
static void test_stack_handler_handing_back_reports_once(void **state)
{
    (void)state;
    char err[8192];
    struct victim v = {"bounced", 32 * 1024, -1, VICTIM_HANDBACK};
    expect_overflow_report(run_victim(&v, NULL, err, sizeof(err)), err,
                           v.name);
    assert_int_equal(count_of(err, "stack overflow in task"), 1);
    assert_int_equal(count_of(err, "program handler handed it back"), 1);
    const char *report = strstr(err, "stack overflow");
    const char *handler = strstr(err, "program handler handed it back");
    if (handler < report)
        fail_msg("expected the report, then the program handler: %s", err);
}

/* The agent's crash report hangs naming the frames: after its alarm the
 * handler goes on with the flight recorder and the default action. */
static void test_stack_hung_crash_report_still_dumps_and_dies(void **state)
{
    (void)state;
#ifdef CS_TEST_ASAN
    skip(); /* no calloc of our own to hang (see above) */
#endif
    char err[8192], flight[] = "/tmp/cs_stack_flight_XXXXXX";
    int fd = mkstemp(flight);
    assert_true(fd >= 0);
    close(fd);
    unlink(flight);
    setenv("COSCOPE_FLIGHT", flight, 1);
    struct victim v = {"hung", 32 * 1024, -1, VICTIM_HANG};
    int status = run_victim(&v, NULL, err, sizeof(err));
    unsetenv("COSCOPE_FLIGHT");
    expect_overflow_report(status, err, v.name);
    if (strstr(err, "naming the frames hung; giving up") == NULL)
        fail_msg("the symboliser did not hang, or was not given up: %s", err);
    struct stat st;
    int dumped = stat(flight, &st) == 0 && st.st_size > 0;
    unlink(flight);
    if (!dumped)
        fail_msg("no flight recorder dump after the hung report: %s", err);
}

static void test_stack_absurd_size_is_refused(void **state)
{
    (void)state;
    /* No stack can be this large: the coroutine is refused (at
     * cs_coro_set_stack_size or cs_create_task), never run on a stack
     * of some other size. */
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4095,
                                   SIZE_MAX / 2 + 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char err[4096];
        struct victim v = {"absurd", sizes[i], DEPTH_32K, 0};
        int status = run_victim(&v, NULL, err, sizeof(err));
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != VICTIM_NO_TASK &&
                                   WEXITSTATUS(status) != VICTIM_BAD_SIZE))
            fail_msg("stack size %zu: child status %#x; stderr: %s", sizes[i],
                     status, err);
    }
}

static void test_stack_default_fits_32k(void **state)
{
    (void)state;
    char err[4096];
    struct victim v = {"uses_32k", 0, DEPTH_32K, 0};
    expect_clean_exit(run_victim(&v, NULL, err, sizeof(err)), err);
}

static void test_stack_env_sets_default_size(void **state)
{
    (void)state;
    char err[4096];
    struct victim v = {"env_sized", 0, DEPTH_32K, 0};
    expect_overflow_report(run_victim(&v, "16", err, sizeof(err)), err,
                           v.name);
    /* A larger value lets the same task finish. */
    expect_clean_exit(run_victim(&v, "256", err, sizeof(err)), err);
}

static void *per_coro_main(void *arg)
{
    (void)arg;
    struct victim v = {"big", 0, DEPTH_32K, 0};
    /* Stacks are pooled and reused: many tasks in a row stay correct,
     * whatever size each asked for. */
    for (int i = 0; i < 200; i++) {
        cs_coro *c = cs_coro_new("big", victim_body, &v);
        CS_CHECK_RC(cs_coro_set_stack_size(c, (i % 2 ? 128 : 256) * 1024), 0);
        void *r = NULL;
        CS_CHECK_RC(cs_await(cs_create_task(c), &r), 0);
        CS_CHECK_PTR_EQ(r, CS_P(1));
    }
    return NULL;
}

static void test_stack_size_per_coroutine(void **state)
{
    (void)state;
    int rc = cs_run(per_coro_main, NULL, NULL);
    cs_test_assert_clean();
    assert_rc(rc, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_stack_overflow_hits_guard_page, setup),
    cmocka_unit_test_setup(test_stack_overflow_with_default_size, setup),
    cmocka_unit_test_setup(test_stack_overflow_on_second_thread, setup),
    cmocka_unit_test_setup(test_stack_overflow_in_main_task, setup),
    cmocka_unit_test_setup(test_stack_overflow_chains_to_program_handler,
                           setup),
    cmocka_unit_test_setup(test_stack_sent_sigsegv_still_kills, setup),
    cmocka_unit_test_setup(test_stack_overflow_reported_before_crash, setup),
    cmocka_unit_test_setup(test_stack_abort_in_task_is_reported, setup),
    cmocka_unit_test_setup(test_stack_handler_handing_back_reports_once,
                           setup),
    cmocka_unit_test_setup(test_stack_hung_crash_report_still_dumps_and_dies,
                           setup),
    cmocka_unit_test_setup(test_stack_absurd_size_is_refused, setup),
    cmocka_unit_test_setup(test_stack_default_fits_32k, setup),
    cmocka_unit_test_setup(test_stack_env_sets_default_size, setup),
    cmocka_unit_test_setup(test_stack_size_per_coroutine, setup),
};

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--victim") == 0)
        return victim_child(argv);
    return cs_test_run("runtime_stack", tests,
                       sizeof(tests) / sizeof(tests[0]), argc, argv);
}
