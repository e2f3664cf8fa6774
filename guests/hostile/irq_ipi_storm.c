/* irq_ipi_storm: a two-vCPU VM on one CPU whose vCPUs flood each other with IPIs:
 * fixed IPIs by APIC ID, the all-including-self and all-but-self shorthands and the
 * xAPIC broadcast ID 0xff, while the AP floods the BSP back.  A target takes each it
 * sees (several sent before it runs merge in its IRR), never more than were sent, and
 * both vCPUs go on: afterwards the AP still answers an IPI. */
#define IRQ_WANT_SMP
#include "irq_smp.h"

#define VEC    0x60
#define ACK    0x61
#define SENDS  600u

static volatile uint32_t got[2], acks, ap_up, ap_go, ap_sent, ap_done, finished;

static bool ipi_hook(struct trap_frame *f)
{
    (void)f;
    __atomic_add_fetch(&got[apic_id() & 1], 1, __ATOMIC_RELAXED);
    apic_write(APIC_EOI, 0);
    return true;
}

COUNTING_HOOK(ack_hook, acks)

static void ap_main(uint32_t id)
{
    (void)id;
    ap_up = 1;
    __asm__ volatile("sti");
    while (!ap_go)
        __asm__ volatile("hlt");
    /* The AP's half of the storm: fixed IPIs to the BSP. */
    for (unsigned i = 0; i < SENDS; i++) {
        send_ipi(0, VEC | ICR_FIXED | ICR_ASSERT);
        ap_sent++;
    }
    ap_done = 1;
    /* Then it sleeps until the BSP's IPI after `finished` wakes it, and answers. */
    while (!finished)
        __asm__ volatile("hlt");
    send_ipi(0, ACK | ICR_FIXED | ICR_ASSERT);
    __asm__ volatile("cli; hlt");
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_ipi_storm";
    set_trap_hook(VEC, ipi_hook);
    set_trap_hook(ACK, ack_hook);
    apic_write(APIC_SVR, 0x1ff);
    smp_prepare();
    smp_start_ap(1);
    if (!WAIT_FOR(ap_up)) {
        fail("irq-ipi-storm-ap-up", "AP 1 did not come up");
        return;
    }
    __asm__ volatile("sti");
    ap_go = 1;
    send_ipi(1, VEC | ICR_FIXED | ICR_ASSERT);
    /* The BSP's half: by ID, all including self, all but self, broadcast ID. */
    uint32_t to_ap = 1, to_bsp = 0;
    for (unsigned i = 0; i < SENDS; i++, to_ap++)
        send_ipi(1, VEC | ICR_FIXED | ICR_ASSERT);
    for (unsigned i = 0; i < SENDS; i++, to_ap++, to_bsp++)
        send_ipi(0, VEC | ICR_FIXED | ICR_ASSERT | ICR_ALL);
    for (unsigned i = 0; i < SENDS; i++, to_ap++)
        send_ipi(0, VEC | ICR_FIXED | ICR_ASSERT | ICR_ALL_BUT_SELF);
    for (unsigned i = 0; i < SENDS; i++, to_ap++, to_bsp++)
        send_ipi(0xff, VEC | ICR_FIXED | ICR_ASSERT);
    bool done = WAIT_FOR(ap_done);
    spin_tsc(500000);
    to_bsp += ap_sent;
    uint32_t ap_got = got[1], bsp_got = got[0];
    gprintf("INFO irq_ipi_storm: AP took %u of %u IPIs, BSP %u of %u\n", ap_got, to_ap, bsp_got, to_bsp);
    check(done && ap_got >= 4 && ap_got <= to_ap && bsp_got >= 2 * SENDS && bsp_got <= to_bsp,
          "irq-ipi-storm-delivered", "AP took %u of %u IPIs, BSP %u of %u (the AP sent %u)", ap_got, to_ap,
          bsp_got, to_bsp, ap_sent);
    /* Both still there: the AP answers an IPI sent after the storm. */
    finished = 1;
    send_ipi(1, VEC | ICR_FIXED | ICR_ASSERT);
    bool ack = WAIT_FOR(acks == 1);
    check(ack, "irq-ipi-storm-ap-answers", "the AP did not answer an IPI after the storm");
    __asm__ volatile("cli");
}
