/* SPDX-License-Identifier: MIT */
/*
 * weft__regs_init: lay out the frame weft__switch expects on a fresh stack,
 * so that the first switch to it "returns" into weft__start with fn and arg
 * in the callee-saved registers weft__start reads.
 */
#include "arch.h"

#include <stdint.h>
#include <string.h>

void weft__start(void);

#if defined(__x86_64__)
/* Slots, from sp up: control words, r15, r14, r13, r12, rbx, rbp, rip.
 * sp is 16-aligned so weft__start's call sees the ABI's alignment. */
void weft__regs_init(weft__regs *regs, void *top, void (*fn)(void *),
                     void *arg) {
    uint64_t *f = (uint64_t *)(((uintptr_t)top & ~(uintptr_t)15) - 64);
    memset(f, 0, 64);
    f[0] = 0x1F80u | ((uint64_t)0x037F << 32); /* MXCSR, x87 CW defaults */
    f[3] = (uint64_t)(uintptr_t)fn;            /* r13 */
    f[4] = (uint64_t)(uintptr_t)arg;           /* r12 */
    f[7] = (uint64_t)(uintptr_t)weft__start;
    regs->sp = f;
}
#elif defined(__aarch64__)
/* Slots, from sp up: x19..x28, x29, x30, d8..d15, FPCR, padding. */
void weft__regs_init(weft__regs *regs, void *top, void (*fn)(void *),
                     void *arg) {
    uint64_t *f = (uint64_t *)(((uintptr_t)top & ~(uintptr_t)15) - 176);
    memset(f, 0, 176);
    f[0] = (uint64_t)(uintptr_t)arg;          /* x19 */
    f[1] = (uint64_t)(uintptr_t)fn;           /* x20 */
    f[11] = (uint64_t)(uintptr_t)weft__start; /* x30 */
    regs->sp = f;
}
#else
#error "weft supports x86-64 and AArch64"
#endif
