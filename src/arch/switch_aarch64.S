/* SPDX-License-Identifier: MIT */
/*
 * weft__switch(from, to) for AArch64 (AAPCS64).
 *
 * Frame left on a suspended stack (176 bytes, 16-aligned), from sp up:
 *   +0   x19..x28        +80  x29 (fp), x30 (lr: where to resume)
 *   +96  d8..d15         +160 FPCR
 * Only callee-saved state is kept; no signal mask is touched.
 */
#if defined(__aarch64__)
    .text
    .globl  weft__switch
    .hidden weft__switch
    .type   weft__switch, %function
    .p2align 4
weft__switch:
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    add     sp, sp, #176
    ret
    .size   weft__switch, .-weft__switch

/* First code a new goroutine runs: fn in x20, its argument in x19. */
    .globl  weft__start
    .hidden weft__start
    .type   weft__start, %function
    .p2align 4
weft__start:
    mov     x0, x19
    blr     x20
    brk     #0
    .size   weft__start, .-weft__start
#endif
    .section .note.GNU-stack,"",%progbits
