/* irq_nmi_flood: NMIs sent to itself (to its own APIC ID, delivery mode NMI) while its
 * NMI handler is slow.  An NMI blocks further ones until its IRET, and the CPU holds at
 * most one more (SDM Vol. 3A §6.7.1): 100 NMIs sent from inside the handler give one
 * more NMI, after it returns, not 100.  Then a flood from the main code, each NMI
 * taken (the handler spinning a while each time) before the next is sent; and NMIs
 * arrive with IF=0 too. */
#include "irq_smp.h"

#define FLOOD 1000u

static volatile uint32_t nmis, depth, nested, inside_sends;
static volatile uint32_t spin_ticks = 20000;

static void self_nmi(void)
{
    send_ipi(apic_id(), ICR_NMI | ICR_ASSERT);
}

static bool nmi_hook(struct trap_frame *f)
{
    (void)f;
    nested += depth != 0;
    depth++;
    nmis++;
    for (uint32_t i = 0; i < inside_sends; i++)
        self_nmi();
    inside_sends = 0;
    spin_tsc(spin_ticks);
    depth--;
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_nmi_flood";
    set_trap_hook(2, nmi_hook);
    apic_write(APIC_SVR, 0x1ff);

    inside_sends = 100;
    self_nmi();
    WAIT_FOR(nmis >= 2);
    spin_tsc(1000000);
    check(nmis == 2 && nested == 0, "irq-nmi-latched-once", "%u NMIs (want 2) from one plus 100 sent inside "
          "the handler, %u nested", nmis, nested);

    nmis = 0;
    spin_ticks = 2000;
    __asm__ volatile("sti");
    for (unsigned i = 0; i < FLOOD / 2; i++)
        self_nmi();
    __asm__ volatile("cli");
    for (unsigned i = 0; i < FLOOD / 2; i++)
        self_nmi();
    spin_tsc(200000);
    gprintf("INFO irq_nmi_flood: %u of %u NMIs taken, %u nested\n", nmis, FLOOD, nested);
    check(nmis == FLOOD && nested == 0, "irq-nmi-flood-each-taken", "%u of %u NMIs, %u nested", nmis, FLOOD,
          nested);
}
