/*
 * stack.c - task stacks and stack-overflow reports.
 *
 * Stacks are mmap'ed with a PROT_NONE guard page below them, as libdill
 * does, "so a stack overflow will cause a segfault instead of randomly
 * overwriting the heap".  Ended tasks' stacks of the default size are kept
 * in a per-loop pool and reused.  Each guarded stack costs two kernel
 * mappings; when vm.max_map_count is reached the guard's mprotect fails
 * and the stack is used unguarded rather than failing the spawn.
 *
 * A fault in a guard page is reported by a SIGSEGV handler running on an
 * alternate signal stack (the task's own stack is exhausted), naming the
 * task; then the previous disposition runs, so the process still dies
 * with SIGSEGV (or a handler installed before ours still gets it).
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* valgrind cannot tell a stack switch from a wild stack-pointer move
 * unless told where the stacks are; the client requests cost a few
 * instructions when not under valgrind. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CS__VALGRIND 1
#endif
#endif

#define CS__POOL_MAX 64

/* The alternate signal stack: crash reporters chained after ours (the
 * agent's libunwind walk, libtrace's flight recorder) run on it too, and
 * under ASan their frames are several times larger.  Untouched pages cost
 * nothing. */
#define CS__ALTSTACK_SIZE (256 * 1024)
#define CS__STACK_MIN (16 * 1024)

static size_t cs__page;

static size_t cs__page_size(void)
{
    if (!cs__page) {
        long p = sysconf(_SC_PAGESIZE);
        cs__page = p > 0 ? (size_t)p : 4096;
    }
    return cs__page;
}

size_t cs__stack_default(void)
{
    static size_t def;

    if (!def) {
        const char *e = getenv("COSCOPE_STACK_KB");
        unsigned long kb = e ? strtoul(e, NULL, 10) : 0;
        size_t sz = kb ? kb * 1024 : 64 * 1024;
        if (kb > 1024 * 1024) /* 1 GiB: surely a typo */
            sz = 64 * 1024;
        def = sz;
    }
    return def;
}

static size_t cs__stack_round(size_t size)
{
    size_t pg = cs__page_size();

    if (size == 0)
        size = cs__stack_default();
    if (size < CS__STACK_MIN)
        size = CS__STACK_MIN;
    return (size + pg - 1) & ~(pg - 1);
}

int cs__stack_get(cs__loop *loop, cs__stack *s, size_t size)
{
    size_t pg = cs__page_size();
    char *base;

    if (size > CS__STACK_MAX)
        return CS_EINVAL; /* rounding it would wrap */
    if (!loop->stack_default)
        loop->stack_default = cs__stack_round(0);
    size = size ? cs__stack_round(size) : loop->stack_default;
    if (size == loop->stack_default && loop->pool_len > 0) {
        *s = loop->pool[--loop->pool_len];
#ifdef CS__ASAN /* frames abandoned by cs_raise stay poisoned */
        __asan_unpoison_memory_region(s->lo, s->size);
#endif
        return 0;
    }
    base = mmap(NULL, size + pg, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED)
        return CS_ENOMEM;
    s->lo = base + pg;
    s->size = size;
    s->guarded = mprotect(base, pg, PROT_NONE) == 0;
#ifdef CS__VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + size);
#endif
    return 0;
}

static void cs__stack_unmap(cs__stack *s)
{
#ifdef CS__VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    munmap((char *)s->lo - cs__page, s->size + cs__page);
    s->lo = NULL;
}

void cs__stack_put(cs__loop *loop, cs__stack *s)
{
    if (!s->lo)
        return;
    if (s->size == loop->stack_default && loop->pool_len < CS__POOL_MAX) {
        if (loop->pool_len == loop->pool_cap) {
            unsigned cap = loop->pool_cap ? loop->pool_cap * 2 : 8;
            cs__stack *p = realloc(loop->pool, cap * sizeof(*p));
            if (p) {
                loop->pool = p;
                loop->pool_cap = cap;
            }
        }
        if (loop->pool_len < loop->pool_cap) {
            loop->pool[loop->pool_len++] = *s;
            s->lo = NULL;
            return;
        }
    }
    cs__stack_unmap(s);
}

void cs__stack_pool_free(cs__loop *loop)
{
    for (unsigned i = 0; i < loop->pool_len; i++)
        cs__stack_unmap(&loop->pool[i]);
    free(loop->pool);
    loop->pool = NULL;
    loop->pool_len = loop->pool_cap = 0;
}

/* ---- overflow reports --------------------------------------------------- */

static struct sigaction cs__old_segv, cs__old_bus;
static pthread_mutex_t cs__handler_mu = PTHREAD_MUTEX_INITIALIZER;

/* Async-signal-safe: formats into buf with no locale, no malloc. */
static size_t cs__fmt_u(char *buf, uint64_t v, int base)
{
    char tmp[24];
    size_t n = 0, i = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % (unsigned)base];
        v /= (unsigned)base;
    } while (v);
    while (n)
        buf[i++] = tmp[--n];
    return i;
}

static size_t cs__fmt_s(char *buf, size_t cap, const char *s)
{
    size_t n = 0;
    while (s && s[n] && n < cap)
        buf[n] = s[n], n++;
    return n;
}

/* Async-signal-safe. */
static void cs__overflow_report(cs_task *t, uintptr_t addr)
{
    char buf[512];
    size_t n = 0;

    n += cs__fmt_s(buf + n, 64, "coscope: stack overflow in task '");
    n += cs__fmt_s(buf + n, 200, cs_task_name(t));
    n += cs__fmt_s(buf + n, 16, "' (id ");
    n += cs__fmt_u(buf + n, t->id, 10);
    n += cs__fmt_s(buf + n, 32, "): fault at 0x");
    n += cs__fmt_u(buf + n, addr, 16);
    n += cs__fmt_s(buf + n, 32, " in its guard page; stack is ");
    n += cs__fmt_u(buf + n, t->stack.size / 1024, 10);
    n += cs__fmt_s(buf + n, 100,
                   " KiB (raise it with cs_coro_set_stack_size or COSCOPE_STACK_KB)\n");
    (void)!write(2, buf, n);
}

/* Async-signal-safe: reads only the faulting thread's loop. */
static void cs__segv_handler(int sig, siginfo_t *si, void *uc)
{
    cs__loop *loop = cs__tls_loop;
    cs_task *t = loop ? loop->current : NULL;
    struct sigaction *old = sig == SIGBUS ? &cs__old_bus : &cs__old_segv;
    uintptr_t a = (uintptr_t)si->si_addr;

    if (t && t->stack.guarded && a < (uintptr_t)t->stack.lo &&
        a >= (uintptr_t)t->stack.lo - cs__page)
        cs__overflow_report(t, a);
    cs__signal_chain(old, sig, si, uc);
}

/* Puts our handler in front of whatever handles the signal now.  Checked
 * at every cs_run, so a handler installed after an earlier run (a crash
 * reporter, a test framework, a forked child resetting to SIG_DFL) is
 * chained to rather than lost or left in front of ours. */
static void cs__install_handler(int sig, struct sigaction *old)
{
    struct sigaction sa, cur;

    if (sigaction(sig, NULL, &cur) < 0 ||
        ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == cs__segv_handler))
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = cs__segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, old);
}

int cs__overflow_init(cs__loop *loop)
{
    stack_t cur, ss;
    size_t size = CS__ALTSTACK_SIZE;

    cs__page_size();
    pthread_mutex_lock(&cs__handler_mu);
    cs__install_handler(SIGSEGV, &cs__old_segv);
    cs__install_handler(SIGBUS, &cs__old_bus);
    pthread_mutex_unlock(&cs__handler_mu);
    if (sigaltstack(NULL, &cur) < 0)
        return -errno;
    if (cur.ss_flags & SS_ONSTACK)
        return 0; /* cs_run from a signal handler: leave it alone */
    if (!(cur.ss_flags & SS_DISABLE) && cur.ss_size >= size)
        return 0; /* the thread already has a big enough one; use it */
    /* none, or too small for the reporters (ASan gives each thread a
     * small one): ours, and the old one back at the end */
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

void cs__overflow_fini(cs__loop *loop)
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
