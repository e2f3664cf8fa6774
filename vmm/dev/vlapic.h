/* A vCPU's local APIC as the guest sees it (Intel SDM Vol. 3A ch. 12): the xAPIC
 * register page and the x2APIC MSRs, priorities (TPR/PPR), IRR/ISR/TMR with EOI,
 * the timer in one-shot, periodic and TSC-deadline modes, and the ICR (fixed,
 * lowest-priority, NMI, INIT, SIPI, with shorthands).  A plain state machine: time
 * is given by the caller, and what leaves the APIC (IPIs, EOIs of level-triggered
 * vectors) goes through callbacks. */
#ifndef PLINTH_VMM_DEV_VLAPIC_H
#define PLINTH_VMM_DEV_VLAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/snap.h"

#define VLAPIC_MMIO_SIZE 0x1000
#define VLAPIC_DEFAULT_BASE 0xfee00000ull

enum vlapic_delivery { VLAPIC_FIXED = 0, VLAPIC_LOWEST = 1, VLAPIC_SMI = 2, VLAPIC_NMI = 4,
                       VLAPIC_INIT = 5, VLAPIC_SIPI = 6 };
enum vlapic_shorthand { VLAPIC_DEST = 0, VLAPIC_SELF = 1, VLAPIC_ALL = 2, VLAPIC_ALL_BUT_SELF = 3 };

struct vlapic_ipi {
    enum vlapic_delivery mode;
    enum vlapic_shorthand shorthand;
    uint8_t  vector;
    bool     logical;
    bool     level_assert;       /* INIT level de-assert (the SDM's legacy form) has this false */
    uint32_t dest;               /* APIC ID (x2APIC: 32 bits), or logical destination */
};

struct vlapic_ops {
    /* An IPI the guest wrote to the ICR, for the monitor to route (it also sends
     * VLAPIC_SELF ones back through vlapic_accept). */
    void (*ipi)(void *ctx, const struct vlapic_ipi *ipi);
    /* The guest finished a level-triggered vector: the IOAPIC clears Remote IRR. */
    void (*eoi_level)(void *ctx, uint8_t vector);
    void *ctx;
};

/* The slowest timer clock the model takes: (1 GHz / hz) << 7 times a 32-bit count
 * must fit in 64 bits. */
#define VLAPIC_TIMER_HZ_MIN 1000ull

struct vlapic {
    uint32_t id;
    bool     x2apic;             /* IA32_APIC_BASE.EXTD */
    bool     hw_enabled;         /* IA32_APIC_BASE.EN */
    uint32_t tpr, svr, ldr, dfr, esr, esr_pending;
    uint32_t irr[8], isr[8], tmr[8];
    uint32_t lvt[7];             /* CMCI, timer, thermal, perf, LINT0, LINT1, error */
    uint32_t icr_low, icr_high;
    uint32_t timer_icr, timer_dcr;
    uint64_t timer_start_ns;     /* when the current count period began */
    bool     timer_armed;
    uint64_t tsc_deadline;       /* TSC-deadline mode: 0 = disarmed */
    uint64_t timer_hz;           /* the timer's input clock before the divider; divides 1 GHz */
    struct vlapic_ops ops;
};

void vlapic_init(struct vlapic *a, uint32_t id, bool bsp_mode_x2apic, uint64_t timer_hz,
                 const struct vlapic_ops *ops);

/* xAPIC page accesses at offset (4-byte aligned, size 4); others read 0 / ignored. */
uint32_t vlapic_mmio_read(struct vlapic *a, uint64_t offset, unsigned size, uint64_t now_ns);
void     vlapic_mmio_write(struct vlapic *a, uint64_t offset, unsigned size, uint32_t value, uint64_t now_ns);
/* x2APIC MSRs 0x800-0x8ff: false means #GP (not in x2APIC mode, reserved register,
 * read of a write-only one, reserved bits set). */
bool     vlapic_msr_read(struct vlapic *a, uint32_t msr, uint64_t *value, uint64_t now_ns);
bool     vlapic_msr_write(struct vlapic *a, uint32_t msr, uint64_t value, uint64_t now_ns);
/* IA32_APIC_BASE bits EN (11) and EXTD (10): false for an invalid transition. */
bool     vlapic_set_base_mode(struct vlapic *a, bool enabled, bool x2apic);
/* IA32_TSC_DEADLINE. */
void     vlapic_set_tsc_deadline(struct vlapic *a, uint64_t tsc);

/* An interrupt arriving (from the IOAPIC, an IPI, the LAPIC's own timer). */
void     vlapic_accept(struct vlapic *a, uint8_t vector, bool level);
/* The highest vector ready for injection (above the PPR), or -1. */
int      vlapic_pending(const struct vlapic *a);
/* The vector is being injected: IRR -> ISR. */
void     vlapic_ack(struct vlapic *a, uint8_t vector);
/* Moves time forward: a due timer sets its vector (and rearms in periodic mode). */
void     vlapic_tick(struct vlapic *a, uint64_t now_ns, uint64_t tsc);
/* When the timer next fires (ns), or UINT64_MAX; TSC-deadline mode: in guest TSC. */
uint64_t vlapic_next_timer_ns(const struct vlapic *a);

/* Snapshot record "vlapic" (vmm/snap.h): the ID, the IA32_APIC_BASE mode bits,
 * every register (IRR/ISR/TMR, LVTs, ICR, ESR and the errors not yet latched),
 * the timer's programming and the clock it counts (timer_hz, so a guest that
 * calibrated it keeps its rate).  The ops stay the live model's and are not
 * called: an interrupt accepted but not injected stays in IRR.
 *
 * now_ns: the monotonic time at the save, and at the load, in the unit the
 * other calls take.  timer_start_ns is kept relative to it, so the current count
 * and the next expiry go on from the save.  tsc_deadline is a guest TSC value and
 * is kept as it is: the caller restores the guest's TSC with the vCPU, which is
 * what keeps the deadline as far away as it was.
 *
 * A refused load (x2APIC without EN, a timer clock that is 0, above 1 GHz or does
 * not divide it, reserved bits in TPR, SVR, LDR, DFR, ICR, an LVT or DCR, an LVT
 * unmasked while the APIC is software-disabled, the timer armed with no count,
 * a TSC deadline outside TSC-deadline mode) leaves *a as it was. */
bool     vlapic_save(const struct vlapic *a, struct snap *s, uint64_t now_ns);
bool     vlapic_load(struct vlapic *a, struct snap *s, uint64_t now_ns);

#endif
