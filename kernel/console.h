/* The host console: every output device plinth writes its log to (serial line,
 * framebuffer).  Writers are serialised so lines from different CPUs never mix. */
#ifndef PLINTH_KERNEL_CONSOLE_H
#define PLINTH_KERNEL_CONSOLE_H

#include <stddef.h>

typedef void (*console_sink_fn)(void *ctx, const char *s, size_t n);

/* Returns 0, or -1 when all sink slots are taken. */
int  console_register(console_sink_fn fn, void *ctx);
void console_write(const char *s, size_t n);
/* After a panic: stop taking the lock, which a stopped CPU may hold. */
void console_enter_panic_mode(void);

#endif
