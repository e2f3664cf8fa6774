/* lapictimer: the local APIC plinth models, driven the way an OS drives it: through
 * its MMIO page (each access an EPT/NPT fault that plinth decodes and emulates) and,
 * after switching to x2APIC mode, through MSRs.  Its timer must interrupt the guest
 * in periodic and one-shot mode (waking HLT) and in TSC-deadline mode. */
#include "guest.h"

#define APIC           0xfee00000u
#define APIC_SVR       0x0f0
#define APIC_EOI       0x0b0
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_ICR 0x380
#define APIC_TIMER_DCR 0x3e0
#define VECTOR         0x40
#define MSR_APIC_BASE  0x1b
#define MSR_TSC_DEADLINE 0x6e0

static volatile uint32_t ticks;
static volatile bool x2apic;
static uint64_t idt[256] __attribute__((aligned(16)));

static void apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(APIC + reg) = v; }
static uint32_t apic_read(uint32_t reg) { return *(volatile uint32_t *)(APIC + reg); }

struct iframe;
__attribute__((interrupt)) static void timer_isr(struct iframe *f)
{
    (void)f;
    ticks++;
    if (x2apic)
        wrmsr(0x80b, 0);                 /* x2APIC EOI */
    else
        apic_write(APIC_EOI, 0);
}

/* The library's IDT covers the exceptions; this one adds the timer's vector. */
static void install_timer_vector(void)
{
    struct __attribute__((packed)) { uint16_t limit; uint32_t base; } idtr;
    __asm__ volatile("sidt %0" : "=m"(idtr));
    memcpy(idt, (void *)idtr.base, idtr.limit + 1u);
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    uint32_t off = (uint32_t)timer_isr;
    idt[VECTOR] = (off & 0xffff) | (uint64_t)cs << 16 | (uint64_t)0x8e00 << 32 | (uint64_t)(off >> 16) << 48;
    idtr.limit = sizeof idt - 1;
    idtr.base = (uint32_t)idt;
    __asm__ volatile("lidt %0" :: "m"(idtr));
}

/* Waits (with interrupts on) until ticks reaches want or the TSC has run far. */
/* Waits until ticks reaches want or the TSC has run far: spinning with interrupts
 * on (as a busy-waiting OS does), or halting between them (sti; hlt, atomically). */
static bool wait_ticks(uint32_t want, bool use_hlt)
{
    uint64_t start = rdtsc();
    bool ok = true;
    if (!use_hlt)
        __asm__ volatile("sti");
    while (ticks < want && ok) {
        if (use_hlt)
            __asm__ volatile("sti; hlt; cli");
        else
            __asm__ volatile("pause");
        ok = rdtsc() - start <= 2000000000ull;
    }
    __asm__ volatile("cli");
    return ticks >= want;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "lapictimer";
    idt_init();
    install_timer_vector();
    uint32_t r[4];
    cpuid(1, 0, r);
    check(r[3] & (1u << 9), "lapic-cpuid-apic", "CPUID.1:EDX = %#x", r[3]);
    check(r[2] & (1u << 21), "lapic-cpuid-x2apic", "CPUID.1:ECX = %#x", r[2]);
    check(r[2] & (1u << 24), "lapic-cpuid-tsc-deadline", "CPUID.1:ECX = %#x", r[2]);

    /* xAPIC, through the MMIO page. */
    check((apic_read(0x030) & 0xff) == 0x14, "lapic-version", "version %#x", apic_read(0x030));
    apic_write(APIC_SVR, 0x1ff);
    apic_write(APIC_TIMER_DCR, 0xb);                       /* divide by 1 */
    apic_write(APIC_LVT_TIMER, VECTOR | (1u << 17));       /* periodic */
    apic_write(APIC_TIMER_ICR, 1000000);                   /* 1 ms at the 1 GHz timer clock */
    check(apic_read(APIC_TIMER_ICR) == 1000000, "lapic-timer-icr", "ICR reads %u", apic_read(APIC_TIMER_ICR));
    check(wait_ticks(5, false), "lapic-timer-periodic", "%u ticks", ticks);
    apic_write(APIC_LVT_TIMER, VECTOR | (1u << 16) | (1u << 17)); /* masked, still periodic */
    /* A tick may still wait in the IRR (vector 0x40: IRR word 2, bit 0): take it,
     * then spin through several periods: a masked timer must interrupt no more. */
    __asm__ volatile("sti");
    for (int i = 0; i < 1000000 && (apic_read(0x220) & 1); i++)
        __asm__ volatile("pause");
    uint32_t masked_at = ticks;
    uint64_t t0 = rdtsc();
    while (rdtsc() - t0 < 20000000ull)                      /* >= 5 ms of a >= 4 MHz TSC */
        __asm__ volatile("pause");
    __asm__ volatile("cli");
    check(ticks == masked_at, "lapic-timer-stopped", "%u ticks while masked", ticks - masked_at);

    /* One-shot, waking a halted vCPU: exactly one interrupt, however long one waits. */
    uint32_t before = ticks;
    apic_write(APIC_LVT_TIMER, VECTOR);
    apic_write(APIC_TIMER_ICR, 2000000);
    bool woke = wait_ticks(before + 1, true);
    __asm__ volatile("sti");
    t0 = rdtsc();
    while (rdtsc() - t0 < 20000000ull)
        __asm__ volatile("pause");
    __asm__ volatile("cli");
    check(woke && ticks == before + 1, "lapic-timer-oneshot-wakes-hlt", "%u ticks", ticks - before);

    /* x2APIC mode: the same APIC through MSRs. */
    wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | (1u << 10));
    x2apic = true;
    check(rdmsr(MSR_APIC_BASE) & (1u << 10), "lapic-x2apic-enabled", "APIC_BASE = %#llx", rdmsr(MSR_APIC_BASE));
    check(rdmsr(0x802) == 0, "lapic-x2apic-id", "ID = %#llx", rdmsr(0x802));
    /* TSC-deadline mode (LVT timer mode 2), armed through IA32_TSC_DEADLINE. */
    before = ticks;
    wrmsr(0x832, VECTOR | (2u << 17));
    wrmsr(MSR_TSC_DEADLINE, rdtsc() + 100000);
    check(wait_ticks(before + 1, true), "lapic-tsc-deadline", "%u ticks", ticks - before);
    check(rdmsr(MSR_TSC_DEADLINE) == 0, "lapic-tsc-deadline-clears", "deadline %#llx", rdmsr(MSR_TSC_DEADLINE));
    gprintf("DONE lapictimer\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}
