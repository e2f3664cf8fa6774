/* irq_window: interrupt windows requested and never opened.  A two-vCPU VM on one
 * CPU: the AP halts with interrupts off (CLI; HLT) and is sent fixed IPIs, which must
 * neither wake it nor be lost (they wait in its IRR; only an NMI ends a HLT with
 * IF=0, SDM Vol. 3A §6.7.1 and §10.4).  The BSP makes an interrupt of its own pending
 * and then spins with interrupts off for a long while, so that plinth's interrupt
 * window never opens: plinth must neither spin on it nor starve the neighbour, and
 * when the BSP finally sets IF the interrupt arrives once.  Last, an NMI wakes the
 * halted AP: its handler sees the fixed vector still pending, and the AP halts
 * again. */
#define IRQ_WANT_SMP
#include "irq_smp.h"

#define VEC        0x70
#define SENDS      50u
#define LONG_SPIN  100000000ull        /* 3 s on Bochs, ~40 ms of QEMU's TSC */

static volatile uint32_t ap_up, ap_wakes, nmis, ap_irr, got[2];

static bool fixed_hook(struct trap_frame *f)
{
    (void)f;
    __atomic_add_fetch(&got[apic_id() & 1], 1, __ATOMIC_RELAXED);
    apic_write(APIC_EOI, 0);
    return true;
}

static bool nmi_hook(struct trap_frame *f)
{
    (void)f;
    if ((apic_id() & 1) == 1)
        ap_irr = apic_read(APIC_IRR + 16 * (VEC / 32));
    __atomic_add_fetch(&nmis, 1, __ATOMIC_RELAXED);
    return true;
}

static void ap_main(uint32_t id)
{
    (void)id;
    __asm__ volatile("cli");
    ap_up = 1;
    for (;;) {
        __asm__ volatile("hlt" ::: "memory");
        __atomic_add_fetch(&ap_wakes, 1, __ATOMIC_RELAXED);
    }
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_window";
    set_trap_hook(VEC, fixed_hook);
    set_trap_hook(2, nmi_hook);
    apic_write(APIC_SVR, 0x1ff);
    smp_prepare();
    smp_start_ap(1);
    if (!WAIT_FOR(ap_up)) {
        fail("irq-window-ap-up", "AP 1 did not come up");
        return;
    }
    spin_tsc(1000000);                                  /* the AP reaches its HLT */

    /* Fixed IPIs to the AP halted with IF=0: it sleeps on. */
    for (unsigned i = 0; i < SENDS; i++)
        send_ipi(1, VEC | ICR_FIXED | ICR_ASSERT);
    spin_tsc(4000000);
    check(ap_wakes == 0 && got[1] == 0, "irq-window-halted-ap-sleeps",
          "the AP, halted with IF=0, woke %u times and took %u fixed IPIs", ap_wakes, got[1]);

    /* An interrupt pending on the BSP while it spins with IF=0: the window plinth
     * waits for opens only at the STI. */
    __asm__ volatile("cli");
    send_ipi(0, VEC | ICR_FIXED | ICR_ASSERT | ICR_SELF);
    uint64_t t0 = rdtsc();
    spin_tsc(LONG_SPIN);
    uint32_t early = got[0];
    __asm__ volatile("sti");
    bool arrived = WAIT_FOR(got[0] >= 1);
    spin_tsc(1000000);
    __asm__ volatile("cli");
    gprintf("INFO irq_window: spun %llu TSC ticks with an interrupt pending and IF=0\n", rdtsc() - t0);
    check(early == 0 && arrived && got[0] == 1, "irq-window-opened-late-delivers-once",
          "%u interrupts before the STI, %u in all (want 0, then 1)", early, got[0]);

    /* An NMI ends the AP's HLT; the fixed vector is still in its IRR, and it halts
     * again. */
    send_ipi(1, ICR_NMI | ICR_ASSERT);
    bool woke = WAIT_FOR(nmis >= 1 && ap_wakes >= 1);
    spin_tsc(2000000);
    check(woke && nmis == 1 && ap_wakes == 1, "irq-window-nmi-wakes-halted-ap",
          "after an NMI to the AP: %u NMIs taken, %u wake-ups (want 1 and 1)", nmis, ap_wakes);
    check(woke && (ap_irr & (1u << (VEC % 32))) && got[1] == 0, "irq-window-fixed-stays-pending",
          "the AP's IRR word %#x at its NMI, %u fixed IPIs taken (want vector %#x pending, none taken)", ap_irr,
          got[1], VEC);
}
