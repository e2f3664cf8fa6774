#include "vmm/dev/pc_misc.h"

/* i8042 status register and command byte (IBM PC/AT Technical Reference,
 * "keyboard controller"). */
#define KBC_STS_OBF     0x01  /* output buffer full */
#define KBC_STS_SYS     0x04  /* system flag: POST passed */
#define KBC_STS_A2      0x08  /* last write was a command */
#define KBC_STS_UNLOCK  0x10  /* keyboard not inhibited by the key lock */
#define KBC_STS_AUX_OBF 0x20  /* the output buffer holds auxiliary-port data */

#define KBC_CTR_KBD_INT 0x01  /* IRQ 1 when keyboard data arrives */
#define KBC_CTR_AUX_INT 0x02  /* IRQ 12 when auxiliary data arrives */
#define KBC_CTR_SYS     0x04
#define KBC_CTR_AUX_DIS 0x20
#define KBC_CTR_KBD_DIS 0x10
#define KBC_CTR_MASK    0x7f  /* bit 7 is reserved, reads 0 */

#define KBC_CMD_READ_CTR       0x20
#define KBC_CMD_WRITE_CTR      0x60
#define KBC_CMD_AUX_DISABLE    0xa7
#define KBC_CMD_AUX_ENABLE     0xa8
#define KBC_CMD_AUX_TEST       0xa9
#define KBC_CMD_SELF_TEST      0xaa
#define KBC_CMD_KBD_TEST       0xab
#define KBC_CMD_KBD_DISABLE    0xad
#define KBC_CMD_KBD_ENABLE     0xae
#define KBC_CMD_READ_OUTPORT   0xd0
#define KBC_CMD_WRITE_OUTPORT  0xd1
#define KBC_CMD_WRITE_KBD_OUT  0xd2  /* the next data byte appears as keyboard data */
#define KBC_CMD_WRITE_AUX_OUT  0xd3  /* ... as auxiliary data (the loopback test) */
#define KBC_CMD_WRITE_AUX      0xd4  /* the next data byte goes to the mouse */
#define KBC_CMD_PULSE_BASE     0xf0  /* 0xf0-0xff: pulse the output lines whose bit is 0 */

#define KBC_SELF_TEST_OK  0x55
#define KBC_KBD_TEST_OK   0x00
/* Output port bit 0 is the CPU reset line (0 = reset); bit 1 gates A20. */
#define KBC_OUT_RESET     0x01
#define KBC_OUT_A20       0x02

/* System Control Port A (IBM PS/2 technical reference): bit 0 fast reset on a
 * 0-to-1 write, bit 1 A20 gate. */
#define SYSCTL_A_RESET  0x01
#define SYSCTL_A_A20    0x02

/* Reset Control Register (Intel I/O controller hub data sheets, "RST_CNT"):
 * bit 1 hard vs soft reset, bit 2 starts the reset, bit 3 full reset. */
#define RST_CNT_SYS_RST  0x02
#define RST_CNT_RST_CPU  0x04
#define RST_CNT_FULL_RST 0x08

/* PM1 status and enable bits (ACPI 6.5 §4.8.3.1, tables 4.16-4.17). */
#define PM1_TMR     0x0001
#define PM1_BM      0x0010
#define PM1_GBL     0x0020
#define PM1_PWRBTN  0x0100
#define PM1_SLPBTN  0x0200
#define PM1_RTC     0x0400
#define PM1_WAK     0x8000
#define PM1_STS_MASK (PM1_TMR | PM1_BM | PM1_GBL | PM1_PWRBTN | PM1_SLPBTN | PM1_RTC | PM1_WAK)
#define PM1_EN_MASK  (PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_SLPBTN | PM1_RTC)

/* PM1 control bits (ACPI 6.5 §4.8.3.2.1, table 4.18). */
#define PM1_CNT_SCI_EN   0x0001
#define PM1_CNT_BM_RLD   0x0002
#define PM1_CNT_GBL_RLS  0x0004
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP  0x1c00
#define PM1_CNT_SLP_EN   0x2000

#define PC_MISC_NSEC_PER_SEC 1000000000ull

/* ---- PM timer ---- */

static uint64_t pm_ticks(uint64_t ns)
{
    return ns / PC_MISC_NSEC_PER_SEC * PC_MISC_PM_TIMER_HZ + ns % PC_MISC_NSEC_PER_SEC * PC_MISC_PM_TIMER_HZ / PC_MISC_NSEC_PER_SEC;
}

/* The first nanosecond at which pm_ticks() reaches t. */
static uint64_t pm_ticks_time(uint64_t t)
{
    return t / PC_MISC_PM_TIMER_HZ * PC_MISC_NSEC_PER_SEC +
           (t % PC_MISC_PM_TIMER_HZ * PC_MISC_NSEC_PER_SEC + PC_MISC_PM_TIMER_HZ - 1) / PC_MISC_PM_TIMER_HZ;
}

static uint64_t elapsed_ns(const struct pc_misc *m)
{
    uint64_t now = m->cfg.now_ns(m->cfg.ctx);
    return now > m->tmr_start_ns ? now - m->tmr_start_ns : 0;
}

/* TMR_STS is set each time the counter's top bit changes (ACPI 6.5 §4.8.3.3). */
static unsigned tmr_msb(const struct pc_misc *m)
{
    return m->cfg.pm_timer_32bit ? 31 : 23;
}

static void update_sci(struct pc_misc *m)
{
    /* SCI_EN is always set: the platform has no legacy (SMM) mode to leave. */
    bool level = (m->pm1_sts & m->pm1_en & PM1_EN_MASK) != 0;
    if (level != m->sci_level) {
        m->sci_level = level;
        if (m->cfg.sci)
            m->cfg.sci(m->cfg.ctx, level);
    }
}

/* Sets TMR_STS if the counter's top bit changed since the last catch-up, and
 * returns the counter (all 64 bits) at ns since the start. */
static uint64_t catch_up_at(struct pc_misc *m, uint64_t ns)
{
    uint64_t ticks = pm_ticks(ns);
    unsigned msb = tmr_msb(m);
    if (ticks >> msb != m->tmr_last_ticks >> msb)
        m->pm1_sts |= PM1_TMR;
    if (ticks > m->tmr_last_ticks)
        m->tmr_last_ticks = ticks;
    update_sci(m);
    return ticks;
}

static uint64_t pm_catch_up(struct pc_misc *m)
{
    return catch_up_at(m, elapsed_ns(m));
}

/* ---- interface ---- */

static bool block_overlaps(uint16_t base, uint16_t port)
{
    return port >= base && port < base + PC_MISC_PM_BLOCK_LEN;
}

bool pc_misc_init(struct pc_misc *m, const struct pc_misc_config *cfg)
{
    *m = (struct pc_misc){ 0 };
    uint16_t b = cfg->pm_base;
    if (!cfg->now_ns || cfg->s5_slp_typ > 7 || (b & 3) || b > 0xffff - (PC_MISC_PM_BLOCK_LEN - 1) ||
        block_overlaps(b, PC_MISC_PORT_I8042_DATA) || block_overlaps(b, PC_MISC_PORT_I8042_STATUS) ||
        block_overlaps(b, PC_MISC_PORT_SYSCTL_A) || block_overlaps(b, PC_MISC_PORT_RESET_CONTROL))
        return false;
    m->cfg = *cfg;
    /* As a PC BIOS leaves the controller: POST passed, keyboard interrupt on,
     * scan-code translation on. */
    m->kbc_ctr = 0x45;
    m->sysctl_a = SYSCTL_A_A20;
    m->pm1_cnt = PM1_CNT_SCI_EN;
    m->tmr_start_ns = cfg->now_ns(cfg->ctx);
    return true;
}

bool pc_misc_decodes(const struct pc_misc *m, uint16_t port)
{
    uint16_t off = (uint16_t)(port - m->cfg.pm_base);
    if (port >= m->cfg.pm_base && off < PC_MISC_PM_BLOCK_LEN)
        return off < PC_MISC_PM1A_CNT_OFFSET + PC_MISC_PM1_CNT_LEN || off >= PC_MISC_PM_TMR_OFFSET;
    return port == PC_MISC_PORT_I8042_DATA || port == PC_MISC_PORT_I8042_STATUS ||
           port == PC_MISC_PORT_SYSCTL_A || port == PC_MISC_PORT_RESET_CONTROL;
}

static void request_reset(struct pc_misc *m)
{
    if (m->cfg.reset)
        m->cfg.reset(m->cfg.ctx);
}

/* IRQ 1 and 12 follow the output buffer: high while it holds data of their port
 * with that port's interrupt enabled in the command byte. */
static void kbc_update_irqs(struct pc_misc *m)
{
    bool kbd = m->kbc_obf && !m->kbc_out_aux && (m->kbc_ctr & KBC_CTR_KBD_INT);
    bool aux = m->kbc_obf && m->kbc_out_aux && (m->kbc_ctr & KBC_CTR_AUX_INT);
    if (kbd != m->kbd_irq_level && m->cfg.kbd_irq)
        m->cfg.kbd_irq(m->cfg.ctx, kbd);
    if (aux != m->aux_irq_level && m->cfg.aux_irq)
        m->cfg.aux_irq(m->cfg.ctx, aux);
    m->kbd_irq_level = kbd;
    m->aux_irq_level = aux;
}

static void kbc_output_port(struct pc_misc *m, uint8_t v, bool aux)
{
    m->kbc_out = v;
    m->kbc_obf = true;
    m->kbc_out_aux = aux;
    kbc_update_irqs(m);
}

/* Controller responses (command results) come as keyboard-port data. */
static void kbc_output(struct pc_misc *m, uint8_t v)
{
    kbc_output_port(m, v, false);
}

static void kbc_command(struct pc_misc *m, uint8_t cmd)
{
    m->kbc_last_cmd = true;
    m->kbc_pending = 0;
    switch (cmd) {
    case KBC_CMD_READ_CTR:
        kbc_output(m, m->kbc_ctr);
        break;
    case KBC_CMD_WRITE_CTR:
    case KBC_CMD_WRITE_OUTPORT:
    case KBC_CMD_WRITE_KBD_OUT:
    case KBC_CMD_WRITE_AUX_OUT:
    case KBC_CMD_WRITE_AUX:
        m->kbc_pending = cmd;
        break;
    case KBC_CMD_AUX_TEST:
        /* The auxiliary port's lines test good with nothing plugged in. */
        kbc_output(m, KBC_KBD_TEST_OK);
        break;
    case KBC_CMD_AUX_DISABLE:
        m->kbc_ctr |= KBC_CTR_AUX_DIS;
        break;
    case KBC_CMD_AUX_ENABLE:
        m->kbc_ctr &= (uint8_t)~KBC_CTR_AUX_DIS;
        break;
    case KBC_CMD_SELF_TEST:
        kbc_output(m, KBC_SELF_TEST_OK);
        break;
    case KBC_CMD_KBD_TEST:
        /* The interface lines test good with nothing plugged in. */
        kbc_output(m, KBC_KBD_TEST_OK);
        break;
    case KBC_CMD_KBD_DISABLE:
        m->kbc_ctr |= KBC_CTR_KBD_DIS;
        break;
    case KBC_CMD_KBD_ENABLE:
        m->kbc_ctr &= (uint8_t)~KBC_CTR_KBD_DIS;
        break;
    case KBC_CMD_READ_OUTPORT:
        kbc_output(m, KBC_OUT_RESET | KBC_OUT_A20);
        break;
    default:
        /* The pulse commands drive low, briefly, each output line whose bit is 0;
         * line 0 is the CPU reset (0xfe is the usual reboot). */
        if (cmd >= KBC_CMD_PULSE_BASE && !(cmd & KBC_OUT_RESET))
            request_reset(m);
        /* Other commands (passwords, vendor diagnostics, ...) concern hardware this
         * controller does not have: ignored, as a controller without it does. */
        break;
    }
}

static void kbc_data(struct pc_misc *m, uint8_t v)
{
    m->kbc_last_cmd = false;
    uint8_t pending = m->kbc_pending;
    m->kbc_pending = 0;
    switch (pending) {
    case KBC_CMD_WRITE_CTR:
        m->kbc_ctr = v & KBC_CTR_MASK;
        kbc_update_irqs(m);
        break;
    case KBC_CMD_WRITE_KBD_OUT:
        kbc_output_port(m, v, false);
        break;
    case KBC_CMD_WRITE_AUX_OUT:
        kbc_output_port(m, v, true);
        break;
    case KBC_CMD_WRITE_OUTPORT:
        /* A20 cannot be turned off (guest memory is mapped without the wrap). */
        if (!(v & KBC_OUT_RESET))
            request_reset(m);
        break;
    default:
        break; /* a byte for the keyboard or (0xd4) the mouse: neither is attached */
    }
}

static uint8_t kbc_status(const struct pc_misc *m)
{
    uint8_t s = KBC_STS_UNLOCK;
    if (m->kbc_obf)
        s |= KBC_STS_OBF;
    if (m->kbc_ctr & KBC_CTR_SYS)
        s |= KBC_STS_SYS;
    if (m->kbc_last_cmd)
        s |= KBC_STS_A2;
    if (m->kbc_obf && m->kbc_out_aux)
        s |= KBC_STS_AUX_OBF;
    return s;
}

static uint8_t pm_read(struct pc_misc *m, unsigned off)
{
    switch (off) {
    case PC_MISC_PM1A_EVT_OFFSET:
    case PC_MISC_PM1A_EVT_OFFSET + 1:
        pm_catch_up(m);
        return (uint8_t)(m->pm1_sts >> (8 * (off - PC_MISC_PM1A_EVT_OFFSET)));
    case PC_MISC_PM1A_EVT_OFFSET + 2:
    case PC_MISC_PM1A_EVT_OFFSET + 3:
        return (uint8_t)(m->pm1_en >> (8 * (off - PC_MISC_PM1A_EVT_OFFSET - 2)));
    case PC_MISC_PM1A_CNT_OFFSET:
    case PC_MISC_PM1A_CNT_OFFSET + 1:
        /* SLP_EN and GBL_RLS are write-only and read 0. */
        return (uint8_t)(m->pm1_cnt >> (8 * (off - PC_MISC_PM1A_CNT_OFFSET)));
    case PC_MISC_PM_TMR_OFFSET: {
        uint64_t t = pm_catch_up(m);
        m->tmr_latch = (uint32_t)(m->cfg.pm_timer_32bit ? t : t & 0xffffff);
        return (uint8_t)m->tmr_latch;
    }
    case PC_MISC_PM_TMR_OFFSET + 1:
    case PC_MISC_PM_TMR_OFFSET + 2:
    case PC_MISC_PM_TMR_OFFSET + 3:
        return (uint8_t)(m->tmr_latch >> (8 * (off - PC_MISC_PM_TMR_OFFSET)));
    default:
        return 0xff;
    }
}

static void pm1_control_write_high(struct pc_misc *m, uint8_t v)
{
    uint16_t w = (uint16_t)(v << 8);
    m->pm1_cnt = (uint16_t)((m->pm1_cnt & ~PM1_CNT_SLP_TYP) | (w & PM1_CNT_SLP_TYP));
    if (!(w & PM1_CNT_SLP_EN))
        return;
    unsigned typ = (w & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_TYP_SHIFT;
    if (typ == m->cfg.s5_slp_typ) {
        if (m->cfg.poweroff)
            m->cfg.poweroff(m->cfg.ctx);
        return;
    }
    /* A sleep state the DSDT does not offer: the platform wakes at once, as on a
     * wake event, so that a guest polling WAK_STS (ACPI 6.5 §16.1.6) carries on. */
    m->pm1_sts |= PM1_WAK;
}

static void pm_write(struct pc_misc *m, unsigned off, uint8_t v)
{
    switch (off) {
    case PC_MISC_PM1A_EVT_OFFSET:
    case PC_MISC_PM1A_EVT_OFFSET + 1: {
        pm_catch_up(m);
        /* Status bits clear when written with 1 (ACPI 6.5 §4.8.3.1.1). */
        uint16_t w = (uint16_t)(v << (8 * (off - PC_MISC_PM1A_EVT_OFFSET)));
        m->pm1_sts &= (uint16_t)~(w & PM1_STS_MASK);
        break;
    }
    case PC_MISC_PM1A_EVT_OFFSET + 2:
    case PC_MISC_PM1A_EVT_OFFSET + 3: {
        unsigned shift = 8 * (off - PC_MISC_PM1A_EVT_OFFSET - 2);
        uint16_t w = (uint16_t)(v << shift), keep = (uint16_t)~(0xffu << shift);
        pm_catch_up(m);
        m->pm1_en = (uint16_t)((m->pm1_en & keep) | (w & PM1_EN_MASK));
        break;
    }
    case PC_MISC_PM1A_CNT_OFFSET:
        /* SCI_EN stays set; GBL_RLS would signal firmware, and there is none. */
        m->pm1_cnt = (uint16_t)((m->pm1_cnt & ~PM1_CNT_BM_RLD) | (v & PM1_CNT_BM_RLD));
        break;
    case PC_MISC_PM1A_CNT_OFFSET + 1:
        pm1_control_write_high(m, v);
        break;
    default:
        return; /* the timer is read-only; +6, +7 are not decoded */
    }
    update_sci(m);
}

uint8_t pc_misc_read(struct pc_misc *m, uint16_t port)
{
    if (!pc_misc_decodes(m, port))
        return 0xff;
    switch (port) {
    case PC_MISC_PORT_I8042_DATA:
        /* An empty buffer still reads its last byte. */
        m->kbc_obf = false;
        kbc_update_irqs(m);
        return m->kbc_out;
    case PC_MISC_PORT_I8042_STATUS:
        return kbc_status(m);
    case PC_MISC_PORT_SYSCTL_A:
        return m->sysctl_a | SYSCTL_A_A20;
    case PC_MISC_PORT_RESET_CONTROL:
        return m->reset_control;
    default:
        return pm_read(m, (unsigned)(port - m->cfg.pm_base));
    }
}

void pc_misc_write(struct pc_misc *m, uint16_t port, uint8_t value)
{
    if (!pc_misc_decodes(m, port))
        return;
    switch (port) {
    case PC_MISC_PORT_I8042_DATA:
        kbc_data(m, value);
        break;
    case PC_MISC_PORT_I8042_STATUS:
        kbc_command(m, value);
        break;
    case PC_MISC_PORT_SYSCTL_A: {
        bool rising = (value & SYSCTL_A_RESET) && !(m->sysctl_a & SYSCTL_A_RESET);
        m->sysctl_a = value | SYSCTL_A_A20;
        if (rising)
            request_reset(m);
        break;
    }
    case PC_MISC_PORT_RESET_CONTROL:
        /* RST_CPU reads back 0, so every write with it set is the 0-to-1
         * transition that starts a reset.  Hard (SYS_RST) or soft, full or not:
         * the VM restarts either way. */
        m->reset_control = value & (RST_CNT_SYS_RST | RST_CNT_FULL_RST);
        if (value & RST_CNT_RST_CPU)
            request_reset(m);
        break;
    default:
        pm_write(m, (unsigned)(port - m->cfg.pm_base), value);
        break;
    }
}

void pc_misc_power_button(struct pc_misc *m)
{
    pm_catch_up(m);
    m->pm1_sts |= PM1_PWRBTN;
    update_sci(m);
}

void pc_misc_tick(struct pc_misc *m)
{
    pm_catch_up(m);
}

uint64_t pc_misc_next_event_ns(struct pc_misc *m)
{
    uint64_t now = elapsed_ns(m);
    uint64_t ticks = catch_up_at(m, now);
    if (m->sci_level || !(m->pm1_en & PM1_TMR))
        return PC_MISC_NO_EVENT;
    unsigned msb = tmr_msb(m);
    /* pm_ticks_time() of a tick past the current one lies after now. */
    return pm_ticks_time(((ticks >> msb) + 1) << msb) - now;
}

/* ---- snapshot ---- */

static void pc_misc_fields(struct pc_misc *m, struct snap *s, uint64_t now_ns)
{
    snap_record_begin(s, "pcmisc", 1);
    snap_u16(s, &m->cfg.pm_base);
    snap_u8(s, &m->cfg.s5_slp_typ);
    snap_bool(s, &m->cfg.pm_timer_32bit);
    snap_u8(s, &m->kbc_ctr);
    snap_u8(s, &m->kbc_out);
    snap_bool(s, &m->kbc_obf);
    snap_bool(s, &m->kbc_out_aux);
    snap_bool(s, &m->kbd_irq_level);
    snap_bool(s, &m->aux_irq_level);
    snap_bool(s, &m->kbc_last_cmd);
    snap_u8(s, &m->kbc_pending);
    snap_u8(s, &m->sysctl_a);
    snap_u8(s, &m->reset_control);
    snap_u16(s, &m->pm1_sts);
    snap_u16(s, &m->pm1_en);
    snap_u16(s, &m->pm1_cnt);
    snap_time(s, &m->tmr_start_ns, now_ns);
    snap_u64(s, &m->tmr_last_ticks);     /* ticks since the start: a count, not a time */
    snap_u32(s, &m->tmr_latch);
    snap_bool(s, &m->sci_level);
    snap_record_end(s);
}

/* live is the model loaded into, whose configuration the record must match. */
static bool pc_misc_check(const struct pc_misc *m, const struct pc_misc *live, struct snap *s)
{
    uint8_t p = m->kbc_pending;
    return snap_check(s, m->cfg.pm_base == live->cfg.pm_base && m->cfg.s5_slp_typ == live->cfg.s5_slp_typ &&
                      m->cfg.pm_timer_32bit == live->cfg.pm_timer_32bit,
                      "pcmisc: saved on a platform configured otherwise") &&
           snap_check(s, p == 0 || p == KBC_CMD_WRITE_CTR || p == KBC_CMD_WRITE_OUTPORT ||
                      p == KBC_CMD_WRITE_KBD_OUT || p == KBC_CMD_WRITE_AUX_OUT || p == KBC_CMD_WRITE_AUX,
                      "pcmisc: an i8042 command that takes no data is pending") &&
           snap_check(s, !(m->kbc_ctr & ~KBC_CTR_MASK), "pcmisc: i8042 command byte bit 7 set") &&
           snap_check(s, m->sysctl_a & SYSCTL_A_A20, "pcmisc: A20 off (it is always on)") &&
           snap_check(s, !(m->reset_control & ~(RST_CNT_SYS_RST | RST_CNT_FULL_RST)),
                      "pcmisc: reset control bits the register does not keep") &&
           snap_check(s, !(m->pm1_sts & ~PM1_STS_MASK) && !(m->pm1_en & ~PM1_EN_MASK),
                      "pcmisc: PM1 status or enable bits the block does not have") &&
           snap_check(s, (m->pm1_cnt & PM1_CNT_SCI_EN) &&
                      !(m->pm1_cnt & ~(PM1_CNT_SCI_EN | PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP)),
                      "pcmisc: PM1 control with SCI_EN clear or write-only bits set") &&
           snap_check(s, m->cfg.pm_timer_32bit || m->tmr_latch <= 0xffffff, "pcmisc: a 24-bit timer latched past 24 bits");
}

bool pc_misc_save(const struct pc_misc *m, struct snap *s, uint64_t now_ns)
{
    struct pc_misc c = *m;
    pc_misc_fields(&c, s, now_ns);
    return !s->failed;
}

bool pc_misc_load(struct pc_misc *m, struct snap *s, uint64_t now_ns)
{
    struct pc_misc c = *m;
    pc_misc_fields(&c, s, now_ns);
    if (s->failed || !pc_misc_check(&c, m, s))
        return false;
    *m = c;
    return true;
}
