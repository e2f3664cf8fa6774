/* console: a guest that takes its console input by interrupt, as an OS does, for
 * the shell's boot tests.  It echoes every line typed for it ("console: echo
 * <line>"), prints "console: tick N" every tick=N (default 10) PIT interrupts at
 * 20 Hz, and at boot says whether it starts clean: its marker in .data as loaded,
 * and a word near the top of its RAM as a fresh VM's RAM reads (zero).  Typing
 * "smash" overwrites both (as a guest that corrupts its own kernel in RAM would),
 * so that only a restart from a clean image brings back "marker=ORIGINAL
 * ram=clean"; "marker" prints both as they are now; "fill" writes 4 MiB of RAM
 * (from 8 MiB) with a non-zero pattern, for the snapshot tests' bound on memory;
 * "halt" stops it with interrupts off.  Command line: tick=N. */
#include "guest.h"

#define PIT_VEC  0x20
#define UART_VEC 0x24
#define COM1     0x3f8
#define PIT_HZ   20u

static char marker[16] = "ORIGINAL";
static volatile uint32_t ticks;
static char line[96];
static volatile unsigned line_len;
static volatile bool line_ready;

static bool pit_hook(struct trap_frame *f)
{
    (void)f;
    ticks++;
    outb(0x20, 0x20);
    return true;
}

static bool uart_hook(struct trap_frame *f)
{
    (void)f;
    while (inb(COM1 + 5) & 1) {                    /* LSR: data ready */
        char c = (char)inb(COM1);
        if (line_ready)
            continue;                              /* the last line is not taken yet */
        if (c == '\r' || c == '\n') {
            if (line_len)
                line_ready = true;
        } else if (line_len < sizeof line - 1 && c >= 0x20 && c < 0x7f) {
            line[line_len++] = c;
        }
    }
    outb(0x20, 0x20);
    return true;
}

static bool same(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "console";
    uint32_t every = cmdline_number(mbi, "tick", 10);
    volatile uint32_t *top = (volatile uint32_t *)(uintptr_t)(mb1_ram_top(mbi) - 0x10000);
    gprintf("console: boot marker=%s ram=%s\n", marker, *top ? "dirty" : "clean");

    set_trap_hook(PIT_VEC, pit_hook);
    set_trap_hook(UART_VEC, uart_hook);
    outb(0x20, 0x11); outb(0xa0, 0x11);            /* the 8259s at 0x20 / 0x28 */
    outb(0x21, 0x20); outb(0xa1, 0x28);
    outb(0x21, 0x04); outb(0xa1, 0x02);
    outb(0x21, 0x01); outb(0xa1, 0x01);
    outb(0x21, 0xee); outb(0xa1, 0xff);            /* IRQ0 and IRQ4 */
    uint16_t count = (uint16_t)(1193182u / PIT_HZ);
    outb(0x43, 0x34);                              /* counter 0, mode 2 */
    outb(0x40, (uint8_t)count);
    outb(0x40, (uint8_t)(count >> 8));
    outb(COM1 + 4, 0x0b);                          /* MCR: DTR, RTS, OUT2 (the IRQ line) */
    outb(COM1 + 1, 0x01);                          /* IER: received data available */
    gprintf("console: ready\n");

    uint32_t printed = 0;
    for (;;) {
        __asm__ volatile("sti; hlt; cli");
        if (every && ticks / every != printed) {
            printed = ticks / every;
            gprintf("console: tick %u\n", printed);
        }
        if (!line_ready)
            continue;
        line[line_len] = 0;
        gprintf("console: echo %s\n", line);
        if (same(line, "smash")) {
            memcpy(marker, "SMASHED", 8);
            *top = 0x5a5a5a5au;
            gprintf("console: smashed marker=%s\n", marker);
        } else if (same(line, "marker")) {
            gprintf("console: marker=%s ram=%s\n", marker, *top ? "dirty" : "clean");
        } else if (same(line, "fill")) {
            volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)(8u << 20);
            for (uint32_t i = 0; i < (4u << 20) / 4; i++)
                p[i] = 0xa5a5a5a5u ^ i;
            gprintf("console: filled 4 MiB\n");
        } else if (same(line, "halt")) {
            gprintf("console: halting\n");
            for (;;)
                __asm__ volatile("cli; hlt");
        }
        line_len = 0;
        line_ready = false;
    }
}
