/* irq_self_ipi: a storm of self-IPIs through the ICR's self shorthand, and to its own
 * APIC ID.  With interrupts on, each is taken before the next is sent: every one
 * arrives.  With interrupts off, thousands over eight vectors merge into the one
 * request per vector the IRR holds (SDM Vol. 3A §12.8.4): after STI exactly eight
 * interrupts arrive, highest vector first. */
#include "irq_smp.h"

#define VEC   0x50
#define SENDS 1500u

static volatile uint32_t hits[8], order[8], taken;

static bool ipi_hook(struct trap_frame *f)
{
    unsigned i = (unsigned)(f->vector - VEC) >> 4 & 7;
    hits[i]++;
    if (taken < 8)
        order[taken] = i;
    taken++;
    apic_write(APIC_EOI, 0);
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_self_ipi";
    for (unsigned v = 0; v < 8; v++)
        set_trap_hook(VEC + v * 16, ipi_hook);
    apic_write(APIC_SVR, 0x1ff);

    /* IF=1: the self shorthand, then the physical destination of its own ID. */
    __asm__ volatile("sti");
    for (unsigned i = 0; i < SENDS; i++)
        send_ipi(0, VEC | ICR_FIXED | ICR_ASSERT | ICR_SELF);
    for (unsigned i = 0; i < SENDS; i++)
        send_ipi(apic_id(), VEC | ICR_FIXED | ICR_ASSERT);
    spin_tsc(200000);
    __asm__ volatile("cli");
    check(hits[0] == 2 * SENDS, "irq-self-ipi-each-taken", "%u of %u self-IPIs arrived with IF=1", hits[0],
          2 * SENDS);

    /* IF=0: eight vectors (one per priority class), SENDS of each, interleaved. */
    hits[0] = taken = 0;
    for (unsigned i = 0; i < 8 * SENDS; i++)
        send_ipi(0, (VEC + (i & 7) * 16) | ICR_FIXED | ICR_ASSERT | ICR_SELF);
    uint32_t irr = apic_read(APIC_IRR + 16 * ((VEC + 0x70) / 32));
    __asm__ volatile("sti");
    spin_tsc(200000);
    __asm__ volatile("cli");
    bool once = taken == 8, desc = true;
    for (unsigned v = 0; v < 8; v++) {
        once = once && hits[v] == 1;
        desc = desc && order[v] == 7 - v;
    }
    gprintf("INFO irq_self_ipi: %u sent with IF=0, %u taken after STI; IRR word %#x\n", 8 * SENDS, taken, irr);
    check(once && desc, "irq-self-ipi-merged", "%u interrupts after STI (want 8, one per vector, highest "
          "first): first vectors %#x %#x", taken, VEC + order[0] * 16, VEC + order[1] * 16);
}
