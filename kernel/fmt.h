/* printf-style formatting into a buffer; no allocation, no floating point.
 * Supports %d %i %u %x %X %o %p %s %c %%, the flags '-' '0' '+' ' ' '#',
 * width and precision (also '*'), and the length modifiers hh h l ll z t j. */
#ifndef PLINTH_KERNEL_FMT_H
#define PLINTH_KERNEL_FMT_H

#include <stdarg.h>
#include <stddef.h>

/* Returns the length the full output would have had (as C's vsnprintf); writes at
 * most size-1 characters and a terminating NUL when size > 0. */
int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
