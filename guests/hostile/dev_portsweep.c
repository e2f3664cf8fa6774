/* dev_portsweep: every I/O port, 0 to 0xffff, read at each size, then written with a
 * random byte, then read again; and long string I/O (REP INSB/OUTSB/INSL of 64 KiB)
 * to a port nobody decodes.  On a PC a port no device decodes floats: it reads all
 * ones and a write to it goes nowhere.  The ports that reset or power off the VM
 * (0x60/0x64 i8042, 0x92 port A, 0xcf9 reset control, 0x604-0x605 PM1a_CNT) are
 * left out of the writes (dev_reset tests them), and so is the UART (this guest's
 * console).  The guest must keep running through it all, as one VM, not restarted. */
#include "hostile.h"

#define PM_BASE 0x600

/* The ports plinth's PC platform decodes (vmm/platform.c, vmm/vm.c). */
static bool decoded(uint32_t p)
{
    return (p >= 0x20 && p <= 0x21) || (p >= 0xa0 && p <= 0xa1) || (p >= 0x4d0 && p <= 0x4d1) ||
           (p >= 0x40 && p <= 0x43) || p == 0x60 || p == 0x61 || p == 0x64 || (p >= 0x70 && p <= 0x71) ||
           p == 0x92 || (p >= 0x3f8 && p <= 0x3ff) || (p >= 0xcf8 && p <= 0xcff) ||
           (p >= PM_BASE && p <= PM_BASE + 5) || (p >= PM_BASE + 8 && p <= PM_BASE + 11);
}

/* Ports whose write may reset or power off the VM, and the console. */
static bool dangerous(uint32_t p)
{
    return p == 0x60 || p == 0x64 || p == 0x92 || p == 0xcf9 || p == PM_BASE + 4 || p == PM_BASE + 5 ||
           (p >= 0x3f8 && p <= 0x3ff);
}

static uint8_t buf[65536] __attribute__((aligned(4096)));

/* Reads every undecoded port at byte size; returns how many did not read 0xff and
 * records the first. */
static unsigned sweep_bytes(uint32_t *first, uint8_t *first_v)
{
    unsigned bad = 0;
    for (uint32_t p = 0; p <= 0xffff; p++) {
        uint8_t v = inb((uint16_t)p);
        if (!decoded(p) && v != 0xff && bad++ == 0) {
            *first = p;
            *first_v = v;
        }
    }
    return bad;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "dev_portsweep";
    gprintf("INFO dev_portsweep: boot\n");

    uint32_t first = 0;
    uint8_t first_v = 0;
    unsigned bad = sweep_bytes(&first, &first_v);
    check(bad == 0, "dev-ports-unclaimed-read-ones", "%u undecoded ports did not read 0xff, first %#x: %#x",
          bad, first, first_v);
    /* Decoded ports are decoded: the UART's LSR (transmitter empty) and port A (A20). */
    uint8_t lsr = inb(0x3fd), porta = inb(0x92);
    check(lsr == 0x60 && porta == 0x02, "dev-ports-decoded-answer", "LSR %#x (want 0x60), port 0x92 %#x (want 0x2)",
          lsr, porta);

    /* Word and doubleword reads: where no byte of the access is decoded, all ones
     * (both sizes straddle device edges, e.g. 0x3ff-0x402).  Every port below
     * 0x1000, every 61st above. */
    unsigned wbad = 0, lbad = 0;
    uint32_t wfirst = 0, lfirst = 0, wv = 0, lv = 0;
    for (uint32_t p = 0; p <= 0xfffc; p += p < 0x1000 ? 1 : 61) {
        bool w_free = !decoded(p) && !decoded(p + 1);
        bool l_free = w_free && !decoded(p + 2) && !decoded(p + 3);
        uint16_t w = inw((uint16_t)p);
        uint32_t l = inl((uint16_t)p);
        if (w_free && w != 0xffff && wbad++ == 0) { wfirst = p; wv = w; }
        if (l_free && l != 0xffffffffu && lbad++ == 0) { lfirst = p; lv = l; }
    }
    /* A straddling read takes the decoded byte and all ones for the rest: the UART's
     * scratch register, then nothing. */
    outb(0x3ff, 0x5a);
    uint32_t straddle = inl(0x3ff);
    check(wbad == 0 && lbad == 0 && straddle == 0xffffff5au, "dev-ports-wide-reads-ones",
          "%u word reads not 0xffff (first %#x: %#x), %u dword reads not all ones (first %#x: %#x), "
          "inl(0x3ff) %#x (want 0xffffff5a)", wbad, wfirst, wv, lbad, lfirst, lv, straddle);

    /* Random bytes to every port that cannot reset the VM, interrupts off. */
    uint32_t seed = 0x1234567;
    unsigned written = 0;
    for (uint32_t p = 0; p <= 0xffff; p++) {
        uint8_t v = (uint8_t)(lcg(&seed) >> 24);
        if (dangerous(p))
            continue;
        outb((uint16_t)p, v);
        written++;
    }
    /* Random doublewords too, at every 4th port (each reaches four byte ports). */
    for (uint32_t p = 0; p <= 0xfffc; p += 4) {
        if (dangerous(p) || dangerous(p + 1) || dangerous(p + 2) || dangerous(p + 3))
            continue;
        outl((uint16_t)p, lcg(&seed));
    }
    /* Quiet the timers and interrupt controllers it may have set going. */
    pic_remap();
    outb(0x70, 0x0b); outb(0x71, 0x02);
    outb(0x70, 0x0c); (void)inb(0x71);
    outb(0x43, 0x30);
    outb(0x61, 0x00);
    outl(0xcf8, 0);
    gprintf("INFO dev_portsweep: wrote %u ports\n", written);
    bad = sweep_bytes(&first, &first_v);
    check(bad == 0, "dev-ports-writes-dropped", "after the writes, %u undecoded ports did not read 0xff, first %#x: %#x",
          bad, first, first_v);

    /* REP INSB of 64 KiB from an undecoded port: all ones, every element. */
    memset(buf, 0, sizeof buf);
    uint8_t *d = buf;
    uint32_t n = sizeof buf;
    __asm__ volatile("cld; rep insb" : "+D"(d), "+c"(n) : "d"(0x2e8) : "memory");
    unsigned notff = 0;
    for (unsigned i = 0; i < sizeof buf; i++)
        notff += buf[i] != 0xff;
    check(n == 0 && d == buf + sizeof buf && notff == 0, "dev-ports-rep-insb-64k",
          "ECX %u, EDI advanced %u, %u bytes not 0xff", n, (unsigned)(d - buf), notff);
    /* REP INSL, 16384 doublewords. */
    memset(buf, 0, sizeof buf);
    uint32_t *dl = (uint32_t *)buf;
    n = sizeof buf / 4;
    __asm__ volatile("cld; rep insl" : "+D"(dl), "+c"(n) : "d"(0x1234) : "memory");
    notff = 0;
    for (unsigned i = 0; i < sizeof buf; i++)
        notff += buf[i] != 0xff;
    check(n == 0 && notff == 0, "dev-ports-rep-insl-64k", "ECX %u, %u bytes not 0xff", n, notff);
    /* REP OUTSB of 64 KiB of random bytes to an undecoded port: consumed, nothing else. */
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)lcg(&seed);
    const uint8_t *s = buf;
    n = sizeof buf;
    __asm__ volatile("cld; rep outsb" : "+S"(s), "+c"(n) : "d"(0x2e8) : "memory");
    uint8_t after = inb(0x2e8);
    check(n == 0 && s == buf + sizeof buf && after == 0xff, "dev-ports-rep-outsb-64k",
          "ECX %u, ESI advanced %u, the port then read %#x", n, (unsigned)(s - buf), after);
}
