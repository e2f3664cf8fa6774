/* Interrupt and exception dispatch.  Vectors 0..31 are exceptions: each one is fatal
 * and ends in a panic with a register dump and a stack trace.  Vectors 32..255 are
 * interrupts, dispatched to the handler registered for them. */
#ifndef PLINTH_ARCH_TRAP_H
#define PLINTH_ARCH_TRAP_H

#include <stdint.h>
#include <stdbool.h>

/* Exception vectors, SDM Vol. 3A Table 6-1 "Exceptions and Interrupts" (28-30 are
 * AMD's, APM Vol. 2 Table 8-1). */
#define EXC_DE   0
#define EXC_DB   1
#define EXC_NMI  2
#define EXC_BP   3
#define EXC_OF   4
#define EXC_BR   5
#define EXC_UD   6
#define EXC_NM   7
#define EXC_DF   8
#define EXC_TS   10
#define EXC_NP   11
#define EXC_SS   12
#define EXC_GP   13
#define EXC_PF   14
#define EXC_MF   16
#define EXC_AC   17
#define EXC_MC   18
#define EXC_XM   19
#define EXC_VE   20
#define EXC_CP   21
#define EXC_HV   28
#define EXC_VC   29
#define EXC_SX   30

#define TRAP_FIRST_INTERRUPT 32
#define TRAP_VECTORS         256

/* What arch/x86_64/cpu/isr.asm leaves on the stack: the general registers it pushes,
 * the vector and error code (0 where the CPU pushes none), then the frame the CPU
 * pushes on entry in 64-bit mode (SDM Vol. 3A 6.14.2 "64-Bit Mode Stack Frame"). */
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector;
    uint64_t error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*trap_handler_fn)(struct trap_frame *tf);

/* Routes interrupt vector (32..255) to fn, or removes its handler when fn is NULL.
 * Returns 0, or -1 (logged) for an exception vector or one another handler owns.
 * A vector with no handler is logged the first time it fires, then ignored; the
 * handler, not this module, acknowledges its interrupt controller (EOI). */
int trap_register(uint8_t vector, trap_handler_fn fn);

/* Called by isr.asm for every vector, with interrupts off. */
void trap_dispatch(struct trap_frame *tf);

/* Reads the 8 bytes at addr; returns 0, or -1 when the read faults (#PF, #GP, #SS),
 * without reporting the fault.  For code that must inspect memory it cannot trust,
 * such as a stack trace walking a corrupt stack. */
int trap_safe_read_u64(uint64_t addr, uint64_t *out);

/* "Page Fault" and "#PF" for vector 14; "Reserved" and "" for unassigned vectors. */
const char *trap_exception_name(uint8_t vector);
const char *trap_exception_mnemonic(uint8_t vector);

#endif
