/*
 * switch.h - the context switch, private to the runtime.
 *
 * One function moves the CPU from one task's stack to another's.  The
 * assembly backends (switch_x86_64.S, switch_aarch64.S) push the SysV
 * callee-saved registers onto the current stack and keep only the stack
 * pointer in cs__ctx; no signal mask is touched, so a switch is a few
 * nanoseconds.  switch_ucontext.c is the portable fallback CMake picks on
 * other machines.  Which backend is built is decided by CMake, not #ifdef
 * in the core.
 *
 * Saved frame as left on a parked task's stack by the asm backends
 * (lowest address first, ctx->sp points at the first word):
 *
 *   x86-64:  r15 r14 r13 r12 rbx rbp | return address
 *   aarch64: x19..x28 x29(fp) x30(lr) d8..d15    (160 bytes)
 *
 * cs__ctx_regs() reads a parked context's sp/fp/ip from that frame so that
 * another process can unwind the task (task table in libtrace).
 */
#ifndef CS_RUNTIME_SWITCH_H
#define CS_RUNTIME_SWITCH_H

#include <stddef.h>
#include <stdint.h>

#if defined(CS_SWITCH_UCONTEXT)
#include <ucontext.h>
#endif

typedef struct cs__ctx {
    void *sp; /* saved stack pointer (asm backends) */
#if defined(CS_SWITCH_UCONTEXT)
    ucontext_t uc; /* full context (fallback backend) */
#endif
} cs__ctx;

/* Saves the running context into from and resumes to.  Returns when some
 * later cs__switch() names from as its target. */
void cs__switch(cs__ctx *from, cs__ctx *to);

/* Prepares ctx so that the first cs__switch() to it calls entry(arg) on the
 * stack [lo, lo+size).  entry must never return. */
void cs__ctx_make(cs__ctx *ctx, void *lo, size_t size, void (*entry)(void *),
                  void *arg);

/* Registers of a parked context, for remote unwinding: stack pointer as it
 * was in the caller of cs__switch, frame pointer and resume address. */
void cs__ctx_regs(const cs__ctx *ctx, uintptr_t *sp, uintptr_t *fp,
                  uintptr_t *ip);

/* The same, inline where the frame layout above is fixed (x86-64 asm
 * backend): the tracer reads it at every switch. */
#if !defined(CS_SWITCH_UCONTEXT) && defined(__x86_64__)
static inline void cs__ctx_regs_inline(const cs__ctx *ctx, uintptr_t *sp,
                                       uintptr_t *fp, uintptr_t *ip)
{
    const uintptr_t *w = ctx->sp; /* r15 r14 r13 r12 rbx rbp | ret */
    *fp = w[5];
    *ip = w[6];
    *sp = (uintptr_t)(w + 7);
}

/* What cs__ctx_regs() will give for a context that a function with a
 * standard frame (frame pointer `frame`) is about to park by tail-calling
 * cs__switch: the switch then finds that function's return address and
 * caller's frame pointer exactly where the function had them.  Returns 1,
 * or 0 where this backend cannot tell.  Callers check the guess against
 * cs__ctx_regs() once the context is saved (a build without the tail call
 * gets it wrong). */
static inline int cs__ctx_regs_predict(void *frame, uintptr_t *sp,
                                       uintptr_t *fp, uintptr_t *ip)
{
    const uintptr_t *f = frame; /* saved rbp | return address */
    *fp = f[0];
    *ip = f[1];
    *sp = (uintptr_t)(f + 2);
    return 1;
}
#else
#define cs__ctx_regs_inline cs__ctx_regs
static inline int cs__ctx_regs_predict(void *frame, uintptr_t *sp,
                                       uintptr_t *fp, uintptr_t *ip)
{
    (void)frame, (void)sp, (void)fp, (void)ip;
    return 0;
}
#endif

#endif
