/* sched_wake: a two-vCPU VM alone on one physical CPU, whose BSP wakes its halted AP
 * with an IPI and waits for the answer spinning with interrupts off and no timer
 * armed, 200 times.  The AP runs only if plinth's scheduler switches to it when the
 * BSP's own exit (the ICR write) makes it runnable: with one vCPU runnable no slice
 * is armed, and the BSP would spin until a platform timer's deadline ends its run
 * (tests/boot/test_sched.py). */
#define IRQ_WANT_SMP
#include "irq_smp.h"

#define VEC    0x60
#define ROUNDS 200u

static volatile uint32_t ap_up, answers;

static bool ipi_hook(struct trap_frame *f)
{
    (void)f;
    answers++;
    apic_write(APIC_EOI, 0);
    return true;
}

static void ap_main(uint32_t id)
{
    (void)id;
    ap_up = 1;
    /* Each IPI wakes it once; after the last it halts for good, ending the VM. */
    while (answers < ROUNDS)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "sched_wake";
    set_trap_hook(VEC, ipi_hook);
    apic_write(APIC_SVR, 0x1ff);
    __asm__ volatile("cli");
    smp_prepare();
    uint64_t t0 = rdtsc();
    smp_start_ap(1);
    bool up = WAIT_FOR(ap_up);
    check(up, "sched-wake-ap-up", "the AP did not run within %u Mi TSC ticks of its SIPI, its BSP spinning",
          (uint32_t)(WAIT_TICKS >> 20));
    if (!up)
        done();
    uint64_t worst = 0;
    unsigned i;
    for (i = 0; i < ROUNDS; i++) {
        uint64_t t = rdtsc();
        send_ipi(1, VEC | ICR_FIXED | ICR_ASSERT);
        if (!WAIT_FOR(answers == i + 1))
            break;
        if (rdtsc() - t > worst)
            worst = rdtsc() - t;
    }
    gprintf("INFO sched_wake: %u of %u IPIs answered, the slowest after %u TSC ticks; %u Mi ticks in all\n", i,
            ROUNDS, (uint32_t)worst, (uint32_t)((rdtsc() - t0) >> 20));
    check(i == ROUNDS, "sched-wake-answered", "IPI %u was not answered within %u Mi TSC ticks", i,
          (uint32_t)(WAIT_TICKS >> 20));
    /* Bounded: each answer within bound_us= of the guest's clock (its TSC rate from
     * plinth's CPUID leaf 0x40000010, in kHz), well below the platform timers'
     * periods, which would otherwise be what ends the spinning BSP's run (~10 ms).
     * The test gives a bound where the TSC is deterministic (Bochs). */
    uint32_t bound_us = cmdline_number(mbi, "bound_us", 0);
    if (bound_us) {
        uint32_t r[4];
        cpuid(0x40000010u, 0, r);
        check(r[0] && worst * 1000 <= (uint64_t)r[0] * bound_us, "sched-wake-bounded",
              "the slowest answer took %u TSC ticks (TSC %u kHz), more than %u us", (uint32_t)worst, r[0], bound_us);
    }
    done();
}
