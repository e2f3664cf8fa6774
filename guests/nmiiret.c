/* nmiiret: NMI blocking ends with the NMI handler's IRET (SDM Vol. 3A §6.7.1), and not
 * before it: an NMI that arrives while the handler runs is held until then.  Here the
 * handler sends itself a second NMI and then returns with an IRET that faults (a bad
 * CS in its frame: #GP); the #GP handler repairs the frame and the IRET runs again.
 * The second NMI may arrive once that first IRET has executed (Intel: a faulting IRET
 * unblocks NMIs before the #GP handler is invoked; it may also stay held until an IRET
 * completes), but never before it, at the IRET itself: that is what a hypervisor that
 * opens the NMI window on its IRET intercept (AMD-V without virtual NMIs) does. */
#include "guest.h"

#define APIC         0xfee00000u
#define APIC_SVR     0x0f0
#define APIC_ICR_LOW 0x300
#define APIC_ICR_HIGH 0x310
/* NMI, assert, physical destination (our own APIC ID 0 in ICR_HIGH). */
#define ICR_NMI      ((4u << 8) | (1u << 14))
#define BAD_CS       0x28              /* past start.asm's three-entry GDT */

static volatile uint32_t nmis, gp_seen, nmi2_eip, nmi2_gp_seen, gp_error;

static void self_nmi(void)
{
    *(volatile uint32_t *)(APIC + APIC_ICR_HIGH) = 0;
    *(volatile uint32_t *)(APIC + APIC_ICR_LOW) = ICR_NMI;
}

static bool nmi_hook(struct trap_frame *f)
{
    if (++nmis == 1) {
        self_nmi();                    /* held: NMIs are blocked until our IRET */
        f->cs = BAD_CS;                /* the IRET back will #GP */
    } else if (nmis == 2) {
        nmi2_eip = (uint32_t)f->eip;
        nmi2_gp_seen = gp_seen;
    }
    return true;
}

static bool gp_hook(struct trap_frame *f)
{
    if ((uint32_t)f->eip != (uint32_t)trap_iret || gp_seen)
        return false;
    gp_seen = 1;
    gp_error = (uint32_t)f->error;
    /* The faulting IRET's frame lies just above the #GP frame (no stack switch). */
    greg_t *iret_frame = (greg_t *)(&f->eflags + 1);
    iret_frame[1] = 0x08;
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "nmiiret";
    set_trap_hook(2, nmi_hook);
    set_trap_hook(13, gp_hook);
    *(volatile uint32_t *)(APIC + APIC_SVR) = 0x1ff;
    self_nmi();
    for (uint32_t i = 0; i < 1000000 && nmis < 2; i++)
        __asm__ volatile("pause");
    /* An exit or two more, for a hypervisor that injects the held NMI only then. */
    for (int i = 0; i < 10 && nmis < 2; i++)
        inb(0x80);
    check(gp_seen && gp_error == BAD_CS, "nmiiret-iret-faulted", "#GP seen %u, error %#x", gp_seen, gp_error);
    check(nmis == 2, "nmiiret-second-nmi-delivered", "%u NMIs", nmis);
    check(!(nmi2_eip == (uint32_t)trap_iret && !nmi2_gp_seen), "nmiiret-held-until-iret",
          "the second NMI arrived at the first handler's IRET (%#x) before it executed", nmi2_eip);
    gprintf("INFO nmiiret: second NMI at eip %#x, after the #GP handler: %s\n", nmi2_eip,
            nmi2_gp_seen ? "yes" : "no");
}
