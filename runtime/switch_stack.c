/*
 * switch_stack.c - building and reading the frames of the asm switch
 * backends (switch_x86_64.S, switch_aarch64.S); see switch.h for layout.
 */
#include "switch.h"

#include <string.h>

extern void cs__trampoline(void);

#if defined(__x86_64__)
enum { SAVED_WORDS = 6 }; /* r15 r14 r13 r12 rbx rbp */

void cs__ctx_make(cs__ctx *ctx, void *lo, size_t size, void (*entry)(void *),
                  void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uintptr_t *sp = (uintptr_t *)top;

    *--sp = 0;                         /* trampoline's return address */
    *--sp = (uintptr_t)cs__trampoline; /* cs__switch returns here */
    *--sp = 0;                         /* rbp: ends frame-pointer chains */
    *--sp = 0;                         /* rbx */
    *--sp = (uintptr_t)arg;            /* r12 */
    *--sp = (uintptr_t)entry;          /* r13 */
    *--sp = 0;                         /* r14 */
    *--sp = 0;                         /* r15 */
    ctx->sp = sp;
}

void cs__ctx_regs(const cs__ctx *ctx, uintptr_t *sp, uintptr_t *fp,
                  uintptr_t *ip)
{
    const uintptr_t *w = ctx->sp;
    *fp = w[5];
    *ip = w[SAVED_WORDS];
    *sp = (uintptr_t)(w + SAVED_WORDS + 1); /* as after cs__switch returns */
}
#elif defined(__aarch64__)
enum { FRAME_BYTES = 160 }; /* x19..x30, d8..d15 */

void cs__ctx_make(cs__ctx *ctx, void *lo, size_t size, void (*entry)(void *),
                  void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uintptr_t *f = (uintptr_t *)(top - FRAME_BYTES);

    memset(f, 0, FRAME_BYTES);
    f[0] = (uintptr_t)arg;             /* x19 */
    f[1] = (uintptr_t)entry;           /* x20 */
    f[10] = 0;                         /* x29: ends frame-pointer chains */
    f[11] = (uintptr_t)cs__trampoline; /* x30: cs__switch returns here */
    ctx->sp = f;
}

void cs__ctx_regs(const cs__ctx *ctx, uintptr_t *sp, uintptr_t *fp,
                  uintptr_t *ip)
{
    const uintptr_t *f = ctx->sp;
    *fp = f[10];
    *ip = f[11];
    *sp = (uintptr_t)f + FRAME_BYTES;
}
#else
#error "switch_stack.c is for the asm backends; CMake picks switch_ucontext.c"
#endif
