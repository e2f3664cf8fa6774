/* Leaving the machine: ACPI S5 soft-off and reset.  Both run once, at the very end,
 * so they may take interrupts away and wait; each says what it tried when it fails. */
#include "drivers/acpi.h"
#include "drivers/pmtimer.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"
#include "kernel/log.h"
#include "arch/x86_64/apic/timer.h"

/* PM1 control register bits (ACPI 6.5 §4.8.3.2.1, Table 4.13). */
#define PM1_SCI_EN            (1u << 0)
#define PM1_SLP_TYP_SHIFT     10
#define PM1_SLP_TYP_MASK      (7u << PM1_SLP_TYP_SHIFT)
#define PM1_SLP_EN            (1u << 13)
/* Sleep control register of hardware-reduced platforms (ACPI 6.5 §4.8.3.7). */
#define SLEEP_CTL_SLP_TYP_SHIFT 2
#define SLEEP_CTL_SLP_EN      (1u << 5)

/* Generic Address Structure space IDs (ACPI 6.5 §5.2.3.2, Table 5.2). */
#define GAS_MEMORY      0
#define GAS_IO          1
#define GAS_PCI_CONFIG  2

/* PCI configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2). */
#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA    0xCFC
/* Reset Control Register of the PIIX/ICH/PCH south bridges: SYS_RST (bit 1) asks for
 * a full reset, and a 0->1 edge of RST_CPU (bit 2) starts it. */
#define RST_CNT_PORT       0xCF9
#define RST_CNT_SYS_RST    0x02
#define RST_CNT_RST_CPU    0x04
/* 8042 keyboard controller: status bit 1 is "input buffer full"; command 0xFE
 * pulses output port bit 0, the CPU reset line (IBM PC/AT Technical Reference). */
#define KBC_STATUS         0x64
#define KBC_COMMAND        0x64
#define KBC_STATUS_IBF     0x02
#define KBC_CMD_PULSE_RESET 0xFE

/* How long a power or reset write gets to take effect before the next method. */
#define ACPI_POWER_WAIT_MS 500

static void acpi_delay_ms(uint32_t ms)
{
    /* The PM timer ticks in real time even before the TSC is calibrated; the TSC
     * fallback assumes 3 GHz until then, which only errs on the long side. */
    const struct acpi_info *ai = acpi_get();
    if (!pmtimer_ready() && ai->pm_tmr_port)
        pmtimer_init(ai->pm_tmr_port, ai->pm_tmr_32bit);
    if (pmtimer_delay_us((uint64_t)ms * 1000))
        return;
    uint64_t hz = timer_tsc_hz() ? timer_tsc_hz() : 3000000000ull;
    uint64_t start = rdtsc(), ticks = hz / 1000 * ms;
    while (rdtsc() - start < ticks)
        cpu_relax();
}

/* Writes an 8-bit value to a GAS register: I/O, memory, or PCI configuration space
 * of segment 0 bus 0 (ACPI 6.5 §5.2.3.2: device in bits 47:32, function in 31:16,
 * offset in 15:0).  False when the register cannot be reached. */
static bool acpi_gas_write8(const struct acpi_gas *g, uint8_t v)
{
    switch (g->space) {
    case GAS_IO:
        if (g->addr > 0xFFFF)
            return false;
        outb((uint16_t)g->addr, v);
        return true;
    case GAS_MEMORY: {
        volatile uint8_t *p = mmio_map(g->addr, 1);
        if (!p)
            return false;
        *p = v;
        return true;
    }
    case GAS_PCI_CONFIG: {
        uint32_t dev = (g->addr >> 32) & 0xFFFF, fn = (g->addr >> 16) & 0xFFFF;
        uint32_t off = g->addr & 0xFFFF;
        if (dev > 31 || fn > 7 || off > 0xFF)
            return false;
        outl(PCI_CONFIG_ADDRESS, 0x80000000u | dev << 11 | fn << 8 | (off & 0xFC));
        outb((uint16_t)(PCI_CONFIG_DATA + (off & 3)), v);
        return true;
    }
    default:
        return false;
    }
}

/* Firmware that boots in legacy mode routes power events to SMM and may ignore
 * SLP_EN until the OS has claimed ACPI mode by writing ACPI_ENABLE to SMI_CMD and
 * seeing SCI_EN come up (ACPI 6.5 §5.2.9, the FADT's SMI_CMD and ACPI_ENABLE). */
static void acpi_enter_acpi_mode(const struct acpi_info *ai)
{
    if (inw((uint16_t)ai->pm1a_cnt) & PM1_SCI_EN)
        return;
    if (!ai->smi_cmd || !ai->acpi_enable) {
        log_warn("power: SCI_EN is clear and the FADT gives no SMI_CMD/ACPI_ENABLE to set "
                 "it; trying S5 anyway");
        return;
    }
    outb((uint16_t)ai->smi_cmd, ai->acpi_enable);
    for (uint32_t ms = 0; ms < 1000; ms++) {
        if (inw((uint16_t)ai->pm1a_cnt) & PM1_SCI_EN)
            return;
        acpi_delay_ms(1);
    }
    log_warn("power: the firmware did not enter ACPI mode (SCI_EN still clear 1 s after "
             "writing %#x to port %#x); trying S5 anyway", ai->acpi_enable, ai->smi_cmd);
}

void acpi_poweroff(void)
{
    const struct acpi_info *ai = acpi_get();
    if (!ai->present) {
        log_error("power: no ACPI tables, so no S5 soft-off; switch the machine off by hand");
        return;
    }
    if (!ai->have_fadt) {
        log_error("power: no usable FADT, so no PM1 control registers to enter S5 with");
        return;
    }
    if (!ai->have_s5) {
        log_error("power: the DSDT/SSDTs define no usable \\_S5 package, so the SLP_TYP "
                  "values for soft-off are unknown");
        return;
    }
    cli();
    if (ai->hw_reduced) {
        /* ACPI 6.5 §4.8.3.7: a hardware-reduced platform sleeps through its sleep
         * control register; there are no PM1 blocks. */
        if (!ai->sleep_control.addr) {
            log_error("power: the FADT declares a hardware-reduced platform but gives no "
                      "SLEEP_CONTROL_REG; S5 needs its AML methods, which plinth does not run");
            return;
        }
        uint8_t v = (uint8_t)(ai->slp_typa << SLEEP_CTL_SLP_TYP_SHIFT | SLEEP_CTL_SLP_EN);
        if (!acpi_gas_write8(&ai->sleep_control, v)) {
            log_error("power: SLEEP_CONTROL_REG (space %u, %#lx) cannot be written",
                      ai->sleep_control.space, (unsigned long)ai->sleep_control.addr);
            return;
        }
        acpi_delay_ms(ACPI_POWER_WAIT_MS);
        log_error("power: still running %u ms after writing SLP_TYP %u with SLP_EN to "
                  "SLEEP_CONTROL_REG", ACPI_POWER_WAIT_MS, ai->slp_typa);
        return;
    }
    if (!ai->pm1a_cnt) {
        log_error("power: the FADT gives no PM1a control block to enter S5 with");
        return;
    }
    acpi_enter_acpi_mode(ai);

    /* On the testbeds this is the whole story, no emulator-specific path needed:
     * QEMU's PIIX4 (pc) and ICH9 (q35) PM blocks turn SLP_EN with \_S5's SLP_TYP 0
     * into a guest shutdown and QEMU exits.  Bochs's BIOS-bochs-latest builds a DSDT
     * with Name(_S5_, Package(4){Zero, Zero, Zero, Zero}) and PM1a_CNT at 0xb004; its
     * PIIX4 PM emulation takes SLP_EN with SLP_TYP 0 as soft-off and ends the
     * simulation ("ACPI control: soft power off", exit status 1 like every Bochs exit).
     *
     * ACPI 6.5 §4.8.3.2.1: S5 is entered by writing \_S5's SLP_TYPa/b to PM1a/b_CNT
     * with SLP_EN set.  SLP_TYP goes in first and SLP_EN in a second write, so the
     * type is in place before the enable bit arrives however the chipset samples
     * them (one write is what the spec describes; the extra one is harmless).  Every
     * other bit is written back as read. */
    uint16_t a = (uint16_t)(inw((uint16_t)ai->pm1a_cnt) & ~(PM1_SLP_TYP_MASK | PM1_SLP_EN));
    a |= (uint16_t)(ai->slp_typa << PM1_SLP_TYP_SHIFT);
    uint16_t b = 0;
    if (ai->pm1b_cnt) {
        b = (uint16_t)(inw((uint16_t)ai->pm1b_cnt) & ~(PM1_SLP_TYP_MASK | PM1_SLP_EN));
        b |= (uint16_t)(ai->slp_typb << PM1_SLP_TYP_SHIFT);
    }
    outw((uint16_t)ai->pm1a_cnt, a);
    if (ai->pm1b_cnt)
        outw((uint16_t)ai->pm1b_cnt, b);
    outw((uint16_t)ai->pm1a_cnt, a | PM1_SLP_EN);
    if (ai->pm1b_cnt)
        outw((uint16_t)ai->pm1b_cnt, b | PM1_SLP_EN);

    acpi_delay_ms(ACPI_POWER_WAIT_MS);
    log_error("power: still running %u ms after writing SLP_TYP %u|SLP_EN to PM1a_CNT "
              "(port %#x)%s; the chipset ignored S5", ACPI_POWER_WAIT_MS, ai->slp_typa,
              ai->pm1a_cnt, ai->pm1b_cnt ? " and PM1b_CNT" : "");
}

void acpi_reset(void)
{
    const struct acpi_info *ai = acpi_get();
    cli();
    /* ACPI 6.5 §4.8.3.6: writing RESET_VALUE to RESET_REG resets the system. */
    if (ai->have_reset) {
        if (acpi_gas_write8(&ai->reset_reg, ai->reset_value)) {
            acpi_delay_ms(ACPI_POWER_WAIT_MS);
            log_warn("power: still running after writing %#x to the FADT reset register "
                     "(space %u, %#lx); trying port 0xCF9", ai->reset_value,
                     ai->reset_reg.space, (unsigned long)ai->reset_reg.addr);
        } else {
            log_warn("power: the FADT reset register (space %u, %#lx) cannot be written; "
                     "trying port 0xCF9", ai->reset_reg.space, (unsigned long)ai->reset_reg.addr);
        }
    }

    outb(RST_CNT_PORT, RST_CNT_SYS_RST);
    acpi_delay_ms(1);
    outb(RST_CNT_PORT, RST_CNT_SYS_RST | RST_CNT_RST_CPU);
    acpi_delay_ms(ACPI_POWER_WAIT_MS);
    log_warn("power: still running after writing %#x to port 0xCF9; trying the 8042",
             RST_CNT_SYS_RST | RST_CNT_RST_CPU);

    /* A controller that is absent reads as all ones: no input buffer will ever drain. */
    uint8_t st = inb(KBC_STATUS);
    if (st == 0xFF) {
        log_error("power: no 8042 keyboard controller answers at port 0x64; every reset "
                  "method failed");
        return;
    }
    for (uint32_t i = 0; i < 100000 && (inb(KBC_STATUS) & KBC_STATUS_IBF); i++)
        cpu_relax();
    outb(KBC_COMMAND, KBC_CMD_PULSE_RESET);
    acpi_delay_ms(ACPI_POWER_WAIT_MS);
    log_error("power: still running after the 8042 reset pulse; every reset method failed");
}
