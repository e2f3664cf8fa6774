/* snapregs: a snapshot holds the CPU state no VMCS or VMCB field carries, and a
 * restore puts it back.  The guest fills xmm0-7, the ymm upper halves, the x87
 * control word, MXCSR, DR0-DR3, the SYSCALL MSRs and TSC_AUX with pattern A and,
 * every tick=N PIT interrupts (20 Hz), reads them all back against the pattern it
 * believes is loaded: "snapregs: tick N pattern A ok", or a FAIL line naming the
 * first register that differs.  Typing "mutate" loads pattern B.  A snapshot taken
 * under A and restored after "mutate" must bring back A everywhere, the pattern
 * variable (in RAM) and the registers (in the vCPU) alike.  Its console works like
 * guests/console.c's (input by interrupt). */
#include "guest.h"

#define PIT_VEC  0x20
#define UART_VEC 0x24
#define COM1     0x3f8
#define PIT_HZ   20u

#define MSR_STAR    0xc0000081u
#define MSR_LSTAR   0xc0000082u
#define MSR_SFMASK  0xc0000084u
#define MSR_TSC_AUX 0xc0000103u

static volatile uint32_t ticks;
static char line[96];
static volatile unsigned line_len;
static volatile bool line_ready;
static bool avx, tsc_aux;
static uint32_t vec[8][8] __attribute__((aligned(32)));
static uint32_t back[8][8] __attribute__((aligned(32)));

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
    while (inb(COM1 + 5) & 1) {
        char c = (char)inb(COM1);
        if (line_ready)
            continue;
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

static uint32_t word(char pattern, unsigned i)
{
    return (pattern == 'A' ? 0xa5000000u : 0x5b000000u) | (i * 0x10101u);
}

static void load(char pattern)
{
    for (unsigned x = 0; x < 8; x++)
        for (unsigned j = 0; j < 8; j++)
            vec[x][j] = word(pattern, x * 8 + j);
    __asm__ volatile("movdqa 0(%0), %%xmm0\n\t" "movdqa 32(%0), %%xmm1\n\t" "movdqa 64(%0), %%xmm2\n\t"
                     "movdqa 96(%0), %%xmm3\n\t" "movdqa 128(%0), %%xmm4\n\t" "movdqa 160(%0), %%xmm5\n\t"
                     "movdqa 192(%0), %%xmm6\n\t" "movdqa 224(%0), %%xmm7" : : "r"(vec) : "memory");
    if (avx)
        __asm__ volatile("vinsertf128 $1, 16(%0), %%ymm0, %%ymm0\n\t" "vinsertf128 $1, 48(%0), %%ymm1, %%ymm1\n\t"
                         "vinsertf128 $1, 80(%0), %%ymm2, %%ymm2\n\t" "vinsertf128 $1, 112(%0), %%ymm3, %%ymm3\n\t"
                         "vinsertf128 $1, 144(%0), %%ymm4, %%ymm4\n\t" "vinsertf128 $1, 176(%0), %%ymm5, %%ymm5\n\t"
                         "vinsertf128 $1, 208(%0), %%ymm6, %%ymm6\n\t" "vinsertf128 $1, 240(%0), %%ymm7, %%ymm7"
                         : : "r"(vec) : "memory");
    uint16_t fcw = pattern == 'A' ? 0x037f : 0x027f;       /* precision: extended, double */
    uint32_t mxcsr = pattern == 'A' ? 0x1f80 : 0x9f80;     /* FZ off, on */
    __asm__ volatile("fldcw %0" : : "m"(fcw));
    __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
    uint32_t dr[4] = { word(pattern, 64), word(pattern, 65), word(pattern, 66), word(pattern, 67) };
    __asm__ volatile("mov %0, %%dr0" : : "r"(dr[0]));
    __asm__ volatile("mov %0, %%dr1" : : "r"(dr[1]));
    __asm__ volatile("mov %0, %%dr2" : : "r"(dr[2]));
    __asm__ volatile("mov %0, %%dr3" : : "r"(dr[3]));
    wrmsr(MSR_STAR, (uint64_t)word(pattern, 68) << 32);
    wrmsr(MSR_LSTAR, word(pattern, 69));
    wrmsr(MSR_SFMASK, word(pattern, 70));
    if (tsc_aux)
        wrmsr(MSR_TSC_AUX, word(pattern, 71));
}

/* The first register that does not hold the pattern (its name in *what), or none. */
static bool verify(char pattern, const char **what, uint32_t *got, uint32_t *want)
{
    __asm__ volatile("movdqa %%xmm0, 0(%0)\n\t" "movdqa %%xmm1, 32(%0)\n\t" "movdqa %%xmm2, 64(%0)\n\t"
                     "movdqa %%xmm3, 96(%0)\n\t" "movdqa %%xmm4, 128(%0)\n\t" "movdqa %%xmm5, 160(%0)\n\t"
                     "movdqa %%xmm6, 192(%0)\n\t" "movdqa %%xmm7, 224(%0)" : : "r"(back) : "memory");
    if (avx)
        __asm__ volatile("vextractf128 $1, %%ymm0, 16(%0)\n\t" "vextractf128 $1, %%ymm1, 48(%0)\n\t"
                         "vextractf128 $1, %%ymm2, 80(%0)\n\t" "vextractf128 $1, %%ymm3, 112(%0)\n\t"
                         "vextractf128 $1, %%ymm4, 144(%0)\n\t" "vextractf128 $1, %%ymm5, 176(%0)\n\t"
                         "vextractf128 $1, %%ymm6, 208(%0)\n\t" "vextractf128 $1, %%ymm7, 240(%0)"
                         : : "r"(back) : "memory");
    for (unsigned x = 0; x < 8; x++)
        for (unsigned j = 0; j < 8; j++) {
            if ((j >= 4 && !avx) || back[x][j] == word(pattern, x * 8 + j))
                continue;
            *what = j < 4 ? "xmm" : "ymm upper half";
            *got = back[x][j];
            *want = word(pattern, x * 8 + j);
            return false;
        }
    uint16_t fcw;
    uint32_t mxcsr;
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    uint32_t dr[4];
    __asm__ volatile("mov %%dr0, %0" : "=r"(dr[0]));
    __asm__ volatile("mov %%dr1, %0" : "=r"(dr[1]));
    __asm__ volatile("mov %%dr2, %0" : "=r"(dr[2]));
    __asm__ volatile("mov %%dr3, %0" : "=r"(dr[3]));
    struct { const char *name; uint32_t got, want; } regs[] = {
        { "x87 control word", fcw, pattern == 'A' ? 0x037fu : 0x027fu },
        { "MXCSR", mxcsr, pattern == 'A' ? 0x1f80u : 0x9f80u },
        { "DR0", dr[0], word(pattern, 64) }, { "DR1", dr[1], word(pattern, 65) },
        { "DR2", dr[2], word(pattern, 66) }, { "DR3", dr[3], word(pattern, 67) },
        { "STAR", (uint32_t)(rdmsr(MSR_STAR) >> 32), word(pattern, 68) },
        { "LSTAR", (uint32_t)rdmsr(MSR_LSTAR), word(pattern, 69) },
        { "SFMASK", (uint32_t)rdmsr(MSR_SFMASK), word(pattern, 70) },
        { "TSC_AUX", tsc_aux ? (uint32_t)rdmsr(MSR_TSC_AUX) : 0, tsc_aux ? word(pattern, 71) : 0 },
    };
    for (unsigned i = 0; i < sizeof regs / sizeof regs[0]; i++)
        if (regs[i].got != regs[i].want) {
            *what = regs[i].name;
            *got = regs[i].got;
            *want = regs[i].want;
            return false;
        }
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "snapregs";
    uint32_t every = cmdline_number(mbi, "tick", 10);
    uint32_t r[4];
    __asm__ volatile("mov %0, %%cr0" : : "r"((read_cr0() & ~(1u << 2)) | (1u << 1)));
    __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | (1u << 9) | (1u << 10)));
    cpuid(1, 0, r);
    avx = (r[2] & (1u << 26)) && (r[2] & (1u << 28));
    if (avx) {
        __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | (1u << 18)));
        __asm__ volatile("xsetbv" : : "c"(0), "a"(7u), "d"(0));
    }
    cpuid(0x80000001u, 0, r);
    tsc_aux = r[3] & (1u << 27);
    static volatile char pattern = 'A';
    load(pattern);

    set_trap_hook(PIT_VEC, pit_hook);
    set_trap_hook(UART_VEC, uart_hook);
    outb(0x20, 0x11); outb(0xa0, 0x11);
    outb(0x21, 0x20); outb(0xa1, 0x28);
    outb(0x21, 0x04); outb(0xa1, 0x02);
    outb(0x21, 0x01); outb(0xa1, 0x01);
    outb(0x21, 0xee); outb(0xa1, 0xff);            /* IRQ0 and IRQ4 */
    uint16_t count = (uint16_t)(1193182u / PIT_HZ);
    outb(0x43, 0x34);
    outb(0x40, (uint8_t)count);
    outb(0x40, (uint8_t)(count >> 8));
    outb(COM1 + 4, 0x0b);
    outb(COM1 + 1, 0x01);
    gprintf("snapregs: ready pattern %c (avx %s, tsc_aux %s)\n", pattern, avx ? "yes" : "no",
            tsc_aux ? "yes" : "no");

    uint32_t printed = 0;
    for (;;) {
        __asm__ volatile("sti; hlt; cli");
        if (every && ticks / every != printed) {
            printed = ticks / every;
            const char *what = "";
            uint32_t got = 0, want = 0;
            if (verify(pattern, &what, &got, &want))
                gprintf("snapregs: tick %u pattern %c ok\n", printed, pattern);
            else
                gprintf("FAIL snapregs: tick %u pattern %c: %s is %#x, not %#x\n", printed, pattern, what, got,
                        want);
        }
        if (!line_ready)
            continue;
        line[line_len] = 0;
        if (same(line, "mutate")) {
            load('B');
            pattern = 'B';
            gprintf("snapregs: now pattern B\n");
        }
        line_len = 0;
        line_ready = false;
    }
}
