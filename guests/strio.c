/* strio: string I/O (INS/OUTS with and without REP), which firmware and stock kernels
 * use on the UART and the PCI configuration ports (SDM Vol. 2B INS, OUTS, REP).  Each
 * element goes through the port as a single IN/OUT would; ES:EDI / DS:ESI (or its
 * segment override) advance by the element size, backwards with DF set; ECX counts
 * down; buffers may cross pages. */
#include "guest.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

static uint8_t buf[8192] __attribute__((aligned(4096)));

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "strio";

    /* OUTSB to the UART: the line below reaches plinth's console as it is. */
    static const char line[] = "strio-outs-line\n";
    const char *s = line;
    uint32_t n = sizeof line - 1;
    __asm__ volatile("cld; rep outsb" : "+S"(s), "+c"(n) : "d"(0x3f8) : "memory");
    check(n == 0 && s == line + sizeof line - 1, "strio-rep-outsb-uart", "ECX %u, ESI advanced %d", n,
          (int)(s - line));

    /* INSL from PCI configuration space: the host bridge's vendor/device, as INL reads it. */
    outl(PCI_ADDR, 0x80000000u);
    uint32_t want = inl(PCI_DATA);
    uint32_t got[2] = { 0, 0 };
    uint32_t *d = got;
    n = 2;
    __asm__ volatile("cld; rep insl" : "+D"(d), "+c"(n) : "d"(PCI_DATA) : "memory");
    check(got[0] == want && got[1] == want && d == got + 2 && n == 0, "strio-rep-insl-pci",
          "read %#x %#x (INL %#x), EDI advanced %d, ECX %u", got[0], got[1], want, (int)(d - got), n);

    /* INSW without REP: one element. */
    uint16_t w = 0;
    uint16_t *wp = &w;
    __asm__ volatile("cld; insw" : "+D"(wp) : "d"(PCI_DATA) : "memory");
    check(w == (uint16_t)want && wp == &w + 1, "strio-insw", "read %#x (want %#x)", w, want & 0xffff);

    /* OUTSW with a segment override (FS = the flat data segment). */
    uint16_t cfg_cmd = 0x0004;
    const uint16_t *cp = &cfg_cmd;
    outl(PCI_ADDR, 0x80000000u | 0x04);
    __asm__ volatile("mov %%ds, %%ax; mov %%ax, %%fs; cld; fs outsw" : "+S"(cp) : "d"(PCI_DATA) : "eax", "memory");
    check(cp == &cfg_cmd + 1, "strio-outsw-fs", "ESI advanced %d", (int)(cp - &cfg_cmd));

    /* REP INSB from a port nobody models: all ones, across a page boundary,
     * backwards (DF = 1). */
    memset(buf, 0, sizeof buf);
    uint8_t *p = buf + 4096 + 99;           /* last byte written: buf + 4096 - 100 */
    n = 200;
    __asm__ volatile("std; rep insb; cld" : "+D"(p), "+c"(n) : "d"(0x2e0) : "memory");
    bool ok = n == 0 && p == buf + 4096 - 101;
    for (unsigned i = 0; i < sizeof buf; i++)
        ok &= buf[i] == ((i >= 4096 - 100 && i < 4096 + 100) ? 0xff : 0);
    check(ok, "strio-rep-insb-backwards-page-crossing", "ECX %u, EDI at buf%+d", n, (int)(p - buf));

    /* A long REP OUTSB to port 0x80 (ignored): every element consumed. */
    p = buf;
    n = sizeof buf;
    __asm__ volatile("cld; rep outsb" : "+S"(p), "+c"(n) : "d"(0x80) : "memory");
    check(n == 0 && p == buf + sizeof buf, "strio-rep-outsb-long", "ECX %u", n);

    /* Zero count: nothing happens. */
    p = buf;
    n = 0;
    __asm__ volatile("cld; rep insb" : "+D"(p), "+c"(n) : "d"(0x2e0) : "memory");
    check(p == buf, "strio-rep-count-zero", "EDI moved by %d", (int)(p - buf));
}
