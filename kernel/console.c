#include "kernel/console.h"
#include "kernel/spinlock.h"
#include "kernel/fmt.h"

#include <stdarg.h>

#include <stdbool.h>

#define CONSOLE_MAX_SINKS 4

struct console_sink {
    console_sink_fn fn;
    void *ctx;
};

static struct console_sink sinks[CONSOLE_MAX_SINKS];
static int nsinks;
static struct spinlock console_lock = SPINLOCK_INIT;
static volatile bool panic_mode;
#define CONSOLE_INPUT_MAX 160
static char input_line[CONSOLE_INPUT_MAX];
static size_t input_len;

int console_register(console_sink_fn fn, void *ctx)
{
    uint64_t flags = spin_lock_irqsave(&console_lock);
    int rc = -1;
    if (nsinks < CONSOLE_MAX_SINKS) {
        sinks[nsinks++] = (struct console_sink){ fn, ctx };
        rc = 0;
    }
    spin_unlock_irqrestore(&console_lock, flags);
    return rc;
}

static void to_sinks(const char *s, size_t n)
{
    for (int i = 0; i < nsinks; i++)
        sinks[i].fn(sinks[i].ctx, s, n);
}

/* Takes the input line off the terminal's last row: back to its start, blanks over
 * it, back again.  Blanks rather than an erase sequence (ESC [ K): a log captured
 * from the serial line then holds no escape codes, only a line of blanks that a
 * carriage return ends, and every line keeps its own start. */
static void erase_input(void)
{
    static const char blanks[16] = "                ";
    to_sinks("\r", 1);
    for (size_t left = input_len; left; ) {
        size_t k = left < sizeof blanks ? left : sizeof blanks;
        to_sinks(blanks, k);
        left -= k;
    }
    to_sinks("\r", 1);
}

void console_write(const char *s, size_t n)
{
    if (panic_mode) {
        to_sinks(s, n);
        return;
    }
    uint64_t flags = spin_lock_irqsave(&console_lock);
    if (input_len)
        erase_input();
    to_sinks(s, n);
    if (input_len)
        to_sinks(input_line, input_len);
    spin_unlock_irqrestore(&console_lock, flags);
}

void console_write_raw(const char *s, size_t n)
{
    if (panic_mode) {
        to_sinks(s, n);
        return;
    }
    uint64_t flags = spin_lock_irqsave(&console_lock);
    to_sinks(s, n);
    spin_unlock_irqrestore(&console_lock, flags);
}

void console_erase_input_line(void)
{
    uint64_t flags = spin_lock_irqsave(&console_lock);
    if (input_len)
        erase_input();
    input_len = 0;
    spin_unlock_irqrestore(&console_lock, flags);
}

void console_set_input_line(const char *s, size_t n)
{
    uint64_t flags = spin_lock_irqsave(&console_lock);
    if (n > CONSOLE_INPUT_MAX)
        n = CONSOLE_INPUT_MAX;
    for (size_t i = 0; i < n; i++)
        input_line[i] = s[i];
    input_len = n;
    spin_unlock_irqrestore(&console_lock, flags);
}

void console_enter_panic_mode(void)
{
    panic_mode = true;
}

void console_linef(const char *fmt, ...)
{
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    console_write(line, (size_t)n);
}
