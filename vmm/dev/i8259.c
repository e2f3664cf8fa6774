#include "vmm/dev/i8259.h"

/* Command words: Intel 8259A data sheet (order no. 231468), "Programming the 8259A".
 * A write to the command port (A0=0) with D4 set is ICW1; with D4 and D3 clear it
 * is OCW2, with D4 clear and D3 set OCW3.  The data port (A0=1) takes ICW2-ICW4
 * during initialization and OCW1 (the IMR) after it. */
#define ICW1_IC4    0x01   /* ICW4 follows */
#define ICW1_SNGL   0x02   /* single chip, no ICW3 */
#define ICW1_LTIM   0x08   /* level-triggered inputs */
#define ICW1_INIT   0x10

#define ICW4_AEOI   0x02   /* automatic end of interrupt */
#define ICW4_SFNM   0x10   /* special fully nested mode */

#define OCW2_R      0x80   /* rotate */
#define OCW2_SL     0x40   /* specific: L2-L0 name the level */
#define OCW2_EOI    0x20
#define OCW2_LEVEL  0x07

#define OCW3_ESMM   0x40   /* SMM bit is valid */
#define OCW3_SMM    0x20   /* special mask mode */
#define OCW3_SELECT 0x08
#define OCW3_P      0x04   /* poll */
#define OCW3_RR     0x02   /* RIS bit is valid */
#define OCW3_RIS    0x01   /* read ISR (else IRR) */

#define POLL_I      0x80   /* poll word: an interrupt was pending */

/* ELCR bits for IRQ 0, 1, 2, 8 and 13 are reserved and read 0: those lines are
 * edge-only on the PC (Intel PIIX4 data sheet, ELCR1/ELCR2). */
#define ELCR_MASTER_WRITABLE 0xf8
#define ELCR_SLAVE_WRITABLE  0xde

#define SPURIOUS_IR 7
#define FLOATING_BUS 0xff

static uint8_t level_lines(const struct i8259_chip *c)
{
    return (c->icw1 & ICW1_LTIM) ? 0xff : c->elcr;
}

/* A level-triggered request is the line itself: it comes back at once after an
 * acknowledge while the device keeps the line high. */
static void chip_follow_levels(struct i8259_chip *c)
{
    c->irr |= c->lines & level_lines(c);
}

static void chip_set_line(struct i8259_chip *c, unsigned ir, bool level)
{
    uint8_t bit = (uint8_t)(1u << ir);
    if (level) {
        if (!(c->lines & bit))
            c->irr |= bit;  /* rising edge; a level line is high anyway */
        c->lines |= bit;
    } else {
        /* Dropped before the acknowledge: the request is withdrawn in both modes. */
        c->lines &= (uint8_t)~bit;
        c->irr &= (uint8_t)~bit;
    }
}

/* Priority 0 is the highest: the IR just after the lowest-priority one. */
static unsigned chip_priority(const struct i8259_chip *c, unsigned ir)
{
    return (ir - c->lowest - 1) & 7;
}

static int chip_highest(const struct i8259_chip *c, uint8_t bits)
{
    for (unsigned p = 0; p < 8; p++) {
        unsigned ir = (c->lowest + 1 + p) & 7;
        if (bits & (1u << ir))
            return (int)ir;
    }
    return -1;
}

static uint8_t chip_cascade_lines(const struct i8259_chip *c)
{
    return (c->is_master && !(c->icw1 & ICW1_SNGL)) ? c->icw3 : 0;
}

/* The in-service levels that hold off requests of lower or equal priority.  In
 * special mask mode a masked in-service level holds off nothing (data sheet,
 * "Special Mask Mode"); in special fully nested mode a slave's input on the master
 * lets the slave's higher-priority requests through ("Special Fully Nested Mode"). */
static uint8_t chip_blocking(const struct i8259_chip *c)
{
    uint8_t b = c->isr;
    if (c->special_mask)
        b &= (uint8_t)~c->imr;
    if (c->icw4 & ICW4_SFNM)
        b &= (uint8_t)~chip_cascade_lines(c);
    return b;
}

/* The IR the chip would raise INT for, or -1. */
static int chip_pending(const struct i8259_chip *c)
{
    int ir = chip_highest(c, c->irr & (uint8_t)~c->imr);
    if (ir < 0)
        return -1;
    int served = chip_highest(c, chip_blocking(c));
    if (served >= 0 && chip_priority(c, (unsigned)ir) >= chip_priority(c, (unsigned)served))
        return -1;
    return ir;
}

/* The acknowledge half of an INTA cycle or a poll on one chip: the request moves
 * to in-service, or with none pending IR7 is reported and nothing changes. */
static unsigned chip_take(struct i8259_chip *c, bool *spurious)
{
    int ir = chip_pending(c);
    if (ir < 0) {
        *spurious = true;
        return SPURIOUS_IR;
    }
    uint8_t bit = (uint8_t)(1u << ir);
    *spurious = false;
    c->irr &= (uint8_t)~bit;
    if (c->icw4 & ICW4_AEOI) {
        if (c->rotate_aeoi)
            c->lowest = (uint8_t)ir;
    } else {
        c->isr |= bit;
    }
    chip_follow_levels(c);
    return (unsigned)ir;
}

static void chip_reset(struct i8259_chip *c, bool is_master)
{
    uint8_t lines = c->lines, elcr = c->elcr;
    *c = (struct i8259_chip){
        .is_master = is_master, .imr = 0xff, .lowest = 7, .lines = lines, .elcr = elcr,
        .elcr_writable = is_master ? ELCR_MASTER_WRITABLE : ELCR_SLAVE_WRITABLE,
    };
}

/* Propagate the slave's INT to master IR2, then the master's INT to the CPU. */
static void pic_update(struct i8259 *pic)
{
    chip_set_line(&pic->master, I8259_CASCADE_IRQ, chip_pending(&pic->slave) >= 0);
    bool intr = chip_pending(&pic->master) >= 0;
    if (intr != pic->intr) {
        pic->intr = intr;
        if (pic->intr_fn)
            pic->intr_fn(pic->intr_ctx, intr);
    }
}

void i8259_init(struct i8259 *pic, i8259_intr_fn intr, void *intr_ctx)
{
    *pic = (struct i8259){ .intr_fn = intr, .intr_ctx = intr_ctx };
    chip_reset(&pic->master, true);
    chip_reset(&pic->slave, false);
}

bool i8259_set_irq(struct i8259 *pic, unsigned irq, bool level)
{
    if (irq >= I8259_IRQS || irq == I8259_CASCADE_IRQ)
        return false;
    if (irq < 8)
        chip_set_line(&pic->master, irq, level);
    else
        chip_set_line(&pic->slave, irq - 8, level);
    pic_update(pic);
    return true;
}

bool i8259_has_interrupt(const struct i8259 *pic)
{
    return pic->intr;
}

uint8_t i8259_acknowledge(struct i8259 *pic)
{
    struct i8259_chip *m = &pic->master, *s = &pic->slave;
    bool spurious;
    unsigned ir = chip_take(m, &spurious);
    uint8_t vector;
    if (!spurious && (chip_cascade_lines(m) & (1u << ir))) {
        /* The master puts the cascade address on CAS0-2; only a slave whose ICW3
         * ID matches drives the vector, else the data bus floats. */
        if ((s->icw3 & 7) == ir && !(s->icw1 & ICW1_SNGL)) {
            unsigned sir = chip_take(s, &spurious);
            vector = (uint8_t)(s->vector_base | sir);
        } else {
            vector = FLOATING_BUS;
        }
        /* The slave's INT is sampled anew by the master's edge logic: a second
         * slave request still pending shows as a fresh edge on IR2. */
        chip_set_line(m, I8259_CASCADE_IRQ, false);
    } else {
        vector = (uint8_t)(m->vector_base | ir);
    }
    pic_update(pic);
    return vector;
}

static void chip_eoi(struct i8259_chip *c, uint8_t ocw2)
{
    unsigned level = ocw2 & OCW2_LEVEL;
    switch (ocw2 & (OCW2_R | OCW2_SL | OCW2_EOI)) {
    case OCW2_EOI:
    case OCW2_R | OCW2_EOI: {
        /* Non-specific: the highest level in service; in special mask mode a masked
         * one is not cleared (data sheet, "End of Interrupt"). */
        uint8_t candidates = c->special_mask ? (uint8_t)(c->isr & ~c->imr) : c->isr;
        int ir = chip_highest(c, candidates);
        if (ir < 0)
            return;
        c->isr &= (uint8_t)~(1u << ir);
        if (ocw2 & OCW2_R)
            c->lowest = (uint8_t)ir;
        return;
    }
    case OCW2_SL | OCW2_EOI:
        c->isr &= (uint8_t)~(1u << level);
        return;
    case OCW2_R | OCW2_SL | OCW2_EOI:
        c->isr &= (uint8_t)~(1u << level);
        c->lowest = (uint8_t)level;
        return;
    case OCW2_R | OCW2_SL:
        c->lowest = (uint8_t)level;   /* set priority */
        return;
    case OCW2_R:
        c->rotate_aeoi = true;
        return;
    case 0:
        c->rotate_aeoi = false;
        return;
    default:
        return;                        /* OCW2_SL alone: no operation */
    }
}

static void chip_write_command(struct i8259_chip *c, uint8_t value)
{
    if (value & ICW1_INIT) {
        /* ICW1 restarts initialization wherever the sequence was: IMR cleared, IR7
         * lowest, special mask off, IRR selected for reads, edge latches re-armed so
         * an edge line must rise anew; without IC4 the ICW4 functions are zero
         * (data sheet, "Initialization Command Words").  In-service state goes too:
         * a re-initializing OS owns no interrupt in service. */
        bool is_master = c->is_master;
        chip_reset(c, is_master);
        c->imr = 0;
        c->icw1 = value;
        c->init_step = 2;
        chip_follow_levels(c);
        return;
    }
    if (value & OCW3_SELECT) {
        if (value & OCW3_RR)
            c->read_isr = value & OCW3_RIS;
        if (value & OCW3_ESMM)
            c->special_mask = value & OCW3_SMM;
        c->poll = value & OCW3_P;
        return;
    }
    chip_eoi(c, value);
}

static void chip_write_data(struct i8259_chip *c, uint8_t value)
{
    switch (c->init_step) {
    case 2:
        c->vector_base = value & 0xf8;   /* T7-T3 in 8086 mode */
        if (!(c->icw1 & ICW1_SNGL))
            c->init_step = 3;
        else
            c->init_step = (c->icw1 & ICW1_IC4) ? 4 : 0;
        return;
    case 3:
        c->icw3 = value;
        c->init_step = (c->icw1 & ICW1_IC4) ? 4 : 0;
        return;
    case 4:
        /* uPM=0 (8080 mode) is recorded but the INTA cycle stays the x86 one: the
         * CPU on the other end only ever runs that. */
        c->icw4 = value;
        c->init_step = 0;
        return;
    default:
        c->imr = value;
        return;
    }
}

static uint8_t chip_read(struct i8259_chip *c, bool data_port)
{
    if (c->poll) {
        /* The read after a poll command acts as the acknowledge (data sheet, "The
         * Poll Command"); the slave's poll is a separate read by the OS. */
        c->poll = false;
        bool spurious;
        unsigned ir = chip_take(c, &spurious);
        return spurious ? 0 : (uint8_t)(POLL_I | ir);
    }
    if (data_port)
        return c->imr;
    return c->read_isr ? c->isr : c->irr;
}

uint8_t i8259_read(struct i8259 *pic, uint16_t port)
{
    uint8_t v;
    switch (port) {
    case I8259_MASTER_COMMAND: v = chip_read(&pic->master, false); break;
    case I8259_MASTER_DATA:    v = chip_read(&pic->master, true); break;
    case I8259_SLAVE_COMMAND:  v = chip_read(&pic->slave, false); break;
    case I8259_SLAVE_DATA:     v = chip_read(&pic->slave, true); break;
    case I8259_ELCR_MASTER:    return pic->master.elcr;
    case I8259_ELCR_SLAVE:     return pic->slave.elcr;
    default:                   return 0xff;
    }
    pic_update(pic);   /* a poll may have changed ISR */
    return v;
}

void i8259_write(struct i8259 *pic, uint16_t port, uint8_t value)
{
    struct i8259_chip *c;
    switch (port) {
    case I8259_MASTER_COMMAND: chip_write_command(&pic->master, value); break;
    case I8259_MASTER_DATA:    chip_write_data(&pic->master, value); break;
    case I8259_SLAVE_COMMAND:  chip_write_command(&pic->slave, value); break;
    case I8259_SLAVE_DATA:     chip_write_data(&pic->slave, value); break;
    case I8259_ELCR_MASTER:
    case I8259_ELCR_SLAVE:
        c = port == I8259_ELCR_MASTER ? &pic->master : &pic->slave;
        c->elcr = value & c->elcr_writable;
        chip_follow_levels(c);
        break;
    default:
        return;
    }
    pic_update(pic);
}

uint8_t i8259_io_read(void *ctx, uint16_t port)
{
    return i8259_read(ctx, port);
}

void i8259_io_write(void *ctx, uint16_t port, uint8_t value)
{
    i8259_write(ctx, port, value);
}

/* ---- snapshot ---- */

static void i8259_chip_fields(struct i8259_chip *c, struct snap *s)
{
    snap_u8(s, &c->irr);
    snap_u8(s, &c->isr);
    snap_u8(s, &c->imr);
    snap_u8(s, &c->lines);
    snap_u8(s, &c->elcr);
    snap_u8(s, &c->icw1);
    snap_u8(s, &c->icw3);
    snap_u8(s, &c->icw4);
    snap_u8(s, &c->vector_base);
    snap_u8(s, &c->lowest);
    snap_u8(s, &c->init_step);
    snap_bool(s, &c->read_isr);
    snap_bool(s, &c->poll);
    snap_bool(s, &c->special_mask);
    snap_bool(s, &c->rotate_aeoi);
}

static void i8259_fields(struct i8259 *pic, struct snap *s)
{
    snap_record_begin(s, "i8259", 1);
    i8259_chip_fields(&pic->master, s);
    i8259_chip_fields(&pic->slave, s);
    snap_bool(s, &pic->intr);
    snap_record_end(s);
}

/* chip_write_data() knows steps 0, 2, 3 and 4 only (any other would take the IMR
 * path while the chip waits for an ICW); lowest only ever names an IR; ICW2
 * keeps T7-T3, the IR filling in T2-T0 of the vector; ELCR keeps the bits the
 * chipset has. */
static bool i8259_chip_check(const struct i8259_chip *c, struct snap *s)
{
    return snap_check(s, c->init_step == 0 || (c->init_step >= 2 && c->init_step <= 4),
                      "i8259: an initialization step the chip does not have") &&
           snap_check(s, c->lowest < 8, "i8259: lowest priority past IR7") &&
           snap_check(s, !(c->vector_base & 7), "i8259: vector base bits 2:0 set") &&
           snap_check(s, !(c->elcr & ~c->elcr_writable), "i8259: ELCR bits the chip does not have");
}

bool i8259_save(const struct i8259 *pic, struct snap *s)
{
    struct i8259 c = *pic;
    i8259_fields(&c, s);
    return !s->failed;
}

bool i8259_load(struct i8259 *pic, struct snap *s)
{
    struct i8259 c = *pic;
    i8259_fields(&c, s);
    if (s->failed || !i8259_chip_check(&c.master, s) || !i8259_chip_check(&c.slave, s))
        return false;
    *pic = c;
    return true;
}
