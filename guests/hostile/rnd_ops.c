/* rnd_ops: a seeded stream of random operations at plinth, the way a fuzzer would
 * drive it from inside a guest: port reads and writes, local APIC and IOAPIC reads and
 * writes (ICR and unmasked IOAPIC routes excepted: an INIT to itself would end the
 * run), MOVS from device pages, RDMSR of random MSRs and WRMSR back of what they
 * read, random CPUID leaves, CR4 and XCR0 writes, INT n and undefined opcodes.  Every
 * outcome must be one the CPU allows (no fault where none can come, #GP only where
 * it can), and a canary of the guest's own memory must stay intact; plinth must never
 * stop the VM.  `seed=S ops=N` on its command line sets the stream; it prints both, so
 * a failing stream re-runs exactly (README, "Hostile guests"). */
#include "hostile.h"

#define APIC_ICR_LOW_OFF 0x300
#define APIC_ICR_HIGH_OFF 0x310

static uint8_t canary[4096];
static uint8_t code[16];
static uint32_t buf[64];
static volatile uint32_t nmis;

/* The ports that reset or power off the VM, or are the console itself. */
static bool port_excluded(uint16_t p)
{
    return (p >= 0x3f8 && p <= 0x3ff) || p == 0x60 || p == 0x64 || p == 0x92 || (p >= 0xcf8 && p <= 0xcff) ||
           (p >= 0x600 && p < 0x60c);
}

static bool nmi_hook(struct trap_frame *f)
{
    (void)f;
    if (probe.active)
        return false;                                  /* INT 2 by a probe */
    nmis++;
    return true;
}

static unsigned bad;
static void wrong(uint32_t op, uint32_t kind, const char *what, uint32_t a, uint32_t b)
{
    if (bad++ < 8)
        gprintf("INFO rnd_ops: op %u (kind %u): %s %#x %#x\n", op, kind, what, a, b);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "rnd_ops";
    idt_init();
    set_trap_hook(2, nmi_hook);
    pic_remap();
    uint32_t seed = cmdline_number(mbi, "seed", 0);
    if (!seed)
        seed = (uint32_t)rdtsc() | 1;
    uint32_t ops = cmdline_number(mbi, "ops", 20000);
    gprintf("INFO rnd_ops: seed %u, %u ops (re-run with: cmdline = seed=%u ops=%u)\n", seed, ops, seed, ops);
    uint32_t s = seed;
    for (unsigned i = 0; i < sizeof canary; i++)
        canary[i] = (uint8_t)lcg(&s);
    uint32_t want_sum = bytes_sum(canary, sizeof canary);
    uint32_t cr4 = (uint32_t)read_cr4();
    unsigned kinds[16] = { 0 };

    s = seed;
    for (uint32_t op = 0; op < ops; op++) {
        uint32_t r = lcg(&s), v = lcg(&s), kind = (r >> 24) % 14;
        kinds[kind]++;
        switch (kind) {
        case 0: {                                             /* port read, any size */
            uint16_t p = (uint16_t)v;
            if ((r & 3) == 0) (void)inb(p); else if ((r & 3) == 1) (void)inw(p); else (void)inl(p);
            break;
        }
        case 1: {                                             /* port write */
            uint16_t p = (uint16_t)v;
            bool skip = false;
            for (unsigned k = 0; k < ((r & 1) ? 1u : 4u); k++)
                skip |= port_excluded((uint16_t)(p + k));
            if (skip)
                break;
            if (r & 1) outb(p, (uint8_t)r); else outl(p, r);
            break;
        }
        case 2:                                               /* APIC read, aligned or not */
            (void)*(volatile uint32_t *)(uintptr_t)(APIC + (v & 0xffc));
            (void)*(volatile uint8_t *)(uintptr_t)(APIC + (v & 0xfff));
            break;
        case 3: {                                             /* APIC write, not the ICR */
            uint32_t off = v & 0xff0;
            if (off == APIC_ICR_LOW_OFF || off == APIC_ICR_HIGH_OFF)
                break;
            apic_write(off, r);
            break;
        }
        case 4: {                                             /* IOAPIC: routes stay masked */
            uint8_t index = (uint8_t)v;
            *(volatile uint32_t *)IOAPIC = index;
            if (r & 1)
                *(volatile uint32_t *)(IOAPIC + 0x10) = (index >= 0x10 && index < 0x40 && !(index & 1))
                                                        ? r | 0x10000u : r;
            else
                (void)*(volatile uint32_t *)(IOAPIC + 0x10);
            break;
        }
        case 5: {                                             /* MOVS from a device page */
            uint32_t n = 1 + (r & 15), esi = ((r & 1) ? APIC : IOAPIC) + (v & 0xf00), edi = (uint32_t)(uintptr_t)buf;
            __asm__ volatile("cld; rep movsl" : "+S"(esi), "+D"(edi), "+c"(n) : : "memory");
            if (n)
                wrong(op, kind, "REP MOVSD left ECX", n, esi);
            break;
        }
        case 6: {                                             /* RDMSR, then WRMSR of the same */
            uint32_t msr = (r & 1) ? v : ((r & 2) ? 0xc0000000u : 0) + (v & 0x1fff);
            uint64_t val;
            int vec = probe_rdmsr(msr, &val);
            if (vec >= 0 && (vec != 13 || probe.error))
                wrong(op, kind, "RDMSR faulted (msr, vector)", msr, (uint32_t)vec);
            if (vec < 0 && msr != 0x1b && msr != 0xc0000080u) {   /* not APIC base or EFER */
                vec = probe_wrmsr(msr, val);
                if (vec >= 0 && vec != 13)
                    wrong(op, kind, "WRMSR back faulted (msr, vector)", msr, (uint32_t)vec);
            }
            break;
        }
        case 7: {                                             /* CPUID */
            uint32_t regs[4];
            cpuid((r & 1) ? v : ((r & 2) ? 0x80000000u : ((r & 4) ? 0x40000000u : 0)) + (v & 0x3f), r >> 8, regs);
            break;
        }
        case 8: {                                             /* CR4, then back */
            uint32_t want = cr4 ^ (1u << (v % 24));
            int vec = probe_write_cr4(want);
            if (vec >= 0 && vec != 13)
                wrong(op, kind, "MOV CR4 faulted (value, vector)", want, (uint32_t)vec);
            write_cr4(cr4);
            break;
        }
        case 9: {                                             /* XSETBV: #UD without OSXSAVE */
            PROBE_ASM("xsetbv", : : "c"(v & 1), "a"(r), "d"(0) : "memory");
            if (probe.vector != 6 && probe.vector != 13)
                wrong(op, kind, "XSETBV vector (value)", (uint32_t)probe.vector, r);
            break;
        }
        case 10: {                                            /* INT n, any vector */
            uint8_t vec = (uint8_t)v;
            /* The library's stubs for the vectors whose exceptions push an error
             * code expect one, which INT n does not push. */
            if (vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30)
                break;
            code[0] = 0xcd;
            code[1] = vec;
            code[2] = 0xc3;
            probe_call(code, code + 2, 0);
            if (probe.vector != vec)
                wrong(op, kind, "INT n arrived as (n, vector)", vec, (uint32_t)probe.vector);
            break;
        }
        case 11:                                              /* an undefined opcode */
            PROBE_ASM("ud2", : : : "memory");
            if (probe.vector != 6)
                wrong(op, kind, "UD2 gave vector", (uint32_t)probe.vector, 0);
            break;
        case 12: {                                            /* an emulated RMW on the APIC's TPR */
            uint32_t t = apic_read(0x080);
            __asm__ volatile("lock orl %1, (%0)" : : "r"(APIC + 0x080), "r"(v & 0xf0) : "memory");
            if ((apic_read(0x080) & 0xff) != ((t | (v & 0xf0)) & 0xff))
                wrong(op, kind, "LOCK OR on TPR (before, after)", t, apic_read(0x080));
            apic_write(0x080, 0);
            break;
        }
        default: {                                            /* RDTSC, monotonic */
            uint64_t a = rdtsc(), b = rdtsc();
            if (b < a)
                wrong(op, kind, "RDTSC went back (low words)", (uint32_t)a, (uint32_t)b);
            break;
        }
        }
        if ((op & 1023) == 1023 && bytes_sum(canary, sizeof canary) != want_sum) {
            wrong(op, kind, "canary changed (sum, want)", bytes_sum(canary, sizeof canary), want_sum);
            break;
        }
        if (ops >= 16 && op % (ops / 16) == ops / 16 - 1)
            gprintf("INFO rnd_ops: %u of %u ops\n", op + 1, ops);
    }
    check(bad == 0, "rnd-ops-outcomes", "%u outcomes the CPU would not give (seed %u)", bad, seed);
    check(bytes_sum(canary, sizeof canary) == want_sum, "rnd-ops-memory-intact", "canary changed (seed %u)", seed);
    gprintf("INFO rnd_ops: kinds");
    for (unsigned k = 0; k < 14; k++)
        gprintf(" %u", kinds[k]);
    gprintf("; %u NMIs\n", nmis);
    done();
}
