/* irq_pit: the 8254's counter 0 at its smallest divisors, through the 8259 to IRQ0:
 * modes 2 and 3 with a count of 2 (a rising edge every two clocks of its 1.19 MHz
 * input, the fastest the data sheet allows).  Edges faster than the guest takes them
 * merge into the one request the 8259's IRR holds, so the guest takes them as fast as
 * it can EOI them and nothing queues up: once its handler masks IRQ0 after WANT of
 * them, at most the one already requested still arrives.  A count of 1, which the
 * data sheet calls illegal in modes 2 and 3, never raises OUT in plinth's 8254
 * (vmm/dev/i8254.c): no interrupt, and no busy timer behind it.  Then a mode-0 count
 * of 1 raises OUT once: one interrupt. */
#include "irq_smp.h"

#define VEC  0x20
/* Few enough to arrive within the wait even with the CPU shared by the whole irq
 * group under QEMU's TCG (the guest runs a ninth of the time, each interrupt an exit
 * or two). */
#define WANT 100u

static volatile uint32_t hits;

static bool pit_hook(struct trap_frame *f)
{
    (void)f;
    if (++hits == WANT)
        outb(0x21, 0xff);                                /* OCW1: IRQ0 masked */
    outb(0x20, 0x20);                                    /* non-specific EOI */
    return true;
}

/* Control word for counter 0 (LSB then MSB) in mode, then the count. */
static void pit_program(unsigned mode, uint16_t count)
{
    outb(0x43, (uint8_t)(0x30 | mode << 1));
    outb(0x40, (uint8_t)count);
    outb(0x40, (uint8_t)(count >> 8));
}

static void storm(const char *delivered, const char *no_backlog, unsigned mode, uint16_t count)
{
    hits = 0;
    pit_program(mode, count);
    uint64_t t0 = rdtsc();
    outb(0x21, 0xfe);                                    /* IRQ0 only */
    __asm__ volatile("sti");
    bool got = WAIT_FOR(hits >= WANT) || WAIT_FOR(hits >= WANT) || WAIT_FOR(hits >= WANT);
    uint64_t t1 = rdtsc();
    spin_tsc(2000000);
    __asm__ volatile("cli");
    uint32_t after = hits - WANT;
    gprintf("INFO irq_pit: mode %u count %u: %u interrupts in %llu TSC ticks, %u after the mask\n", mode, count,
            hits, t1 - t0, after);
    check(got, delivered, "%u of %u interrupts arrived", hits, WANT);
    check(got && after <= 1, no_backlog, "%u interrupts arrived after IRQ0 was masked", after);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "irq_pit";
    set_trap_hook(VEC, pit_hook);
    pic_remap();
    storm("irq-pit-mode2-count2-delivered", "irq-pit-mode2-count2-no-backlog", 2, 2);
    storm("irq-pit-mode3-count2-delivered", "irq-pit-mode3-count2-no-backlog", 3, 2);

    /* Count 1 in modes 2 and 3: silent.  The edge the last storm left latched in the
     * IRR while IRQ0 was masked arrives first, as on an 8259: taken before counting. */
    pit_program(2, 1);
    outb(0x21, 0xfe);
    __asm__ volatile("sti");
    spin_tsc(1000000);
    __asm__ volatile("cli");
    hits = 0;
    for (unsigned mode = 2; mode <= 3; mode++) {
        pit_program(mode, 1);
        __asm__ volatile("sti");
        spin_tsc(4000000);
        __asm__ volatile("cli");
    }
    outb(0x21, 0xff);
    check(hits == 0, "irq-pit-count1-silent", "%u interrupts from the illegal count 1 in modes 2 and 3", hits);

    /* Mode 0, count 1: OUT rises once at terminal count and stays high. */
    hits = 0;
    outb(0x21, 0xfe);
    pit_program(0, 1);
    __asm__ volatile("sti");
    WAIT_FOR(hits >= 1);
    spin_tsc(2000000);
    __asm__ volatile("cli");
    outb(0x21, 0xff);
    check(hits == 1, "irq-pit-mode0-count1-once", "%u interrupts from a mode-0 count of 1", hits);
}
