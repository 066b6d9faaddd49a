/* SPDX-License-Identifier: MIT */
/*
 * Layer 0, the context switch: saved registers and the assembly that swaps
 * them (switch_<arch>.S), and the frame a fresh stack starts from
 * (frame.c).  Knows nothing of goroutines.
 */
#ifndef WEFT_ARCH_H
#define WEFT_ARCH_H

typedef struct weft__regs {
    void *sp;
} weft__regs;

/* Save the caller's registers into from, resume to. */
void weft__switch(weft__regs *from, weft__regs *to);

/* Prepare regs so that switching to it calls fn(arg) on the stack ending at
 * top.  fn must never return. */
void weft__regs_init(weft__regs *regs, void *top, void (*fn)(void *),
                     void *arg);

#endif
