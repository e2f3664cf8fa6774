/* irq_rtc: the MC146818's periodic interrupt at its fastest rate (register A rate 3,
 * 8192 Hz), through the slave 8259 to IRQ8.  Each interrupt is acknowledged by
 * reading register C, as the data sheet requires: WANT of them arrive, and once the
 * handler clears PIE at most the one already requested follows.  Then, with the
 * handler not reading register C, IRQF stays set and the IRQ line stays asserted: the
 * edge-triggered 8259 sees one edge, so exactly one interrupt arrives however many
 * periods pass, and reading C afterwards reports the flags still set. */
#include "irq_smp.h"

#define VEC  0x28
/* Few enough to arrive within the wait even with the CPU shared by the whole irq
 * group under QEMU's TCG (the guest runs a ninth of the time, each interrupt an exit
 * or two). */
#define WANT 100u

#define RTC_A_RATE_FASTEST 0x23   /* divider 010 (32.768 kHz), rate 3 */
#define RTC_B_PIE          0x40
#define RTC_C_IRQF         0x80
#define RTC_C_PF           0x40

static volatile uint32_t hits;
static volatile bool ack = true;

static bool rtc_hook(struct trap_frame *f)
{
    (void)f;
    if (ack)
        cmos_read(0x0c);
    if (++hits == WANT)
        cmos_write(0x0b, (uint8_t)(cmos_read(0x0b) & ~RTC_B_PIE));
    outb(0xa0, 0x20);
    outb(0x20, 0x20);
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_rtc";
    set_trap_hook(VEC, rtc_hook);
    pic_remap();
    cmos_write(0x0a, RTC_A_RATE_FASTEST);
    cmos_read(0x0c);
    outb(0xa1, 0xfe);                                   /* IRQ8 */
    outb(0x21, 0xfb);                                   /* the cascade, IRQ2 */
    uint64_t t0 = rdtsc();
    cmos_write(0x0b, (uint8_t)(cmos_read(0x0b) | RTC_B_PIE));
    __asm__ volatile("sti");
    bool got = WAIT_FOR(hits >= WANT) || WAIT_FOR(hits >= WANT) || WAIT_FOR(hits >= WANT);
    uint64_t t1 = rdtsc();
    spin_tsc(4000000);
    __asm__ volatile("cli");
    uint32_t after = hits - WANT;
    gprintf("INFO irq_rtc: %u interrupts in %llu TSC ticks, %u after PIE was cleared\n", hits, t1 - t0, after);
    check(got, "irq-rtc-fastest-delivered", "%u of %u interrupts arrived", hits, WANT);
    check(got && after <= 1, "irq-rtc-no-backlog", "%u interrupts arrived after PIE was cleared", after);

    /* Not acknowledged: one interrupt, the flags left set. */
    cmos_read(0x0c);
    hits = 0;
    ack = false;
    cmos_write(0x0b, (uint8_t)(cmos_read(0x0b) | RTC_B_PIE));
    __asm__ volatile("sti");
    WAIT_FOR(hits >= 1);
    spin_tsc(8000000);                                 /* many 122 us periods */
    __asm__ volatile("cli");
    /* Read before PIE is cleared: IRQF is PF AND PIE (data sheet, register C). */
    uint8_t c = cmos_read(0x0c);
    cmos_write(0x0b, (uint8_t)(cmos_read(0x0b) & ~RTC_B_PIE));
    outb(0xa1, 0xff);
    check(hits == 1 && (c & (RTC_C_IRQF | RTC_C_PF)) == (RTC_C_IRQF | RTC_C_PF), "irq-rtc-unacked-once",
          "%u interrupts without reading register C (want 1), then register C %#x", hits, c);
}
