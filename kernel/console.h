/* The host console: every output device plinth writes its log to (serial line,
 * framebuffer).  Writers are serialised so lines from different CPUs never mix. */
#ifndef PLINTH_KERNEL_CONSOLE_H
#define PLINTH_KERNEL_CONSOLE_H

#include <stddef.h>

typedef void (*console_sink_fn)(void *ctx, const char *s, size_t n);

/* Returns 0, or -1 when all sink slots are taken. */
int  console_register(console_sink_fn fn, void *ctx);
/* Output of whole lines.  While an input line is shown (console_set_input_line),
 * it is erased first and shown again after, so that lines printed while a person
 * types at the shell never run into what they typed. */
void console_write(const char *s, size_t n);
/* One formatted line (the newline added; cut at 400 characters): the console's and
 * shell's answers, which are not log lines (no timestamp, not in the log ring). */
void console_linef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The shell's own echo and prompt, written as they are. */
void console_write_raw(const char *s, size_t n);
/* What the terminal's unfinished last line shows now (the shell's prompt and what
 * was typed after it); n = 0: nothing. */
void console_set_input_line(const char *s, size_t n);
/* Takes the input line off the screen (the focus leaves the shell) and forgets it. */
void console_erase_input_line(void);
/* After a panic: stop taking the lock, which a stopped CPU may hold. */
void console_enter_panic_mode(void);

#endif
