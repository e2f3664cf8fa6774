/* The test guests' library: 16550 output, PASS/FAIL lines, IDT and fault probes. */
#include "guest.h"

#define COM1 0x3f8
/* 16550 registers (offsets from the base) and bits, per the PC16550D data sheet. */
#define UART_THR 0
#define UART_DLL 0
#define UART_DLM 1
#define UART_IER 1
#define UART_LCR 3
#define UART_LSR 5
#define UART_LCR_DLAB 0x80
#define UART_LCR_8N1  0x03
#define UART_LSR_THRE 0x20

const char *guest_name = "guest";
unsigned guest_failures;
struct probe probe = { .vector = -1 };

void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p < *q ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void serial_init(void)
{
    outb(COM1 + UART_IER, 0);
    outb(COM1 + UART_LCR, UART_LCR_DLAB);
    outb(COM1 + UART_DLL, 1);          /* 115200 baud */
    outb(COM1 + UART_DLM, 0);
    outb(COM1 + UART_LCR, UART_LCR_8N1);
}

void serial_putc(char c)
{
    while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE))
        ;
    outb(COM1 + UART_THR, (uint8_t)c);
}

static void put_str(const char *s)
{
    while (*s)
        serial_putc(*s++);
}

static void put_num(uint32_t v, unsigned base, int width, char pad)
{
    char buf[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n < width--)
        serial_putc(pad);
    while (n)
        serial_putc(buf[--n]);
}

/* 64-bit division by 10 and 16 needs libgcc on i386; do it by shifting instead. */
static uint64_t udiv64(uint64_t n, uint32_t d, uint32_t *rem)
{
    uint64_t q = 0, r = 0;
    for (int i = 63; i >= 0; i--) {
        r = r << 1 | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= 1ull << i;
        }
    }
    *rem = (uint32_t)r;
    return q;
}

static void put_u64(uint64_t v, unsigned base, int width, char pad)
{
    char buf[24];
    int n = 0;
    do {
        uint32_t d;
        v = udiv64(v, base, &d);
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    } while (v);
    while (n < width--)
        serial_putc(pad);
    while (n)
        serial_putc(buf[--n]);
}

void gvprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            serial_putc(*fmt);
            continue;
        }
        fmt++;
        bool alt = false;
        char pad = ' ';
        int width = 0, longs = 0;
        if (*fmt == '#') { alt = true; fmt++; }
        if (*fmt == '0') { pad = '0'; fmt++; }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') { longs++; fmt++; }
        switch (*fmt) {
        case 's': put_str(va_arg(ap, const char *)); break;
        case 'c': serial_putc((char)va_arg(ap, int)); break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) { serial_putc('-'); v = -v; }
            put_num((uint32_t)v, 10, width, pad);
            break;
        }
        case 'u':
        case 'x':
            if (alt && *fmt == 'x')
                put_str("0x");
            if (longs)
                put_u64(va_arg(ap, uint64_t), *fmt == 'u' ? 10 : 16, width, pad);
            else
                put_num(va_arg(ap, uint32_t), *fmt == 'u' ? 10 : 16, width, pad);
            break;
        case '%': serial_putc('%'); break;
        default: serial_putc('?'); break;
        }
    }
}

void gprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gvprintf(fmt, ap);
    va_end(ap);
}

void pass(const char *check_name)
{
    gprintf("PASS %s\n", check_name);
}

static void vfail(const char *check_name, const char *fmt, va_list ap)
{
    guest_failures++;
    gprintf("FAIL %s: ", check_name);
    gvprintf(fmt, ap);
    serial_putc('\n');
}

void fail(const char *check_name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(check_name, fmt, ap);
    va_end(ap);
}

void check(bool ok, const char *check_name, const char *fmt, ...)
{
    if (ok) {
        pass(check_name);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfail(check_name, fmt, ap);
    va_end(ap);
}

void done(void)
{
    gprintf("DONE %s\n", guest_name);
    /* With IF clear nothing wakes the CPU: plinth stops the VM here. */
    for (;;)
        __asm__ volatile("cli; hlt");
}

static bool word_is(const char *p, const char *key, const char **value)
{
    size_t n = strlen(key);
    if (memcmp(p, key, n) != 0 || p[n] != '=')
        return false;
    *value = p + n + 1;
    return true;
}

uint32_t cmdline_number(const struct mb1_info *mbi, const char *key, uint32_t def)
{
    if (!mbi || !(mbi->flags & MB1_INFO_CMDLINE) || !mbi->cmdline)
        return def;
    const char *p = (const char *)(uintptr_t)mbi->cmdline;
    while (*p) {
        const char *v;
        if ((p == (const char *)(uintptr_t)mbi->cmdline || p[-1] == ' ') && word_is(p, key, &v)) {
            uint32_t n = 0;
            if (*v < '0' || *v > '9')
                return def;
            while (*v >= '0' && *v <= '9')
                n = n * 10 + (uint32_t)(*v++ - '0');
            return n;
        }
        p++;
    }
    return def;
}

bool cmdline_string(const struct mb1_info *mbi, const char *key, char *out, size_t cap)
{
    if (cap)
        out[0] = 0;
    if (!mbi || !(mbi->flags & MB1_INFO_CMDLINE) || !mbi->cmdline || !cap)
        return false;
    const char *p = (const char *)(uintptr_t)mbi->cmdline;
    for (; *p; p++) {
        const char *v;
        if ((p != (const char *)(uintptr_t)mbi->cmdline && p[-1] != ' ') || !word_is(p, key, &v))
            continue;
        size_t n = 0;
        while (v[n] && v[n] != ' ' && n + 1 < cap) {
            out[n] = v[n];
            n++;
        }
        out[n] = 0;
        return true;
    }
    return false;
}

const struct mb1_info *guest_mbi;

bool skipped(const char *check_name)
{
    const struct mb1_info *mbi = guest_mbi;
    if (!mbi || !(mbi->flags & MB1_INFO_CMDLINE) || !mbi->cmdline)
        return false;
    const char *p = (const char *)(uintptr_t)mbi->cmdline, *v;
    size_t n = strlen(check_name);
    for (; *p; p++) {
        if ((p != (const char *)(uintptr_t)mbi->cmdline && p[-1] != ' ') || !word_is(p, "skip", &v))
            continue;
        while (*v && *v != ' ') {
            if (!memcmp(v, check_name, n) && (v[n] == ',' || v[n] == ' ' || !v[n])) {
                gprintf("SKIP %s: named on the command line (skip=)\n", check_name);
                return true;
            }
            while (*v && *v != ',' && *v != ' ')
                v++;
            if (*v == ',')
                v++;
        }
    }
    return false;
}

uint32_t mb1_ram_top(const struct mb1_info *mbi)
{
    if (!mbi || !(mbi->flags & MB1_INFO_MEM))
        return 0;
    /* mem_upper: KiB of memory from 1 MiB up to the first hole (Multiboot §3.3). */
    return 0x100000u + mbi->mem_upper * 1024u;
}

/* ---- IDT ---- */

/* Interrupt gates (SDM Vol. 3A §6.11 Figure 6-2; §6.14.1 Figure 6-8 in 64-bit mode). */
#ifdef __x86_64__
struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t ist, type;
    uint16_t off_mid;
    uint32_t off_hi, reserved;
} __attribute__((packed));
extern const uint64_t trap_stubs[256];
#else
struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t zero, type;
    uint16_t off_hi;
} __attribute__((packed));
extern const uint32_t trap_stubs[256];
#endif

static struct idt_gate idt[256] __attribute__((aligned(16)));
static trap_hook_fn trap_hooks[256];

void idt_set_gate(unsigned vector, unsigned dpl, bool trap_gate)
{
    uintptr_t off = (uintptr_t)trap_stubs[vector & 0xff];
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    struct idt_gate *g = &idt[vector & 0xff];
    /* Present, DPL, type 0xE (interrupt gate) or 0xF (trap gate). */
    uint8_t type = (uint8_t)(0x80 | (dpl & 3) << 5 | (trap_gate ? 0xf : 0xe));
#ifdef __x86_64__
    *g = (struct idt_gate){ (uint16_t)off, cs, 0, type, (uint16_t)(off >> 16), (uint32_t)(off >> 32), 0 };
#else
    *g = (struct idt_gate){ (uint16_t)off, cs, 0, type, (uint16_t)(off >> 16) };
#endif
}

void idt_init(void)
{
    for (unsigned i = 0; i < 256; i++)
        idt_set_gate(i, 0, false);
    struct { uint16_t limit; uintptr_t base; } __attribute__((packed)) d = { sizeof idt - 1, (uintptr_t)idt };
    __asm__ volatile("lidt %0" : : "m"(d));
}

void set_trap_hook(unsigned vector, trap_hook_fn fn)
{
    trap_hooks[vector & 0xff] = fn;
}

void trap_dispatch(struct trap_frame *f)
{
    trap_hook_fn hook = trap_hooks[f->vector & 0xff];
    if (hook && hook(f))
        return;
    if (probe.active) {
        probe.vector = (int)f->vector;
        probe.error = (uint32_t)f->error;
        probe.eip = (uint32_t)f->eip;
        probe.eflags = f->eflags;
        probe.active = 0;
        f->eip = probe.resume;
        return;
    }
    fail("unexpected-exception", "vector %u error %#x at eip %#lx", (uint32_t)f->vector, (uint32_t)f->error,
         (uint64_t)f->eip);
    done();
}

bool cpu_is_amd(void)
{
    uint32_t r[4];
    cpuid(0, 0, r);
    return !memcmp(&r[1], "Auth", 4) || !memcmp(&r[1], "Hygo", 4);
}

int probe_rdmsr(uint32_t msr, uint64_t *value)
{
    uint32_t lo = 0, hi = 0;
    PROBE_ASM("rdmsr", : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
    *value = (uint64_t)hi << 32 | lo;
    return probe.vector;
}

int probe_wrmsr(uint32_t msr, uint64_t value)
{
    PROBE_ASM("wrmsr", : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)) : "memory");
    return probe.vector;
}

int probe_write_cr4(uint32_t value)
{
    PROBE_ASM("mov %0, %%cr4", : : "r"((greg_t)value) : "memory");
    return probe.vector;
}

void expect_fault(const char *check_name, int want_vector, int32_t want_error)
{
    if (probe.vector < 0)
        fail(check_name, "no exception (expected vector %d)", want_vector);
    else if (probe.vector != want_vector)
        fail(check_name, "vector %d error %#x arrived (expected %d)", probe.vector, probe.error, want_vector);
    else if (want_error >= 0 && probe.error != (uint32_t)want_error)
        fail(check_name, "vector %d with error code %#x (expected %#x)", probe.vector, probe.error, want_error);
    else if (probe.eip != probe.at)
        fail(check_name, "vector %d at eip %#x, not at the instruction (%#x)", probe.vector, probe.eip, probe.at);
    else {
        gprintf("PASS %s (vector %d error %#x at eip %#x)\n", check_name, probe.vector, probe.error, probe.eip);
    }
}

void guest_entry(uint32_t magic, const struct mb1_info *mbi)
{
    if (magic == MB1_BOOT_MAGIC)
        guest_mbi = mbi;
    serial_init();
    idt_init();
    guest_main(magic, mbi);
    done();
}
