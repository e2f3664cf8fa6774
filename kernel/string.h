/* The C library's memory and string functions the core uses.  GCC also emits calls
 * to memset/memcpy/memmove/memcmp by itself (struct copies and zeroing), even in a
 * freestanding build, so these must exist under their standard names. */
#ifndef PLINTH_KERNEL_STRING_H
#define PLINTH_KERNEL_STRING_H

#include <stddef.h>

void  *memset(void *dst, int c, size_t n);
void  *memcpy(void *restrict dst, const void *restrict src, size_t n);
void  *memmove(void *dst, const void *src, size_t n);
int    memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int    strcmp(const char *a, const char *b);
int    strncmp(const char *a, const char *b, size_t n);
char  *strstr(const char *haystack, const char *needle);

#endif
