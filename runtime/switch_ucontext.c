/*
 * switch_ucontext.c - portable context switch on POSIX ucontext, built
 * instead of the asm backends when COSCOPE_SWITCH=ucontext (CMake then
 * defines CS_SWITCH_UCONTEXT, which gives cs__ctx its ucontext_t).
 *
 * Slow next to the asm backends: swapcontext() saves and restores the
 * signal mask with a system call on every switch.  It is here for machines
 * the asm backends do not cover and as a reference to test them against.
 *
 * The registers cs__ctx_regs() reports cannot come from uc_mcontext: that
 * describes the inside of cs__switch() (swapcontext's return address is in
 * cs__switch), not its caller as switch.h promises, unless the compiler
 * happened to turn the call into a tail call.  So cs__switch() writes its
 * caller's sp/fp/ip into a small record in its own frame, which stays
 * intact on the parked stack until the context resumes, and points
 * ctx->sp, otherwise unused here, at it.
 */
#include "switch.h"

#include <stdlib.h>

#if !defined(CS_SWITCH_UCONTEXT)
#error "switch_ucontext.c needs CS_SWITCH_UCONTEXT, which gives cs__ctx its uc"
#endif

/* What cs__ctx_regs() returns; lives on the parked context's stack. */
struct parked {
    uintptr_t sp; /* caller's sp as after cs__switch returns */
    uintptr_t fp; /* caller's frame pointer, 0 if unknown */
    uintptr_t ip; /* resume address in the caller */
};

/*
 * makecontext() passes only int arguments (POSIX leaves wider ones
 * undefined, and glibc really truncates them on some targets), so the
 * 64-bit entry and argument travel as two 32-bit halves each.
 */
static void start(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi,
                  unsigned arg_lo)
{
    uintptr_t entry = (uintptr_t)((uint64_t)entry_hi << 32 | entry_lo);
    uintptr_t arg = (uintptr_t)((uint64_t)arg_hi << 32 | arg_lo);

    ((void (*)(void *))entry)((void *)arg);
    abort(); /* entry must not return; uc_link is NULL anyway */
}

void cs__ctx_make(cs__ctx *ctx, void *lo, size_t size, void (*entry)(void *),
                  void *arg)
{
    uint64_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    /* The record for a context that has not run yet takes the top of its
     * stack; makecontext() gets the rest. */
    struct parked *p = (struct parked *)(top - 32);

    _Static_assert(sizeof(struct parked) <= 32, "record fits its slot");
    p->sp = top;
    p->fp = 0; /* ends frame-pointer chains, as in the asm backends */
    p->ip = (uintptr_t)start;
    ctx->sp = p;

    getcontext(&ctx->uc);
    ctx->uc.uc_link = NULL;
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = (uintptr_t)p - (uintptr_t)lo;
    makecontext(&ctx->uc, (void (*)(void))start, 4, (unsigned)(e >> 32),
                (unsigned)e, (unsigned)(a >> 32), (unsigned)a);
}

void cs__switch(cs__ctx *from, cs__ctx *to)
{
    struct parked p;

    p.ip = (uintptr_t)__builtin_return_address(0);
#if defined(__x86_64__) || defined(__aarch64__)
    /* On these two the CFA is the caller's sp after the return, and the
     * frame record __builtin_frame_address() points at starts with the
     * caller's frame pointer.  Elsewhere we do not know the layout. */
    p.sp = (uintptr_t)__builtin_dwarf_cfa();
    p.fp = *(const uintptr_t *)__builtin_frame_address(0);
#else
    p.sp = 0;
    p.fp = 0;
#endif
    from->sp = &p;
    swapcontext(&from->uc, &to->uc);
}

void cs__ctx_regs(const cs__ctx *ctx, uintptr_t *sp, uintptr_t *fp,
                  uintptr_t *ip)
{
    const struct parked *p = ctx->sp;

    *sp = p->sp;
    *fp = p->fp;
    *ip = p->ip;
}
