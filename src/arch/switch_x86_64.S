/* SPDX-License-Identifier: MIT */
/*
 * weft__switch(from, to) for x86-64 System V.
 *
 * Frame left on a suspended stack, from its saved sp upwards:
 *   +0  MXCSR (4 bytes), x87 control word (2 bytes), padding
 *   +8  r15, r14, r13, r12, rbx, rbp
 *   +56 return address
 * Only callee-saved state is kept: the caller of weft__switch already
 * assumes every other register is clobbered.  No signal mask is touched.
 */
#if defined(__x86_64__)
    .text
    .globl  weft__switch
    .hidden weft__switch
    .type   weft__switch, @function
    .p2align 4
weft__switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    /* Loading a control word stalls the pipeline, and the two contexts
     * almost always agree: compare first, load only when they differ. */
    movq    (%rdi), %rax
    movl    (%rax), %ecx
    cmpl    %ecx, (%rsp)
    jne     1f
    movzwl  4(%rax), %ecx
    cmpw    %cx, 4(%rsp)
    jne     1f
2:
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
1:
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    jmp     2b
    .cfi_endproc
    .size   weft__switch, .-weft__switch

/* First code a new goroutine runs: weft__regs_init left fn in r13 and its
 * argument in r12.  fn never returns. */
    .globl  weft__start
    .hidden weft__start
    .type   weft__start, @function
    .p2align 4
weft__start:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   weft__start, .-weft__start
#endif
    .section .note.GNU-stack,"",%progbits
