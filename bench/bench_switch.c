/*
 * bench_switch.c - task switch round trip, against swapcontext().
 *
 * coscope, two ways:
 *  - symmetric: two tasks run the same loop of cs_yield(); one round trip
 *    is A yielding to B and B yielding back (N round trips = 2N yields),
 *    timed by main, which awaits both (the usual ping-pong of coroutine
 *    benchmarks);
 *  - main vs worker: main's own loop yields to a worker's loop.  The two
 *    tasks resume at different return addresses, which costs this CPU
 *    branch mispredictions the symmetric case does not have; both figures
 *    are printed so neither hides the other.  Baseline: the same ping-pong between two ucontexts with
 * swapcontext() (which also saves and restores the signal mask with a
 * syscall, DESIGN.md "Switch").  Both in this binary, best of --reps.
 *
 * Also measured, as the floor under both: a round trip of a bare
 * 6-register switch with no scheduler (x86-64).
 *
 * Targets (issue 3): <= 20 ns per round trip and >= 20x swapcontext.
 *
 * Options: --quick, -n N (round trips per repetition, default 10 million;
 * swapcontext runs N/10), --reps R (default 5), --only coscope|symmetric|ucontext
 * (to run one side, e.g. under callgrind).
 */
#include "bench_tasks.h"

#include <ucontext.h>

static const char *prog = "bench_switch";

/* ---- coscope: two tasks yielding to each other ------------------------- */

typedef struct switch_run {
    long n;           /* round trips per repetition */
    int reps;         /* repetitions */
    double best;      /* best ns per round trip, symmetric */
    double best_asym; /* best ns per round trip, main vs worker */
    int error;        /* first error seen, or 0 */
} switch_run;

static int symmetric_only; /* skip the main-vs-worker measurement */

static void *switch_main(void *arg)
{
    switch_run *r = arg;
    r->best = r->best_asym = 1e300;
    for (int rep = 0; rep < r->reps; rep++) {
        /* symmetric: two identical yielders, main waits in cs_gather */
        double ns = bench_pingpong(&r->n);
        if (ns < 0) {
            r->error = (int)ns;
            return NULL;
        }
        printf("  coscope rep %d: %.2f ns/round trip (symmetric)\n", rep + 1,
               ns);
        if (ns < r->best)
            r->best = ns;

        if (symmetric_only)
            continue;

        /* main vs worker */
        cs_task *b = cs_spawn("yield_b", bench_yielder, &r->n);
        if (!b) {
            r->error = CS_ENOMEM;
            return NULL;
        }
        cs_yield(); /* let B start, so both loops run in step */
        int64_t t0 = bench_now_ns();
        for (long i = 0; i < r->n; i++)
            cs_yield();
        int64_t t1 = bench_now_ns();
        int rc = cs_await(b, NULL);
        if (rc != 0) {
            r->error = rc;
            return NULL;
        }
        ns = (double)(t1 - t0) / (double)r->n;
        printf("  coscope rep %d: %.2f ns/round trip (main vs worker)\n",
               rep + 1, ns);
        if (ns < r->best_asym)
            r->best_asym = ns;
    }
    return NULL;
}

static double bench_coscope(long n, int reps, double *asym)
{
    switch_run r = {.n = n, .reps = reps};
    int rc = cs_run(switch_main, &r, NULL);
    if (rc != 0 || r.error != 0) {
        fprintf(stderr, "%s: cs_run failed: %s\n", prog,
                cs_strerror(rc ? rc : r.error));
        exit(1);
    }
    *asym = r.best_asym;
    return r.best;
}

/* ---- floor: a bare 6-register switch, no scheduler ---------------------- */

/*
 * The least a stackful switch can cost on this CPU: push the SysV
 * callee-saved registers, swap stack pointers, pop, return; the same
 * instructions as runtime/switch_x86_64.S, without picking a task.  A
 * round trip of two of these is the floor under cs_yield()'s figure, so a
 * miss can be told apart from slow hardware.  x86-64 only.
 */
#if defined(__x86_64__)
#define HAVE_FLOOR 1
void floor_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".p2align 4\n"
        "floor_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n"
        "  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n"
        "  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n");

static void *floor_main_sp, *floor_peer_sp;

static void floor_peer(void)
{
    for (;;)
        floor_switch(&floor_peer_sp, floor_main_sp);
}

static void floor_rounds(long n)
{
    for (long i = 0; i < n; i++)
        floor_switch(&floor_main_sp, floor_peer_sp);
}

static double bench_floor(long n, int reps)
{
    static uintptr_t stack[8192] __attribute__((aligned(16)));
    uintptr_t *sp = stack + 8192;

    *--sp = 0;                     /* keeps the peer's frame 16-aligned */
    *--sp = (uintptr_t)floor_peer; /* floor_switch returns here */
    for (int i = 0; i < 6; i++)
        *--sp = 0; /* rbp rbx r12 r13 r14 r15 */
    floor_peer_sp = sp;
    return bench_best_rounds("bare switch", floor_rounds, n, reps);
}
#endif

/* ---- baseline: swapcontext ping-pong ----------------------------------- */

static ucontext_t uc_main, uc_peer;

static void uc_peer_fn(void)
{
    for (;;)
        swapcontext(&uc_peer, &uc_main);
}

static void uc_rounds(long n)
{
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_peer);
}

static double bench_ucontext(long n, int reps)
{
    static char stack[64 * 1024];

    if (getcontext(&uc_peer) != 0) {
        perror("bench_switch: getcontext");
        exit(1);
    }
    uc_peer.uc_stack.ss_sp = stack;
    uc_peer.uc_stack.ss_size = sizeof stack;
    uc_peer.uc_link = NULL;
    makecontext(&uc_peer, uc_peer_fn, 0);
    swapcontext(&uc_main, &uc_peer); /* start the peer */
    return bench_best_rounds("swapcontext", uc_rounds, n, reps);
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_parse(argc, argv, &o, "--only",
                " [--only coscope|symmetric|ucontext]");
    long n = bench_n(&o, 10000, 10000000);
    int reps = bench_reps(&o, 1, 5);
    long n_uc = n / 10 > 0 ? n / 10 : 1;
    /* --only symmetric: just the symmetric ping-pong (for callgrind) */
    symmetric_only = o.extra && strcmp(o.extra, "symmetric") == 0;
    int do_cs = bench_only(&o, "coscope") || symmetric_only;
    int do_uc = bench_only(&o, "ucontext");
    if (!do_cs && !do_uc)
        bench_usage(argv[0], " [--only coscope|symmetric|ucontext]");

    printf(
        "switch round trip: %ld round trips (swapcontext %ld), best of %d\n",
        n, n_uc, reps);
    double cs_asym = 0;
    double cs = do_cs ? bench_coscope(n, reps, &cs_asym) : 0;
    double uc = do_uc ? bench_ucontext(n_uc, reps) : 0;
#ifdef HAVE_FLOOR
    double fl = do_cs && do_uc ? bench_floor(n, reps) : 0;
#endif
    bench_printf_if(do_cs, "coscope cs_yield round trip: %.2f ns\n", cs);
    bench_printf_if(do_cs, "coscope main vs worker:      %.2f ns\n", cs_asym);
    bench_printf_if(do_uc, "swapcontext round trip:      %.2f ns\n", uc);
    if (!do_cs || !do_uc)
        return 0;
    char v[64], b[64], r[64];

    double ratio = uc / cs;
    printf("ratio swapcontext/coscope:   %.1fx\n", ratio);
#ifdef HAVE_FLOOR
    printf("bare 6-register switch round trip (floor, no scheduler): %.2f ns; "
           "cs_yield adds %.2f ns\n",
           fl, cs - fl);
    char f[64], fr[64];
    bench_row("bare switch (floor, info)",
              bench_fmt(f, sizeof f, "%.1f ns", fl),
              bench_fmt(b, sizeof b, "swapcontext %.1f ns", uc),
              bench_fmt(fr, sizeof fr, "%.1fx faster", uc / fl), "(none)", -1);
#endif
    bench_row("switch round trip", bench_fmt(v, sizeof v, "%.1f ns", cs),
              bench_fmt(b, sizeof b, "swapcontext %.1f ns", uc),
              bench_fmt(r, sizeof r, "%.1fx faster", ratio),
              "<= 20 ns, >= 20x", cs <= 20.0 && ratio >= 20.0);
    bench_row("switch round trip, main vs worker",
              bench_fmt(v, sizeof v, "%.1f ns", cs_asym),
              bench_fmt(b, sizeof b, "swapcontext %.1f ns", uc),
              bench_fmt(r, sizeof r, "%.1fx faster", uc / cs_asym), "(info)",
              -1);
    return 0;
}
