/* dev_lapic: the local APIC page (0xfee00000, SDM Vol. 3A §12.4.1, table 12-1) at
 * every offset and size.  Registers are 32 bits at 16-byte-aligned offsets: plinth's
 * APIC answers other sizes and offsets, and the reserved slots, with 0 and ignores
 * writes there, except that a write to a reserved slot sets ESR's illegal register
 * address bit (bit 7, §12.5.3).  Random values written to every register (but the
 * ICR, which would send IPIs, and the timer's initial count) leave the read-only
 * ones (version) as they were. */
#include "hostile.h"

#define R32(off) (*(volatile uint32_t *)(APIC + (off)))
#define APIC_VERSION 0x030
#define APIC_TPR     0x080
#define APIC_ESR     0x280

static bool implemented(unsigned off)
{
    switch (off) {
    case 0x020: case 0x030: case 0x080: case 0x090: case 0x0a0: case 0x0b0: case 0x0c0: case 0x0d0:
    case 0x0e0: case 0x0f0: case 0x280: case 0x2f0: case 0x300: case 0x310: case 0x320: case 0x330:
    case 0x340: case 0x350: case 0x360: case 0x370: case 0x380: case 0x390: case 0x3e0:
        return true;
    default:
        return off >= 0x100 && off < 0x280;      /* ISR, TMR, IRR */
    }
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "dev_lapic";

    uint32_t version = R32(APIC_VERSION), svr = R32(APIC_SVR);
    /* Every dword of the page: off the 16-byte grid and in reserved slots, 0. */
    unsigned bad = 0, first = 0, nonzero = 0;
    for (unsigned off = 0; off < 0x1000; off += 4) {
        uint32_t v = R32(off);
        bool reg = !(off & 0xf) && implemented(off);
        nonzero += v != 0;
        if (!reg && v != 0 && bad++ == 0)
            first = off;
    }
    check(bad == 0 && (version & 0xff) == 0x14 && nonzero >= 2, "dev-lapic-every-dword",
          "%u unimplemented dwords read non-zero, first at %#x: %#x; version %#x", bad, first, R32(first), version);

    /* Byte and word reads, and dwords straddling two registers: 0. */
    unsigned narrow = 0;
    for (unsigned off = 0x030; off < 0x040; off++) {
        narrow += *(volatile uint8_t *)(APIC + off) != 0;
        narrow += *(volatile uint16_t *)(APIC + off) != 0;
    }
    narrow += R32(0x02e) != 0;                   /* ID's last half, version's first */
    narrow += R32(0x0ee) != 0;
    check(narrow == 0, "dev-lapic-narrow-reads", "%u byte/word/straddling reads returned non-zero", narrow);

    /* Narrow and unaligned writes go nowhere: TPR and SVR keep their values. */
    R32(APIC_TPR) = 0x20;
    *(volatile uint8_t *)(APIC + APIC_TPR) = 0x50;
    *(volatile uint16_t *)(APIC + APIC_TPR + 1) = 0x5050;
    R32(APIC_TPR + 4) = 0x70;
    R32(APIC_SVR + 2) = 0;
    R32(APIC_SVR + 0xc) = 0;
    uint32_t tpr = R32(APIC_TPR), svr2 = R32(APIC_SVR);
    R32(APIC_TPR) = 0;
    check(tpr == 0x20 && svr2 == svr, "dev-lapic-narrow-writes",
          "TPR %#x (want 0x20), SVR %#x (was %#x) after narrow and unaligned writes", tpr, svr2, svr);

    /* A write to a reserved slot: ESR bit 7 once ESR is written (which latches). */
    R32(APIC_ESR) = 0;
    uint32_t esr0 = R32(APIC_ESR);
    R32(0x040) = 0x12345678u;
    R32(APIC_ESR) = 0;
    uint32_t esr1 = R32(APIC_ESR);
    R32(APIC_ESR) = 0;
    uint32_t esr2 = R32(APIC_ESR);
    check(esr0 == 0 && (esr1 & 0x80) && esr2 == 0, "dev-lapic-reserved-write-esr",
          "ESR %#x, after a write to 0x040 %#x (want bit 7), then %#x", esr0, esr1, esr2);

    /* Random values to every slot but the ICR and the timer's count, the reserved
     * ones too: the page still reads sane, the version unchanged. */
    uint32_t seed = 4242;
    for (unsigned off = 0; off < 0x1000; off += 16) {
        uint32_t v = lcg(&seed);
        if (off == APIC_ICR_LOW || off == APIC_ICR_HIGH || off == APIC_TIMER_ICR)
            continue;
        R32(off) = v;
    }
    /* The APIC may now be software-disabled, which leaves the page readable. */
    R32(APIC_SVR) = 0x1ff;
    uint32_t version2 = R32(APIC_VERSION);
    bad = 0;
    for (unsigned off = 0; off < 0x1000; off += 4)
        if (!(!(off & 0xf) && implemented(off)) && R32(off) != 0 && bad++ == 0)
            first = off;
    check(version2 == version && bad == 0, "dev-lapic-random-writes",
          "version %#x (was %#x); %u unimplemented dwords non-zero after the writes, first %#x", version2,
          version, bad, first);
}
