/* mem_stos_apic: REP STOSD over the whole local APIC page (1024 dwords, one
 * instruction), first all ones, then zeros: every register written in address order,
 * the ICR (a reserved delivery mode to all but self, then an illegal vector 0) and
 * the SVR (software disable) included.  The instructions complete with RCX and RDI
 * where the CPU leaves them, the read-only registers keep their values, no interrupt
 * arrives, and the APIC comes back when software enables it again. */
#include "hostile.h"

#define APIC_VERSION 0x030
#define APIC_TPR     0x080
#define APIC_ESR     0x280

static uint32_t stos_page(uint32_t value)
{
    uint32_t ecx = 1024, edi = APIC;
    __asm__ volatile("cld\n\trep stosl" : "+c"(ecx), "+D"(edi) : "a"(value) : "memory");
    return (ecx == 0 && edi == APIC + 0x1000) ? 0 : (ecx ? ecx : edi);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_stos_apic";
    idt_init();
    uint32_t version = apic_read(APIC_VERSION), id = apic_read(APIC_ID);
    uint32_t left1 = stos_page(0xffffffffu);
    uint32_t left0 = stos_page(0);
    check(!left1 && !left0, "mem-stos-apic-completes", "REP STOSD left %#x (ones) and %#x (zeros)", left1, left0);
    uint32_t v2 = apic_read(APIC_VERSION);
    check(v2 == version, "mem-stos-apic-version-kept", "version %#x, was %#x", v2, version);
    gprintf("INFO mem_stos_apic: APIC ID %#x before, %#x after\n", id, apic_read(APIC_ID));
    uint32_t svr = apic_read(APIC_SVR);
    check(!(svr & 0x100), "mem-stos-apic-disabled", "SVR %#x after zeros: still software-enabled", svr);

    /* Interrupts on for a while: nothing the writes could have sent arrives (the
     * guest library reports any vector as unexpected). */
    __asm__ volatile("sti");
    spin_tsc(2000000);
    __asm__ volatile("cli");
    pass("mem-stos-apic-nothing-arrived");

    apic_write(APIC_SVR, 0x1ff);
    apic_write(APIC_ID, id);
    apic_write(APIC_TPR, 0x20);
    uint32_t s2 = apic_read(APIC_SVR), tpr = apic_read(APIC_TPR);
    apic_write(APIC_TPR, 0);
    check(s2 == 0x1ff && tpr == 0x20, "mem-stos-apic-reenabled", "SVR %#x TPR %#x after enabling again", s2, tpr);
    done();
}
