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

void console_write(const char *s, size_t n)
{
    if (panic_mode) {
        for (int i = 0; i < nsinks; i++)
            sinks[i].fn(sinks[i].ctx, s, n);
        return;
    }
    uint64_t flags = spin_lock_irqsave(&console_lock);
    for (int i = 0; i < nsinks; i++)
        sinks[i].fn(sinks[i].ctx, s, n);
    spin_unlock_irqrestore(&console_lock, flags);
}

void console_enter_panic_mode(void)
{
    panic_mode = true;
}
