#include "vmm/dev/vlapic.h"

/* Register offsets of the xAPIC page; the x2APIC MSR is 0x800 + offset / 16
 * (SDM Vol. 3A Table 12-6). */
enum {
    R_ID = 0x020, R_VERSION = 0x030, R_TPR = 0x080, R_APR = 0x090, R_PPR = 0x0a0, R_EOI = 0x0b0,
    R_RRD = 0x0c0, R_LDR = 0x0d0, R_DFR = 0x0e0, R_SVR = 0x0f0, R_ISR = 0x100, R_TMR = 0x180,
    R_IRR = 0x200, R_ESR = 0x280, R_LVT_CMCI = 0x2f0, R_ICR_LOW = 0x300, R_ICR_HIGH = 0x310,
    R_LVT_TIMER = 0x320, R_LVT_THERMAL = 0x330, R_LVT_PERF = 0x340, R_LVT_LINT0 = 0x350,
    R_LVT_LINT1 = 0x360, R_LVT_ERROR = 0x370, R_TIMER_ICR = 0x380, R_TIMER_CCR = 0x390,
    R_TIMER_DCR = 0x3e0, R_SELF_IPI = 0x3f0,
};
enum { LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_COUNT };

#define LVT_MASKED        (1u << 16)
#define TIMER_MODE_SHIFT  17
#define TIMER_ONESHOT     0u
#define TIMER_PERIODIC    1u
#define TIMER_TSC_DEADLINE 2u
#define SVR_ENABLE        (1u << 8)
/* Version 0x14 (integrated APIC), max LVT entry 6 (CMCI..error: 7 entries). */
#define VERSION_VALUE     (0x14u | (uint32_t)(LVT_COUNT - 1) << 16)
#define ESR_ILLEGAL_VECTOR_SENT (1u << 5)
#define ESR_ILLEGAL_VECTOR_RECV (1u << 6)

static const uint32_t lvt_masks[LVT_COUNT] = {
    /* Writable bits per LVT (Figure 12-8): vector 7:0, delivery mode 10:8, mask 16,
     * and for the timer the mode 18:17; LINT also polarity 13 and trigger 15. */
    [LVT_CMCI] = 0x107ff, [LVT_TIMER] = 0x700ff, [LVT_THERMAL] = 0x107ff, [LVT_PERF] = 0x107ff,
    [LVT_LINT0] = 0x1a7ff, [LVT_LINT1] = 0x1a7ff, [LVT_ERROR] = 0x100ff,
};

static bool bit_test(const uint32_t *v, uint8_t n) { return (v[n / 32] >> (n % 32)) & 1; }
static void bit_set(uint32_t *v, uint8_t n) { v[n / 32] |= 1u << (n % 32); }
static void bit_clear(uint32_t *v, uint8_t n) { v[n / 32] &= ~(1u << (n % 32)); }

static int highest(const uint32_t *v)
{
    for (int i = 7; i >= 0; i--)
        if (v[i])
            return i * 32 + 31 - __builtin_clz(v[i]);
    return -1;
}

void vlapic_init(struct vlapic *a, uint32_t id, bool x2apic, uint64_t timer_hz, const struct vlapic_ops *ops)
{
    /* The timer clock must tick a whole number of nanoseconds (1 GHz, 100 MHz...);
     * anything else falls back to 1 GHz. */
    /* At least 1 kHz: below it ns_per_count times the largest count overflows 64 bits. */
    if (timer_hz < VLAPIC_TIMER_HZ_MIN || timer_hz > 1000000000ull || 1000000000ull % timer_hz)
        timer_hz = 1000000000ull;
    *a = (struct vlapic){ .id = id, .x2apic = x2apic, .hw_enabled = true, .dfr = 0xffffffffu,
                          .svr = 0xff, .timer_hz = timer_hz };
    for (int i = 0; i < LVT_COUNT; i++)
        a->lvt[i] = LVT_MASKED;          /* after reset every LVT is masked (§12.4.7.1) */
    if (ops)
        a->ops = *ops;
}

/* PPR = the larger of TPR and the highest in-service class (§12.8.3.1). */
static uint32_t ppr(const struct vlapic *a)
{
    int isr = highest(a->isr);
    uint32_t isrv = isr < 0 ? 0 : (uint32_t)isr & 0xf0;
    return (a->tpr & 0xf0) >= isrv ? a->tpr & 0xff : isrv;
}

static bool sw_enabled(const struct vlapic *a)
{
    return a->hw_enabled && (a->svr & SVR_ENABLE);
}

void vlapic_accept(struct vlapic *a, uint8_t vector, bool level)
{
    /* Vectors 0-15 are illegal (§12.5.3): logged in ESR, not delivered. */
    if (vector < 16) {
        a->esr_pending |= ESR_ILLEGAL_VECTOR_RECV;
        return;
    }
    if (!sw_enabled(a))
        return;                           /* a disabled APIC takes no fixed interrupts */
    bit_set(a->irr, vector);
    if (level)
        bit_set(a->tmr, vector);
    else
        bit_clear(a->tmr, vector);
}

int vlapic_pending(const struct vlapic *a)
{
    int v = highest(a->irr);
    if (v < 0 || ((uint32_t)v & 0xf0) <= (ppr(a) & 0xf0))
        return -1;
    return v;
}

void vlapic_ack(struct vlapic *a, uint8_t vector)
{
    bit_clear(a->irr, vector);
    bit_set(a->isr, vector);
}

static void eoi(struct vlapic *a)
{
    int v = highest(a->isr);
    if (v < 0)
        return;
    bit_clear(a->isr, (uint8_t)v);
    if (bit_test(a->tmr, (uint8_t)v) && a->ops.eoi_level)
        a->ops.eoi_level(a->ops.ctx, (uint8_t)v);
}

static unsigned divide_shift(uint32_t dcr)
{
    /* DCR bits 0,1,3 (§12.5.4, Figure 12-10): 0b111 = divide by 1, else 2^(n+1). */
    unsigned n = (dcr & 3) | ((dcr >> 1) & 4);
    return n == 7 ? 0 : n + 1;
}

static unsigned timer_mode(const struct vlapic *a)
{
    return (a->lvt[LVT_TIMER] >> TIMER_MODE_SHIFT) & 3;
}

/* The timer's clock ticks every ns_per_tick ns (a whole number: see vlapic_init),
 * so counts and nanoseconds convert exactly in 64 bits: at most 2^32 counts times
 * 2^7 divide times the tick. */
static uint64_t ns_per_count(const struct vlapic *a)
{
    return (1000000000u / a->timer_hz) << divide_shift(a->timer_dcr);
}

static uint64_t counts_to_ns(const struct vlapic *a, uint64_t counts)
{
    return counts * ns_per_count(a);
}

static uint32_t current_count(const struct vlapic *a, uint64_t now)
{
    if (!a->timer_armed || a->timer_icr == 0 || timer_mode(a) == TIMER_TSC_DEADLINE)
        return 0;
    uint64_t period = counts_to_ns(a, a->timer_icr);
    uint64_t elapsed = now > a->timer_start_ns ? now - a->timer_start_ns : 0;
    if (elapsed >= period) {
        if (timer_mode(a) != TIMER_PERIODIC)
            return 0;
        elapsed %= period;
    }
    uint64_t left = (period - elapsed + ns_per_count(a) - 1) / ns_per_count(a);
    return left > a->timer_icr ? a->timer_icr : (uint32_t)left;
}

void vlapic_tick(struct vlapic *a, uint64_t now, uint64_t tsc)
{
    uint32_t lvt = a->lvt[LVT_TIMER];
    if (timer_mode(a) == TIMER_TSC_DEADLINE) {
        if (a->tsc_deadline && tsc >= a->tsc_deadline) {
            a->tsc_deadline = 0;
            if (!(lvt & LVT_MASKED))
                vlapic_accept(a, (uint8_t)lvt, false);
        }
        return;
    }
    if (!a->timer_armed || a->timer_icr == 0)
        return;
    uint64_t period = counts_to_ns(a, a->timer_icr);
    if (now < a->timer_start_ns + period)
        return;
    if (timer_mode(a) == TIMER_PERIODIC) {
        /* Catch up whole periods: a periodic timer that was late fires once. */
        uint64_t periods = (now - a->timer_start_ns) / (period ? period : 1);
        a->timer_start_ns += periods * period;
    } else {
        a->timer_armed = false;
    }
    if (!(lvt & LVT_MASKED))
        vlapic_accept(a, (uint8_t)lvt, false);
}

uint64_t vlapic_next_timer_ns(const struct vlapic *a)
{
    if (timer_mode(a) == TIMER_TSC_DEADLINE || !a->timer_armed || a->timer_icr == 0)
        return UINT64_MAX;
    return a->timer_start_ns + counts_to_ns(a, a->timer_icr);
}

void vlapic_set_tsc_deadline(struct vlapic *a, uint64_t tsc)
{
    /* Writes outside TSC-deadline mode are ignored (§12.5.4.1). */
    if (timer_mode(a) == TIMER_TSC_DEADLINE)
        a->tsc_deadline = tsc;
}

static void send_icr(struct vlapic *a)
{
    struct vlapic_ipi ipi = {
        .mode = (enum vlapic_delivery)((a->icr_low >> 8) & 7),
        .shorthand = (enum vlapic_shorthand)((a->icr_low >> 18) & 3),
        .vector = (uint8_t)a->icr_low,
        .logical = (a->icr_low >> 11) & 1,
        .level_assert = (a->icr_low >> 14) & 1,
        .dest = a->x2apic ? a->icr_high : a->icr_high >> 24,
    };
    if ((ipi.mode == VLAPIC_FIXED || ipi.mode == VLAPIC_LOWEST) && ipi.vector < 16) {
        a->esr_pending |= ESR_ILLEGAL_VECTOR_SENT;
        return;
    }
    /* A fixed self-IPI never leaves the APIC; any other mode with the self shorthand
     * (NMI, say) goes out like an IPI to one's own ID, which is what it means. */
    if (ipi.shorthand == VLAPIC_SELF && ipi.mode == VLAPIC_FIXED) {
        vlapic_accept(a, ipi.vector, false);
        return;
    }
    if (a->ops.ipi)
        a->ops.ipi(a->ops.ctx, &ipi);
}

/* The registers both interfaces share, by xAPIC offset. */
static bool reg_read(struct vlapic *a, uint32_t off, uint32_t *v, uint64_t now)
{
    if (off >= R_ISR && off < R_ISR + 0x80) { *v = a->isr[(off - R_ISR) / 16]; return true; }
    if (off >= R_TMR && off < R_TMR + 0x80) { *v = a->tmr[(off - R_TMR) / 16]; return true; }
    if (off >= R_IRR && off < R_IRR + 0x80) { *v = a->irr[(off - R_IRR) / 16]; return true; }
    switch (off) {
    case R_ID:          *v = a->x2apic ? a->id : a->id << 24; return true;
    case R_VERSION:     *v = VERSION_VALUE; return true;
    case R_TPR:         *v = a->tpr; return true;
    case R_APR:         *v = 0; return !a->x2apic;
    case R_PPR:         *v = ppr(a); return true;
    case R_LDR:         *v = a->x2apic ? ((a->id >> 4) << 16) | (1u << (a->id & 15)) : a->ldr; return true;
    case R_DFR:         *v = a->dfr; return !a->x2apic;
    case R_SVR:         *v = a->svr; return true;
    case R_ESR:         *v = a->esr; return true;
    case R_LVT_CMCI:    *v = a->lvt[LVT_CMCI]; return true;
    case R_ICR_LOW:     *v = a->icr_low & ~(1u << 12); return true;  /* delivery status: idle */
    case R_ICR_HIGH:    *v = a->icr_high; return !a->x2apic;
    case R_LVT_TIMER:   *v = a->lvt[LVT_TIMER]; return true;
    case R_LVT_THERMAL: *v = a->lvt[LVT_THERMAL]; return true;
    case R_LVT_PERF:    *v = a->lvt[LVT_PERF]; return true;
    case R_LVT_LINT0:   *v = a->lvt[LVT_LINT0]; return true;
    case R_LVT_LINT1:   *v = a->lvt[LVT_LINT1]; return true;
    case R_LVT_ERROR:   *v = a->lvt[LVT_ERROR]; return true;
    case R_TIMER_ICR:   *v = a->timer_icr; return true;
    case R_TIMER_CCR:   *v = current_count(a, now); return true;
    case R_TIMER_DCR:   *v = a->timer_dcr; return true;
    default:            return false;
    }
}

static void set_lvt(struct vlapic *a, int i, uint32_t v)
{
    uint32_t old_mode = timer_mode(a);
    /* With the APIC software-disabled, LVTs stay masked (§12.4.7.2). */
    if (!(a->svr & SVR_ENABLE))
        v |= LVT_MASKED;
    a->lvt[i] = v & lvt_masks[i];
    if (i == LVT_TIMER && timer_mode(a) != old_mode) {
        /* Changing the mode disarms the timer (§12.5.4.1). */
        a->timer_armed = false;
        a->tsc_deadline = 0;
    }
}

static bool reg_write(struct vlapic *a, uint32_t off, uint32_t v, uint64_t now)
{
    switch (off) {
    case R_ID:
        if (!a->x2apic)
            a->id = v >> 24;
        return !a->x2apic;                /* read-only in x2APIC mode */
    case R_TPR:         a->tpr = v & 0xff; return true;
    case R_EOI:         eoi(a); return true;
    case R_LDR:         if (a->x2apic) return false; a->ldr = v & 0xff000000u; return true;
    case R_DFR:         if (a->x2apic) return false; a->dfr = v | 0x0fffffffu; return true;
    case R_SVR:
        a->svr = v & 0x13ff;
        if (!(a->svr & SVR_ENABLE))
            for (int i = 0; i < LVT_COUNT; i++)
                a->lvt[i] |= LVT_MASKED;
        return true;
    case R_ESR:
        /* A write latches the errors seen since the last one (§12.5.3). */
        a->esr = a->esr_pending;
        a->esr_pending = 0;
        return true;
    case R_LVT_CMCI:    set_lvt(a, LVT_CMCI, v); return true;
    case R_ICR_HIGH:    if (a->x2apic) return false; a->icr_high = v & 0xff000000u; return true;
    case R_ICR_LOW:     a->icr_low = v & 0x000cdfffu; send_icr(a); return true;
    case R_LVT_TIMER:   set_lvt(a, LVT_TIMER, v); return true;
    case R_LVT_THERMAL: set_lvt(a, LVT_THERMAL, v); return true;
    case R_LVT_PERF:    set_lvt(a, LVT_PERF, v); return true;
    case R_LVT_LINT0:   set_lvt(a, LVT_LINT0, v); return true;
    case R_LVT_LINT1:   set_lvt(a, LVT_LINT1, v); return true;
    case R_LVT_ERROR:   set_lvt(a, LVT_ERROR, v); return true;
    case R_TIMER_ICR:
        if (timer_mode(a) == TIMER_TSC_DEADLINE)
            return true;                   /* ignored in TSC-deadline mode */
        a->timer_icr = v;
        a->timer_start_ns = now;
        a->timer_armed = v != 0;
        return true;
    case R_TIMER_DCR:   a->timer_dcr = v & 0xb; return true;
    case R_SELF_IPI:
        if (!a->x2apic)
            return false;
        vlapic_accept(a, (uint8_t)v, false);
        return true;
    default:
        return false;                      /* read-only or reserved */
    }
}

uint32_t vlapic_mmio_read(struct vlapic *a, uint64_t offset, unsigned size, uint64_t now)
{
    uint32_t v = 0;
    /* In x2APIC mode the page is not there (§12.12.1.2): reads see nothing. */
    if (a->x2apic || !a->hw_enabled || size != 4 || (offset & 0xf) || offset >= VLAPIC_MMIO_SIZE)
        return 0;
    if (!reg_read(a, (uint32_t)offset, &v, now))
        return 0;
    return v;
}

void vlapic_mmio_write(struct vlapic *a, uint64_t offset, unsigned size, uint32_t value, uint64_t now)
{
    if (a->x2apic || !a->hw_enabled || size != 4 || (offset & 0xf) || offset >= VLAPIC_MMIO_SIZE)
        return;
    if (!reg_write(a, (uint32_t)offset, value, now))
        a->esr_pending |= 1u << 7;         /* illegal register address */
}

bool vlapic_msr_read(struct vlapic *a, uint32_t msr, uint64_t *value, uint64_t now)
{
    if (!a->x2apic || msr < 0x800 || msr > 0x8ff)
        return false;
    uint32_t off = (msr - 0x800) << 4;
    if (off == R_ICR_LOW) {
        *value = (uint64_t)a->icr_high << 32 | a->icr_low;
        return true;
    }
    uint32_t v;
    if (off == R_EOI || off == R_SELF_IPI || !reg_read(a, off, &v, now))
        return false;                      /* write-only or reserved: #GP */
    *value = v;
    return true;
}

bool vlapic_msr_write(struct vlapic *a, uint32_t msr, uint64_t value, uint64_t now)
{
    if (!a->x2apic || msr < 0x800 || msr > 0x8ff)
        return false;
    uint32_t off = (msr - 0x800) << 4;
    if (off == R_ICR_LOW) {
        /* x2APIC: one 64-bit write, destination in 63:32 (§12.12.9). */
        a->icr_high = (uint32_t)(value >> 32);
        a->icr_low = (uint32_t)value & 0x000cdfffu;
        send_icr(a);
        return true;
    }
    /* EOI and self-IPI must be written with reserved bits zero (§12.12.1.2). */
    if ((off == R_EOI && value != 0) || (value >> 32) || off == R_LDR || off == R_ID)
        return false;
    return reg_write(a, off, (uint32_t)value, now);
}

bool vlapic_set_base_mode(struct vlapic *a, bool enabled, bool x2apic)
{
    /* Legal transitions (§12.12.5, Figure 12-27): x2APIC needs EN; leaving x2APIC
     * only by disabling; a disabled APIC comes back in xAPIC mode. */
    if (x2apic && !enabled)
        return false;
    if (a->x2apic && enabled && !x2apic)
        return false;
    if (!a->hw_enabled && enabled && x2apic)
        return false;
    a->hw_enabled = enabled;
    a->x2apic = x2apic;
    if (!enabled) {
        /* Disabling resets the APIC to its power-up state, keeping the ID. */
        struct vlapic_ops ops = a->ops;
        uint32_t id = a->id;
        uint64_t hz = a->timer_hz;
        vlapic_init(a, id, false, hz, &ops);
        a->hw_enabled = false;
    }
    return true;
}

/* ---- snapshot ---- */

static void vlapic_fields(struct vlapic *a, struct snap *s, uint64_t now_ns)
{
    snap_record_begin(s, "vlapic", 1);
    snap_u32(s, &a->id);
    snap_bool(s, &a->x2apic);
    snap_bool(s, &a->hw_enabled);
    snap_u32(s, &a->tpr);
    snap_u32(s, &a->svr);
    snap_u32(s, &a->ldr);
    snap_u32(s, &a->dfr);
    snap_u32(s, &a->esr);
    snap_u32(s, &a->esr_pending);
    for (unsigned i = 0; i < 8; i++) {
        snap_u32(s, &a->irr[i]);
        snap_u32(s, &a->isr[i]);
        snap_u32(s, &a->tmr[i]);
    }
    for (unsigned i = 0; i < LVT_COUNT; i++)
        snap_u32(s, &a->lvt[i]);
    snap_u32(s, &a->icr_low);
    snap_u32(s, &a->icr_high);
    snap_u32(s, &a->timer_icr);
    snap_u32(s, &a->timer_dcr);
    snap_time(s, &a->timer_start_ns, now_ns);
    snap_bool(s, &a->timer_armed);
    snap_u64(s, &a->tsc_deadline);
    snap_u64(s, &a->timer_hz);
    snap_record_end(s);
}

/* ns_per_count() divides 1 GHz by timer_hz and current_count() divides by the
 * result, so timer_hz must be what vlapic_init() admits.  The rest are what the
 * register writes and mode transitions keep (§12.12.5 for EXTD without EN). */
static bool vlapic_check(const struct vlapic *a, struct snap *s)
{
    bool lvts_ok = true, lvts_masked = true;
    for (unsigned i = 0; i < LVT_COUNT; i++) {
        lvts_ok &= !(a->lvt[i] & ~lvt_masks[i]);
        lvts_masked &= (a->lvt[i] & LVT_MASKED) != 0;
    }
    return snap_check(s, !a->x2apic || a->hw_enabled, "vlapic: x2APIC mode without EN") &&
           snap_check(s, a->timer_hz >= VLAPIC_TIMER_HZ_MIN && a->timer_hz <= 1000000000ull &&
                          1000000000ull % a->timer_hz == 0,
                      "vlapic: a timer clock below 1 kHz or not dividing 1 GHz") &&
           snap_check(s, a->tpr <= 0xff && !(a->svr & ~0x13ffu), "vlapic: TPR or SVR reserved bits set") &&
           snap_check(s, !(a->ldr & 0x00ffffffu) && (a->dfr & 0x0fffffffu) == 0x0fffffffu,
                      "vlapic: LDR or DFR reserved bits set") &&
           snap_check(s, !(a->icr_low & ~0x000cdfffu) && (a->x2apic || !(a->icr_high & 0x00ffffffu)),
                      "vlapic: ICR reserved bits set") &&
           snap_check(s, lvts_ok, "vlapic: LVT reserved bits set") &&
           snap_check(s, (a->svr & SVR_ENABLE) || lvts_masked, "vlapic: an LVT unmasked while software-disabled") &&
           snap_check(s, !(a->timer_dcr & ~0xbu), "vlapic: DCR reserved bits set") &&
           snap_check(s, !a->timer_armed || a->timer_icr, "vlapic: the timer armed with no count") &&
           snap_check(s, !a->tsc_deadline || timer_mode(a) == TIMER_TSC_DEADLINE,
                      "vlapic: a TSC deadline outside TSC-deadline mode");
}

bool vlapic_save(const struct vlapic *a, struct snap *s, uint64_t now_ns)
{
    struct vlapic c = *a;
    vlapic_fields(&c, s, now_ns);
    return !s->failed;
}

bool vlapic_load(struct vlapic *a, struct snap *s, uint64_t now_ns)
{
    struct vlapic c = *a;
    vlapic_fields(&c, s, now_ns);
    if (s->failed || !vlapic_check(&c, s))
        return false;
    *a = c;
    return true;
}
