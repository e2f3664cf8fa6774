/* The device models' snapshot loads (X_load in vmm/dev/, the stream of vmm/snap.c)
 * on any record payload.  The input's first byte picks a model and a mode:
 *
 *   sel & 7     the model (uart16550, i8259, i8254, mc146818, ioapic, pc_misc,
 *               pci_host, vlapic)
 *   sel >= 0xf0 raw: the rest of the input is the whole stream, fed straight to
 *               snap_load_begin and the model's load (sel & 8: its header's length
 *               and checksum rewritten first, so the record header's own parsing
 *               is reached); else wrapped:
 *   sel & 8     wrapped: the payload cut or zero-padded to the length the model's
 *               own save writes
 *
 * A wrapped input goes on: a byte v (v & 63: how many bytes of API operations
 * follow, v >> 6: the model's configuration variant), those operation bytes, and
 * then the record's payload.  The stream is built around it with the model's own
 * tag and version (read from a save of a fresh model) and sealed, so that what is
 * exercised is the model's field checks, not the checksum.
 *
 * The harness initialises the model with callbacks that count their calls, drives
 * it with the operation bytes, copies it and loads the record.  Then:
 *   - a load or save never calls a callback, and returns !s->failed;
 *   - a refused load leaves the model byte for byte as it was and says why;
 *   - a load that succeeds takes the whole record (snap_load_end agrees), and its
 *     state is one the model reproduces: saved, loaded into a fresh model and saved
 *     again, both saves are byte-identical;
 *   - the loaded model survives a burst of ordinary use (every register read,
 *     clock steps small and large, interrupts raised, acknowledged and ended, the
 *     operation bytes replayed), keeping the invariants its own harness checks
 *     and the line levels its callbacks report;
 *   - where that use took it is a state its own load takes again (the same
 *     round trip), except for a guest clock driven past the RTC's calendar span;
 *   - a raw stream is parsed without reading outside it (ASan: an exact-size
 *     copy), the cursor never passes its end, and the refusal rules hold.
 *
 * Built with -DFUZZ_SNAPSHOT_SEEDS (and without -fsanitize=fuzzer) it is instead
 * the generator of its seed corpus: `gen DIR` writes inputs of both modes made
 * from saves of each model in a few real states.
 *   clang -std=gnu11 -I. -Itests/unit -Itests/fuzz -DPLINTH_HOST_TEST
 *         -DFUZZ_SNAPSHOT_SEEDS tests/fuzz/fuzz_snapshot_load.c -o gen
 *   ./gen tests/fuzz/corpus/fuzz_snapshot_load */
#include "fuzz.h"
/* The UART and the RTC both keep a static update_irq(): one translation unit. */
#define update_irq uart16550_update_irq
#include "vmm/dev/uart16550.c"
#undef update_irq
#include "vmm/dev/i8259.c"
#include "vmm/dev/i8254.c"
#include "vmm/dev/mc146818.c"
#include "vmm/dev/ioapic.c"
#include "vmm/dev/pc_misc.c"
#include "vmm/dev/pci_host.c"
#include "vmm/dev/vlapic.c"
#include "vmm/snap.c"

/* ---- the world the models see: one clock, callbacks that count ---- */

#define WALL_BASE_SEC 1700000000ull   /* the RTC's host wall clock at g_ns == 0 */
#define NS_START      5000000000ull   /* the monotonic clock at the start of a run */

static uint64_t g_ns;                 /* monotonic ns, the clock every model reads */
static unsigned long g_calls;         /* every callback call, clocks included */
static bool g_line[3];                /* levels the callbacks last reported */

static void advance(uint64_t d)
{
    g_ns = d > UINT64_MAX / 4 - g_ns ? UINT64_MAX / 4 : g_ns + d;
}

static void wall(uint64_t *sec, uint32_t *nsec)
{
    *sec = WALL_BASE_SEC + g_ns / 1000000000u;
    *nsec = (uint32_t)(g_ns % 1000000000u);
}

static void cb_line0(void *ctx, bool level) { (void)ctx; g_calls++; g_line[0] = level; }
static void cb_line1(void *ctx, bool level) { (void)ctx; g_calls++; g_line[1] = level; }
static void cb_line2(void *ctx, bool level) { (void)ctx; g_calls++; g_line[2] = level; }
static void cb_pulse(void *ctx, bool level) { (void)ctx; (void)level; g_calls++; }
static void cb_action(void *ctx) { (void)ctx; g_calls++; }
static void cb_tx(void *ctx, uint8_t b) { (void)ctx; (void)b; g_calls++; }
static uint64_t cb_clock(void *ctx) { (void)ctx; g_calls++; return g_ns; }
static void cb_wall(void *ctx, uint64_t *sec, uint32_t *nsec) { (void)ctx; g_calls++; wall(sec, nsec); }
static void cb_deliver(void *ctx, const struct ioapic_msg *m) { (void)ctx; (void)m; g_calls++; }
static void cb_ipi(void *ctx, const struct vlapic_ipi *ipi) { (void)ctx; (void)ipi; g_calls++; }
static void cb_eoi(void *ctx, uint8_t v) { (void)ctx; (void)v; g_calls++; }

/* A clock step: small ones mostly, now and then up to 2^40 ns. */
static void fz_step(struct fuzz_in *in)
{
    uint8_t k = fz_u8(in);
    advance(k < 200 ? k * 997u : (uint64_t)fz_u32(in) << (k & 7));
}

/* The burst's clock steps: a nanosecond, about a PIT tick, a PIT period of 65536,
 * a second, an hour, 2^40 ns. */
static const uint64_t burst_steps[] = { 1, 838, 1000, 54925000, 1000000000ull, 3600000000000ull, 1ull << 40 };
#define BURST_STEPS (sizeof burst_steps / sizeof burst_steps[0])

union model {
    struct uart16550 uart;
    struct i8259 pic;
    struct i8254 pit;
    struct mc146818 rtc;
    struct ioapic io;
    struct pc_misc misc;
    struct pci_host pci;
    struct vlapic lapic;
};

struct model_ops {
    const char *name;
    size_t size;
    void (*init)(union model *m, unsigned variant);
    bool (*save)(const union model *m, struct snap *s);   /* at g_ns */
    bool (*load)(union model *m, struct snap *s);
    void (*op)(union model *m, struct fuzz_in *in);       /* one API call */
    void (*burst)(union model *m);
    void (*sync)(const union model *m);                   /* the caller drives the lines */
    void (*check)(const union model *m);
};

/* ---- uart16550 ---- */

static void uart_init(union model *m, unsigned variant)
{
    (void)variant;
    uart16550_init(&m->uart, cb_tx, NULL, cb_line0, NULL);
}
static bool uart_save(const union model *m, struct snap *s) { return uart16550_save(&m->uart, s); }
static bool uart_load(union model *m, struct snap *s) { return uart16550_load(&m->uart, s); }
static void uart_sync(const union model *m) { g_line[0] = m->uart.irq_level; }

static void uart_check(const union model *m)
{
    const struct uart16550 *u = &m->uart;
    FUZZ_CHECK(u->rx_count <= UART16550_FIFO_SIZE && u->rx_head < UART16550_FIFO_SIZE,
               "rx_count %u rx_head %u", u->rx_count, u->rx_head);
    FUZZ_CHECK(g_line[0] == u->irq_level, "line %d, model says %d", g_line[0], u->irq_level);
}

/* After an access that re-evaluates the line (every read does). */
static void uart_check_line(const struct uart16550 *u)
{
    if (u->ier == 0 && !(u->mcr & MCR_LOOP))
        FUZZ_CHECK(!u->irq_level, "interrupt with IER 0");
}

static void uart_receive(struct uart16550 *u, uint8_t b)
{
    unsigned space = uart16550_rx_space(u);
    bool took = uart16550_receive(u, b);
    FUZZ_CHECK(!took || space > 0, "took a byte with no room");
}

static void uart_op(union model *m, struct fuzz_in *in)
{
    struct uart16550 *u = &m->uart;
    uint8_t op = fz_u8(in);
    unsigned off = op & 0xf;
    switch (op >> 5) {
    case 0: case 1: case 2: uart16550_write(u, off, fz_u8(in)); break;
    case 3: case 4:         (void)uart16550_read(u, off); uart_check_line(u); break;
    case 5:                 uart_receive(u, fz_u8(in)); break;
    case 6:                 uart16550_rx_idle(u); break;
    default:                (void)uart16550_rx_irq_armed(u); break;
    }
}

static void uart_burst(union model *m)
{
    struct uart16550 *u = &m->uart;
    for (unsigned off = 0; off <= UART16550_PORTS; off++) {
        (void)uart16550_read(u, off);
        uart_check_line(u);
        uart_check(m);
    }
    unsigned room = uart16550_rx_space(u);
    FUZZ_CHECK(room <= UART16550_FIFO_SIZE, "rx_space %u", room);
    for (unsigned i = 0; i <= room; i++)
        uart_receive(u, (uint8_t)('a' + i));
    uart16550_rx_idle(u);
    uart_check(m);
    (void)uart16550_read(u, REG_IIR_FCR);
    (void)uart16550_read(u, REG_LSR);
    for (unsigned i = 0; i <= UART16550_FIFO_SIZE; i++)
        (void)uart16550_read(u, REG_RBR_THR);
    uart16550_write(u, REG_RBR_THR, 'x');
    (void)uart16550_read(u, REG_IIR_FCR);
    (void)uart16550_read(u, REG_MSR);
    uart_check_line(u);
    uart_check(m);
}

/* ---- i8259 ---- */

static void pic_init(union model *m, unsigned variant)
{
    (void)variant;
    i8259_init(&m->pic, cb_line0, NULL);
}
static bool pic_save(const union model *m, struct snap *s) { return i8259_save(&m->pic, s); }
static bool pic_load(union model *m, struct snap *s) { return i8259_load(&m->pic, s); }
static void pic_sync(const union model *m) { g_line[0] = m->pic.intr; }

static void pic_chip_ok(const struct i8259_chip *c)
{
    FUZZ_CHECK(c->init_step == 0 || (c->init_step >= 2 && c->init_step <= 4), "init step %u", c->init_step);
    FUZZ_CHECK(c->lowest < 8, "lowest %u", c->lowest);
    FUZZ_CHECK((c->vector_base & 7) == 0, "vector base %#x", c->vector_base);
}

static void pic_check(const union model *m)
{
    pic_chip_ok(&m->pic.master);
    pic_chip_ok(&m->pic.slave);
    FUZZ_CHECK(g_line[0] == m->pic.intr, "INT line %d, model %d", g_line[0], m->pic.intr);
}

static void pic_ack(struct i8259 *pic)
{
    uint8_t v = i8259_acknowledge(pic);
    uint8_t mb = pic->master.vector_base, sb = pic->slave.vector_base;
    FUZZ_CHECK((v >= mb && v < mb + 8) || (v >= sb && v < sb + 8) || v == 0xff,
               "vector %#x (bases %#x %#x)", v, mb, sb);
}

static const uint16_t pic_ports[] = { 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x22 };

static void pic_op(union model *m, struct fuzz_in *in)
{
    struct i8259 *pic = &m->pic;
    uint8_t op = fz_u8(in);
    uint16_t port = pic_ports[(op >> 3) % 7];
    switch (op & 7) {
    case 0: case 1: case 2: i8259_write(pic, port, fz_u8(in)); break;
    case 3:                 (void)i8259_read(pic, port); break;
    case 4: case 5:         (void)i8259_set_irq(pic, fz_u8(in) % 17, op & 1); break;
    default:
        if (i8259_has_interrupt(pic))
            pic_ack(pic);
        break;
    }
}

static void pic_burst(union model *m)
{
    struct i8259 *pic = &m->pic;
    for (unsigned i = 0; i < sizeof pic_ports / sizeof pic_ports[0]; i++) {
        (void)i8259_read(pic, pic_ports[i]);
        pic_check(m);
    }
    for (unsigned irq = 0; irq < I8259_IRQS; irq++) {
        (void)i8259_set_irq(pic, irq, true);
        for (unsigned k = 0; k < 20 && i8259_has_interrupt(pic); k++) {
            pic_ack(pic);
            i8259_write(pic, I8259_SLAVE_COMMAND, 0x20);    /* non-specific EOI */
            i8259_write(pic, I8259_MASTER_COMMAND, 0x20);
            pic_check(m);
        }
    }
    pic_ack(pic);                                           /* spurious, likely */
    for (unsigned irq = 0; irq < I8259_IRQS; irq++)
        (void)i8259_set_irq(pic, irq, false);
    i8259_write(pic, I8259_MASTER_COMMAND, 0x0c);           /* poll */
    (void)i8259_read(pic, I8259_MASTER_COMMAND);
    pic_check(m);
}

/* ---- i8254 ---- */

static void pit_init(union model *m, unsigned variant)
{
    (void)variant;
    i8254_init(&m->pit, cb_clock, NULL, cb_pulse, NULL);
}
static bool pit_save(const union model *m, struct snap *s) { return i8254_save(&m->pit, s, g_ns); }
static bool pit_load(union model *m, struct snap *s) { return i8254_load(&m->pit, s, g_ns); }
static void pit_sync(const union model *m) { (void)m; }

/* What the counting code divides by or indexes with (i8254_channel_check). */
static void pit_check(const union model *m)
{
    for (int i = 0; i < I8254_CHANNELS; i++) {
        const struct i8254_channel *c = &m->pit.ch[i];
        uint32_t mod = modulus(c);
        FUZZ_CHECK(c->mode <= 5 && c->rw <= 3, "channel %d mode %u rw %u", i, c->mode, c->rw);
        FUZZ_CHECK(!c->armed || (c->reload >= 1 && c->reload <= mod), "channel %d reload %u", i, c->reload);
        FUZZ_CHECK(!c->running || (c->start_count >= 1 && c->start_count <= mod),
                   "channel %d counting from %u (modulus %u)", i, c->start_count, mod);
        FUZZ_CHECK(!c->pending || (c->pending_reload >= 1 && c->pending_reload <= mod),
                   "channel %d pending %u", i, c->pending_reload);
    }
}

static const uint16_t pit_ports[] = { 0x40, 0x41, 0x42, 0x43, 0x61, 0x44 };

static void pit_op(union model *m, struct fuzz_in *in)
{
    struct i8254 *pit = &m->pit;
    uint8_t op = fz_u8(in);
    uint16_t port = pit_ports[(op >> 2) % 6];
    switch (op & 3) {
    case 0:  i8254_write(pit, port, fz_u8(in)); break;
    case 1:  (void)i8254_read(pit, port); break;
    case 2:  fz_step(in); i8254_update(pit); break;
    default: (void)i8254_next_event_ns(pit); break;
    }
}

static void pit_burst(union model *m)
{
    struct i8254 *pit = &m->pit;
    for (unsigned k = 0; k < BURST_STEPS; k++) {
        advance(burst_steps[k]);
        for (unsigned i = 0; i < 5; i++)
            (void)i8254_read(pit, pit_ports[i]);
        i8254_write(pit, I8254_CONTROL, 0xce);   /* read-back: status and count, all three */
        for (unsigned c = 0; c < I8254_CHANNELS; c++)
            for (unsigned r = 0; r < 3; r++)
                (void)i8254_read(pit, (uint16_t)(I8254_COUNTER0 + c));
        i8254_write(pit, I8254_CONTROL, (uint8_t)((k % 3) << 6));   /* counter latch */
        i8254_update(pit);
        (void)i8254_next_event_ns(pit);
        pit_check(m);
    }
    /* Counter 2's gate down and up (port 0x61 bit 0), as a TSC calibration does. */
    uint8_t b = pit->port_b;
    for (unsigned k = 0; k < 3; k++) {
        i8254_write(pit, I8254_PORT_B, k & 1 ? b : b ^ PORTB_GATE2);
        pit_check(m);
        advance(5000);
    }
    (void)i8254_read(pit, I8254_PORT_B);
    (void)i8254_read(pit, I8254_COUNTER2);
    i8254_update(pit);
    pit_check(m);
}

/* ---- mc146818 ---- */

static void rtc_init(union model *m, unsigned variant)
{
    mc146818_init(&m->rtc, cb_wall, cb_line0, NULL);
    mc146818_set_memory(&m->rtc, (uint64_t)(variant + 1) << 28);
}
static bool rtc_save(const union model *m, struct snap *s)
{
    uint64_t sec;
    uint32_t nsec;
    wall(&sec, &nsec);
    return mc146818_save(&m->rtc, s, sec, nsec);
}
static bool rtc_load(union model *m, struct snap *s)
{
    uint64_t sec;
    uint32_t nsec;
    wall(&sec, &nsec);
    return mc146818_load(&m->rtc, s, sec, nsec);
}
static void rtc_sync(const union model *m) { g_line[0] = m->rtc.irq_level; }

static void rtc_check(const union model *m)
{
    FUZZ_CHECK(m->rtc.index < MC146818_CMOS_SIZE, "index %u", m->rtc.index);
    FUZZ_CHECK(m->rtc.offset_nsec < NSEC_PER_SEC && m->rtc.last_nsec < NSEC_PER_SEC,
               "nanoseconds %u %u", m->rtc.offset_nsec, m->rtc.last_nsec);
    FUZZ_CHECK(g_line[0] == m->rtc.irq_level, "line %d, model says %d", g_line[0], m->rtc.irq_level);
}

static void rtc_op(union model *m, struct fuzz_in *in)
{
    struct mc146818 *r = &m->rtc;
    uint8_t op = fz_u8(in);
    uint16_t port = (op & 0x10) ? 0x71 : (op & 0x20) ? 0x72 : 0x70;
    switch (op & 7) {
    case 0: case 1: case 2: mc146818_write(r, port, fz_u8(in)); break;
    case 3: case 4:         (void)mc146818_read(r, port); break;
    case 5:                 fz_step(in); mc146818_tick(r); break;
    case 6:                 (void)mc146818_next_event_ns(r); break;
    default:                mc146818_reset(r); break;
    }
}

static void rtc_burst(union model *m)
{
    struct mc146818 *r = &m->rtc;
    uint8_t index = r->index;
    for (unsigned i = 0; i < MC146818_CMOS_SIZE; i++) {
        mc146818_write(r, MC146818_PORT_INDEX, (uint8_t)i);
        (void)mc146818_read(r, MC146818_PORT_DATA);
        (void)mc146818_read(r, MC146818_PORT_INDEX);
    }
    rtc_check(m);
    for (unsigned k = 0; k < BURST_STEPS; k++) {
        advance(burst_steps[k]);
        mc146818_tick(r);
        (void)mc146818_next_event_ns(r);
        (void)mc146818_nmi_masked(r);
        rtc_check(m);
        mc146818_write(r, MC146818_PORT_INDEX, REG_C);   /* the ISR's acknowledge */
        (void)mc146818_read(r, MC146818_PORT_DATA);
        rtc_check(m);
    }
    mc146818_write(r, MC146818_PORT_INDEX, REG_SECONDS);
    (void)mc146818_read(r, MC146818_PORT_DATA);
    mc146818_write(r, MC146818_PORT_INDEX, index);
    rtc_check(m);
}

/* ---- ioapic ---- */

static void io_init(union model *m, unsigned variant)
{
    ioapic_init(&m->io, (uint8_t)variant, cb_deliver, NULL);
}
static bool io_save(const union model *m, struct snap *s) { return ioapic_save(&m->io, s); }
static bool io_load(union model *m, struct snap *s) { return ioapic_load(&m->io, s); }
static void io_sync(const union model *m) { (void)m; }

static void io_check(const union model *m)
{
    const struct ioapic *io = &m->io;
    FUZZ_CHECK(io->id <= 0xf && io->ioregsel <= 0xff, "id %u ioregsel %#x", io->id, io->ioregsel);
    for (unsigned p = 0; p < IOAPIC_PINS; p++)
        if (io->remote_irr & (1u << p))
            FUZZ_CHECK(io->redir[p] & RE_LEVEL, "Remote IRR on edge pin %u", p);
    FUZZ_CHECK(!(io->remote_irr >> IOAPIC_PINS) && !(io->pin_level >> IOAPIC_PINS),
               "pins past the last: irr %#x level %#x", io->remote_irr, io->pin_level);
}

static void io_set(struct ioapic *io, unsigned pin, bool level)
{
    unsigned long before = g_calls;
    bool masked = pin < IOAPIC_PINS && (io->redir[pin] & RE_MASKED);
    ioapic_set_irq(io, pin, level);
    FUZZ_CHECK(!masked || g_calls == before, "masked pin %u delivered", pin);
}

static void io_op(union model *m, struct fuzz_in *in)
{
    static const unsigned sizes[] = { 1, 2, 4, 8 };
    struct ioapic *io = &m->io;
    uint8_t op = fz_u8(in);
    uint64_t off = fz_u16(in) & ((op & 0x80) ? 0x1fff : 0x7f);
    unsigned sz = sizes[(op >> 5) & 3];
    switch (op & 7) {
    case 0: case 1: ioapic_write(io, off, sz, fz_u32(in)); break;
    case 2:         (void)ioapic_read(io, off, sz); break;
    case 3: case 4: io_set(io, fz_u8(in) % (IOAPIC_PINS + 2), op & 1); break;
    default:        ioapic_eoi(io, fz_u8(in)); break;
    }
}

static void io_burst(union model *m)
{
    struct ioapic *io = &m->io;
    uint32_t sel = ioapic_read(io, 0x00, 4);
    for (uint32_t reg = 0; reg <= 0xff; reg++) {
        ioapic_write(io, 0x00, 4, reg);
        (void)ioapic_read(io, 0x10, 4);
    }
    ioapic_write(io, 0x00, 4, sel);
    (void)ioapic_read(io, 0x40, 4);
    io_check(m);
    for (unsigned pin = 0; pin < IOAPIC_PINS + 1; pin++)
        io_set(io, pin, true);
    io_check(m);
    for (unsigned v = 0; v < 256; v++)
        ioapic_eoi(io, (uint8_t)v);
    io_check(m);
    for (unsigned pin = 0; pin < IOAPIC_PINS + 1; pin++)
        io_set(io, pin, false);
    for (unsigned v = 0; v < 256; v++)
        ioapic_write(io, 0x40, 4, v);
    io_check(m);
}

/* ---- pc_misc ---- */

static void misc_init(union model *m, unsigned variant)
{
    /* The platform's configuration (vmm/platform.c); variant 1 and 3: a 24-bit timer. */
    struct pc_misc_config cfg = { .pm_base = 0x600, .s5_slp_typ = 5, .pm_timer_32bit = !(variant & 1),
                                  .now_ns = cb_clock, .reset = cb_action, .poweroff = cb_action,
                                  .sci = cb_line0, .kbd_irq = cb_line1, .aux_irq = cb_line2 };
    FUZZ_CHECK(pc_misc_init(&m->misc, &cfg), "a sound configuration refused");
}
static bool misc_save(const union model *m, struct snap *s) { return pc_misc_save(&m->misc, s, g_ns); }
static bool misc_load(union model *m, struct snap *s) { return pc_misc_load(&m->misc, s, g_ns); }

static void misc_sync(const union model *m)
{
    g_line[0] = m->misc.sci_level;
    g_line[1] = m->misc.kbd_irq_level;
    g_line[2] = m->misc.aux_irq_level;
}

static void misc_check(const union model *m)
{
    const struct pc_misc *p = &m->misc;
    FUZZ_CHECK(g_line[0] == p->sci_level && g_line[1] == p->kbd_irq_level && g_line[2] == p->aux_irq_level,
               "lines %d %d %d, model says %d %d %d", g_line[0], g_line[1], g_line[2], p->sci_level,
               p->kbd_irq_level, p->aux_irq_level);
}

static const uint16_t misc_ports[] = { 0x60, 0x64, 0x92, 0xcf9, 0x600, 0x601, 0x602, 0x603, 0x604,
                                       0x605, 0x606, 0x607, 0x608, 0x609, 0x60a, 0x60b, 0x61, 0x3ff };
#define MISC_PORTS (sizeof misc_ports / sizeof misc_ports[0])

static void misc_read(struct pc_misc *p, uint16_t port)
{
    uint8_t v = pc_misc_read(p, port);
    FUZZ_CHECK(pc_misc_decodes(p, port) || v == 0xff, "undecoded port %#x read %#x", port, v);
}

static void misc_op(union model *m, struct fuzz_in *in)
{
    struct pc_misc *p = &m->misc;
    uint8_t op = fz_u8(in);
    uint16_t port = misc_ports[(op >> 2) % MISC_PORTS];
    switch (op & 3) {
    case 0: case 1: pc_misc_write(p, port, fz_u8(in)); break;
    case 2:         misc_read(p, port); break;
    default:
        fz_step(in);
        pc_misc_tick(p);
        (void)pc_misc_next_event_ns(p);
        if (fz_u8(in) == 0x42)
            pc_misc_power_button(p);
        break;
    }
}

static void misc_burst(union model *m)
{
    struct pc_misc *p = &m->misc;
    for (unsigned i = 0; i < MISC_PORTS; i++) {
        misc_read(p, misc_ports[i]);
        misc_check(m);
    }
    for (unsigned k = 0; k < BURST_STEPS; k++) {
        advance(burst_steps[k]);
        pc_misc_tick(p);
        (void)pc_misc_next_event_ns(p);
        misc_read(p, 0x600);
        misc_read(p, 0x608);
        misc_read(p, 0x609);
        misc_check(m);
    }
    pc_misc_power_button(p);
    misc_check(m);
    pc_misc_write(p, 0x600, 0xff);          /* clear every PM1 status bit */
    pc_misc_write(p, 0x601, 0xff);
    pc_misc_write(p, 0x64, 0x20);           /* read the command byte */
    misc_read(p, 0x64);
    misc_read(p, 0x60);
    misc_check(m);
}

/* ---- pci_host ---- */

static void pci_init(union model *m, unsigned variant)
{
    (void)variant;
    pci_host_init(&m->pci);
}
static bool pci_save(const union model *m, struct snap *s) { return pci_host_save(&m->pci, s); }
static bool pci_load(union model *m, struct snap *s) { return pci_host_load(&m->pci, s); }
static void pci_sync(const union model *m) { (void)m; }

static void pci_check(const union model *m)
{
    struct pci_host h = m->pci;
    FUZZ_CHECK((h.address & ~PCI_HOST_ADDRESS_MASK) == 0, "CONFIG_ADDRESS %#x", h.address);
    uint32_t ids = pci_host_config_read(&h, 0, 0, 0, 0, 4);
    FUZZ_CHECK(ids == (PCI_HOST_VENDOR_ID | (uint32_t)PCI_HOST_DEVICE_ID << 16), "the bridge's IDs %#x", ids);
}

static void pci_op(union model *m, struct fuzz_in *in)
{
    struct pci_host *h = &m->pci;
    uint8_t op = fz_u8(in);
    unsigned sz = 1u << (op & 3);
    uint32_t v = 0;
    switch ((op >> 2) & 3) {
    case 0:
        v = fz_u32(in);
        (void)pci_host_io(h, (uint16_t)(0xcf8 + fz_below(in, 8)), sz, true, &v);
        break;
    case 1:
        (void)pci_host_io(h, (uint16_t)(0xcf8 + fz_below(in, 8)), sz, false, &v);
        break;
    case 2: {
        uint8_t bus = fz_u8(in), dev = fz_u8(in) & 0x1f, fn = fz_u8(in) & 7;
        (void)pci_host_config_read(h, bus, dev, fn, fz_u16(in) & 0x1ff, sz);
        break;
    }
    default: {
        uint8_t bus = fz_u8(in), dev = fz_u8(in) & 0x1f, fn = fz_u8(in) & 7;
        unsigned off = fz_u16(in) & 0x1ff;
        pci_host_config_write(h, bus, dev, fn, off, sz, fz_u32(in));
        break;
    }
    }
}

static void pci_burst(union model *m)
{
    struct pci_host *h = &m->pci;
    uint32_t v = 0;
    (void)pci_host_io(h, PCI_HOST_PORT_ADDRESS, 4, false, &v);
    for (unsigned sz = 1; sz <= 4; sz *= 2)
        for (uint16_t port = PCI_HOST_PORT_FIRST; port <= PCI_HOST_PORT_LAST; port++)
            (void)pci_host_io(h, port, sz, false, &v);
    for (unsigned off = 0; off < 256; off++) {
        (void)pci_host_config_read(h, 0, 0, 0, off, 1);
        if (!(off & 1))
            (void)pci_host_config_read(h, 0, 0, 0, off, 2);
        if (!(off & 3))
            (void)pci_host_config_read(h, 0, 0, 0, off, 4);
    }
    pci_check(m);
}

/* ---- vlapic ---- */

static const struct vlapic_ops lapic_ops = { cb_ipi, cb_eoi, NULL };

static void lapic_init(union model *m, unsigned variant)
{
    vlapic_init(&m->lapic, variant, variant & 1, (variant & 2) ? 25000000u : 1000000000u, &lapic_ops);
}
static bool lapic_save(const union model *m, struct snap *s) { return vlapic_save(&m->lapic, s, g_ns); }
static bool lapic_load(union model *m, struct snap *s) { return vlapic_load(&m->lapic, s, g_ns); }
static void lapic_sync(const union model *m) { (void)m; }

static void lapic_check(const union model *m)
{
    const struct vlapic *a = &m->lapic;
    FUZZ_CHECK((a->tpr & ~0xffu) == 0, "TPR %#x", a->tpr);
    FUZZ_CHECK(a->timer_hz && 1000000000ull % a->timer_hz == 0, "timer clock %lu", (unsigned long)a->timer_hz);
    int v = vlapic_pending(a);
    FUZZ_CHECK(v == -1 || (v >= 16 && v <= 255 && bit_test(a->irr, (uint8_t)v)), "pending %d", v);
}

/* Injects what is pending, and ends it, as the vCPU loop and the guest would. */
static void lapic_take(struct vlapic *a)
{
    for (unsigned k = 0; k < 300; k++) {
        int v = vlapic_pending(a);
        if (v < 0)
            return;
        FUZZ_CHECK(v >= 16 && v <= 255 && bit_test(a->irr, (uint8_t)v), "pending %d", v);
        vlapic_ack(a, (uint8_t)v);
        FUZZ_CHECK(bit_test(a->isr, (uint8_t)v), "acknowledged %d not in ISR", v);
        if (a->x2apic)
            (void)vlapic_msr_write(a, 0x80b, 0, g_ns);
        else
            vlapic_mmio_write(a, R_EOI, 4, 0, g_ns);
    }
}

static void lapic_op(union model *m, struct fuzz_in *in)
{
    struct vlapic *a = &m->lapic;
    uint8_t op = fz_u8(in);
    uint64_t v;
    switch (op & 7) {
    case 0:
        vlapic_mmio_write(a, fz_u16(in) & 0xfff, 1u << (op >> 6), fz_u32(in), g_ns);
        break;
    case 1:
        (void)vlapic_mmio_read(a, fz_u16(in) & 0xfff, 1u << (op >> 6), g_ns);
        break;
    case 2:
        v = fz_u64(in);
        (void)vlapic_msr_write(a, 0x800 + fz_u8(in), v, g_ns);
        break;
    case 3:
        (void)vlapic_msr_read(a, 0x800 + fz_u8(in), &v, g_ns);
        break;
    case 4:
        (void)vlapic_set_base_mode(a, fz_bool(in), fz_bool(in));
        break;
    case 5:
        vlapic_accept(a, fz_u8(in), fz_bool(in));
        break;
    case 6: {
        int p = vlapic_pending(a);
        if (p >= 0)
            vlapic_ack(a, (uint8_t)p);
        break;
    }
    default:
        fz_step(in);
        if (fz_bool(in))
            vlapic_set_tsc_deadline(a, g_ns + fz_u16(in));
        vlapic_tick(a, g_ns, g_ns);
        (void)vlapic_next_timer_ns(a);
        break;
    }
}

static void lapic_burst(union model *m)
{
    struct vlapic *a = &m->lapic;
    uint64_t v;
    for (uint32_t off = 0; off < VLAPIC_MMIO_SIZE; off += 16)
        (void)vlapic_mmio_read(a, off, 4, g_ns);
    for (uint32_t msr = 0x800; msr <= 0x8ff; msr++)
        (void)vlapic_msr_read(a, msr, &v, g_ns);
    lapic_check(m);
    lapic_take(a);
    for (unsigned k = 0; k < BURST_STEPS; k++) {
        advance(burst_steps[k]);
        vlapic_tick(a, g_ns, g_ns);
        (void)vlapic_next_timer_ns(a);
        (void)vlapic_mmio_read(a, R_TIMER_CCR, 4, g_ns);
        (void)vlapic_msr_read(a, 0x839, &v, g_ns);
        lapic_check(m);
        lapic_take(a);
    }
    vlapic_accept(a, 0x31, true);       /* a level interrupt from the IOAPIC */
    vlapic_accept(a, 0xef, false);
    lapic_take(a);
    lapic_check(m);
}

/* ---- the table ---- */

#define MODEL(p, n) { #n, sizeof(((union model *)0)->n), p##_init, p##_save, p##_load, p##_op, \
                      p##_burst, p##_sync, p##_check }
static const struct model_ops models[8] = {
    MODEL(uart, uart), MODEL(pic, pic), MODEL(pit, pit), MODEL(rtc, rtc),
    MODEL(io, io), MODEL(misc, misc), MODEL(pci, pci), MODEL(lapic, lapic),
};

/* ---- streams ---- */

#define OUT_CAP 4096

/* A save of m at g_ns into out (OUT_CAP): its length; saves call no callback. */
static size_t save_stream(const struct model_ops *mo, const union model *m, uint8_t *out)
{
    struct snap s;
    unsigned long calls = g_calls;
    snap_save_begin(&s, out, OUT_CAP);
    bool ok = mo->save(m, &s);
    size_t n = snap_save_end(&s);
    FUZZ_CHECK(g_calls == calls, "%s: a save called back", mo->name);
    FUZZ_CHECK(ok && n > SNAP_HEADER_BYTES, "%s: a save failed: %s", mo->name, s.why);
    return n;
}

/* The model's record header as its own save writes it: tag, version, length. */
struct record_id {
    char     tag[8];
    uint32_t version;
    uint32_t len;
};

static struct record_id record_id(const struct model_ops *mo)
{
    static uint8_t out[OUT_CAP];
    static struct record_id known[8];
    static bool have[8];
    unsigned i = (unsigned)(mo - models);
    if (have[i])
        return known[i];
    union model m;
    struct record_id r;
    mo->init(&m, 0);
    size_t n = save_stream(mo, &m, out);
    const uint8_t *p = out + SNAP_HEADER_BYTES;
    memcpy(r.tag, p, 8);
    r.tag[7] = 0;
    r.version = (uint32_t)get_le(p + 8, 4);
    r.len = (uint32_t)get_le(p + 12, 4);
    FUZZ_CHECK(n == SNAP_HEADER_BYTES + RECORD_HEADER + r.len, "%s: a save of more than one record", mo->name);
    known[i] = r;
    have[i] = true;
    return r;
}

/* Loads stream into *m (a live model) and checks what a load promises either
 * way; true if it took it.  sealed: the harness built the stream, one record, so
 * its header must pass and a load that took must have taken all of it. */
static bool checked_load(const struct model_ops *mo, union model *m, const uint8_t *buf, size_t len,
                         bool sealed)
{
    static union model before;
    struct snap s;
    memcpy(&before, m, sizeof before);
    bool open = snap_load_begin(&s, buf, len);
    FUZZ_CHECK(open || !sealed, "%s: a sealed stream refused: %s", mo->name, s.why);
    FUZZ_CHECK(open == !s.failed && (open || (s.why && s.why[0])), "%s: header refusal without a reason",
               mo->name);
    unsigned long calls = g_calls;
    bool ok = mo->load(m, &s);
    FUZZ_CHECK(g_calls == calls, "%s: a load called back", mo->name);
    FUZZ_CHECK(ok == !s.failed, "%s: load returned %d with the stream %s", mo->name, ok,
               s.failed ? "failed" : "sound");
    /* (A stream shorter than its header leaves the cursor at 32, but failed.) */
    FUZZ_CHECK(!open || s.at <= s.len, "%s: the cursor %zu past the stream's end %zu", mo->name, s.at, s.len);
    if (!ok) {
        FUZZ_CHECK(s.why && s.why[0], "%s: a refusal without a reason", mo->name);
        FUZZ_CHECK(memcmp(m, &before, mo->size) == 0, "%s: a refused load (%s) changed the model",
                   mo->name, s.why);
        return false;
    }
    FUZZ_CHECK(open, "%s: a load took a stream whose header was refused", mo->name);
    FUZZ_CHECK(!sealed || snap_load_end(&s), "%s: a load took part of its record: %s", mo->name, s.why);
    return true;
}

/* The loaded state is one the model reproduces: saved, loaded into a fresh model
 * (at the same time) and saved again, the two saves are the same bytes.  With
 * may_refuse (after the burst), the one refusal time itself can cause passes. */
static void round_trip(const struct model_ops *mo, const union model *m, unsigned variant, bool may_refuse)
{
    static uint8_t a[OUT_CAP], b[OUT_CAP];
    static union model fresh;
    size_t na = save_stream(mo, m, a);
    mo->init(&fresh, variant);
    struct snap s;
    FUZZ_CHECK(snap_load_begin(&s, a, na), "%s: its own save refused: %s", mo->name, s.why);
    unsigned long calls = g_calls;
    bool ok = mo->load(&fresh, &s);
    FUZZ_CHECK(g_calls == calls, "%s: a load called back", mo->name);
    if (!ok && may_refuse && strcmp(s.why, "rtc: a guest time beyond any calendar") == 0)
        return;   /* the guest's clock ran past the span the load admits: time, not a bug */
    FUZZ_CHECK(ok && snap_load_end(&s), "%s: its own save of a loaded state refused: %s", mo->name, s.why);
    size_t nb = save_stream(mo, &fresh, b);
    FUZZ_CHECK(na == nb && memcmp(a, b, na) == 0, "%s: a reload saves differently (%zu, %zu bytes)",
               mo->name, na, nb);
}

/* After a load that took: the round trip, the burst (with the operation bytes
 * replayed), the round trip again. */
static void exercise(const struct model_ops *mo, union model *m, unsigned variant, const uint8_t *ops, size_t nops)
{
    round_trip(mo, m, variant, false);
    mo->sync(m);
    mo->check(m);
    mo->burst(m);
    struct fuzz_in in = { ops, nops };
    while (in.n) {
        mo->op(m, &in);
        mo->check(m);
    }
    mo->burst(m);
    round_trip(mo, m, variant, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static union model m;
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const struct model_ops *mo = &models[sel & 7];
    g_ns = NS_START;
    g_calls = 0;
    memset(g_line, 0, sizeof g_line);

    if ((sel & 0xf0) == 0xf0) {
        /* Raw: an exact-size copy, so that ASan sees any read past the stream. */
        size_t len = size - 1;
        uint8_t *buf = malloc(len ? len : 1);
        memcpy(buf, data + 1, len);
        if ((sel & 8) && len >= SNAP_HEADER_BYTES) {
            put_le(buf + HDR_LENGTH, len, 8);
            put_le(buf + HDR_CHECKSUM, snap_checksum(buf + SNAP_HEADER_BYTES, len - SNAP_HEADER_BYTES), 8);
        }
        mo->init(&m, 0);
        if (checked_load(mo, &m, buf, len, false))
            exercise(mo, &m, 0, NULL, 0);
        free(buf);
        return 0;
    }

    /* Wrapped: [sel][v][v & 63 operation bytes][payload]. */
    struct fuzz_in in = { data + 1, size - 1 };
    uint8_t v = fz_u8(&in);
    unsigned variant = v >> 6;
    size_t nops = v & 63;
    if (nops > in.n)
        nops = in.n;
    const uint8_t *ops = in.p;
    const uint8_t *payload = in.p + nops;
    size_t plen = in.n - nops;

    struct record_id id = record_id(mo);
    uint8_t *fitted = NULL;
    if (sel & 8) {
        fitted = calloc(1, id.len ? id.len : 1);
        memcpy(fitted, payload, plen < id.len ? plen : id.len);
        payload = fitted;
        plen = id.len;
    }
    size_t cap = SNAP_HEADER_BYTES + RECORD_HEADER + plen;
    uint8_t *buf = malloc(cap);
    struct snap s;
    snap_save_begin(&s, buf, cap);
    snap_record_begin(&s, id.tag, id.version);
    snap_bytes(&s, (void *)payload, plen);
    snap_record_end(&s);
    FUZZ_CHECK(snap_save_end(&s) == cap, "the stream did not fit: %s", s.why);

    mo->init(&m, variant);
    struct fuzz_in pre = { ops, nops };
    while (pre.n)
        mo->op(&m, &pre);
    advance(1000003);                        /* some time passes before the load */
    if (checked_load(mo, &m, buf, cap, true))
        exercise(mo, &m, variant, ops, nops);
    free(buf);
    free(fitted);
    return 0;
}

#ifdef FUZZ_SNAPSHOT_SEEDS
/* ---- the seed generator ---- */

static const char *seed_dir;

static void seed_write(const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", seed_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* m, saved at g_ns, as a wrapped input (its payload) and, for some, as raw ones
 * (the whole stream, as it is and to be resealed). */
static void seed(unsigned idx, const char *name, const union model *m, unsigned variant, bool raw)
{
    static uint8_t out[OUT_CAP], in[OUT_CAP + 2];
    const struct model_ops *mo = &models[idx];
    size_t n = save_stream(mo, m, out);
    size_t plen = n - SNAP_HEADER_BYTES - RECORD_HEADER;
    char file[128];
    in[0] = (uint8_t)idx;
    in[1] = (uint8_t)(variant << 6);
    memcpy(in + 2, out + SNAP_HEADER_BYTES + RECORD_HEADER, plen);
    snprintf(file, sizeof file, "%s-%s", mo->name, name);
    seed_write(file, in, plen + 2);
    if (!raw)
        return;
    /* The same with a few operation bytes before the payload, and fitted. */
    static const uint8_t ops[] = { 0x03, 0x21, 0x42, 0x07, 0x10, 0x61, 0x15, 0xa5, 0x3e, 0x01 };
    in[0] = (uint8_t)(8 | idx);
    in[1] = (uint8_t)(variant << 6 | sizeof ops);
    memcpy(in + 2, ops, sizeof ops);
    memcpy(in + 2 + sizeof ops, out + SNAP_HEADER_BYTES + RECORD_HEADER, plen);
    snprintf(file, sizeof file, "ops-%s-%s", mo->name, name);
    seed_write(file, in, plen + 2 + sizeof ops);
    in[0] = (uint8_t)(0xf0 | idx);
    memcpy(in + 1, out, n);
    snprintf(file, sizeof file, "raw-%s-%s", mo->name, name);
    seed_write(file, in, n + 1);
    in[0] = (uint8_t)(0xf8 | idx);
    snprintf(file, sizeof file, "raw-reseal-%s-%s", mo->name, name);
    seed_write(file, in, n + 1);
}

static void seed_uart(void)
{
    union model m;
    struct uart16550 *u = &m.uart;
    uart_init(&m, 0);
    seed(0, "reset", &m, 0, true);
    uart16550_write(u, REG_IIR_FCR, 0xc1);   /* FIFOs on, trigger 14 */
    uart16550_write(u, REG_IER, 0x0f);
    uart16550_write(u, REG_MCR, 0x0b);       /* DTR, RTS, OUT2 */
    for (unsigned i = 0; i < 16; i++)
        uart16550_receive(u, (uint8_t)('A' + i));
    for (unsigned i = 0; i < 10; i++)
        (void)uart16550_read(u, REG_RBR_THR);
    for (unsigned i = 0; i < 6; i++)
        uart16550_receive(u, (uint8_t)('a' + i));
    uart16550_rx_idle(u);
    seed(0, "fifo-wrapped-timeout", &m, 0, false);
    uart16550_receive(u, 'z');               /* overrun */
    seed(0, "fifo-overrun", &m, 0, false);
    uart_init(&m, 0);
    uart16550_write(u, REG_LCR, 0x83);       /* DLAB, 8N1 */
    uart16550_write(u, REG_RBR_THR, 1);      /* 115200 baud */
    uart16550_write(u, REG_IER, 0);
    seed(0, "dlab", &m, 0, false);
    uart_init(&m, 0);
    uart16550_write(u, REG_MCR, 0x1f);       /* loopback */
    uart16550_write(u, REG_RBR_THR, 'L');
    uart16550_write(u, REG_IER, 0x02);
    seed(0, "loopback-byte", &m, 0, false);
}

static void seed_pic(void)
{
    union model m;
    struct i8259 *pic = &m.pic;
    pic_init(&m, 0);
    seed(1, "reset", &m, 0, true);
    static const uint8_t init[][2] = { { 0x20, 0x11 }, { 0x21, 0x20 }, { 0x21, 0x04 }, { 0x21, 0x01 },
                                       { 0xa0, 0x11 }, { 0xa1, 0x28 }, { 0xa1, 0x02 }, { 0xa1, 0x01 },
                                       { 0x21, 0xb8 }, { 0xa1, 0x8f } };
    for (unsigned i = 0; i < sizeof init / sizeof init[0]; i++)
        i8259_write(pic, init[i][0], init[i][1]);
    i8259_write(pic, 0x4d1, 0x0e);           /* IRQ 9-11 level */
    (void)i8259_set_irq(pic, 0, true);
    (void)i8259_set_irq(pic, 1, true);
    (void)i8259_set_irq(pic, 9, true);
    (void)i8259_acknowledge(pic);            /* IRQ 0 in service */
    seed(1, "pc-irq0-in-service", &m, 0, true);
    i8259_write(pic, 0x20, 0x6b);            /* special mask mode, read ISR */
    i8259_write(pic, 0x20, 0xc5);            /* set priority: IR5 lowest */
    seed(1, "special-mask-rotated", &m, 0, false);
    pic_init(&m, 0);
    i8259_write(pic, 0x20, 0x13);            /* single, ICW4 */
    i8259_write(pic, 0x21, 0x08);
    i8259_write(pic, 0x21, 0x03);            /* AEOI */
    i8259_write(pic, 0x20, 0x80);            /* rotate in AEOI */
    i8259_write(pic, 0xa0, 0x19);            /* slave mid-initialisation, level */
    i8259_write(pic, 0xa1, 0x70);
    seed(1, "aeoi-slave-mid-init", &m, 0, false);
}

static void seed_pit(void)
{
    union model m;
    struct i8254 *pit = &m.pit;
    g_ns = NS_START;
    pit_init(&m, 0);
    seed(2, "reset", &m, 0, true);
    i8254_write(pit, 0x43, 0x34);            /* counter 0, LSB/MSB, mode 2: 100 Hz */
    i8254_write(pit, 0x40, 0x9c);
    i8254_write(pit, 0x40, 0x2e);
    advance(25000000);
    i8254_update(pit);
    seed(2, "irq0-100hz", &m, 0, true);
    i8254_write(pit, 0x61, 0x01);            /* counter 2 gated on */
    i8254_write(pit, 0x43, 0xb0);            /* counter 2, mode 0: calibration */
    i8254_write(pit, 0x42, 0xff);
    i8254_write(pit, 0x42, 0xff);
    advance(3000000);
    i8254_write(pit, 0x43, 0x80);            /* latch counter 2 */
    (void)i8254_read(pit, 0x42);
    seed(2, "calibration-latched", &m, 0, false);
    i8254_write(pit, 0x40, 0x10);            /* a new count, pending to the period's end */
    i8254_write(pit, 0x40, 0x00);
    i8254_write(pit, 0x43, 0x77);            /* counter 1, mode 3, BCD */
    i8254_write(pit, 0x41, 0x00);            /* half a count */
    i8254_write(pit, 0x43, 0xe4);            /* read-back: status of counter 1 */
    seed(2, "pending-bcd-half-status", &m, 0, false);
    pit_init(&m, 0);
    i8254_write(pit, 0x43, 0xb1);            /* counter 2, mode 0, BCD, gate still low */
    i8254_write(pit, 0x42, 0x99);
    i8254_write(pit, 0x42, 0x99);
    seed(2, "bcd-mode0-gate-low", &m, 0, false);
    advance(1000000000);
    i8254_write(pit, 0x43, 0x3a);            /* counter 0, mode 5 */
    i8254_write(pit, 0x40, 0x50);
    i8254_write(pit, 0x40, 0x00);
    seed(2, "mode5-waiting", &m, 0, false);
}

static void seed_rtc(void)
{
    union model m;
    struct mc146818 *r = &m.rtc;
    g_ns = NS_START;
    rtc_init(&m, 0);
    seed(3, "reset", &m, 0, true);
    mc146818_write(r, 0x70, 0x0b);
    mc146818_write(r, 0x71, 0x72);           /* PIE, AIE, UIE, 24h, BCD */
    mc146818_write(r, 0x70, 0x01);
    mc146818_write(r, 0x71, 0xc0);           /* alarm seconds: any */
    advance(1500000000);
    mc146818_tick(r);
    seed(3, "all-interrupts-flagged", &m, 0, true);
    mc146818_write(r, 0x70, 0x0b);
    mc146818_write(r, 0x71, 0x86);           /* SET, binary, 24h: the clock stops */
    mc146818_write(r, 0x70, 0x09);
    mc146818_write(r, 0x71, 99);
    mc146818_write(r, 0x70, 0x8c);           /* index C, NMI masked */
    seed(3, "set-binary-nmi-masked", &m, 1, false);
    rtc_init(&m, 0);
    mc146818_write(r, 0x70, 0x0a);
    mc146818_write(r, 0x71, 0x70);           /* divider in reset */
    mc146818_write(r, 0x70, 0x0b);
    mc146818_write(r, 0x71, 0x00);           /* 12-hour BCD */
    seed(3, "divider-reset-12h", &m, 0, false);
    mc146818_write(r, 0x70, 0x0a);
    mc146818_write(r, 0x71, 0x2f);           /* released, 2 Hz periodic */
    mc146818_write(r, 0x70, 0x04);
    mc146818_write(r, 0x71, 0x92);           /* 12 PM... as 0x92: 12-hour 12 PM */
    advance(700000000);
    mc146818_tick(r);
    seed(3, "released-2hz", &m, 0, false);
}

static void seed_io(void)
{
    union model m;
    struct ioapic *io = &m.io;
    io_init(&m, 0);
    seed(4, "reset", &m, 0, true);
    ioapic_write(io, 0, 4, 0x00);
    ioapic_write(io, 0x10, 4, 2u << 24);     /* ID 2 */
    for (unsigned pin = 0; pin < 16; pin++) {
        ioapic_write(io, 0, 4, 0x10 + 2 * pin);
        ioapic_write(io, 0x10, 4, (0x30 + pin) | (pin >= 9 ? 0xa000u : 0) | (pin == 4 ? 0x10000u : 0));
        ioapic_write(io, 0, 4, 0x11 + 2 * pin);
        ioapic_write(io, 0x10, 4, (pin & 1) << 24);
    }
    ioapic_set_irq(io, 1, true);
    ioapic_set_irq(io, 9, true);             /* level, delivered: Remote IRR */
    ioapic_set_irq(io, 11, true);
    ioapic_eoi(io, 0x3b);
    ioapic_write(io, 0, 4, 0x23);
    seed(4, "legacy-routed-remote-irr", &m, 2, true);
    ioapic_write(io, 0, 4, 0x10 + 2 * 9);
    ioapic_write(io, 0x10, 4, 0x10039);      /* masked while Remote IRR */
    ioapic_write(io, 0, 4, 0xfe);
    seed(4, "masked-pending", &m, 2, false);
}

static void seed_misc(void)
{
    union model m;
    struct pc_misc *p = &m.misc;
    g_ns = NS_START;
    misc_init(&m, 0);
    seed(5, "reset", &m, 0, true);
    pc_misc_write(p, 0x64, 0xd3);            /* next data byte as aux data */
    pc_misc_write(p, 0x60, 0x5a);
    pc_misc_write(p, 0x64, 0x60);            /* command byte write pending */
    pc_misc_write(p, 0x602, 0x01);           /* TMR_EN */
    pc_misc_write(p, 0x603, 0x01);           /* PWRBTN_EN */
    advance(4800000000ull);
    pc_misc_tick(p);
    (void)pc_misc_read(p, 0x608);            /* timer latched */
    seed(5, "aux-obf-pending-sci", &m, 0, true);
    misc_init(&m, 1);
    pc_misc_write(p, 0x605, 0x14);           /* SLP_TYP 5, no SLP_EN */
    pc_misc_write(p, 0x604, 0x02);
    pc_misc_write(p, 0x92, 0x03);
    pc_misc_write(p, 0xcf9, 0x0a);
    pc_misc_write(p, 0x64, 0xaa);            /* self test: 0x55 waiting */
    advance(6000000000ull);
    (void)pc_misc_read(p, 0x608);
    pc_misc_power_button(p);
    seed(5, "24bit-selftest-pwrbtn", &m, 1, false);
    pc_misc_write(p, 0x64, 0xd1);            /* output port write pending */
    seed(5, "24bit-outport-pending", &m, 1, false);
}

static void seed_pci(void)
{
    union model m;
    struct pci_host *h = &m.pci;
    pci_init(&m, 0);
    seed(6, "reset", &m, 0, true);
    uint32_t v = 0x8000003c;
    (void)pci_host_io(h, 0xcf8, 4, true, &v);
    v = 0x0b;
    (void)pci_host_io(h, 0xcfc, 1, true, &v);
    pci_host_config_write(h, 0, 0, 0, 0x0c, 2, 0x4010);
    seed(6, "enabled-registers", &m, 0, true);
    v = 0x80ff3804;                          /* an absent device addressed */
    (void)pci_host_io(h, 0xcf8, 4, true, &v);
    seed(6, "absent-addressed", &m, 0, false);
}

static void seed_lapic(void)
{
    union model m;
    struct vlapic *a = &m.lapic;
    g_ns = NS_START;
    lapic_init(&m, 0);
    seed(7, "reset", &m, 0, true);
    vlapic_mmio_write(a, R_SVR, 4, 0x1ff, g_ns);
    vlapic_mmio_write(a, R_TIMER_DCR, 4, 0x3, g_ns);
    vlapic_mmio_write(a, R_LVT_TIMER, 4, 0x200ec, g_ns);   /* periodic, vector 0xec */
    vlapic_mmio_write(a, R_TIMER_ICR, 4, 100000, g_ns);
    vlapic_mmio_write(a, R_LVT_LINT0, 4, 0x700, g_ns);     /* ExtINT */
    vlapic_mmio_write(a, R_LDR, 4, 0x01000000, g_ns);
    vlapic_mmio_write(a, R_TPR, 4, 0x20, g_ns);
    advance(3500000);
    vlapic_tick(a, g_ns, g_ns);
    vlapic_accept(a, 0x41, true);
    vlapic_accept(a, 0x31, false);
    vlapic_ack(a, (uint8_t)vlapic_pending(a));
    vlapic_accept(a, 0x05, false);                         /* illegal: ESR */
    seed(7, "xapic-periodic-irr-isr", &m, 0, true);
    lapic_init(&m, 1);                                     /* x2APIC */
    (void)vlapic_msr_write(a, 0x80f, 0x1ff, g_ns);
    (void)vlapic_msr_write(a, 0x832, 0x400d1, g_ns);       /* TSC deadline, vector 0xd1 */
    vlapic_set_tsc_deadline(a, g_ns + 1000000);
    (void)vlapic_msr_write(a, 0x830, 0x0000000300004031ull, g_ns);   /* fixed IPI to 3 */
    (void)vlapic_msr_write(a, 0x828, 0, g_ns);             /* latch ESR */
    seed(7, "x2apic-tsc-deadline", &m, 1, true);
    lapic_init(&m, 2);                                     /* 25 MHz timer clock */
    vlapic_mmio_write(a, R_SVR, 4, 0x1ff, g_ns);
    vlapic_mmio_write(a, R_TIMER_DCR, 4, 0xb, g_ns);       /* divide by 1 */
    vlapic_mmio_write(a, R_LVT_TIMER, 4, 0xef, g_ns);      /* one-shot */
    vlapic_mmio_write(a, R_TIMER_ICR, 4, 0xffffffffu, g_ns);
    seed(7, "oneshot-25mhz", &m, 2, false);
    (void)vlapic_set_base_mode(a, false, false);           /* hardware-disabled */
    seed(7, "disabled", &m, 2, false);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    seed_dir = argv[1];
    seed_uart();
    seed_pic();
    seed_pit();
    seed_rtc();
    seed_io();
    seed_misc();
    seed_pci();
    seed_lapic();
    return 0;
}
#endif
