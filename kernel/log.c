#include "kernel/log.h"
#include "kernel/console.h"
#include "kernel/fmt.h"
#include "kernel/time.h"

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level min)
{
    min_level = min;
}

void log_vprintf(enum log_level level, const char *fmt, va_list ap)
{
    static const char *const prefix[] = {
        [LOG_DEBUG] = "debug: ", [LOG_INFO] = "", [LOG_WARN] = "warning: ", [LOG_ERROR] = "error: ",
    };
    if (level < min_level)
        return;

    char line[512];
    uint64_t us = time_since_boot_ns() / 1000;
    int n = fmt_snprintf(line, sizeof line, "[%5lu.%06lu] %s",
                         (unsigned long)(us / 1000000), (unsigned long)(us % 1000000), prefix[level]);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = fmt_vsnprintf(line + n, sizeof line - n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: still end the line */
    line[len++] = '\n';
    console_write(line, len);
}

void log_printf(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vprintf(level, fmt, ap);
    va_end(ap);
}
