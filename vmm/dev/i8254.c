#include "vmm/dev/i8254.h"

/* Control word and modes: Intel 8254 data sheet (order no. 231164), "Control Word
 * Format", "Read-Back Command", "Modes". */
#define CW_SC_SHIFT     6
#define CW_SC_READBACK  3
#define CW_RW_SHIFT     4
#define CW_RW_LATCH     0
#define CW_RW_LSB       1
#define CW_RW_MSB       2
#define CW_RW_WORD      3
#define CW_M_SHIFT      1
#define CW_BCD          0x01

#define RB_NOT_COUNT    0x20   /* read-back: 0 latches the count */
#define RB_NOT_STATUS   0x10   /* read-back: 0 latches the status */
#define RB_CNT0         0x02

#define STATUS_OUT      0x80
#define STATUS_NULL     0x40

/* Port 0x61 on the PC/AT (IBM PC/AT Technical Reference, "System Control Port B"). */
#define PORTB_GATE2     0x01
#define PORTB_SPEAKER   0x02
#define PORTB_WRITABLE  0x0f
#define PORTB_REFRESH   0x10
#define PORTB_OUT2      0x20

/* The AT's DRAM refresh came from counter 1 in mode 2 with a count of 18 (15.085
 * us); bit 4 of port 0x61 toggles with each refresh request, and firmware times
 * short delays by it. */
#define REFRESH_TICKS   18

#define NS_PER_S        1000000000ull
#define NO_TICK         UINT64_MAX

static uint64_t ticks_of_ns(uint64_t ns)
{
    return ns / NS_PER_S * I8254_HZ + ns % NS_PER_S * I8254_HZ / NS_PER_S;
}

/* The first nanosecond at which ticks_of_ns() reaches tick. */
static uint64_t ns_of_tick(uint64_t tick)
{
    uint64_t q = tick / I8254_HZ, m = tick % I8254_HZ;
    if (q > UINT64_MAX / NS_PER_S - 1)
        return I8254_NO_EVENT;
    return q * NS_PER_S + (m * NS_PER_S + I8254_HZ - 1) / I8254_HZ;
}

static uint64_t pit_now(struct i8254 *pit)
{
    uint64_t t = ticks_of_ns(pit->clock(pit->clock_ctx));
    if (t > pit->last_tick)
        pit->last_tick = t;
    return pit->last_tick;
}

static uint32_t modulus(const struct i8254_channel *c)
{
    return c->bcd ? 10000 : 65536;
}

/* A period boundary passed: a count written during the last period takes over
 * (modes 2 and 3 reload only at the end of a period). */
static void channel_sync(struct i8254_channel *c, uint64_t t)
{
    if (c->running && c->pending && t >= c->start + c->start_count) {
        c->start += c->start_count;
        c->start_count = c->reload = c->pending_reload;
        c->pending = false;
        c->start_is_edge = true;
    }
}

static bool channel_out(const struct i8254_channel *c, uint64_t t)
{
    if (!c->running)
        return c->frozen_out;
    if (t < c->start)
        return c->mode == 0 ? c->done : true;
    uint64_t e = t - c->start;
    uint32_t n = c->start_count;
    switch (c->mode) {
    case 0:
    case 1:
        return c->done || e >= n;
    case 4:
    case 5:
        return c->done || e != n;
    case 2:
        return n < 2 || e % n != n - 1;
    default: /* 3: high for the first (N+1)/2 clocks of each period */
        return e % n < (n + 1) / 2;
    }
}

static uint32_t channel_count(const struct i8254_channel *c, uint64_t t)
{
    if (!c->running)
        return c->frozen_count;
    uint32_t m = modulus(c), n = c->start_count;
    if (t < c->start)
        return n % m;
    uint64_t e = t - c->start;
    switch (c->mode) {
    case 2:
        return (uint32_t)(n - e % n) % m;
    case 3: {
        /* Decrements by two; an odd count loads N-1 and spends one extra clock at
         * zero before OUT falls (data sheet, "Mode 3"). */
        uint32_t p = (uint32_t)(e % n), high = (n + 1) / 2;
        uint32_t q = p < high ? p : p - high;
        uint32_t top = (n & 1) ? n - 1 : n;
        return (top - 2 * q) % m;
    }
    default:
        return (uint32_t)((n + m - e % m) % m);
    }
}

/* The first tick after t at which OUT rises, or NO_TICK. */
static uint64_t channel_next_rise(const struct i8254_channel *c, uint64_t t)
{
    if (!c->running)
        return NO_TICK;
    uint64_t n = c->start_count, r;
    switch (c->mode) {
    case 0:
    case 1:
        r = c->done ? NO_TICK : c->start + n;
        break;
    case 4:
    case 5:
        r = c->done ? NO_TICK : c->start + n + 1;
        break;
    default:
        if (n < 2)
            return NO_TICK;   /* the data sheet's illegal count 1: OUT never rises */
        if (t < c->start)
            return c->start_is_edge ? c->start : c->start + n;
        return c->start + ((t - c->start) / n + 1) * n;
    }
    return r != NO_TICK && r > t ? r : NO_TICK;
}

static void channel_freeze(struct i8254_channel *c, uint64_t t, bool out)
{
    c->frozen_count = (uint16_t)channel_count(c, t);
    c->frozen_out = out;
    c->running = false;
}

static void pit_deliver(struct i8254 *pit, uint64_t t)
{
    struct i8254_channel *c = &pit->ch[0];
    channel_sync(c, t);
    uint64_t r = channel_next_rise(c, pit->irq_checked);
    if (t > pit->irq_checked)
        pit->irq_checked = t;
    if (r == NO_TICK || r > t || !pit->irq0)
        return;
    pit->irq0(pit->irq_ctx, false);
    pit->irq0(pit->irq_ctx, true);
}

static void channel_set_gate(struct i8254_channel *c, bool gate, uint64_t t)
{
    if (gate == c->gate)
        return;
    c->gate = gate;
    channel_sync(c, t);
    if (!gate) {
        switch (c->mode) {
        case 0:
        case 4:
            /* Counting stops where it is; OUT holds (data sheet, "GATE"). */
            if (c->running) {
                uint64_t e = t >= c->start ? t - c->start : 0;
                if (t >= c->start && e >= c->start_count)
                    c->done = true;
                channel_freeze(c, t, channel_out(c, t));
            }
            break;
        case 2:
        case 3:
            /* Gate low forces OUT high at once (stopped or never started, it
             * already is: the control word sets it high in these modes). */
            if (c->running)
                channel_freeze(c, t, true);
            break;
        default:
            break;                  /* modes 1 and 5 only see rising edges */
        }
        return;
    }
    if (!c->armed)
        return;
    switch (c->mode) {
    case 0:
    case 4:
        /* Already loaded: the first clock with the gate high decrements.  Half a
         * two-byte count in mode 0 keeps counting disabled until the MSB. */
        if (!c->running && !(c->mode == 0 && c->write_msb)) {
            c->start = t;
            c->start_count = c->frozen_count ? c->frozen_count : modulus(c);
            c->running = true;
        }
        break;
    case 2:
    case 3:
        /* A rising gate reloads the count on the next clock and restarts. */
        if (c->pending) {
            c->reload = c->pending_reload;
            c->pending = false;
        }
        c->start = t + 1;
        c->start_count = c->reload;
        c->start_is_edge = false;
        c->load_tick = t + 1;
        c->running = true;
        break;
    default:
        /* Modes 1 and 5: the trigger; retriggering restarts the count. */
        c->start = t + 1;
        c->start_count = c->reload;
        c->load_tick = t + 1;
        c->done = false;
        c->running = true;
        break;
    }
}

static uint32_t bcd_decode(uint16_t v)
{
    uint32_t n = (v & 0xf) + ((v >> 4) & 0xf) * 10u + ((v >> 8) & 0xf) * 100u + (v >> 12) * 1000u;
    return n % 10000;   /* invalid digits: undefined on the part, merely wrong here */
}

static uint16_t bcd_encode(uint32_t n)
{
    return (uint16_t)((n % 10) | (n / 10 % 10) << 4 | (n / 100 % 10) << 8 | (n / 1000 % 10) << 12);
}

/* A complete count arrived in the count register. */
static void channel_load(struct i8254_channel *c, uint16_t raw, uint64_t t)
{
    uint32_t n = c->bcd ? bcd_decode(raw) : raw;
    if (n == 0)
        n = modulus(c);   /* 0 is the largest count: 2^16, or 10^4 in BCD */
    channel_sync(c, t);
    switch (c->mode) {
    case 0:
    case 4:
        /* Loaded on the next clock; counting follows the gate. */
        c->reload = n;
        c->start = t + 1;
        c->start_count = n;
        c->load_tick = t + 1;
        c->done = false;
        c->running = c->gate;
        c->frozen_count = (uint16_t)(n % modulus(c));
        c->frozen_out = c->mode == 4;
        break;
    case 2:
    case 3:
        if (c->armed && c->running) {
            /* Mid-count: the period in progress finishes with the old count. */
            if (t >= c->start) {
                uint64_t periods = (t - c->start) / c->start_count;
                if (periods) {
                    c->start += periods * c->start_count;
                    c->start_is_edge = true;
                }
            }
            c->pending = true;
            c->pending_reload = n;
            c->load_tick = c->start + c->start_count;
            break;
        }
        c->reload = n;
        c->pending = false;
        c->load_tick = t + 1;
        if (c->gate) {
            c->start = t + 1;
            c->start_count = n;
            c->start_is_edge = false;
            c->running = true;
        }
        break;
    default:
        /* Modes 1 and 5 wait for a trigger on the gate. */
        c->reload = n;
        break;
    }
    c->armed = true;
}

static void channel_control(struct i8254_channel *c, uint8_t cw, uint64_t t)
{
    channel_sync(c, t);
    uint16_t count = (uint16_t)channel_count(c, t);
    uint8_t mode = (cw >> CW_M_SHIFT) & 7;
    bool gate = c->gate;
    *c = (struct i8254_channel){
        .control = cw & 0x3f,
        .mode = mode > 5 ? mode - 4 : mode,
        .rw = (cw >> CW_RW_SHIFT) & 3,
        .bcd = cw & CW_BCD,
        .gate = gate,
        .load_tick = NO_TICK,
        /* The control word resets the counter's logic and sets OUT to its initial
         * state: low in mode 0, high in the others (data sheet, "Modes"). */
        .frozen_out = mode != 0,
        .frozen_count = count,
    };
}

static void channel_latch_count(struct i8254_channel *c, uint64_t t)
{
    /* A second latch before the first is read is ignored. */
    if (c->count_latched)
        return;
    channel_sync(c, t);
    c->latch = (uint16_t)channel_count(c, t);
    c->count_latched = true;
}

static void channel_latch_status(struct i8254_channel *c, uint64_t t)
{
    if (c->status_latched)
        return;
    channel_sync(c, t);
    c->status = c->control;
    if (channel_out(c, t))
        c->status |= STATUS_OUT;
    if (t < c->load_tick || c->pending)
        c->status |= STATUS_NULL;
    c->status_latched = true;
}

static uint8_t channel_read(struct i8254_channel *c, uint64_t t)
{
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    uint16_t v;
    if (c->count_latched) {
        v = c->latch;
    } else {
        channel_sync(c, t);
        v = (uint16_t)channel_count(c, t);
    }
    if (c->bcd)
        v = bcd_encode(v);
    bool msb;
    bool last = true;
    switch (c->rw) {
    case CW_RW_LSB:
        msb = false;
        break;
    case CW_RW_MSB:
        msb = true;
        break;
    case CW_RW_WORD:
        msb = c->read_msb;
        last = msb;
        c->read_msb = !c->read_msb;
        break;
    default:
        return 0xff;   /* never programmed */
    }
    if (c->count_latched && last)
        c->count_latched = false;
    return msb ? (uint8_t)(v >> 8) : (uint8_t)v;
}

static void channel_write(struct i8254_channel *c, uint8_t value, uint64_t t)
{
    switch (c->rw) {
    case CW_RW_LSB:
        channel_load(c, value, t);
        return;
    case CW_RW_MSB:
        channel_load(c, (uint16_t)(value << 8), t);
        return;
    case CW_RW_WORD:
        if (!c->write_msb) {
            c->write_lsb = value;
            c->write_msb = true;
            /* Mode 0: the first byte stops the count and drops OUT at once. */
            if (c->mode == 0) {
                channel_sync(c, t);
                if (c->running)
                    channel_freeze(c, t, false);
                c->frozen_out = false;
            }
            return;
        }
        c->write_msb = false;
        channel_load(c, (uint16_t)(c->write_lsb | value << 8), t);
        return;
    default:
        return;        /* never programmed: no count register to write */
    }
}

static void pit_control(struct i8254 *pit, uint8_t cw, uint64_t t)
{
    unsigned sc = cw >> CW_SC_SHIFT;
    if (sc == CW_SC_READBACK) {
        for (unsigned i = 0; i < I8254_CHANNELS; i++) {
            if (!(cw & (RB_CNT0 << i)))
                continue;
            /* Status first, then count, when both are latched. */
            if (!(cw & RB_NOT_STATUS))
                channel_latch_status(&pit->ch[i], t);
            if (!(cw & RB_NOT_COUNT))
                channel_latch_count(&pit->ch[i], t);
        }
        return;
    }
    if (((cw >> CW_RW_SHIFT) & 3) == CW_RW_LATCH) {
        channel_latch_count(&pit->ch[sc], t);
        return;
    }
    channel_control(&pit->ch[sc], cw, t);
}

void i8254_init(struct i8254 *pit, i8254_clock_fn clock, void *clock_ctx,
                i8254_irq_fn irq0, void *irq_ctx)
{
    *pit = (struct i8254){ .clock = clock, .clock_ctx = clock_ctx, .irq0 = irq0, .irq_ctx = irq_ctx };
    for (unsigned i = 0; i < I8254_CHANNELS; i++)
        pit->ch[i] = (struct i8254_channel){ .gate = i != 2, .load_tick = NO_TICK };
    uint64_t t = pit_now(pit);
    pit->irq_checked = t;
}

uint8_t i8254_read(struct i8254 *pit, uint16_t port)
{
    uint64_t t;
    switch (port) {
    case I8254_COUNTER0:
    case I8254_COUNTER1:
    case I8254_COUNTER2:
        t = pit_now(pit);
        return channel_read(&pit->ch[port - I8254_COUNTER0], t);
    case I8254_PORT_B: {
        t = pit_now(pit);
        struct i8254_channel *c = &pit->ch[2];
        channel_sync(c, t);
        uint8_t v = pit->port_b;
        if ((t / REFRESH_TICKS) & 1)
            v |= PORTB_REFRESH;
        if (channel_out(c, t))
            v |= PORTB_OUT2;
        return v;
    }
    default:
        return 0xff;   /* the control word register is write-only */
    }
}

void i8254_write(struct i8254 *pit, uint16_t port, uint8_t value)
{
    uint64_t t;
    switch (port) {
    case I8254_COUNTER0:
    case I8254_COUNTER1:
    case I8254_COUNTER2:
        t = pit_now(pit);
        if (port == I8254_COUNTER0)
            pit_deliver(pit, t);   /* edges of the old programming happened */
        channel_write(&pit->ch[port - I8254_COUNTER0], value, t);
        return;
    case I8254_CONTROL:
        t = pit_now(pit);
        /* Reprogramming counter 0 ends its old waveform: edges it made are due. */
        if ((value >> CW_SC_SHIFT) == 0 && ((value >> CW_RW_SHIFT) & 3) != CW_RW_LATCH)
            pit_deliver(pit, t);
        pit_control(pit, value, t);
        return;
    case I8254_PORT_B:
        t = pit_now(pit);
        pit->port_b = value & PORTB_WRITABLE;
        channel_set_gate(&pit->ch[2], value & PORTB_GATE2, t);
        return;
    default:
        return;
    }
}

uint8_t i8254_io_read(void *ctx, uint16_t port)
{
    return i8254_read(ctx, port);
}

void i8254_io_write(void *ctx, uint16_t port, uint8_t value)
{
    i8254_write(ctx, port, value);
}

void i8254_update(struct i8254 *pit)
{
    pit_deliver(pit, pit_now(pit));
}

uint64_t i8254_next_event_ns(struct i8254 *pit)
{
    uint64_t t = pit_now(pit);
    struct i8254_channel *c = &pit->ch[0];
    channel_sync(c, t);
    uint64_t r = channel_next_rise(c, pit->irq_checked);
    return r == NO_TICK ? I8254_NO_EVENT : ns_of_tick(r);
}

/* ---- snapshot ---- */

static void i8254_channel_fields(struct i8254_channel *c, struct snap *s, uint64_t now)
{
    snap_u8(s, &c->control);
    snap_u8(s, &c->mode);
    snap_u8(s, &c->rw);
    snap_bool(s, &c->bcd);
    snap_bool(s, &c->gate);
    snap_bool(s, &c->armed);
    snap_bool(s, &c->running);
    snap_bool(s, &c->done);
    snap_bool(s, &c->start_is_edge);
    snap_bool(s, &c->pending);
    snap_u32(s, &c->reload);
    snap_u32(s, &c->pending_reload);
    snap_time(s, &c->start, now);
    snap_u32(s, &c->start_count);
    snap_time(s, &c->load_tick, now);   /* NO_TICK is UINT64_MAX: stays */
    snap_u16(s, &c->frozen_count);
    snap_bool(s, &c->frozen_out);
    snap_bool(s, &c->write_msb);
    snap_u8(s, &c->write_lsb);
    snap_bool(s, &c->read_msb);
    snap_bool(s, &c->count_latched);
    snap_u16(s, &c->latch);
    snap_bool(s, &c->status_latched);
    snap_u8(s, &c->status);
}

static void i8254_fields(struct i8254 *pit, struct snap *s, uint64_t now_ns)
{
    uint64_t now = ticks_of_ns(now_ns);
    snap_record_begin(s, "i8254", 1);
    for (unsigned i = 0; i < I8254_CHANNELS; i++)
        i8254_channel_fields(&pit->ch[i], s, now);
    snap_u8(s, &pit->port_b);
    snap_time(s, &pit->last_tick, now);
    snap_time(s, &pit->irq_checked, now);
    snap_record_end(s);
}

/* A count is 1..modulus once written (channel_load maps 0 to the modulus): the
 * waveform code divides by start_count and reload feeds it, and so does the held
 * count of an armed mode 0 or 4 counter (below the modulus, 0 standing for it),
 * which a rising gate starts counting from.  A counter not armed
 * since its control word never started (the gate and sync paths test armed and
 * running first).  The decoded mode, rw and BCD flag are what the control word
 * says, so the read-back status cannot disagree with the counting. */
static bool i8254_channel_check(const struct i8254_channel *c, unsigned i, uint8_t port_b, struct snap *s)
{
    uint8_t m = (c->control >> CW_M_SHIFT) & 7;
    uint32_t mod = modulus(c);
    bool wired = i == 2 ? c->gate == ((port_b & PORTB_GATE2) != 0) : c->gate;
    return snap_check(s, c->mode <= 5, "i8254: a mode past 5") &&
           snap_check(s, c->rw <= CW_RW_WORD, "i8254: a read/write mode past 3") &&
           snap_check(s, c->control <= 0x3f && c->mode == (m > 5 ? m - 4 : m) &&
                      c->rw == ((c->control >> CW_RW_SHIFT) & 3) && c->bcd == ((c->control & CW_BCD) != 0),
                      "i8254: mode, rw or BCD not as the control word says") &&
           snap_check(s, c->rw != CW_RW_LATCH || (!c->armed && !c->running),
                      "i8254: a counter never programmed is counting") &&
           snap_check(s, c->armed || (!c->running && !c->pending), "i8254: counting without a count") &&
           snap_check(s, !c->armed || (c->reload >= 1 && c->reload <= mod), "i8254: count register out of 1..65536") &&
           snap_check(s, !c->running || (c->start_count >= 1 && c->start_count <= mod),
                      "i8254: counting element out of 1..65536") &&
           snap_check(s, !c->armed || (c->mode != 0 && c->mode != 4) || c->frozen_count < mod,
                      "i8254: a held count out of the counter's range") &&
           snap_check(s, !c->pending || ((c->mode == 2 || c->mode == 3) && c->pending_reload >= 1 &&
                                         c->pending_reload <= mod),
                      "i8254: a pending count outside modes 2 and 3, or out of 1..65536") &&
           snap_check(s, (!c->write_msb && !c->read_msb) || c->rw == CW_RW_WORD,
                      "i8254: a byte flip-flop outside LSB-then-MSB mode") &&
           snap_check(s, wired, "i8254: a gate not wired as on the PC");
}

bool i8254_save(const struct i8254 *pit, struct snap *s, uint64_t now_ns)
{
    struct i8254 c = *pit;
    i8254_fields(&c, s, now_ns);
    return !s->failed;
}

bool i8254_load(struct i8254 *pit, struct snap *s, uint64_t now_ns)
{
    struct i8254 c = *pit;
    i8254_fields(&c, s, now_ns);
    if (s->failed || !snap_check(s, !(c.port_b & ~PORTB_WRITABLE), "i8254: port 0x61 bits the model does not keep"))
        return false;
    for (unsigned i = 0; i < I8254_CHANNELS; i++)
        if (!i8254_channel_check(&c.ch[i], i, c.port_b, s))
            return false;
    *pit = c;
    return true;
}
