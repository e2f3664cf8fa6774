/* io: ports nothing claims read as all ones and swallow writes, as on an ISA bus
 * with nothing attached; the UART's scratch register keeps what is written. */
#include "guest.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "io";

    uint8_t b = inb(0x210);
    check(b == 0xff, "io-unclaimed-inb", "inb 0x210 = %#x", b);
    uint16_t w = inw(0x214);
    check(w == 0xffff, "io-unclaimed-inw", "inw 0x214 = %#x", w);
    uint32_t l = inl(0x218);
    check(l == 0xffffffffu, "io-unclaimed-inl", "inl 0x218 = %#x", l);

    outb(0x210, 0x00);
    outw(0x214, 0x0000);
    outl(0x218, 0x00000000u);
    b = inb(0x210);
    l = inl(0x218);
    check(b == 0xff && l == 0xffffffffu, "io-unclaimed-write-ignored", "after writing 0: inb 0x210 = %#x, inl 0x218 = %#x", b, l);

    /* A port just past the UART (0x3f8-0x3ff) is not the UART's. */
    b = inb(0x400);
    check(b == 0xff, "io-unclaimed-after-uart", "inb 0x400 = %#x", b);

    /* 16550 scratch register (offset 7). */
    outb(0x3ff, 0xa5);
    uint8_t s1 = inb(0x3ff);
    outb(0x3ff, 0x5a);
    uint8_t s2 = inb(0x3ff);
    check(s1 == 0xa5 && s2 == 0x5a, "io-uart-scratch", "scratch read %#x, %#x after writing 0xa5, 0x5a", s1, s2);

    /* LCR reads back what was programmed (8N1, DLAB clear). */
    b = inb(0x3fb);
    check(b == 0x03, "io-uart-lcr", "LCR = %#x, expected 0x03", b);

    /* A 16-bit read at 0x3ff spans the UART's scratch register and the unclaimed port
     * 0x400: each byte comes from its own port.  Last: QEMU (used to check
     * these guests without plinth) aborts on this access. */
    outb(0x3ff, 0x42);
    w = inw(0x3ff);
    check(w == 0xff42, "io-split-across-devices", "inw 0x3ff = %#x, expected 0xff42", w);
}
