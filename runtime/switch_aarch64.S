/*
 * switch_aarch64.S - context switch for aarch64 (AAPCS64).
 *
 * Saved, in one 160-byte frame on the stack being left (ctx->sp points at
 * its lowest address, switch_stack.c builds and reads the same layout):
 *
 *   offset   0..72   x19..x28   callee-saved general registers
 *   offset  80       x29        frame pointer
 *   offset  88       x30        link register: where cs__switch returns
 *   offset  96..152  d8..d15    low halves of v8..v15, the only callee-saved
 *                               FP/SIMD state in AAPCS64
 *
 * Not saved: FPCR/FPSR (tasks must not change floating-point modes, as on
 * x86-64), the signal mask, and x18 (the platform register, not ours).
 * No return-address signing or BTI landing pads: cs__switch is reached by
 * direct bl and the trampoline by ret, neither of which BTI checks.
 *
 * CFI is kept so that gdb and libunwind can unwind through a parked task:
 * the registers sit at the same offsets from sp on every stack, so the
 * rules stay true across the sp swap in the middle.
 */
    .text

/* void cs__switch(cs__ctx *from, cs__ctx *to) */
    .globl cs__switch
    .hidden cs__switch
    .type cs__switch, %function
    .p2align 4
cs__switch:
    .cfi_startproc
    sub sp, sp, #160
    .cfi_def_cfa_offset 160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    .cfi_offset x19, -160
    .cfi_offset x20, -152
    .cfi_offset x21, -144
    .cfi_offset x22, -136
    .cfi_offset x23, -128
    .cfi_offset x24, -120
    .cfi_offset x25, -112
    .cfi_offset x26, -104
    .cfi_offset x27, -96
    .cfi_offset x28, -88
    .cfi_offset x29, -80
    .cfi_offset x30, -72
    .cfi_offset d8, -64
    .cfi_offset d9, -56
    .cfi_offset d10, -48
    .cfi_offset d11, -40
    .cfi_offset d12, -32
    .cfi_offset d13, -24
    .cfi_offset d14, -16
    .cfi_offset d15, -8
    /* sp cannot be the operand of str/ldr data, so go through x9. */
    mov x9, sp
    str x9, [x0]
    ldr x9, [x1]
    mov sp, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    .cfi_def_cfa_offset 0
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    ret
    .cfi_endproc
    .size cs__switch, .-cs__switch

/*
 * First code a new task runs: cs__ctx_make() left the argument in x19, the
 * entry function in x20 and 0 in x29, and cs__switch's ret brought us here
 * with sp 16-aligned at the top of the stack.  x30 is marked undefined so
 * unwinders stop here: this is the task's root.  entry never returns; if
 * it does, brk traps instead of running off into whatever follows.
 */
    .globl cs__trampoline
    .hidden cs__trampoline
    .type cs__trampoline, %function
    .p2align 4
cs__trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov x0, x19
    blr x20
    brk #0
    .cfi_endproc
    .size cs__trampoline, .-cs__trampoline

    .section .note.GNU-stack,"",%progbits
