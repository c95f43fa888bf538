/*
 * switch_x86_64.S - context switch for x86-64 (System V ABI).
 *
 * Saved: rbp rbx r12 r13 r14 r15 (callee-saved) and rsp; rip is the return
 * address already on the stack.  Not saved: MXCSR and the x87 control word
 * (tasks must not change floating-point modes; libdill makes the same
 * choice), and the signal mask (that is what makes swapcontext slow).
 *
 * CFI is kept so that gdb and libunwind can unwind through a parked task:
 * the pushed registers sit at fixed offsets from rsp on every stack.
 */
    .text

/* void cs__switch(cs__ctx *from, cs__ctx *to) */
    .globl cs__switch
    .hidden cs__switch
    .type cs__switch, @function
    .p2align 4
cs__switch:
    .cfi_startproc
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    popq %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    /* pop + indirect jump, not ret: the return stack buffer predicts the
     * caller of *this* task's cs__switch, which is wrong whenever the two
     * tasks were parked from different places; the indirect predictor
     * learns the alternation.  Boost.Context ends jump_fcontext the same
     * way.  Callers reach this by a tail call, so no ret is left unpaired
     * on their side either. */
    popq %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rcx
    jmp *%rcx
    .cfi_endproc
    .size cs__switch, .-cs__switch

/*
 * First code a new task runs: cs__ctx_make() left the entry function in r13
 * and its argument in r12.  The return address slot above holds 0 and rip
 * is marked undefined, so unwinders stop here: this is the task's root.
 * We arrive by ret, so rsp is 8 mod 16 as at any function entry; the ABI
 * wants it 16-aligned at the call, hence the sub (without it every task ran
 * misaligned and SSE spills of locals could fault).
 */
    .globl cs__trampoline
    .hidden cs__trampoline
    .type cs__trampoline, @function
    .p2align 4
cs__trampoline:
    .cfi_startproc
    .cfi_undefined %rip
    xorl %ebp, %ebp
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size cs__trampoline, .-cs__trampoline

    .section .note.GNU-stack,"",@progbits
