/* dev_ioapic: the IOAPIC page (0xfec00000, 82093AA data sheet §3) at every offset and
 * size: IOREGSEL (0x00) with every index 0-255 through IOWIN (0x10): ID, version and
 * arbitration, the 24 redirection entries, and all ones for every index beyond them;
 * writes to read-only and absent indexes change nothing; the redirection entries'
 * read-only bits stay 0; byte/word accesses and unaligned dwords read all ones and
 * write nothing; every other dword of the page reads all ones.  Last, a dword read
 * that straddles the page's end (0xfec00ffe): half of it outside any device, which
 * plinth does not split: it stops the VM, naming the access. */
#include "hostile.h"

#define REGSEL (*(volatile uint32_t *)IOAPIC)
#define WIN    (*(volatile uint32_t *)(IOAPIC + 0x10))

static uint32_t io_read(uint32_t index)
{
    REGSEL = index;
    return WIN;
}

static void io_write(uint32_t index, uint32_t v)
{
    REGSEL = index;
    WIN = v;
}

extern char straddle_load[];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "dev_ioapic";

    /* Every index. */
    uint32_t table[256];
    for (unsigned i = 0; i < 256; i++)
        table[i] = io_read(i);
    unsigned bad = 0, first = 0;
    for (unsigned i = 0; i < 256; i++) {
        uint32_t want;
        if (i == 0 || i == 2)
            want = table[0] & 0x0f000000u;                /* ID and arbitration ID */
        else if (i == 1)
            want = 0x00170020u;                           /* version 0x20, 24 entries */
        else if (i >= 0x10 && i < 0x40)
            want = (i & 1) ? 0 : 0x00010000u;             /* masked after reset */
        else
            want = 0xffffffffu;
        if (table[i] != want && bad++ == 0)
            first = i;
    }
    check(bad == 0 && table[0] == 0x01000000u, "dev-ioapic-every-index",
          "%u indexes read unexpectedly, first %#x: %#x; ID %#x (want 0x1000000)", bad, first, table[first], table[0]);

    /* IOREGSEL keeps 8 bits. */
    REGSEL = 0xdeadbe01u;
    uint32_t sel = REGSEL, via = WIN;
    check(sel == 0x01 && via == 0x00170020u, "dev-ioapic-regsel-8-bits",
          "IOREGSEL after writing 0xdeadbe01 %#x, IOWIN %#x", sel, via);

    /* Writes to read-only and absent indexes, random values: nothing changes. */
    uint32_t seed = 99;
    for (unsigned i = 1; i < 256; i++)
        if (i < 0x10 || i >= 0x40)
            io_write(i, lcg(&seed));
    unsigned changed = 0;
    for (unsigned i = 0; i < 256; i++)
        changed += io_read(i) != table[i];
    check(changed == 0, "dev-ioapic-readonly-writes", "%u indexes changed after writes to read-only/absent ones",
          changed);

    /* A redirection entry written all ones: delivery status (12) and remote IRR (14)
     * are read-only, bits 55:17 reserved. */
    io_write(0x10 + 2 * 5 + 1, 0xffffffffu);
    io_write(0x10 + 2 * 5, 0xffffffffu);
    uint32_t lo = io_read(0x10 + 2 * 5), hi = io_read(0x10 + 2 * 5 + 1);
    io_write(0x10 + 2 * 5, 0x00010000u);
    io_write(0x10 + 2 * 5 + 1, 0);
    check(lo == 0x0001afffu && hi == 0xff000000u, "dev-ioapic-redir-bits",
          "entry 5 after all ones: %#x:%#x (want 0xff000000:0x1afff)", hi, lo);

    /* Byte and word accesses, and dwords not at 0x00/0x10: all ones, no effect. */
    REGSEL = 1;
    volatile uint8_t *p8 = (volatile uint8_t *)IOAPIC;
    volatile uint16_t *p16 = (volatile uint16_t *)IOAPIC;
    unsigned narrow_bad = 0;
    for (unsigned off = 0; off < 0x20; off++) {
        narrow_bad += p8[off] != 0xff;
        if (off < 0x1f)
            narrow_bad += *(volatile uint16_t *)(IOAPIC + off) != 0xffff;
    }
    p8[0] = 0x00;                         /* a byte write to IOREGSEL: ignored */
    p16[8] = 0x0000;                      /* a word write to IOWIN: ignored */
    uint32_t sel2 = REGSEL, ver2 = WIN;
    unsigned unaligned_bad = 0;
    for (unsigned off = 1; off < 0x14; off++)
        if (off != 0x10)
            unaligned_bad += *(volatile uint32_t *)(IOAPIC + off) != 0xffffffffu;
    check(narrow_bad == 0 && unaligned_bad == 0 && sel2 == 1 && ver2 == 0x00170020u, "dev-ioapic-narrow-unaligned",
          "%u byte/word reads and %u unaligned dword reads not all ones; IOREGSEL %#x after a byte write, "
          "IOWIN %#x", narrow_bad, unaligned_bad, sel2, ver2);

    /* The rest of the page: all ones (0x40, the EOI register, is write-only). */
    unsigned page_bad = 0, page_first = 0;
    for (unsigned off = 0x20; off < 0x1000; off += 4) {
        uint32_t v = *(volatile uint32_t *)(IOAPIC + off);
        if (v != 0xffffffffu && page_bad++ == 0)
            page_first = off;
    }
    for (unsigned off = 0x20; off < 0x1000; off += 0x40)
        *(volatile uint32_t *)(IOAPIC + off) = lcg(&seed);
    changed = 0;
    for (unsigned i = 0; i < 256; i++)
        changed += io_read(i) != table[i];
    check(page_bad == 0 && changed == 0, "dev-ioapic-rest-of-page",
          "%u dwords of the page not all ones (first at %#x); %u indexes changed by writes there", page_bad,
          page_first, changed);

    gprintf("INFO dev_ioapic: straddling read at rip %#x\n", (uint32_t)straddle_load);
    uint32_t v;
    __asm__ volatile(".globl straddle_load\nstraddle_load: movl (%1), %0" : "=r"(v) : "r"(IOAPIC + 0xffe) : "memory");
    fail("dev-ioapic-straddle", "the straddling read returned %#x; the VM went on", v);
}
