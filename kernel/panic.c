#include "kernel/panic.h"
#include "kernel/console.h"
#include "kernel/fmt.h"
#include "arch/x86_64/cpu/cpu.h"

#include <stdarg.h>

void panic(const char *fmt, ...)
{
    cli();
    console_enter_panic_mode();
    char buf[512];
    int n = fmt_snprintf(buf, sizeof buf, "PANIC: ");
    va_list ap;
    va_start(ap, fmt);
    int m = fmt_vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    console_write(buf, len);
    cpu_halt_forever();
}
