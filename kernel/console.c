#include "kernel/console.h"
#include "kernel/spinlock.h"

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

void console_write(const char *s, size_t n)
{
    if (panic_mode) {
        to_sinks(s, n);
        return;
    }
    uint64_t flags = spin_lock_irqsave(&console_lock);
    if (input_len)
        to_sinks("\r\033[K", 4);
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
