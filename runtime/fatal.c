/*
 * fatal.c - the runtime's one handler of fatal signals: SIGSEGV, SIGBUS,
 * SIGABRT, SIGFPE and SIGILL.
 *
 * One handler, installed in front of whatever handled the signal before
 * (cs__fatal_install, at each cs_run), runs on the thread's alternate
 * signal stack (a task that overflowed has no stack left) and calls, in
 * this order (docs/runtime.md, "Fatal signals"):
 *
 *   1. the stack-overflow report (stack.c): a fault in the running task's
 *      guard page is named, "stack overflow in task 'T'";
 *   2. the agent's crash report, through its hook table (the runtime
 *      never calls agent code by name): "task 'T' crashed: SIG at ADDR"
 *      with the stack at the fault;
 *   3. the flight recorder (trace.c): a crash record in the ring, then
 *      the rings dumped to COSCOPE_FLIGHT, so the dump holds the last
 *      steps before the fault;
 *   4. the previous disposition: a handler installed before ours, or the
 *      default action (a fault re-executes and dies of the signal, with
 *      its core; a sent signal is raised again).
 *
 * Steps 2 and 3 run once per process: a fatal signal inside one of them
 * (the agent's symboliser faulting) enters the handler again, which goes
 * on with the steps not yet begun.  A handler installed after ours that
 * hands the signal back to us would loop: called again from inside the
 * handler we chained to, we take the default action instead.
 *
 * Async-signal-safety: everything here is (sigaction, signal, raise,
 * atomics, initial-exec TLS); steps 1 and 3 are, and say so; step 2 is as
 * far as it can be (the agent names frames under alarm(2), docs/agent.md).
 */
#include "internal.h"
#include "fatal.h"

#include <errno.h>
#include <sys/mman.h>

/* The alternate signal stack: the steps run on it, the agent's libunwind
 * walk included, and under ASan their frames are several times larger.
 * Untouched pages cost nothing. */
#define CS__ALTSTACK_SIZE (256 * 1024)

#define CS__FATAL_SIGNALS 5
static const int cs__fatal_sig[CS__FATAL_SIGNALS] = {SIGSEGV, SIGBUS, SIGABRT,
                                                     SIGFPE, SIGILL};
/* What handled each signal before us (written under cs__fatal_mu, before
 * our handler is in place). */
static struct sigaction cs__fatal_old[CS__FATAL_SIGNALS];
static pthread_mutex_t cs__fatal_mu = PTHREAD_MUTEX_INITIALIZER;

/* The once-per-process steps begun (bits). */
#define CS__STEP_AGENT 1
#define CS__STEP_FLIGHT 2
static int cs__fatal_steps;
/* Per signal, where this thread's handler stood when it last handed the
 * signal on, and the siginfo it handed.  Entered again deeper on the stack
 * with the same siginfo: the previous handler called us (a loop).  A new
 * signal comes with a siginfo of its own, even after the last one's
 * handler jumped out instead of returning. */
static __thread struct {
    uintptr_t sp;
    const siginfo_t *si;
} cs__fatal_chain[CS__FATAL_SIGNALS]
    __attribute__((tls_model("initial-exec")));

static bool cs__fatal_claim(int step)
{
    return !(__atomic_fetch_or(&cs__fatal_steps, step, __ATOMIC_ACQ_REL) &
             step);
}

static void cs__fatal_handler(int sig, siginfo_t *si, void *uc)
{
    const cs_agent_hooks *h = __atomic_load_n(&cs__agent, __ATOMIC_ACQUIRE);
    static const struct sigaction dfl = {.sa_handler = SIG_DFL};
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    int i = 0;

    while (i < CS__FATAL_SIGNALS - 1 && cs__fatal_sig[i] != sig)
        i++;
    if (cs__fatal_chain[i].si == si && sp < cs__fatal_chain[i].sp) {
        cs__tr_signal_chain(&dfl, sig, si, uc); /* handed back to us */
        return;
    }
    cs__stack_overflow_report(sig, si);
    if (h && h->fatal_signal && cs__fatal_claim(CS__STEP_AGENT))
        h->fatal_signal(sig, si, uc);
    if (cs__fatal_claim(CS__STEP_FLIGHT))
        cs__trace_crash();
    cs__fatal_chain[i].sp = sp;
    cs__fatal_chain[i].si = si;
    cs__tr_signal_chain(&cs__fatal_old[i], sig, si, uc);
    cs__fatal_chain[i].si = NULL;
}

void cs__fatal_install(void)
{
    struct sigaction sa, cur;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = cs__fatal_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    pthread_mutex_lock(&cs__fatal_mu);
    for (int i = 0; i < CS__FATAL_SIGNALS; i++) {
        if (sigaction(cs__fatal_sig[i], NULL, &cur) < 0 ||
            ((cur.sa_flags & SA_SIGINFO) &&
             cur.sa_sigaction == cs__fatal_handler))
            continue;
        cs__fatal_old[i] = cur; /* before a signal can find ours */
        sigaction(cs__fatal_sig[i], &sa, NULL);
    }
    pthread_mutex_unlock(&cs__fatal_mu);
}

int cs__fatal_thread_init(cs__loop *loop)
{
    stack_t cur, ss;
    size_t size = CS__ALTSTACK_SIZE;

    if (sigaltstack(NULL, &cur) < 0)
        return -errno;
    if (cur.ss_flags & SS_ONSTACK)
        return 0; /* cs_run from a signal handler: leave it alone */
    if (!(cur.ss_flags & SS_DISABLE) && cur.ss_size >= size)
        return 0; /* the thread already has a big enough one; use it */
    /* none, or too small for the steps (ASan gives each thread a small
     * one): ours, and the old one back at the end */
    loop->old_altstack = cur;
    loop->altstack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (loop->altstack == MAP_FAILED) {
        loop->altstack = NULL;
        return CS_ENOMEM;
    }
    ss.ss_sp = loop->altstack;
    ss.ss_size = size;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) < 0) {
        munmap(loop->altstack, size);
        loop->altstack = NULL;
        return -errno;
    }
    return 0;
}

void cs__fatal_thread_fini(cs__loop *loop)
{
    stack_t ss = {.ss_flags = SS_DISABLE};

    if (!loop->altstack)
        return;
    if (!(loop->old_altstack.ss_flags & SS_DISABLE))
        ss = loop->old_altstack;
    sigaltstack(&ss, NULL);
    munmap(loop->altstack, CS__ALTSTACK_SIZE);
    loop->altstack = NULL;
}
