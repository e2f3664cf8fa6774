/* HPET main counter (IA-PC HPET specification 1.0a, §2.3: register layout). */
#include "drivers/hpet.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/cpu/cpu.h"
#include "kernel/log.h"
#include "kernel/spinlock.h"

#define HPET_BLOCK_SIZE       0x400   /* one timer block's registers (§2.3.1) */
#define HPET_GCAP_ID          0x000
#define HPET_GEN_CONF         0x010
#define HPET_MAIN_COUNTER     0x0F0

#define HPET_GCAP_REV_ID(v)        ((v) & 0xFF)
#define HPET_GCAP_COUNT_SIZE_CAP   (1ull << 13)
#define HPET_GCAP_VENDOR_ID(v)     (((v) >> 16) & 0xFFFF)
#define HPET_GCAP_CLK_PERIOD(v)    ((v) >> 32)
/* §2.3.4: the period must be non-zero and at most 100 ns (10^8 fs). */
#define HPET_MAX_PERIOD_FS         100000000ull
#define HPET_CONF_ENABLE_CNF       (1ull << 0)

#define FS_PER_SECOND              1000000000000000ull

static volatile uint8_t *hpet_regs;
static uint64_t hpet_period;
static bool hpet_64bit;
/* Software extension of a 32-bit counter. */
static struct spinlock hpet_lock = SPINLOCK_INIT;
static uint64_t hpet_high;
static uint32_t hpet_last;

static uint64_t hpet_reg_read(uint32_t off)
{
    return *(volatile uint64_t *)(hpet_regs + off);
}

static void hpet_reg_write(uint32_t off, uint64_t v)
{
    *(volatile uint64_t *)(hpet_regs + off) = v;
}

bool hpet_init(uint64_t addr)
{
    if (!addr || (addr & (HPET_BLOCK_SIZE - 1))) {
        log_warn("hpet: base %#lx is not a 1 KiB-aligned address; HPET not used",
                 (unsigned long)addr);
        return false;
    }
    volatile uint8_t *regs = mmio_map(addr, HPET_BLOCK_SIZE);
    if (!regs) {
        log_warn("hpet: cannot map the registers at %#lx; HPET not used", (unsigned long)addr);
        return false;
    }
    hpet_regs = regs;
    uint64_t cap = hpet_reg_read(HPET_GCAP_ID);
    uint64_t period = HPET_GCAP_CLK_PERIOD(cap);
    /* All ones is what a read of nothing returns; REV_ID 0 is reserved (§2.3.4). */
    if (cap == ~0ull || HPET_GCAP_REV_ID(cap) == 0 || period == 0 ||
        period > HPET_MAX_PERIOD_FS) {
        log_warn("hpet: capabilities %#lx at %#lx are not an HPET's (period %lu fs, "
                 "revision %lu); HPET not used", (unsigned long)cap, (unsigned long)addr,
                 (unsigned long)period, (unsigned long)HPET_GCAP_REV_ID(cap));
        hpet_regs = 0;
        return false;
    }
    hpet_64bit = cap & HPET_GCAP_COUNT_SIZE_CAP;

    uint64_t conf = hpet_reg_read(HPET_GEN_CONF);
    if (!(conf & HPET_CONF_ENABLE_CNF))
        hpet_reg_write(HPET_GEN_CONF, conf | HPET_CONF_ENABLE_CNF);

    /* A counter that does not move would make every calibration divide by zero. */
    uint64_t first = hpet_reg_read(HPET_MAIN_COUNTER);
    bool moved = false;
    for (uint32_t i = 0; i < 1000000 && !moved; i++) {
        cpu_relax();
        moved = hpet_reg_read(HPET_MAIN_COUNTER) != first;
    }
    if (!moved) {
        log_warn("hpet: the main counter at %#lx does not advance after enabling; "
                 "HPET not used", (unsigned long)addr);
        hpet_regs = 0;
        return false;
    }
    hpet_last = (uint32_t)hpet_reg_read(HPET_MAIN_COUNTER);
    hpet_high = 0;
    hpet_period = period;
    log_info("hpet: %#lx, vendor %#lx, %lu Hz, %u-bit counter", (unsigned long)addr,
             (unsigned long)HPET_GCAP_VENDOR_ID(cap), (unsigned long)hpet_frequency_hz(),
             hpet_64bit ? 64 : 32);
    return true;
}

uint64_t hpet_read(void)
{
    if (!hpet_period)
        return 0;
    if (hpet_64bit)
        return hpet_reg_read(HPET_MAIN_COUNTER);
    /* The counter's upper half reads as zero in 32-bit mode (§2.3.7). */
    uint64_t flags = spin_lock_irqsave(&hpet_lock);
    uint32_t now = (uint32_t)hpet_reg_read(HPET_MAIN_COUNTER);
    if (now < hpet_last)
        hpet_high += 1ull << 32;
    hpet_last = now;
    uint64_t v = hpet_high | now;
    spin_unlock_irqrestore(&hpet_lock, flags);
    return v;
}

uint64_t hpet_period_fs(void)
{
    return hpet_period;
}

uint64_t hpet_frequency_hz(void)
{
    return hpet_period ? (FS_PER_SECOND + hpet_period / 2) / hpet_period : 0;
}
