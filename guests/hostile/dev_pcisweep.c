/* dev_pcisweep: PCI configuration mechanism #1 (0xcf8/0xcfc, PCI Local Bus 3.0
 * §3.2.2.3.2) swept over all 256 buses x 32 devices x 8 functions: an absent function
 * reads all ones (a master abort) and ignores writes; the one present, plinth's host
 * bridge at 00:00.0, reads its IDs (8086:1237) and keeps its read-only registers.
 * Then CONFIG_ADDRESS's reserved bits, byte/word lanes of CONFIG_DATA, accesses that
 * straddle its edge, and long REP INS/OUTS on CONFIG_DATA. */
#include "hostile.h"

#define ADDR 0xcf8
#define DATA 0xcfc
#define BRIDGE_ID 0x12378086u

static uint32_t cfg_addr(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
    return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | off;
}

static uint32_t cfg_read(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
    outl(ADDR, cfg_addr(bus, dev, fn, off));
    return inl(DATA);
}

static uint32_t buf[4096];

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "dev_pcisweep";

    unsigned present = 0, bad = 0;
    uint32_t first_bad = 0, first_v = 0;
    for (unsigned bus = 0; bus < 256; bus++)
        for (unsigned dev = 0; dev < 32; dev++)
            for (unsigned fn = 0; fn < 8; fn++) {
                uint32_t v = cfg_read(bus, dev, fn, 0);
                bool bridge = bus == 0 && dev == 0 && fn == 0;
                if (v != 0xffffffffu)
                    present++;
                if (v != (bridge ? BRIDGE_ID : 0xffffffffu) && bad++ == 0) {
                    first_bad = cfg_addr(bus, dev, fn, 0);
                    first_v = v;
                }
            }
    check(bad == 0 && present == 1, "dev-pci-sweep", "%u functions present (want 1: the host bridge), %u wrong, "
          "first at %#x: %#x", present, bad, first_bad, first_v);

    /* An absent function's whole space: all ones, before and after writes. */
    unsigned absent_bad = 0;
    for (unsigned off = 0; off < 256; off += 4) {
        outl(ADDR, cfg_addr(0, 3, 0, off));
        outl(DATA, 0x12345678u);
        absent_bad += cfg_read(0, 3, 0, off) != 0xffffffffu;
        absent_bad += cfg_read(255, 31, 7, off) != 0xffffffffu;
    }
    check(absent_bad == 0, "dev-pci-absent-all-ones", "%u reads of 00:03.0 / ff:1f.7 were not all ones", absent_bad);

    /* The bridge's space written with all ones: only cache line size, latency
     * timer and interrupt line take it; IDs, command, class, BARs stay. */
    uint32_t before[64], after[64];
    for (unsigned i = 0; i < 64; i++)
        before[i] = cfg_read(0, 0, 0, i * 4);
    for (unsigned i = 0; i < 64; i++) {
        outl(ADDR, cfg_addr(0, 0, 0, i * 4));
        outl(DATA, 0xffffffffu);
    }
    unsigned changed = 0, first_changed = 0;
    for (unsigned i = 0; i < 64; i++) {
        after[i] = cfg_read(0, 0, 0, i * 4);
        uint32_t want = before[i];
        if (i == 3)
            want = (before[i] & 0xffff0000u) | 0xffff;     /* cache line size, latency timer */
        if (i == 15)
            want = (before[i] & 0xffffff00u) | 0xff;       /* interrupt line */
        if (after[i] != want && changed++ == 0)
            first_changed = i * 4;
    }
    check(after[0] == BRIDGE_ID && changed == 0, "dev-pci-bridge-read-only",
          "IDs %#x; %u dwords changed unexpectedly, first at %#x: %#x (was %#x)", after[0], changed,
          first_changed, after[first_changed / 4], before[first_changed / 4]);

    /* Byte and word lanes of CONFIG_DATA give the dword's bytes. */
    outl(ADDR, cfg_addr(0, 0, 0, 0));
    uint8_t b0 = inb(DATA), b1 = inb(DATA + 1), b2 = inb(DATA + 2), b3 = inb(DATA + 3);
    uint16_t w0 = inw(DATA), w2 = inw(DATA + 2);
    check(b0 == 0x86 && b1 == 0x80 && b2 == 0x37 && b3 == 0x12 && w0 == 0x8086 && w2 == 0x1237,
          "dev-pci-data-lanes", "bytes %x %x %x %x, words %#x %#x", b0, b1, b2, b3, w0, w2);

    /* Accesses straddling CONFIG_DATA's end are no configuration cycle: all ones. */
    uint32_t s1 = inl(DATA + 2), s2 = inl(DATA + 3);
    uint16_t s3 = inw(DATA + 3);
    check(s1 == 0xffffffffu && s2 == 0xffffffffu && s3 == 0xffff, "dev-pci-straddle-ones",
          "inl(0xcfe) %#x, inl(0xcff) %#x, inw(0xcff) %#x", s1, s2, s3);

    /* CONFIG_ADDRESS: bits 30:24 and 1:0 are reserved and read 0; a byte or word
     * write is no CONFIG_ADDRESS write; with the enable bit clear CONFIG_DATA is
     * an ordinary (here undecoded) port. */
    outl(ADDR, 0xffffffffu);
    uint32_t a1 = inl(ADDR);
    outl(ADDR, cfg_addr(0, 0, 0, 0));
    outb(ADDR, 0x55);
    outw(ADDR + 2, 0x1234);
    uint32_t a2 = inl(ADDR);
    outl(ADDR, 0x00000000u);
    uint32_t off_read = inl(DATA);
    check(a1 == 0x80fffffcu && a2 == 0x80000000u && off_read == 0xffffffffu, "dev-pci-address-register",
          "all-ones write read back %#x (want 0x80fffffc), after byte/word writes %#x (want 0x80000000), "
          "CONFIG_DATA with the enable bit clear %#x", a1, a2, off_read);

    /* REP INSL of 4096 dwords from CONFIG_DATA: each the bridge's IDs. */
    outl(ADDR, cfg_addr(0, 0, 0, 0));
    uint32_t *d = buf, n = 4096;
    __asm__ volatile("cld; rep insl" : "+D"(d), "+c"(n) : "d"(DATA) : "memory");
    unsigned wrong = 0;
    for (unsigned i = 0; i < 4096; i++)
        wrong += buf[i] != BRIDGE_ID;
    /* REP OUTSB of 16 KiB to CONFIG_DATA at offset 0x3c: the last byte stays. */
    static uint8_t bytes[16384];
    for (unsigned i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 7);
    outl(ADDR, cfg_addr(0, 0, 0, 0x3c));
    const uint8_t *s = bytes;
    n = sizeof bytes;
    __asm__ volatile("cld; rep outsb" : "+S"(s), "+c"(n) : "d"(DATA) : "memory");
    uint8_t line = inb(DATA);
    /* REP INSW of 8192 words from an absent function. */
    outl(ADDR, cfg_addr(7, 7, 7, 0));
    uint16_t *dw = (uint16_t *)buf;
    uint32_t nw = 8192;
    __asm__ volatile("cld; rep insw" : "+D"(dw), "+c"(nw) : "d"(DATA) : "memory");
    unsigned wrong_w = 0;
    for (unsigned i = 0; i < 8192; i++)
        wrong_w += ((uint16_t *)buf)[i] != 0xffff;
    check(wrong == 0 && n == 0 && line == bytes[sizeof bytes - 1] && wrong_w == 0, "dev-pci-string-io",
          "%u of 4096 INSL elements not the IDs, OUTSB left ECX %u and interrupt line %#x (want %#x), "
          "%u INSW words from an absent function not 0xffff", wrong, n, line, bytes[sizeof bytes - 1], wrong_w);
    outl(ADDR, 0);
}
