/* dev_legacy: the PC's small devices at every size: the 8259 PICs (IMR, OCW3 IRR/ISR
 * reads, ELCR's reserved bits, a word write that reaches OCW3 and IMR at once), the
 * 8254 PIT (a latched count of a programmed counter), the MC146818 RTC/CMOS (the
 * index port reads all ones; CMOS RAM keeps what is written; an index with bit 7 set,
 * the NMI mask, reaches the same byte; a word write to 0x70 sets index and data;
 * registers C and D are read-only), the i8042 (self test, command byte, the output
 * buffer write, an output-port write that keeps the reset line high: no reset), port
 * 0x92 (A20 always on), and the ACPI PM block (PM1 enable keeps its defined bits, an
 * undecoded hole at +6/+7, the PM timer read-only and counting, a sleep type the
 * DSDT does not offer wakes at once, WAK_STS set, the VM going on). */
#include "hostile.h"

#define PM 0x600

static uint8_t kbc_read(void)
{
    for (int i = 0; i < 1000 && !(inb(0x64) & 1); i++)
        ;
    return inb(0x60);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "dev_legacy";

    /* ---- 8259 ---- */
    pic_remap();
    outb(0x21, 0x5a);
    uint8_t imr = inb(0x21);
    outb(0x20, 0x0b);                          /* OCW3: read ISR */
    uint8_t isr = inb(0x20);
    uint16_t w = inw(0x20);                    /* ISR, then IMR */
    outw(0xa0, 0xa50a);                        /* slave: OCW3 read IRR, IMR 0xa5 */
    uint8_t simr = inb(0xa1);
    check(imr == 0x5a && isr == 0 && w == 0x5a00 && simr == 0xa5, "dev-pic-registers",
          "IMR %#x, ISR %#x, inw(0x20) %#x (want 0x5a00), slave IMR after a word write %#x", imr, isr, w, simr);
    outw(0x4d0, 0xffff);
    uint16_t elcr = inw(0x4d0);
    outw(0x4d0, 0);
    check(elcr == 0xdef8, "dev-pic-elcr-reserved", "ELCR after all ones %#x (want 0xdef8: IRQ 0-2, 8, 13 edge only)",
          elcr);
    pic_remap();

    /* ---- 8254: counter 2, gate low (port 0x61 bit 0 clear), mode 0 ---- */
    outb(0x61, 0x00);
    outb(0x43, 0xb0);                          /* counter 2, lobyte/hibyte, mode 0 */
    outb(0x42, 0x34);
    outb(0x42, 0x12);
    outb(0x43, 0x80);                          /* latch counter 2 */
    uint8_t lo = inb(0x42), hi = inb(0x42);
    uint16_t count = (uint16_t)(hi << 8 | lo);
    check(count <= 0x1234 && count >= 0x1200, "dev-pit-latch", "latched count %#x (programmed 0x1234, gate low)", count);
    uint32_t quad = inl(0x40);                 /* four byte ports: must not hang or fault */
    (void)quad;

    /* ---- RTC / CMOS ---- */
    uint8_t idx = inb(0x70);
    unsigned ram_bad = 0;
    for (unsigned i = 0x40; i < 0x80; i++)
        cmos_write((uint8_t)i, (uint8_t)(i ^ 0xa5));
    for (unsigned i = 0x40; i < 0x80; i++)
        ram_bad += cmos_read((uint8_t)i) != (uint8_t)(i ^ 0xa5);
    uint8_t nmi_alias = cmos_read(0x80 | 0x41);
    cmos_write(0xff, 0x3c);                    /* index 0x7f with the NMI mask bit */
    uint8_t b7f = cmos_read(0x7f);
    outw(0x70, 0x6645);                        /* index 0x45, data 0x66 in one access */
    uint8_t b45 = cmos_read(0x45);
    check(idx == 0xff && ram_bad == 0 && nmi_alias == (0x41 ^ 0xa5) && b7f == 0x3c && b45 == 0x66,
          "dev-cmos-ram", "index port read %#x, %u CMOS RAM bytes wrong, 0xc1 read %#x, 0x7f %#x, word write %#x",
          idx, ram_bad, nmi_alias, b7f, b45);
    uint8_t d0 = cmos_read(0x0d), c0 = cmos_read(0x0c);
    cmos_write(0x0d, 0x00);
    cmos_write(0x0c, 0xff);
    uint8_t d1 = cmos_read(0x0d), c1 = cmos_read(0x0c);
    check(d0 == 0x80 && d1 == 0x80 && (c1 & 0x0f) == 0 && (c0 & 0x0f) == 0, "dev-rtc-cd-read-only",
          "register D %#x then %#x (want 0x80), C %#x then %#x", d0, d1, c0, c1);

    /* ---- i8042 and port A ---- */
    outb(0x64, 0xaa);
    uint8_t st = kbc_read();
    outb(0x64, 0x20);
    uint8_t ctr = kbc_read();
    outb(0x64, 0xd2);
    outb(0x60, 0x9e);
    uint8_t echo = kbc_read();
    outb(0x64, 0xd1);
    outb(0x60, 0x03);                          /* reset line high, A20 on: no reset */
    outb(0x92, 0x00);
    uint8_t porta = inb(0x92);
    check(st == 0x55 && ctr == 0x45 && echo == 0x9e && porta == 0x02, "dev-kbc-porta",
          "self test %#x, command byte %#x, output buffer write %#x, port A %#x", st, ctr, echo, porta);

    /* ---- ACPI PM block ---- */
    outw(PM + 2, 0xffff);
    uint16_t en = inw(PM + 2);
    outw(PM + 2, 0);
    uint16_t hole = inw(PM + 6);
    uint32_t split = inl(PM + 6);              /* the hole, then the timer's low half */
    uint32_t t0 = inl(PM + 8);
    outl(PM + 8, 0);
    spin_tsc(200000);
    uint32_t t1 = inl(PM + 8);
    uint32_t past = inl(PM + 10);              /* timer bytes 2-3, then nothing */
    check(en == 0x0721 && hole == 0xffff && (split & 0xffff) == 0xffff && t1 != t0 && (past >> 16) == 0xffff,
          "dev-pm-block", "PM1_EN after all ones %#x (want 0x721), +6 %#x, inl(+6) %#x, timer %#x then %#x, "
          "inl(+10) %#x", en, hole, split, t0, t1, past);
    /* SLP_TYP 1 with SLP_EN: no such sleep state, the platform wakes at once. */
    outw(PM + 4, 1u << 10 | 0x2000);
    uint16_t sts = inw(PM);
    outw(PM, 0x8000);
    uint16_t sts2 = inw(PM);
    check((sts & 0x8000) && !(sts2 & 0x8000), "dev-pm-sleep-wakes", "PM1_STS after an S1 request %#x, after clearing %#x",
          sts, sts2);
}
