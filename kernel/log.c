#include "kernel/log.h"
#include "kernel/console.h"
#include "kernel/fmt.h"
#include "kernel/spinlock.h"
#include "kernel/textring.h"
#include "kernel/time.h"

static enum log_level min_level = LOG_INFO;

/* The latest log lines, for the shell's `log`. */
#define LOG_RING_SIZE (32 * 1024)
static char ring_buf[LOG_RING_SIZE];
static struct textring ring = { ring_buf, LOG_RING_SIZE, 0 };
static struct spinlock ring_lock = SPINLOCK_INIT;

size_t log_recent(unsigned lines, char *out, size_t max)
{
    uint64_t flags = spin_lock_irqsave(&ring_lock);
    size_t n = textring_tail(&ring, lines, out, max);
    spin_unlock_irqrestore(&ring_lock, flags);
    return n;
}

void log_set_level(enum log_level min)
{
    min_level = min;
}

/* Bounded wait for the ring: after a panic a stopped CPU may hold its lock, and a
 * line missing from `log` is better than a panic report that never comes. */
static void ring_put(const char *line, size_t len)
{
    uint64_t flags = spin_lock_irqsave_try(&ring_lock, 1000000);
    if (flags == SPIN_TRY_FAILED)
        return;
    textring_put(&ring, line, len);
    spin_unlock_irqrestore(&ring_lock, flags);
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
    ring_put(line, len);
}

void log_printf(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vprintf(level, fmt, ap);
    va_end(ap);
}
