/* irq_init_storm: a two-vCPU VM that INITs its AP over and over, then starts it
 * again.  INIT sends an AP to wait-for-SIPI whatever it was doing (SDM Vol. 3A
 * §12.6.1); many INITs are no more than one; SIPIs to a running AP are ignored; one
 * SIPI after an INIT storm starts it once, from the trampoline, fresh.  Repeated
 * INIT-SIPI cycles each restart it exactly once.  The AP ends in wait-for-SIPI. */
#define IRQ_WANT_SMP
#include "irq_smp.h"

#define STORM  300u
#define CYCLES 20u

static volatile uint32_t starts, running, ticks;

static void ap_main(uint32_t id)
{
    (void)id;
    __atomic_add_fetch(&starts, 1, __ATOMIC_RELEASE);
    running = 1;
    /* Busy, so that each INIT interrupts it in the middle of something. */
    for (;;)
        __atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_init_storm";
    apic_write(APIC_SVR, 0x1ff);
    smp_prepare();
    smp_start_ap(1);
    bool up = WAIT_FOR(starts == 1);
    /* SIPIs to a running AP: ignored. */
    for (unsigned i = 0; i < STORM; i++)
        send_sipi(1);
    spin_tsc(1000000);
    check(up && starts == 1, "irq-init-storm-sipi-ignored", "the AP started %u times after one INIT-SIPI-SIPI "
          "and %u SIPIs while running", starts, STORM);

    /* An INIT storm: the AP stops counting; then one SIPI starts it once. */
    for (unsigned i = 0; i < STORM; i++)
        send_init(1);
    spin_tsc(200000);
    uint32_t t0 = ticks;
    spin_tsc(1000000);
    bool stopped = ticks == t0;
    running = 0;
    send_sipi(1);
    bool again = WAIT_FOR(starts == 2 && running);
    for (unsigned i = 0; i < STORM; i++)
        send_sipi(1);
    spin_tsc(1000000);
    check(stopped && again && starts == 2, "irq-init-storm-one-start", "after %u INITs the AP %s; one SIPI "
          "then %u SIPIs more: %u starts (want 2)", STORM, stopped ? "stopped" : "kept running", STORM, starts);

    /* INIT-SIPI cycles: one start each. */
    unsigned bad = 0;
    for (unsigned i = 0; i < CYCLES; i++) {
        uint32_t s = starts;
        send_init(1);
        send_init(1);
        send_sipi(1);
        bad += !WAIT_FOR(starts == s + 1);
    }
    spin_tsc(500000);
    check(bad == 0 && starts == 2 + CYCLES, "irq-init-storm-cycles", "%u of %u INIT-SIPI cycles without a "
          "start; %u starts in all (want %u)", bad, CYCLES, starts, 2 + CYCLES);
    /* The AP ends waiting for a SIPI, which the VM's end counts as halted. */
    send_init(1);
}
