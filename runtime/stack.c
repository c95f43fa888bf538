/*
 * stack.c - task stacks and stack-overflow reports.
 *
 * Every stack has a guard page below it, as libdill's do, "so a stack
 * overflow will cause a segfault instead of randomly overwriting the
 * heap".  Stacks of the default size are carved from slabs: one mapping
 * holds 64, then 128, ... up to 4,096 of them (MAP_NORESERVE: untouched
 * pages cost nothing), and ended tasks' stacks go to a per-loop pool that
 * is never capped, so that after warm-up a spawn makes no system call.
 *
 *   slab (one mapping, one VMA where guards do not split it)
 *   +-------+-----------------+-------+-----------------+----
 *   | guard | stack 0 (64 KiB) | guard | stack 1          | ...
 *   +-------+-----------------+-------+-----------------+----
 *   lo of stack 0 ^                     lo of stack 1 ^
 *
 * Guards: MADV_GUARD_INSTALL (Linux >= 6.13) marks the page in the page
 * tables and leaves the mapping whole, so a million stacks take a few
 * hundred mappings.  Older kernels get mprotect(PROT_NONE) guards, which
 * split the mapping (two more VMAs each): those are given out up to a
 * budget of a fifth of vm.max_map_count, so that the process never runs
 * out of mappings; past it stacks run unguarded and a one-time warning
 * says so (COSCOPE_STACK_GUARD=mprotect forces this path, for testing).
 *
 * Memory: idle pooled stacks keep their touched pages until a trim tick
 * (cs__stack_tick, every CS__TRIM_NS from the loop) finds that some
 * stayed idle for a whole tick; those are returned with MADV_DONTNEED,
 * keeping CS__POOL_KEEP resident.  A server with a burst every few
 * hundred milliseconds keeps its stacks warm; one whose burst has passed
 * gets its memory back within two ticks.
 *
 * A fault in a guard page is reported by the runtime's fatal-signal
 * handler (fatal.c), which runs on an alternate signal stack (the task's
 * own stack is exhausted): its first step names the task; then the other
 * steps and the previous disposition run, so the process still dies with
 * SIGSEGV (or a handler installed before ours still gets it).
 */
#include "internal.h"
#include "fatal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
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

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

/* Slab sizes, in stacks: the first, and the largest (doubling between). */
#define CS__SLAB_FIRST 64
#define CS__SLAB_MAX 4096
#define CS__SLAB_BYTES ((size_t)512 << 20)
/* Idle stacks kept resident by the trim, and its period. */
#define CS__POOL_KEEP 4
#define CS__TRIM_NS ((int64_t)250 * 1000 * 1000)

#define CS__STACK_MIN (16 * 1024)

/* A slab of default-size stacks.  A slot is free when it was never
 * carved or its stack was released (its memory returned): free slots are
 * found in the bitmap, and slabs with some are on the loop's free list.
 * Guards stay installed across release, so a slot gets its guard once. */
typedef struct cs__slab {
    struct cs__slab *next;      /* every slab of the loop */
    struct cs__slab *next_free; /* slabs with free slots */
    char *base;                 /* the mapping */
    size_t len;                 /* its length */
    size_t slot;                /* guard + stack, bytes */
    size_t nslots, nfree;       /* slots, and free ones */
    size_t nmprotect;           /* mprotect guards (budget to give back) */
    bool on_free_list;
    uint64_t *free_bits;  /* bit i: slot i is free */
    uint64_t *guard_bits; /* bit i: slot i has its guard */
} cs__slab;

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

/* ---- guards ------------------------------------------------------------- */

enum { CS__GUARD_UNKNOWN, CS__GUARD_MADVISE, CS__GUARD_MPROTECT };

static int cs__guard_mode;    /* how guards are made, once known */
static long cs__guard_budget; /* mprotect guards still allowed */
static int cs__guard_warned;  /* the one-time warning was given */
static pthread_once_t cs__guard_once = PTHREAD_ONCE_INIT;

static void cs__guard_init(void)
{
    const char *e = getenv("COSCOPE_STACK_GUARD");
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");

    if (f) {
        if (fscanf(f, "%ld", &max) != 1 || max < 1000)
            max = 65530;
        fclose(f);
    }
    cs__guard_budget = max / 5;
    cs__guard_mode = e && strcmp(e, "mprotect") == 0 ? CS__GUARD_MPROTECT
                                                     : CS__GUARD_UNKNOWN;
}

/* Says once, on stderr, that stacks from now on have no guard page. */
static void cs__guard_warn(const char *why)
{
    if (__atomic_exchange_n(&cs__guard_warned, 1, __ATOMIC_RELAXED))
        return;
    fprintf(stderr,
            "coscope: warning: new task stacks have no guard page from now "
            "on (%s): a stack overflow in them is not caught; use Linux >= "
            "6.13 (MADV_GUARD_INSTALL) or raise vm.max_map_count\n",
            why);
}

/* Whether the page at pg faults when read: the kernel's copy from it
 * fails.  An emulator (qemu-user) may accept MADV_GUARD_INSTALL as a hint
 * and ignore it; trusting that would leave every stack unguarded. */
static bool cs__guard_works(void *pg)
{
    char c;
    struct iovec local = {&c, 1}, remote = {pg, 1};
    int p[2];
    bool faults;

    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1)
        return false;
    if (errno == EFAULT)
        return true;
    /* process_vm_readv refused (seccomp): a write from the page */
    if (pipe2(p, O_CLOEXEC) < 0)
        return false;
    faults = write(p[1], pg, 1) < 0 && errno == EFAULT;
    close(p[0]);
    close(p[1]);
    return faults;
}

/* Makes the page at pg a guard; true if it is one. */
static bool cs__guard_install(void *pg)
{
    int mode = __atomic_load_n(&cs__guard_mode, __ATOMIC_RELAXED);

    if (mode != CS__GUARD_MPROTECT) {
        if (madvise(pg, cs__page, MADV_GUARD_INSTALL) == 0) {
            if (mode == CS__GUARD_MADVISE)
                return true;
            if (cs__guard_works(pg)) {
                __atomic_store_n(&cs__guard_mode, CS__GUARD_MADVISE,
                                 __ATOMIC_RELAXED);
                return true;
            }
        } else if (errno != EINVAL && mode == CS__GUARD_MADVISE) {
            return false; /* known to work, but failed here */
        }
        __atomic_store_n(&cs__guard_mode, CS__GUARD_MPROTECT,
                         __ATOMIC_RELAXED);
    }
    /* each mprotect guard splits a mapping in three: within budget only */
    if (__atomic_sub_fetch(&cs__guard_budget, 1, __ATOMIC_RELAXED) < 0) {
        __atomic_add_fetch(&cs__guard_budget, 1, __ATOMIC_RELAXED);
        cs__guard_warn("mprotect guards would exhaust vm.max_map_count");
        return false;
    }
    if (mprotect(pg, cs__page, PROT_NONE) == 0)
        return true;
    __atomic_add_fetch(&cs__guard_budget, 1, __ATOMIC_RELAXED);
    cs__guard_warn("mprotect failed: the process is out of mappings");
    return false;
}

/* ---- allocation --------------------------------------------------------- */

/* Sets up s over [lo, lo + size) with the guard page below lo. */
static void cs__stack_init(cs__stack *s, char *lo, size_t size,
                           struct cs__slab *slab, bool guarded)
{
    s->lo = lo;
    s->size = size;
    s->slab = slab;
    s->guarded = guarded;
#ifdef CS__VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(lo, lo + size);
#endif
}

#define CS__BIT(map, i) ((map)[(i) / 64] & ((uint64_t)1 << ((i) % 64)))
#define CS__SET(map, i) ((map)[(i) / 64] |= (uint64_t)1 << ((i) % 64))
#define CS__CLR(map, i) ((map)[(i) / 64] &= ~((uint64_t)1 << ((i) % 64)))

/* Maps a slab of n slots, every slot free, at the head of both lists. */
static cs__slab *cs__slab_new(cs__loop *loop, size_t n, size_t slot)
{
    size_t words = (n + 63) / 64;
    cs__slab *sl = calloc(1, sizeof(*sl) + 2 * words * sizeof(uint64_t));

    if (!sl)
        return NULL;
    sl->base = mmap(NULL, n * slot, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                    -1, 0);
    if (sl->base == MAP_FAILED) {
        free(sl);
        return NULL;
    }
    /* a task touches a page or two of its stack: a transparent huge page
     * would give it 2 MiB, cleared at the first touch */
    madvise(sl->base, n * slot, MADV_NOHUGEPAGE);
    sl->len = n * slot;
    sl->slot = slot;
    sl->nslots = sl->nfree = n;
    sl->free_bits = (uint64_t *)(sl + 1);
    sl->guard_bits = sl->free_bits + words;
    for (size_t i = 0; i < n; i++)
        CS__SET(sl->free_bits, i);
    sl->next = loop->slabs;
    loop->slabs = sl;
    sl->next_free = loop->slab_free;
    sl->on_free_list = true;
    loop->slab_free = sl;
    return sl;
}

/* A default-size stack from a free slot, mapping a slab if none is. */
static int cs__slab_carve(cs__loop *loop, cs__stack *s)
{
    size_t slot = loop->stack_default + cs__page, i = 0;
    cs__slab *sl;
    char *lo;

    while ((sl = loop->slab_free) && !sl->nfree) { /* drop full ones */
        loop->slab_free = sl->next_free;
        sl->on_free_list = false;
    }
    if (!sl) {
        size_t n = loop->slabs ? loop->slabs->nslots * 2 : CS__SLAB_FIRST;
        if (n > CS__SLAB_MAX)
            n = CS__SLAB_MAX;
        while (n > 1 && n * slot > CS__SLAB_BYTES) /* big COSCOPE_STACK_KB */
            n /= 2;
        if (!(sl = cs__slab_new(loop, n, slot)))
            return CS_ENOMEM;
    }
    while (!sl->free_bits[i / 64])
        i += 64;
    i += (size_t)__builtin_ctzll(sl->free_bits[i / 64]);
    CS__CLR(sl->free_bits, i);
    sl->nfree--;
    lo = sl->base + i * slot + cs__page;
    /* a guard outlives its stack's release; one that could not be made
     * (budget spent) is tried again, costing no system call then */
    if (!CS__BIT(sl->guard_bits, i) && cs__guard_install(lo - cs__page)) {
        CS__SET(sl->guard_bits, i);
        sl->nmprotect += cs__guard_mode == CS__GUARD_MPROTECT;
    }
    cs__stack_init(s, lo, loop->stack_default, sl,
                   CS__BIT(sl->guard_bits, i) != 0);
    return 0;
}

/* Returns s's memory to the kernel and its slot to its slab. */
static void cs__slab_release(cs__loop *loop, cs__stack *s)
{
    cs__slab *sl = s->slab;
    size_t i = (size_t)((char *)s->lo - cs__page - sl->base) / sl->slot;

#ifdef CS__VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    madvise(s->lo, s->size, MADV_DONTNEED);
    CS__SET(sl->free_bits, i);
    sl->nfree++;
    if (!sl->on_free_list) {
        sl->next_free = loop->slab_free;
        loop->slab_free = sl;
        sl->on_free_list = true;
    }
    s->lo = NULL;
}

int cs__stack_get(cs__loop *loop, cs__stack *s, size_t size)
{
    size_t pg = cs__page_size();
    char *base;

    if (size > CS__STACK_MAX)
        return CS_EINVAL; /* rounding it would wrap */
    if (!loop->stack_default) {
        pthread_once(&cs__guard_once, cs__guard_init);
        loop->stack_default = cs__stack_round(0);
    }
    size = size ? cs__stack_round(size) : loop->stack_default;
    if (size == loop->stack_default) {
        if (cs_likely(loop->pool_len > 0)) {
            *s = loop->pool[--loop->pool_len];
            if (loop->pool_len < loop->pool_low)
                loop->pool_low = loop->pool_len;
#ifdef CS__ASAN /* frames abandoned by cs_raise stay poisoned */
            __asan_unpoison_memory_region(s->lo, s->size);
#endif
            return 0;
        }
        return cs__slab_carve(loop, s);
    }
    /* another size: a mapping of its own */
    base = mmap(NULL, size + pg, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
                0);
    if (base == MAP_FAILED)
        return CS_ENOMEM;
    cs__stack_init(s, base + pg, size, NULL, cs__guard_install(base));
    return 0;
}

void cs__stack_put(cs__loop *loop, cs__stack *s)
{
    if (!s->lo)
        return;
    if (!s->slab) { /* a mapping of its own */
#ifdef CS__VALGRIND
        VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
        if (s->guarded && cs__guard_mode == CS__GUARD_MPROTECT)
            __atomic_add_fetch(&cs__guard_budget, 1, __ATOMIC_RELAXED);
        munmap((char *)s->lo - cs__page, s->size + cs__page);
        s->lo = NULL;
        return;
    }
    if (cs_unlikely(loop->pool_len == loop->pool_cap)) {
        size_t cap = loop->pool_cap ? loop->pool_cap * 2 : 256;
        cs__stack *p = realloc(loop->pool, cap * sizeof(*p));
        if (!p) { /* no room to pool it: straight back to its slab */
            cs__slab_release(loop, s);
            return;
        }
        loop->pool = p;
        loop->pool_cap = cap;
    }
    loop->pool[loop->pool_len++] = *s;
    s->lo = NULL;
}

/* Releases pool[0 .. n), the stacks idle longest, and shrinks the pool. */
static void cs__stack_release(cs__loop *loop, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cs__slab_release(loop, &loop->pool[i]);
    loop->pool_len -= n;
    memmove(loop->pool, loop->pool + n, loop->pool_len * sizeof(*loop->pool));
    if (loop->pool_cap > 256 && loop->pool_cap > 4 * loop->pool_len) {
        size_t cap = loop->pool_cap / 2;
        cs__stack *p;
        while (cap > 256 && cap > 4 * loop->pool_len)
            cap /= 2;
        if ((p = realloc(loop->pool, cap * sizeof(*p))) != NULL) {
            loop->pool = p;
            loop->pool_cap = cap;
        }
    }
}

/* Whether idle stacks or task structs are held beyond what is kept. */
static inline bool cs__idle_excess(const cs__loop *loop)
{
    return loop->pool_len > CS__POOL_KEEP ||
           loop->free_len > CS__FREE_TASKS_KEEP;
}

int64_t cs__stack_tick(cs__loop *loop, int64_t timeout)
{
    int64_t now, left;

    if (cs_likely(!cs__idle_excess(loop))) {
        loop->trim_at = 0;
        return timeout;
    }
    now = cs__now();
    if (!loop->trim_at) {
        loop->pool_low = loop->pool_len;
        loop->free_low = loop->free_len;
        loop->trim_at = now + CS__TRIM_NS;
    } else if (now >= loop->trim_at) {
        /* pool[0 .. low) stayed idle for the whole tick, oldest first:
         * all but the newest CS__POOL_KEEP of them go back */
        if (loop->pool_low > CS__POOL_KEEP)
            cs__stack_release(loop, loop->pool_low - CS__POOL_KEEP);
        cs__task_trim(loop);
        loop->pool_low = loop->pool_len;
        loop->free_low = loop->free_len;
        loop->trim_at = now + CS__TRIM_NS;
        if (!cs__idle_excess(loop)) {
            loop->trim_at = 0;
            return timeout;
        }
    }
    left = loop->trim_at - now;
    return timeout < 0 || timeout > left ? left : timeout;
}

void cs__stack_pool_free(cs__loop *loop)
{
    cs__slab *sl;

#ifdef CS__VALGRIND
    for (size_t i = 0; i < loop->pool_len; i++)
        VALGRIND_STACK_DEREGISTER(loop->pool[i].vg_id);
#endif
    free(loop->pool);
    loop->pool = NULL;
    loop->pool_len = loop->pool_cap = loop->pool_low = 0;
    while ((sl = loop->slabs) != NULL) {
        loop->slabs = sl->next;
        __atomic_add_fetch(&cs__guard_budget, (long)sl->nmprotect,
                           __ATOMIC_RELAXED);
        munmap(sl->base, sl->len);
        free(sl);
    }
    loop->slab_free = NULL;
}

/* ---- overflow reports --------------------------------------------------- */

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
    n += cs__fmt_s(
        buf + n, 100,
        " KiB (raise it with cs_coro_set_stack_size or COSCOPE_STACK_KB)\n");
    (void)!write(2, buf, n);
}

/* The fatal handler's first step (fatal.c).  Async-signal-safe: reads
 * only the faulting thread's loop. */
void cs__stack_overflow_report(int sig, const siginfo_t *si)
{
    cs__loop *loop = cs__tls_loop;
    cs_task *t = loop ? loop->current : NULL;
    uintptr_t a = (uintptr_t)si->si_addr;

    if ((sig == SIGSEGV || sig == SIGBUS) && t && t->stack.guarded &&
        a < (uintptr_t)t->stack.lo && a >= (uintptr_t)t->stack.lo - cs__page)
        cs__overflow_report(t, a);
}
