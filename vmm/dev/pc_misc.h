/* The small PC platform pieces a guest uses to reset, power off and keep time
 * that belong to no bigger device model:
 *   0x60, 0x64   the i8042 keyboard controller with a keyboard and an auxiliary
 *                port but nothing plugged into either: controller commands,
 *                the output-buffer writes (0xd2, 0xd3: Linux's loopback tests),
 *                IRQ 1 and 12 for data in the output buffer;
 *   0x92         System Control Port A (fast reset, A20 reported always on);
 *   0xcf9        the Reset Control Register;
 *   pm_base..+11 the ACPI fixed hardware this platform's FADT describes:
 *                PM1a_EVT_BLK at +0 (4 bytes), PM1a_CNT_BLK at +4 (2 bytes),
 *                PM_TMR_BLK at +8 (4 bytes); +6 and +7 are not decoded.
 * Every register is byte-wide as the I/O bus delivers it (vmm/io.h splits wider
 * accesses little-endian); a PM timer read that includes its byte 0 samples the
 * counter, and reads of bytes 1-3 return that sample, so a split 32-bit read is
 * consistent.  A guest reboot calls the reset callback and a guest S5 request the
 * poweroff callback; what they do to the VM is the monitor's business.
 *
 * 0xcf9 sits inside the PCI configuration mechanism's 0xcf8-0xcff: a PCI host
 * bridge model must pass byte accesses at 0xcf9 here. */
#ifndef PLINTH_VMM_DEV_PC_MISC_H
#define PLINTH_VMM_DEV_PC_MISC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snap.h"

#define PC_MISC_PORT_I8042_DATA     0x60
#define PC_MISC_PORT_I8042_STATUS   0x64  /* reads status, writes commands */
#define PC_MISC_PORT_SYSCTL_A       0x92
#define PC_MISC_PORT_RESET_CONTROL  0xcf9

/* The ACPI block's layout from pm_base, and its register lengths for the FADT
 * (PM1_EVT_LEN, PM1_CNT_LEN, PM_TMR_LEN; ACPI 6.5 §5.2.9). */
#define PC_MISC_PM1A_EVT_OFFSET 0
#define PC_MISC_PM1A_CNT_OFFSET 4
#define PC_MISC_PM_TMR_OFFSET   8
#define PC_MISC_PM_BLOCK_LEN    12
#define PC_MISC_PM1_EVT_LEN     4
#define PC_MISC_PM1_CNT_LEN     2
#define PC_MISC_PM_TMR_LEN      4

/* The ACPI PM timer's frequency (ACPI 6.5 §4.8.3.3). */
#define PC_MISC_PM_TIMER_HZ 3579545u

/* PM1 status/enable bits a caller may need (ACPI 6.5 §4.8.3.1). */
#define PC_MISC_PM1_TMR     0x0001
#define PC_MISC_PM1_PWRBTN  0x0100
#define PC_MISC_PM1_WAK_STS 0x8000

#define PC_MISC_NO_EVENT UINT64_MAX

/* Monotonic time in nanoseconds. */
typedef uint64_t (*pc_misc_now_fn)(void *ctx);
typedef void     (*pc_misc_action_fn)(void *ctx);
typedef void     (*pc_misc_irq_fn)(void *ctx, bool level);

struct pc_misc_config {
    uint16_t pm_base;        /* 4-byte aligned, clear of the fixed ports above */
    uint8_t  s5_slp_typ;     /* the SLP_TYP value the DSDT's \_S5 package names (0-7) */
    bool     pm_timer_32bit; /* the FADT's TMR_VAL_EXT flag; else 24 bits */
    pc_misc_now_fn    now_ns;
    pc_misc_action_fn reset;    /* the guest asked for a system reset */
    pc_misc_action_fn poweroff; /* the guest entered S5 */
    pc_misc_irq_fn    sci;      /* the SCI line (may be null) */
    pc_misc_irq_fn    kbd_irq;  /* IRQ 1: keyboard-port data waiting (may be null) */
    pc_misc_irq_fn    aux_irq;  /* IRQ 12: auxiliary-port data waiting (may be null) */
    void *ctx;
};

struct pc_misc {
    struct pc_misc_config cfg;
    /* i8042 */
    uint8_t kbc_ctr;         /* controller command byte */
    uint8_t kbc_out;         /* output buffer */
    bool    kbc_obf;
    bool    kbc_out_aux;     /* the output byte came from the auxiliary port */
    bool    kbd_irq_level, aux_irq_level;
    bool    kbc_last_cmd;    /* last write went to 0x64 (status bit A2) */
    uint8_t kbc_pending;     /* command waiting for its data byte at 0x60, or 0 */
    uint8_t sysctl_a;
    uint8_t reset_control;
    /* ACPI fixed hardware */
    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint64_t tmr_start_ns;   /* the counter reads 0 here */
    uint64_t tmr_last_ticks; /* at the last catch-up, for TMR_STS */
    uint32_t tmr_latch;
    bool     sci_level;
};

/* False, with the model unusable, if the configuration is unsound: pm_base
 * unaligned, overlapping a fixed port or running past 0xffff; s5_slp_typ over 7;
 * no clock. */
bool    pc_misc_init(struct pc_misc *m, const struct pc_misc_config *cfg);
/* True for the ports this model decodes (the monitor claims those). */
bool    pc_misc_decodes(const struct pc_misc *m, uint16_t port);
/* One byte-wide access; ports not decoded read 0xff and ignore writes. */
uint8_t pc_misc_read(struct pc_misc *m, uint16_t port);
void    pc_misc_write(struct pc_misc *m, uint16_t port, uint8_t value);
/* The fixed power button was pressed (the monitor asks the guest to shut down):
 * PWRBTN_STS, and the SCI if the guest enabled it. */
void    pc_misc_power_button(struct pc_misc *m);
/* Catch up the PM timer's TMR_STS (the monitor's timer fired). */
void    pc_misc_tick(struct pc_misc *m);
/* Catches up as pc_misc_tick() does, then the nanoseconds until the PM timer's top
 * bit next toggles if the guest enabled that SCI (TMR_EN) and the line is low;
 * else PC_MISC_NO_EVENT.  Ask again after every access. */
uint64_t pc_misc_next_event_ns(struct pc_misc *m);

/* Snapshot record "pcmisc" (vmm/snap.h): the i8042's command byte, output buffer
 * and pending command, ports 0x92 and 0xcf9, PM1 status/enable/control, the PM
 * timer's start, last catch-up and latch, and the levels IRQ 1, IRQ 12 and the
 * SCI are driven to.  The configuration stays the live model's: the record
 * carries pm_base, s5_slp_typ and pm_timer_32bit only so that a load into a
 * platform the guest's ACPI tables do not describe is refused.  No callback is
 * called: the caller drives the three lines to the saved levels.
 *
 * now_ns: the now_ns callback's reading at the save, and at the load.  The PM
 * timer's start is kept relative to it, so after a load at another now_ns the
 * counter reads on from what it read at the save.
 *
 * A refused load (another configuration, a pending i8042 command the controller
 * does not take data for, reserved bits in the command byte, port 0x92, 0xcf9 or
 * PM1, SCI_EN clear, a timer latch past 24 bits on a 24-bit timer) leaves *m as
 * it was. */
bool    pc_misc_save(const struct pc_misc *m, struct snap *s, uint64_t now_ns);
bool    pc_misc_load(struct pc_misc *m, struct snap *s, uint64_t now_ns);

#endif
