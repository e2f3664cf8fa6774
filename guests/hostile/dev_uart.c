/* dev_uart: every register of the 16550 UART at 0x3f8 (PC16550D data sheet), with
 * loopback (MCR bit 4) as the input source: bytes written come back through RBR and
 * nothing reaches the console; with FIFOs off a second byte overruns the holding
 * register, with FIFOs on the 17th byte is lost and LSR.OE set (once: reading LSR
 * clears it); IIR reports the FIFO bits, received data at the trigger level, line
 * status above it, THR empty when enabled; IER and MCR keep only their defined bits;
 * MSR follows the MCR outputs in loopback with its delta bits; DLAB switches RBR/IER
 * to the divisor latch; 2- and 4-byte accesses are split per register, one straddling
 * 0x3ff reaching the scratch register and nothing beyond.  No output while in
 * loopback (the console is the UART): results are printed after. */
#include "hostile.h"

#define U 0x3f8
enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct result { const char *check; uint32_t got, want; };
static struct result res[40];
static unsigned nres;

static void expect(const char *check, uint32_t got, uint32_t want)
{
    res[nres++] = (struct result){ check, got, want };
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "dev_uart";
    gprintf("INFO dev_uart: start\n");

    /* Scratch, and accesses straddling registers. */
    outb(U + SCR, 0x5a);
    expect("dev-uart-scratch", inb(U + SCR), 0x5a);
    outw(U + MSR, 0xa5ff);                        /* MSR (ignored), SCR = 0xa5 */
    expect("dev-uart-word-write-msr-scr", inb(U + SCR), 0xa5);
    outw(U + SCR, 0x1234);                        /* SCR = 0x34, 0x400 nothing */
    expect("dev-uart-word-write-past-end", inb(U + SCR), 0x34);
    expect("dev-uart-dword-read-past-end", inl(U + MSR) >> 8, 0xffff34);
    expect("dev-uart-word-read-lcr-mcr", inw(U + LCR), (uint32_t)inb(U + MCR) << 8 | inb(U + LCR));

    /* IER keeps bits 3:0; DLAB maps RBR/IER to the divisor latch. */
    outb(U + IER, 0xff);
    expect("dev-uart-ier-mask", inb(U + IER), 0x0f);
    outb(U + IER, 0x00);
    uint8_t lcr = inb(U + LCR);
    outb(U + LCR, 0x80 | lcr);
    outb(U + RBR, 0x34);
    outb(U + IER, 0x12);
    uint32_t dl = inw(U + RBR);
    outb(U + LCR, lcr);
    expect("dev-uart-divisor-latch", dl, 0x1234);
    expect("dev-uart-dlab-off-ier", inb(U + IER), 0x00);

    /* MCR keeps bits 4:0; in loopback MSR's inputs follow DTR/RTS/OUT1/OUT2. */
    uint8_t mcr = inb(U + MCR);
    outb(U + MCR, 0xff);
    expect("dev-uart-mcr-mask", inb(U + MCR), 0x1f);
    expect("dev-uart-loop-msr-inputs", inb(U + MSR) & 0xf0, 0xf0);
    outb(U + MCR, 0x10);
    expect("dev-uart-loop-msr-deltas", inb(U + MSR), 0x0f);  /* DCTS DDSR TERI DDCD */
    expect("dev-uart-msr-deltas-clear", inb(U + MSR), 0x00);

    /* Loopback, FIFOs off: one byte held, a second overruns it. */
    outb(U + FCR, 0x00);
    outb(U + RBR, 'L');
    expect("dev-uart-loop-lsr-dr", inb(U + LSR), 0x61);
    expect("dev-uart-loop-byte", inb(U + RBR), 'L');
    outb(U + RBR, 'E');
    outb(U + RBR, 'A');
    expect("dev-uart-nofifo-overrun", inb(U + LSR), 0x63);
    expect("dev-uart-lsr-read-clears-oe", inb(U + LSR), 0x61);
    expect("dev-uart-nofifo-last-byte", inb(U + RBR), 'A');
    expect("dev-uart-rx-empty", inb(U + LSR), 0x60);

    /* FIFOs on: 16 bytes fit, the 17th overruns and is lost. */
    outb(U + FCR, 0x07);
    expect("dev-uart-iir-fifo", inb(U + IIR), 0xc1);
    for (unsigned i = 0; i < 16; i++)
        outb(U + RBR, (uint8_t)('a' + i));
    expect("dev-uart-fifo-16-no-oe", inb(U + LSR), 0x61);
    outb(U + RBR, 'K');
    expect("dev-uart-fifo-17-oe", inb(U + LSR), 0x63);
    expect("dev-uart-fifo-oe-once", inb(U + LSR), 0x61);
    uint32_t order = 0;
    for (unsigned i = 0; i < 16; i++)
        order += inb(U + RBR) == 'a' + i;
    expect("dev-uart-fifo-order", order, 16);
    expect("dev-uart-fifo-drained", inb(U + LSR), 0x60);

    /* IIR: received data at the trigger level (14), line status (overrun) above it. */
    outb(U + FCR, 0xc7);
    outb(U + IER, 0x05);                          /* RDA, RLS */
    for (unsigned i = 0; i < 13; i++)
        outb(U + RBR, 'x');
    expect("dev-uart-iir-below-trigger", inb(U + IIR), 0xc1);
    outb(U + RBR, 'x');
    expect("dev-uart-iir-rda", inb(U + IIR), 0xc4);
    for (unsigned i = 0; i < 3; i++)
        outb(U + RBR, 'y');
    expect("dev-uart-iir-rls", inb(U + IIR), 0xc6);
    (void)inb(U + LSR);
    expect("dev-uart-iir-rls-cleared", inb(U + IIR), 0xc4);
    for (unsigned i = 0; i < 16; i++)
        (void)inb(U + RBR);
    expect("dev-uart-iir-drained", inb(U + IIR), 0xc1);
    /* THR empty: enabling it interrupts at once; reading IIR acknowledges it. */
    outb(U + IER, 0x02);
    expect("dev-uart-iir-thre", inb(U + IIR), 0xc2);
    expect("dev-uart-iir-thre-acked", inb(U + IIR), 0xc1);
    outb(U + IER, 0x00);
    /* REP OUTSB of 64 bytes in loopback: 16 kept, OE, none on the console. */
    static const char leak[] = "LEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAKLEAK\n\n\n\n";
    const char *s = leak;
    uint32_t n = 64;
    __asm__ volatile("cld; rep outsb" : "+S"(s), "+c"(n) : "d"(U + RBR) : "memory");
    expect("dev-uart-rep-outsb-loop-oe", inb(U + LSR), 0x63);
    uint8_t in[16];
    uint8_t *d = in;
    n = 16;
    __asm__ volatile("cld; rep insb" : "+D"(d), "+c"(n) : "d"(U + RBR) : "memory");
    expect("dev-uart-rep-insb-loop", memcmp(in, leak, 16) == 0, 1);

    /* Back to normal: FIFOs off, loopback off. */
    outb(U + FCR, 0x00);
    outb(U + MCR, mcr);
    for (unsigned i = 0; i < nres; i++)
        check(res[i].got == res[i].want, res[i].check, "read %#x, want %#x", res[i].got, res[i].want);
}
