#ifndef PLINTH_KERNEL_PANIC_H
#define PLINTH_KERNEL_PANIC_H

/* Prints "PANIC: <message>", a stack trace, stops every CPU.  Never returns. */
__attribute__((noreturn, format(printf, 1, 2)))
void panic(const char *fmt, ...);

#endif
