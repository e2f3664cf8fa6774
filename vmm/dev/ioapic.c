#include "vmm/dev/ioapic.h"

/* Registers behind IOREGSEL/IOWIN (82093AA data sheet §3.2). */
#define REG_ID      0x00
#define REG_VERSION 0x01
#define REG_ARB     0x02
#define REG_REDIR   0x10          /* 0x10 + 2 * pin: low dword, then high dword */

/* IOAPIC version 0x20 (as on ICH and later): maximum redirection entry in 23:16. */
#define IOAPIC_VERSION_VALUE (0x20u | (uint32_t)(IOAPIC_PINS - 1) << 16)

/* Redirection entry bits (§3.2.4). */
#define RE_VECTOR        0xffull
#define RE_DELMODE_SHIFT 8
#define RE_DESTMODE      (1ull << 11)
#define RE_DELIVS        (1ull << 12)   /* read-only */
#define RE_POLARITY_LOW  (1ull << 13)
#define RE_REMOTE_IRR    (1ull << 14)   /* read-only */
#define RE_LEVEL         (1ull << 15)
#define RE_MASKED        (1ull << 16)
#define RE_DEST_SHIFT    56
#define RE_WRITABLE      (RE_VECTOR | 7ull << RE_DELMODE_SHIFT | RE_DESTMODE | RE_POLARITY_LOW | \
                          RE_LEVEL | RE_MASKED | 0xffull << RE_DEST_SHIFT)

void ioapic_init(struct ioapic *io, uint8_t id, ioapic_deliver_fn deliver, void *ctx)
{
    *io = (struct ioapic){ .id = id & 0xf, .deliver = deliver, .ctx = ctx };
    for (unsigned i = 0; i < IOAPIC_PINS; i++)
        io->redir[i] = RE_MASKED;   /* all pins masked after reset */
}

static void send(struct ioapic *io, unsigned pin)
{
    uint64_t re = io->redir[pin];
    struct ioapic_msg m = {
        .vector = (uint8_t)(re & RE_VECTOR),
        .delivery_mode = (uint8_t)((re >> RE_DELMODE_SHIFT) & 7),
        .logical = (re & RE_DESTMODE) != 0,
        .dest = (uint8_t)(re >> RE_DEST_SHIFT),
        .level = (re & RE_LEVEL) != 0,
    };
    if (io->deliver)
        io->deliver(io->ctx, &m);
}

/* A level-triggered pin interrupts while asserted, unmasked and not awaiting its
 * EOI (Remote IRR), §3.2.4. */
static void level_check(struct ioapic *io, unsigned pin)
{
    uint64_t re = io->redir[pin];
    if (!(re & RE_LEVEL) || (re & RE_MASKED) || !((io->pin_level >> pin) & 1) ||
        (io->remote_irr & (1u << pin)))
        return;
    io->remote_irr |= 1u << pin;
    send(io, pin);
}

static uint32_t ioapic_reg_read(struct ioapic *io, uint32_t reg)
{
    if (reg == REG_ID)
        return (uint32_t)io->id << 24;
    if (reg == REG_VERSION)
        return IOAPIC_VERSION_VALUE;
    if (reg == REG_ARB)
        return (uint32_t)io->id << 24;
    if (reg >= REG_REDIR && reg < REG_REDIR + 2 * IOAPIC_PINS) {
        unsigned pin = (reg - REG_REDIR) / 2;
        uint64_t re = io->redir[pin];
        if (io->remote_irr & (1u << pin))
            re |= RE_REMOTE_IRR;
        return (reg & 1) ? (uint32_t)(re >> 32) : (uint32_t)re;
    }
    return 0xffffffffu;  /* no such register */
}

static void ioapic_reg_write(struct ioapic *io, uint32_t reg, uint32_t value)
{
    if (reg == REG_ID) {
        io->id = (value >> 24) & 0xf;
        return;
    }
    if (reg < REG_REDIR || reg >= REG_REDIR + 2 * IOAPIC_PINS)
        return;                   /* version, arbitration and unknown: read-only */
    unsigned pin = (reg - REG_REDIR) / 2;
    uint64_t re = io->redir[pin];
    if (reg & 1)
        re = (re & 0xffffffffull) | (uint64_t)value << 32;
    else
        re = (re & ~0xffffffffull) | value;
    io->redir[pin] = re & RE_WRITABLE;
    /* Switching a pin to edge drops a stale Remote IRR; unmasking an asserted level
     * pin interrupts (an edge that came while masked is lost, as on the part). */
    if (!(io->redir[pin] & RE_LEVEL))
        io->remote_irr &= ~(1u << pin);
    level_check(io, pin);
}

uint32_t ioapic_read(struct ioapic *io, uint64_t offset, unsigned size)
{
    if (size != 4)
        return 0xffffffffu;
    if (offset == 0x00)
        return io->ioregsel;
    if (offset == 0x10)
        return ioapic_reg_read(io, io->ioregsel);
    return 0xffffffffu;
}

void ioapic_write(struct ioapic *io, uint64_t offset, unsigned size, uint32_t value)
{
    if (size != 4)
        return;
    if (offset == 0x00)
        io->ioregsel = value & 0xff;
    else if (offset == 0x10)
        ioapic_reg_write(io, io->ioregsel, value);
    else if (offset == 0x40)
        ioapic_eoi(io, (uint8_t)value);
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
    if (pin >= IOAPIC_PINS)
        return;
    /* Devices report "asserted"; an active-low pin's polarity is the wiring's
     * business, so it only matters as what the guest programs and reads back. */
    uint64_t re = io->redir[pin];
    bool was = (io->pin_level >> pin) & 1;
    if (level)
        io->pin_level |= 1u << pin;
    else
        io->pin_level &= ~(1u << pin);
    if (re & RE_LEVEL)
        level_check(io, pin);
    else if (level && !was && !(re & RE_MASKED))
        send(io, pin);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        if ((io->redir[pin] & RE_VECTOR) != vector || !(io->remote_irr & (1u << pin)))
            continue;
        io->remote_irr &= ~(1u << pin);
        level_check(io, pin);    /* still asserted: the next interrupt */
    }
}

/* ---- snapshot ---- */

static void ioapic_fields(struct ioapic *io, struct snap *s)
{
    snap_record_begin(s, "ioapic", 1);
    snap_u8(s, &io->id);
    snap_u32(s, &io->ioregsel);
    for (unsigned i = 0; i < IOAPIC_PINS; i++)
        snap_u64(s, &io->redir[i]);
    snap_u32(s, &io->pin_level);
    snap_u32(s, &io->remote_irr);
    snap_record_end(s);
}

/* The register writes keep these masks; Remote IRR is only ever set on a level
 * pin and dropped when the pin turns edge (ioapic_reg_write). */
static bool ioapic_check(const struct ioapic *io, struct snap *s)
{
    const uint32_t pins = (1u << IOAPIC_PINS) - 1;
    uint32_t level = 0;
    bool entries_ok = true;
    for (unsigned i = 0; i < IOAPIC_PINS; i++) {
        entries_ok &= !(io->redir[i] & ~RE_WRITABLE);
        if (io->redir[i] & RE_LEVEL)
            level |= 1u << i;
    }
    return snap_check(s, io->id <= 0xf, "ioapic: ID past 4 bits") &&
           snap_check(s, io->ioregsel <= 0xff, "ioapic: IOREGSEL past 8 bits") &&
           snap_check(s, entries_ok, "ioapic: read-only or reserved bits in a redirection entry") &&
           snap_check(s, !(io->pin_level & ~pins) && !(io->remote_irr & ~pins), "ioapic: a pin past the last") &&
           snap_check(s, !(io->remote_irr & ~level), "ioapic: Remote IRR on an edge-triggered pin");
}

bool ioapic_save(const struct ioapic *io, struct snap *s)
{
    struct ioapic c = *io;
    ioapic_fields(&c, s);
    return !s->failed;
}

bool ioapic_load(struct ioapic *io, struct snap *s)
{
    struct ioapic c = *io;
    ioapic_fields(&c, s);
    if (s->failed || !ioapic_check(&c, s))
        return false;
    *io = c;
    return true;
}
