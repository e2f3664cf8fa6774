#ifndef PLINTH_KERNEL_PANIC_H
#define PLINTH_KERNEL_PANIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Prints "PANIC: <message>", a stack trace, stops every CPU.  Never returns. */
__attribute__((noreturn, format(printf, 1, 2)))
void panic(const char *fmt, ...);

/* True from the moment some CPU starts a panic: an NMI then means "halt". */
bool panic_in_progress(void);

#define PANIC_NO_CPU 0xffffffffu
/* The CPU whose panic is being reported, or PANIC_NO_CPU. */
uint32_t panic_cpu(void);

/* The pieces panic() is made of, for reporters of fatal faults (the exception path)
 * that print more than a message.  panic_begin claims the panic for cpu with
 * interrupts off: the first CPU wins and returns; any other CPU halts there, and a
 * fault inside a panic on the same CPU prints one line and halts.  Between begin and
 * end, panic_printf writes lines (no trailing \n) that no other CPU's output can
 * split.  panic_end stops the machine with the final "PANIC: system halted". */
void panic_begin(uint32_t cpu);
__attribute__((format(printf, 1, 2)))
void panic_printf(const char *fmt, ...);
/* "  #0 0xffffffff80201234 kmain+0x1c" per frame: rip first (when not 0), then the
 * return addresses of the rbp chain from rbp.  Never faults, however corrupt. */
void panic_stack_trace(uint64_t rip, uint64_t rbp);
/* "0xffffffff80201234 kmain+0x1c" (or "... ??") into buf. */
void panic_format_address(char *buf, size_t size, uint64_t addr);
/* A buffer this large holds any address panic_format_address writes in full. */
#define PANIC_ADDRESS_TEXT_MAX 176
__attribute__((noreturn)) void panic_end(void);

#endif
