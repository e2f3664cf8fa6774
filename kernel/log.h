/* plinth's log: one line per call, "[seconds.micros] [level: ]message", on every
 * console sink.  Lines are written whole, so CPUs never interleave mid-line. */
#ifndef PLINTH_KERNEL_LOG_H
#define PLINTH_KERNEL_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_printf(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vprintf(enum log_level level, const char *fmt, va_list ap);
void log_set_level(enum log_level min);
/* The last `lines` log lines (at most max bytes of them) copied to out, from an
 * in-memory ring of the latest 32 KiB: the length. */
size_t log_recent(unsigned lines, char *out, size_t max);

#define log_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_printf(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_printf(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_printf(LOG_ERROR, __VA_ARGS__)

#endif
