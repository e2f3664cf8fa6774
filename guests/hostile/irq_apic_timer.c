/* irq_apic_timer: the local APIC timer at its shortest period: divide by 1, initial
 * count 1, periodic (an interrupt due every nanosecond of the 1 GHz timer clock).
 * The expiries merge into the one request the IRR holds (SDM Vol. 3A §12.8.4), so
 * the guest takes them as fast as it can EOI them and nothing queues up: once its
 * handler masks the timer after WANT of them, at most the one already requested
 * still arrives.  Then a one-shot count of 1 fires exactly once. */
#include "irq_smp.h"

#define VEC  0x40
#define WANT 2000u

static volatile uint32_t hits;

static bool timer_hook(struct trap_frame *f)
{
    (void)f;
    if (++hits == WANT)
        apic_write(APIC_LVT_TIMER, VEC | TIMER_PERIODIC | LVT_MASKED);
    apic_write(APIC_EOI, 0);
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_apic_timer";
    set_trap_hook(VEC, timer_hook);
    apic_write(APIC_SVR, 0x1ff);
    apic_write(APIC_TIMER_DCR, 0xb);                     /* divide by 1 */
    apic_write(APIC_LVT_TIMER, VEC | TIMER_PERIODIC);
    uint64_t t0 = rdtsc();
    apic_write(APIC_TIMER_ICR, 1);
    __asm__ volatile("sti");
    bool got = WAIT_FOR(hits >= WANT);
    uint64_t t1 = rdtsc();
    spin_tsc(2000000);
    __asm__ volatile("cli");
    uint32_t after = hits - WANT;
    gprintf("INFO irq_apic_timer: %u interrupts in %llu TSC ticks, %u after the mask\n", hits, t1 - t0, after);
    check(got, "irq-apic-timer-fastest-delivered", "%u of %u interrupts arrived", hits, WANT);
    check(got && after <= 1, "irq-apic-timer-no-backlog", "%u interrupts arrived after the timer was masked",
          after);

    /* One-shot, count 1: one interrupt, then the count reads 0. */
    apic_write(APIC_TIMER_ICR, 0);
    hits = 0;
    apic_write(APIC_LVT_TIMER, VEC);
    apic_write(APIC_TIMER_ICR, 1);
    __asm__ volatile("sti");
    WAIT_FOR(hits >= 1);
    spin_tsc(1000000);
    __asm__ volatile("cli");
    uint32_t ccr = apic_read(0x390);
    check(hits == 1 && ccr == 0, "irq-apic-timer-oneshot-once", "%u interrupts from a one-shot count of 1, "
          "current count %u", hits, ccr);
}
