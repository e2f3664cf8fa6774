/* irq_tsc_deadline: the APIC timer in TSC-deadline mode (SDM Vol. 3A §12.5.4.1)
 * armed in the past, over and over: deadline 1, and the TSC just read less some.
 * Each write fires one interrupt at once and the MSR reads 0 after it has fired; a
 * deadline written as 0 disarms; many past deadlines written with interrupts off
 * merge into one request. */
#include "irq_smp.h"

#define VEC  0x41
#define WANT 2000u

static volatile uint32_t hits;

static bool dl_hook(struct trap_frame *f)
{
    (void)f;
    uint32_t n = ++hits;
    if (n < WANT)
        wrmsr(MSR_TSC_DEADLINE, n & 1 ? 1 : rdtsc() - 1000);
    apic_write(APIC_EOI, 0);
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_tsc_deadline";
    uint32_t r[4];
    cpuid(1, 0, r);
    if (!(r[2] & (1u << 24))) {
        fail("irq-tsc-deadline-cpuid", "CPUID.1:ECX.TSC_DEADLINE is clear");
        return;
    }
    set_trap_hook(VEC, dl_hook);
    apic_write(APIC_SVR, 0x1ff);
    apic_write(APIC_LVT_TIMER, VEC | TIMER_TSC_DL);
    wrmsr(MSR_TSC_DEADLINE, rdtsc() - 1000);
    __asm__ volatile("sti");
    bool got = WAIT_FOR(hits >= WANT);
    spin_tsc(1000000);
    __asm__ volatile("cli");
    uint64_t msr = rdmsr(MSR_TSC_DEADLINE);
    gprintf("INFO irq_tsc_deadline: %u interrupts from %u past deadlines; the MSR reads %#llx\n", hits, WANT, msr);
    check(got && hits == WANT, "irq-tsc-deadline-past-fires-once-each", "%u interrupts from %u past deadlines",
          hits, WANT);
    check(msr == 0, "irq-tsc-deadline-cleared", "IA32_TSC_DEADLINE reads %#llx after it fired", msr);

    /* A far deadline then 0: disarmed, nothing arrives. */
    hits = WANT;
    wrmsr(MSR_TSC_DEADLINE, rdtsc() + (1ull << 50));
    wrmsr(MSR_TSC_DEADLINE, 0);
    __asm__ volatile("sti");
    spin_tsc(2000000);
    __asm__ volatile("cli");
    check(hits == WANT, "irq-tsc-deadline-zero-disarms", "%u interrupts after writing 0", hits - WANT);

    /* 500 past deadlines with interrupts off: one request, one interrupt. */
    for (unsigned i = 0; i < 500; i++)
        wrmsr(MSR_TSC_DEADLINE, i & 1 ? 1 : rdtsc() - 1);
    __asm__ volatile("sti");
    WAIT_FOR(hits > WANT);
    spin_tsc(1000000);
    __asm__ volatile("cli");
    check(hits == WANT + 1, "irq-tsc-deadline-merged", "%u interrupts from 500 past deadlines with IF=0",
          hits - WANT);
}
