/*
 * test_switch.c - the context switch of runtime/switch.h on its own: no
 * event loop, no tasks, just contexts on raw malloc'd or mmap'd stacks.
 * The same file is built for every backend that can run here (see
 * CMakeLists.txt).  Assertions run on the main context only, so a failure
 * never longjmps across stacks; coroutines record what they saw instead.
 * With -DSWITCH_TEST_NO_CMOCKA (the aarch64 cross build, which has no
 * cmocka) a small stand-in runs the same table.
 */
#include "switch.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <unwind.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif

#include <setjmp.h>
#ifndef SWITCH_TEST_NO_CMOCKA
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#else
static jmp_buf fail_env;

static void fail_at(const char *file, int line, const char *what, uintmax_t a,
                    uintmax_t b)
{
    fprintf(stderr, "%s:%d: %s (0x%jx, 0x%jx)\n", file, line, what, a, b);
    longjmp(fail_env, 1);
}

#define assert_true(c)                                                        \
    do {                                                                      \
        if (!(c))                                                             \
            fail_at(__FILE__, __LINE__, "false: " #c, 0, 0);                  \
    } while (0)
#define assert_int_equal(a, b)                                                \
    do {                                                                      \
        uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                   \
        if (a_ != b_)                                                         \
            fail_at(__FILE__, __LINE__, #a " != " #b, a_, b_);                \
    } while (0)
#define assert_ptr_equal(a, b) assert_int_equal((uintptr_t)(a), (uintptr_t)(b))
#define assert_in_range(v, lo, hi)                                            \
    do {                                                                      \
        uintmax_t v_ = (uintmax_t)(v);                                        \
        if (v_ < (uintmax_t)(lo) || v_ > (uintmax_t)(hi))                     \
            fail_at(__FILE__, __LINE__, #v " not in [" #lo ", " #hi "]", v_,  \
                    (uintmax_t)(lo));                                         \
    } while (0)

struct CMUnitTest {
    const char *name;
    void (*fn)(void **state);
};
#define cmocka_unit_test(f)                                                   \
    {                                                                         \
#f, f                                                                 \
    }
#define cmocka_run_group_tests(t, setup, teardown)                            \
    run_tests(t, sizeof(t) / sizeof((t)[0]))

static int run_tests(const struct CMUnitTest *t, size_t n)
{
    volatile int failed = 0;

    for (volatile size_t i = 0; i < n; i++) {
        if (setjmp(fail_env) == 0) {
            t[i].fn(NULL);
            printf("[ OK ] %s\n", t[i].name);
        } else {
            printf("[FAIL] %s\n", t[i].name);
            failed++;
        }
    }
    printf("%d passed, %d failed\n", (int)n - failed, failed);
    return failed;
}
#endif

/* GCC may clone or merge a noinline function (foo.constprop.0), and then
 * the address we compare resume addresses against is not the code that
 * ran; noipa forbids that.  Clang has no noipa and does not clone. */
#if defined(__clang__)
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif

/* Makes the compiler forget what it knows about v and hold it in a
 * register of the given class right here. */
#define IN_GPR(v) __asm__ volatile("" : "+r"(v))
#if defined(__aarch64__)
#define IN_FPR(v) __asm__ volatile("" : "+w"(v))
#elif defined(__x86_64__)
#define IN_FPR(v) __asm__ volatile("" : "+x"(v))
#else
#define IN_FPR(v) __asm__ volatile("" : "+m"(v))
#endif

/* The stack pointer at this point of the enclosing function (a macro, not
 * a function, so it is not the sp of some helper's frame).  Only the two
 * architectures the asm backends exist for; elsewhere sp checks are off. */
#if defined(__x86_64__)
#define HAVE_READ_SP 1
#define READ_SP(v) __asm__ volatile("movq %%rsp, %0" : "=r"(v))
#elif defined(__aarch64__)
#define HAVE_READ_SP 1
#define READ_SP(v) __asm__ volatile("mov %0, sp" : "=r"(v))
#else
#define HAVE_READ_SP 0
#define READ_SP(v) ((v) = 0)
#endif

enum { STACK_SIZE = 64 * 1024 };

/* A task stack: malloc'd, or mmap'd with a PROT_NONE guard page below it
 * so that running off the end faults instead of corrupting the heap. */
struct stack {
    void *lo;      /* usable stack, [lo, lo + size) */
    size_t size;   /* usable bytes */
    void *map;     /* whole mapping when mmap'd, else NULL */
    size_t maplen; /* its length */
};

static void stack_alloc(struct stack *s, size_t size, bool use_mmap)
{
    memset(s, 0, sizeof *s);
    s->size = size;
    if (!use_mmap) {
        s->lo = malloc(size);
        assert_true(s->lo != NULL);
        return;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    s->maplen = page + ((size + page - 1) & ~(page - 1));
    s->map = mmap(NULL, s->maplen, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(s->map != MAP_FAILED);
    assert_int_equal(mprotect(s->map, page, PROT_NONE), 0);
    s->lo = (char *)s->map + s->maplen - size;
}

static void stack_free(struct stack *s)
{
#if defined(ASAN_UNPOISON_MEMORY_REGION)
    /* Our coroutines never return, so AddressSanitizer's redzones for
     * their frames stay poisoned, and munmap does not clear them: the next
     * stack mapped at this address would report false overflows. */
    ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
    if (s->map)
        munmap(s->map, s->maplen);
    else
        free(s->lo);
}

static bool on_stack(const struct stack *s, uintptr_t p)
{
    return p >= (uintptr_t)s->lo && p <= (uintptr_t)s->lo + s->size;
}

static cs__ctx main_ctx;

/* --- ping-pong and ring ------------------------------------------------ */

enum { PP_TASKS = 4, PP_ROUNDS = 100000 };

struct pp_task {
    cs__ctx ctx;
    struct stack stack;
    int id;
    unsigned long runs; /* times resumed */
    bool own_stack;     /* every run was on this task's stack */
    cs__ctx *next;      /* where to switch after a run */
};

static int pp_last; /* id of the task that ran last */

static void pp_entry(void *arg)
{
    struct pp_task *t = arg;

    for (;;) {
        t->runs++;
        pp_last = t->id;
        if (!on_stack(&t->stack, (uintptr_t)__builtin_frame_address(0)))
            t->own_stack = false;
        cs__switch(&t->ctx, t->next);
    }
}

static void pp_start(struct pp_task *tasks, cs__ctx *next_of_last)
{
    for (int i = 0; i < PP_TASKS; i++) {
        struct pp_task *t = &tasks[i];
        stack_alloc(&t->stack, STACK_SIZE, i % 2);
        t->id = i;
        t->runs = 0;
        t->own_stack = true;
        t->next = next_of_last;
        cs__ctx_make(&t->ctx, t->stack.lo, t->stack.size, pp_entry, t);
    }
}

static void test_switch_pingpong_main_and_tasks(void **state)
{
    static struct pp_task tasks[PP_TASKS];
    (void)state;

    pp_start(tasks, &main_ctx);
    for (int i = 0; i < PP_ROUNDS; i++) {
        struct pp_task *t = &tasks[i % PP_TASKS];
        pp_last = -1;
        cs__switch(&main_ctx, &t->ctx);
        if (pp_last != t->id || t->runs != (unsigned long)i / PP_TASKS + 1) {
            assert_int_equal(pp_last, t->id);
            assert_int_equal(t->runs, i / PP_TASKS + 1);
        }
    }
    for (int i = 0; i < PP_TASKS; i++) {
        assert_true(tasks[i].own_stack);
        stack_free(&tasks[i].stack);
    }
}

/* Tasks hand control straight to each other, never through main except
 * at the end of a lap. */
static void test_switch_ring_between_tasks(void **state)
{
    static struct pp_task tasks[PP_TASKS];
    enum { LAPS = 1000 };
    (void)state;

    pp_start(tasks, &main_ctx);
    for (int i = 0; i < PP_TASKS - 1; i++)
        tasks[i].next = &tasks[i + 1].ctx;
    for (int lap = 0; lap < LAPS; lap++) {
        pp_last = -1;
        cs__switch(&main_ctx, &tasks[0].ctx);
        assert_int_equal(pp_last, PP_TASKS - 1);
    }
    for (int i = 0; i < PP_TASKS; i++) {
        assert_int_equal(tasks[i].runs, LAPS);
        assert_true(tasks[i].own_stack);
        stack_free(&tasks[i].stack);
    }
}

/* --- callee-saved registers -------------------------------------------- */

/* The values of v0..v13 and d0..d9 pinned in their registers (as the
 * compiler must keep them live across the switch), before and after. */
#define IN_ALL_REGS()                                                         \
    IN_GPR(v0);                                                               \
    IN_GPR(v1);                                                               \
    IN_GPR(v2);                                                               \
    IN_GPR(v3);                                                               \
    IN_GPR(v4);                                                               \
    IN_GPR(v5);                                                               \
    IN_GPR(v6);                                                               \
    IN_GPR(v7);                                                               \
    IN_GPR(v8);                                                               \
    IN_GPR(v9);                                                               \
    IN_GPR(v10);                                                              \
    IN_GPR(v11);                                                              \
    IN_GPR(v12);                                                              \
    IN_GPR(v13);                                                              \
    IN_FPR(d0);                                                               \
    IN_FPR(d1);                                                               \
    IN_FPR(d2);                                                               \
    IN_FPR(d3);                                                               \
    IN_FPR(d4);                                                               \
    IN_FPR(d5);                                                               \
    IN_FPR(d6);                                                               \
    IN_FPR(d7);                                                               \
    IN_FPR(d8);                                                               \
    IN_FPR(d9);                                                               \
    (void)0

/*
 * Keeps 14 integers and 10 doubles live across one cs__switch(): more than
 * the callee-saved registers hold (rbx r12-r15 on x86-64; x19-x28 and
 * d8-d15 on aarch64), so all of those carry values and the rest spill.
 * Both sides of the switch run this with different seeds, so a register
 * the switch forgot to save would come back holding the other side's
 * value.  Also checks that sp and the frame pointer come back unchanged.
 * Returns the number of values that changed.
 */
static NOIPA int keep_across_switch(uint64_t seed, cs__ctx *from, cs__ctx *to)
{
    const uint64_t k = 0x9e3779b97f4a7c15u;
    uint64_t v0 = seed ^ k * 1, v1 = seed ^ k * 2, v2 = seed ^ k * 3;
    uint64_t v3 = seed ^ k * 4, v4 = seed ^ k * 5, v5 = seed ^ k * 6;
    uint64_t v6 = seed ^ k * 7, v7 = seed ^ k * 8, v8 = seed ^ k * 9;
    uint64_t v9 = seed ^ k * 10, v10 = seed ^ k * 11, v11 = seed ^ k * 12;
    uint64_t v12 = seed ^ k * 13, v13 = seed ^ k * 14;
    double s = (double)(seed % 1000003);
    double d0 = s + 0.5, d1 = s + 1.5, d2 = s + 2.5, d3 = s + 3.5;
    double d4 = s + 4.5, d5 = s + 5.5, d6 = s + 6.5, d7 = s + 7.5;
    double d8 = s + 8.5, d9 = s + 9.5;
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0), sp, sp_after;
    int bad = 0;

    READ_SP(sp);

    IN_ALL_REGS();
    cs__switch(from, to);
    READ_SP(sp_after);
    IN_ALL_REGS();

    bad += v0 != (seed ^ k * 1);
    bad += v1 != (seed ^ k * 2);
    bad += v2 != (seed ^ k * 3);
    bad += v3 != (seed ^ k * 4);
    bad += v4 != (seed ^ k * 5);
    bad += v5 != (seed ^ k * 6);
    bad += v6 != (seed ^ k * 7);
    bad += v7 != (seed ^ k * 8);
    bad += v8 != (seed ^ k * 9);
    bad += v9 != (seed ^ k * 10);
    bad += v10 != (seed ^ k * 11);
    bad += v11 != (seed ^ k * 12);
    bad += v12 != (seed ^ k * 13);
    bad += v13 != (seed ^ k * 14);
    bad += d0 != s + 0.5;
    bad += d1 != s + 1.5;
    bad += d2 != s + 2.5;
    bad += d3 != s + 3.5;
    bad += d4 != s + 4.5;
    bad += d5 != s + 5.5;
    bad += d6 != s + 6.5;
    bad += d7 != s + 7.5;
    bad += d8 != s + 8.5;
    bad += d9 != s + 9.5;
    bad += fp != (uintptr_t)__builtin_frame_address(0);
    bad += sp != sp_after;
    return bad;
}

enum { KEEP_ROUNDS = 10000 };

struct keep_task {
    cs__ctx ctx;
    struct stack stack;
    int bad;    /* values lost on the task's side */
    int rounds; /* switches completed on the task's side */
};

static void keep_entry(void *arg)
{
    struct keep_task *t = arg;

    for (uint64_t i = 0;; i++) {
        t->bad += keep_across_switch(2 * i + 2, &t->ctx, &main_ctx);
        t->rounds++;
    }
}

static void test_switch_callee_saved_registers_survive(void **state)
{
    static struct keep_task t;
    int bad = 0;
    (void)state;

    stack_alloc(&t.stack, STACK_SIZE, true);
    cs__ctx_make(&t.ctx, t.stack.lo, t.stack.size, keep_entry, &t);
    for (uint64_t i = 0; i < KEEP_ROUNDS; i++)
        bad += keep_across_switch(2 * i + 1, &main_ctx, &t.ctx);
    /* The task is parked inside its first call after KEEP_ROUNDS - 1
     * completed ones. */
    assert_int_equal(bad, 0);
    assert_int_equal(t.bad, 0);
    assert_int_equal(t.rounds, KEEP_ROUNDS - 1);
    stack_free(&t.stack);
}

/* --- a new context's first frame --------------------------------------- */

struct entry_seen {
    cs__ctx ctx;
    void *arg;        /* argument entry received */
    uintptr_t cfa;    /* sp in the trampoline at the call to entry */
    uintptr_t fp;     /* entry's frame pointer */
    uintptr_t asm_sp; /* sp read directly (aarch64: always aligned) */
    bool ran;
};

static struct entry_seen seen;

static void record_entry(void *arg)
{
    seen.arg = arg;
    seen.cfa = (uintptr_t)__builtin_dwarf_cfa();
    seen.fp = (uintptr_t)__builtin_frame_address(0);
#if defined(__aarch64__)
    __asm__ volatile("mov %0, sp" : "=r"(seen.asm_sp));
#else
    seen.asm_sp = 0;
#endif
    seen.ran = true;
    cs__switch(&seen.ctx, &main_ctx);
    abort(); /* never resumed */
}

/*
 * Both ABIs want sp 16-byte aligned at a call, so entry's CFA (the sp at
 * the call to it) must be; with a frame pointer set up by the usual
 * prologue the frame address is too.  cs__ctx_make() gets deliberately
 * misaligned bounds and must align them itself.  The arguments have bits
 * set in both 32-bit halves and bit 31 set, which catches a backend that
 * narrows or sign-extends them.
 */
static void test_switch_entry_stack_aligned(void **state)
{
    static const size_t offs[] = {0, 1, 8, 15};
    static const size_t sizes[] = {STACK_SIZE, STACK_SIZE - 1, STACK_SIZE - 8,
                                   STACK_SIZE - 24};
    static const uint64_t args[] = {0xfedcba9880000000u, 0x80000001u,
                                    0xffffffffffffffffu, 0};
    char *mem = malloc(STACK_SIZE + 16);
    (void)state;

    assert_true(mem != NULL);
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 4; j++) {
            char *lo = mem + offs[i];
            void *arg = (void *)(uintptr_t)args[(i + j) % 4];

            memset(&seen, 0, sizeof seen);
            cs__ctx_make(&seen.ctx, lo, sizes[j], record_entry, arg);
            cs__switch(&main_ctx, &seen.ctx);
            assert_true(seen.ran);
            assert_ptr_equal(seen.arg, arg);
            assert_int_equal(seen.cfa % 16, 0);
            assert_int_equal(seen.fp % 16, 0);
            assert_int_equal(seen.asm_sp % 16, 0);
            assert_in_range(seen.cfa, (uintptr_t)lo, (uintptr_t)lo + sizes[j]);
            /* Not more than a few words used above entry's frame. */
            assert_true((uintptr_t)lo + sizes[j] - seen.cfa <= 256);
        }
    }
    free(mem);
}

/* --- cs__ctx_regs ------------------------------------------------------ */

struct parked_at {
    uintptr_t fp; /* frame address of park_here() that switched */
    uintptr_t sp; /* sp there, just before the switch */
};

/* The function whose call to cs__switch() cs__ctx_regs() must describe. */
static NOIPA void park_here(cs__ctx *from, cs__ctx *to, struct parked_at *at)
{
    at->fp = (uintptr_t)__builtin_frame_address(0);
    READ_SP(at->sp);
    cs__switch(from, to);
    __asm__ volatile(""); /* not a tail call: park here, not in our caller */
}

static struct {
    cs__ctx ctx;
    struct stack stack;
    struct parked_at at;    /* where the task parked */
    uintptr_t main_regs[3]; /* main's regs, read by the running task */
} rg;

static void regs_entry(void *arg)
{
    (void)arg;
    cs__ctx_regs(&main_ctx, &rg.main_regs[0], &rg.main_regs[1],
                 &rg.main_regs[2]);
    park_here(&rg.ctx, &main_ctx, &rg.at);
    abort();
}

static void check_regs(uintptr_t sp, uintptr_t fp, uintptr_t ip,
                       const struct parked_at *at)
{
    /* fp is the caller's frame pointer; sp lies below the frame record,
     * at most a small frame away; ip is inside park_here, past its
     * start.  4096 is a bound on park_here's size, not its real length. */
#if HAVE_READ_SP
    assert_int_equal(fp, at->fp);
    assert_true(sp <= fp);
    assert_true(fp - sp < 4096);
    assert_int_equal(sp, at->sp);
#endif
    assert_in_range(ip, (uintptr_t)park_here + 1, (uintptr_t)park_here + 4096);
}

static void test_switch_regs_describe_parked_caller(void **state)
{
    struct parked_at main_at;
    uintptr_t sp, fp, ip;
    (void)state;

    memset(&rg, 0, sizeof rg);
    stack_alloc(&rg.stack, STACK_SIZE, true);
    cs__ctx_make(&rg.ctx, rg.stack.lo, rg.stack.size, regs_entry, NULL);

    /* Not run yet: the stack's top, and a frame-pointer chain that ends. */
    cs__ctx_regs(&rg.ctx, &sp, &fp, &ip);
    assert_true(on_stack(&rg.stack, sp));
    assert_int_equal(fp, 0);
    assert_true(ip != 0);

    park_here(&main_ctx, &rg.ctx, &main_at);

    cs__ctx_regs(&rg.ctx, &sp, &fp, &ip);
    assert_true(on_stack(&rg.stack, sp));
    check_regs(sp, fp, ip, &rg.at);
    check_regs(rg.main_regs[0], rg.main_regs[1], rg.main_regs[2], &main_at);
    stack_free(&rg.stack);
}

/* --- nested creation --------------------------------------------------- */

enum { NEST_DEPTH = 8 };

static struct {
    cs__ctx ctx[NEST_DEPTH];
    struct stack stack[NEST_DEPTH];
    int log[2 * NEST_DEPTH]; /* +i on first entry, -i-1 when resumed */
    int nlog;
    bool locals_ok; /* each level's local survived, on its stack */
} nest;

static void nest_entry(void *arg)
{
    int level = (int)(intptr_t)arg;
    volatile int mark = 1000 + level; /* lives on this task's stack */
    cs__ctx *parent = level ? &nest.ctx[level - 1] : &main_ctx;

    nest.log[nest.nlog++] = level;
    if (level + 1 < NEST_DEPTH) {
        cs__ctx_make(&nest.ctx[level + 1], nest.stack[level + 1].lo,
                     nest.stack[level + 1].size, nest_entry,
                     (void *)(intptr_t)(level + 1));
        cs__switch(&nest.ctx[level], &nest.ctx[level + 1]);
    } else {
        cs__switch(&nest.ctx[level], &main_ctx); /* the deepest, to main */
    }
    nest.log[nest.nlog++] = -level - 1;
    if (mark != 1000 + level ||
        !on_stack(&nest.stack[level], (uintptr_t)&mark))
        nest.locals_ok = false;
    cs__switch(&nest.ctx[level], parent);
    abort();
}

/* Each level creates the next from inside a coroutine and switches into
 * it; the deepest returns to main, which then resumes it, and control
 * unwinds back up the chain of parents to main. */
static void test_switch_nested_creation(void **state)
{
    (void)state;

    memset(&nest, 0, sizeof nest);
    nest.locals_ok = true;
    /* Allocated here because allocation asserts, and assertions belong on
     * the main context; making the contexts is what happens nested. */
    for (int i = 0; i < NEST_DEPTH; i++)
        stack_alloc(&nest.stack[i], STACK_SIZE, i % 2);
    cs__ctx_make(&nest.ctx[0], nest.stack[0].lo, nest.stack[0].size,
                 nest_entry, (void *)(intptr_t)0);
    cs__switch(&main_ctx, &nest.ctx[0]);
    assert_int_equal(nest.nlog, NEST_DEPTH);
    cs__switch(&main_ctx, &nest.ctx[NEST_DEPTH - 1]);
    assert_int_equal(nest.nlog, 2 * NEST_DEPTH);
    for (int i = 0; i < NEST_DEPTH; i++) {
        assert_int_equal(nest.log[i], i);
        assert_int_equal(nest.log[NEST_DEPTH + i], -(NEST_DEPTH - i));
    }
    assert_true(nest.locals_ok);
    for (int i = 0; i < NEST_DEPTH; i++)
        stack_free(&nest.stack[i]);
}

/* --- unwinding from a coroutine ---------------------------------------- */

enum { UW_MAX = 64 };

static struct {
    cs__ctx ctx;
    struct stack stack;
    uintptr_t ip[UW_MAX]; /* frames seen, innermost first */
    int n;
    int rc; /* _Unwind_Backtrace's result */
} uw;

extern void cs__trampoline(void); /* asm backends' root frame */

static _Unwind_Reason_Code uw_frame(struct _Unwind_Context *c, void *arg)
{
    (void)arg;
    if (uw.n == UW_MAX)
        return _URC_NORMAL_STOP; /* a runaway walk; fails below */
    uw.ip[uw.n++] = (uintptr_t)_Unwind_GetIP(c);
    return _URC_NO_REASON;
}

static NOIPA void uw_walk(int depth)
{
    if (depth > 0) {
        uw_walk(depth - 1);
        __asm__ volatile("" ::: "memory"); /* keep the recursion real */
        return;
    }
    uw.rc = _Unwind_Backtrace(uw_frame, NULL);
}

static void uw_entry(void *arg)
{
    (void)arg;
    uw_walk(3);
    cs__switch(&uw.ctx, &main_ctx);
    abort();
}

/*
 * The DWARF unwinder (the one gdb, libunwind and C++ exceptions use) must
 * walk from inside a coroutine up to its root and stop there cleanly,
 * instead of running into the zeroed or foreign words above the first
 * frame.
 */
static void test_switch_unwind_stops_at_root(void **state)
{
    int last;
    (void)state;

    memset(&uw, 0, sizeof uw);
    stack_alloc(&uw.stack, STACK_SIZE, true);
    cs__ctx_make(&uw.ctx, uw.stack.lo, uw.stack.size, uw_entry, NULL);
    cs__switch(&main_ctx, &uw.ctx);

    assert_int_equal(uw.rc, _URC_END_OF_STACK);
    /* The walk may report a final frame with ip 0 for the end. */
    last = uw.n - 1;
    while (last > 0 && uw.ip[last] == 0)
        last--;
    /* Innermost first (_Unwind_Backtrace leaves itself out): 4 x uw_walk,
     * uw_entry, then the root.  Bounds of 4096 stand in for the unknown
     * function sizes. */
    for (int i = 0; i < 4; i++)
        assert_in_range(uw.ip[i], (uintptr_t)uw_walk + 1,
                        (uintptr_t)uw_walk + 4096);
    assert_in_range(uw.ip[4], (uintptr_t)uw_entry + 1,
                    (uintptr_t)uw_entry + 4096);
#if !defined(CS_SWITCH_UCONTEXT)
    /* A return address: just past the call, still inside the trampoline. */
    assert_int_equal(last, 5);
    assert_in_range(uw.ip[5], (uintptr_t)cs__trampoline + 1,
                    (uintptr_t)cs__trampoline + 32);
#else
    /* switch_ucontext.c's start routine, then perhaps libc's. */
    assert_in_range(last, 5, 6);
#endif
    stack_free(&uw.stack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_pingpong_main_and_tasks),
        cmocka_unit_test(test_switch_ring_between_tasks),
        cmocka_unit_test(test_switch_callee_saved_registers_survive),
        cmocka_unit_test(test_switch_entry_stack_aligned),
        cmocka_unit_test(test_switch_regs_describe_parked_caller),
        cmocka_unit_test(test_switch_nested_creation),
        cmocka_unit_test(test_switch_unwind_stops_at_root),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
