/* Each vCPU's local APIC (vmm/dev/vlapic) wired into the monitor: its MMIO page at
 * 0xfee00000, the x2APIC and TSC-deadline MSRs, interrupt delivery before each
 * entry with the core asked to wake the vCPU when the timer is next due, and the
 * interrupt messages between the VM's vCPUs (IPIs, the IOAPIC's): fixed, lowest
 * priority, NMI, INIT and SIPI.
 *
 * Locking: each vCPU's lapic_lock guards its vlapic and delivery state (vm.h).  A
 * delivery takes one target's lock at a time and kicks the target after dropping
 * it; what the APIC model sends out while its lock is held (an IPI, a level EOI)
 * is kept in the vCPU's outbox and acted on once the lock is dropped, so that no
 * two vlapic locks are ever held together and the EOI callback may take the
 * platform lock (which comes before any vlapic lock). */
#include "vmm/lapic.h"
#include "vmm/platform.h"
#include "vmm/exit.h"
#include "kernel/log.h"
#include "kernel/string.h"

/* The APIC timer's input clock: 1 GHz, so one count is one nanosecond before the
 * divider (what the guest is told through CPUID leaf 0x15 once that exists). */
#define LAPIC_TIMER_HZ 1000000000ull

#define LAPIC_BROADCAST_XAPIC  0xffu
#define LAPIC_BROADCAST_X2APIC 0xffffffffu

static void lapic_eoi_level(void *ctx, uint8_t vector)
{
    /* The IOAPIC clears Remote IRR and redelivers a line still asserted. */
    struct vmm_vcpu *c = ctx;
    vmm_platform_eoi(c->vm, vector);
}

/* The vlapic's callbacks run with lapic_lock held: they only record. */
static void lapic_ipi_defer(void *ctx, const struct vlapic_ipi *ipi)
{
    struct vmm_vcpu *c = ctx;
    /* One ICR write sends one IPI, and the outbox is emptied after each access. */
    c->out_ipi = *ipi;
    c->out_ipi_valid = true;
}

static void lapic_eoi_defer(void *ctx, uint8_t vector)
{
    struct vmm_vcpu *c = ctx;
    c->out_eoi = vector;
}

static uint64_t lapic_lock(struct vmm_vcpu *c)
{
    return spin_lock_irqsave(&c->lapic_lock);
}

static void lapic_unlock(struct vmm_vcpu *c, uint64_t flags)
{
    spin_unlock_irqrestore(&c->lapic_lock, flags);
}

/* The vlapic afresh, keeping the vCPU's delivery state as it is. */
static void lapic_init_model(struct vmm_vcpu *c, bool x2apic, bool hw_enabled)
{
    const struct vlapic_ops ops = { lapic_ipi_defer, lapic_eoi_defer, c };
    vlapic_init(&c->lapic, c->index, x2apic, LAPIC_TIMER_HZ, &ops);
    c->lapic.hw_enabled = hw_enabled;
}

void vmm_lapic_reset(struct vmm_vcpu *c)
{
    uint64_t f = lapic_lock(c);
    lapic_init_model(c, false, true);
    c->nmi_pending = c->init_pending = c->sipi_pending = c->wait_sipi = false;
    c->out_ipi_valid = false;
    c->out_eoi = -1;
    lapic_unlock(c, f);
}

void vmm_lapic_wait_for_sipi(struct vmm_vcpu *c)
{
    uint64_t f = lapic_lock(c);
    c->wait_sipi = true;
    lapic_unlock(c, f);
}

/* ---- delivery ---- */

/* Whether APIC a is a destination of the message (SDM Vol. 3A §12.6.2: physical by
 * APIC ID; logical by the LDR, flat or cluster per the DFR; x2APIC logical by
 * cluster and bit, §12.12.10.2). */
static bool lapic_matches(const struct vlapic *a, bool logical, uint32_t dest)
{
    if (!a->hw_enabled)
        return false;
    if (!logical)
        return dest == LAPIC_BROADCAST_X2APIC || (dest == LAPIC_BROADCAST_XAPIC && !a->x2apic) ||
               dest == a->id;
    if (a->x2apic) {
        if (dest == LAPIC_BROADCAST_X2APIC)
            return true;
        return (dest >> 16) == (a->id >> 4) && (dest & 0xffff & (1u << (a->id & 15)));
    }
    uint8_t d = (uint8_t)dest, ldr = (uint8_t)(a->ldr >> 24);
    if ((a->dfr >> 28) == 0xf)                 /* flat model */
        return (d & ldr) != 0;
    if (d == LAPIC_BROADCAST_XAPIC)            /* cluster model */
        return true;
    return (d >> 4) == (ldr >> 4) && (d & ldr & 0xf);
}

/* Hands the message to one vCPU; true if it has something new to act on (then the
 * caller kicks it, once the lock is dropped). */
static bool lapic_accept_locked(struct vmm_vcpu *c, uint8_t vector, enum vlapic_delivery mode, bool level)
{
    switch (mode) {
    case VLAPIC_FIXED:
    case VLAPIC_LOWEST:
        /* A vCPU waiting for SIPI has its APIC software-disabled since the INIT:
         * vlapic_accept drops the vector. */
        vlapic_accept(&c->lapic, vector, level);
        return !c->wait_sipi;
    case VLAPIC_NMI:
        /* NMI is held off in the wait-for-SIPI state (SDM Vol. 3A, "MP
         * Initialization Protocol"): it is lost, as INIT discards it anyway. */
        if (c->wait_sipi)
            return false;
        c->nmi_pending = true;
        return true;
    case VLAPIC_INIT:
        c->init_pending = true;
        c->sipi_pending = false;
        return true;
    case VLAPIC_SIPI:
        /* Only a processor in wait-for-SIPI (or about to be, an INIT pending) takes
         * a SIPI; a running one ignores it (§12.6.1), as does one that has a SIPI
         * not yet acted on (the second SIPI of INIT-SIPI-SIPI). */
        if ((!c->wait_sipi && !c->init_pending) || c->sipi_pending)
            return false;
        c->sipi_pending = true;
        c->sipi_vector = vector;
        return true;
    case VLAPIC_SMI:
        return false;
    }
    return false;
}

static void lapic_deliver_mask(struct vmm_vm *m, uint32_t mask, uint8_t vector,
                               enum vlapic_delivery mode, bool level)
{
    if (mode == VLAPIC_LOWEST && mask) {
        /* Lowest priority: the APIC whose TPR is lowest, the lowest index among
         * equals (the arbitration is the model's choice, §12.6.2.4). */
        unsigned best = 0;
        uint32_t best_tpr = UINT32_MAX;
        for (unsigned i = 0; i < m->vcpu_count; i++) {
            if (!(mask & (1u << i)))
                continue;
            struct vmm_vcpu *t = &m->vcpus[i];
            uint64_t f = lapic_lock(t);
            /* One that is software-disabled or waiting for a SIPI would drop the
             * interrupt: chosen only if no other matches. */
            bool takes = !t->wait_sipi && (t->lapic.svr & (1u << 8));
            uint32_t tpr = takes ? t->lapic.tpr & 0xf0 : 0x100;
            lapic_unlock(t, f);
            if (tpr < best_tpr) {
                best_tpr = tpr;
                best = i;
            }
        }
        mask = 1u << best;
    }
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        if (!(mask & (1u << i)))
            continue;
        struct vmm_vcpu *t = &m->vcpus[i];
        uint64_t f = lapic_lock(t);
        bool kick = lapic_accept_locked(t, vector, mode, level);
        lapic_unlock(t, f);
        if (kick)
            core_vcpu_kick(t->h);
    }
}

static uint32_t lapic_match_mask(struct vmm_vm *m, bool logical, uint32_t dest)
{
    uint32_t mask = 0;
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vmm_vcpu *t = &m->vcpus[i];
        uint64_t f = lapic_lock(t);
        if (lapic_matches(&t->lapic, logical, dest))
            mask |= 1u << i;
        lapic_unlock(t, f);
    }
    return mask;
}

void vmm_lapic_deliver(struct vmm_vm *m, uint8_t vector, enum vlapic_delivery mode, bool logical,
                       uint32_t dest, bool level)
{
    lapic_deliver_mask(m, lapic_match_mask(m, logical, dest), vector, mode, level);
}

/* An IPI the guest wrote to vCPU c's ICR (its lock no longer held). */
static void lapic_ipi(struct vmm_vcpu *c, const struct vlapic_ipi *ipi)
{
    struct vmm_vm *m = c->vm;
    /* INIT level de-assert only synchronises arbitration IDs, which Pentium 4 and
     * later processors do not support (§12.6.1): nothing happens. */
    if (ipi->mode == VLAPIC_INIT && !ipi->level_assert)
        return;
    uint32_t all = (m->vcpu_count >= 32 ? 0 : 1u << m->vcpu_count) - 1, mask;
    switch (ipi->shorthand) {
    case VLAPIC_SELF:
        mask = 1u << c->index;
        break;
    case VLAPIC_ALL:
        mask = all;
        break;
    case VLAPIC_ALL_BUT_SELF:
        mask = all & ~(1u << c->index);
        break;
    default:
        mask = lapic_match_mask(m, ipi->logical, ipi->dest);
        if (!mask) {
            /* Logged once per VM: a guest probing absent CPUs in a loop must not
             * flood the console. */
            if (!__atomic_exchange_n(&m->warned_ipi, true, __ATOMIC_RELAXED))
                log_warn("vm %s: vCPU %u sent an IPI (mode %u, vector %#x) to %s destination %#x, "
                         "which no vCPU of the VM matches; further such IPIs are dropped silently",
                         m->conf.name, c->index, ipi->mode, ipi->vector,
                         ipi->logical ? "logical" : "physical", ipi->dest);
            return;
        }
        break;
    }
    lapic_deliver_mask(m, mask, ipi->vector, ipi->mode, false);
}

/* After each access to vCPU c's APIC: what it sent while locked. */
static void lapic_flush(struct vmm_vcpu *c)
{
    if (c->out_ipi_valid) {
        struct vlapic_ipi ipi = c->out_ipi;
        c->out_ipi_valid = false;
        lapic_ipi(c, &ipi);
    }
    if (c->out_eoi >= 0) {
        uint8_t v = (uint8_t)c->out_eoi;
        c->out_eoi = -1;
        lapic_eoi_level(c, v);
    }
}

/* ---- the guest's accesses ---- */

static int lapic_mmio_read(void *ctx, uint64_t offset, unsigned size, uint64_t *val)
{
    struct vmm_vcpu *c = ctx;
    uint64_t f = lapic_lock(c);
    *val = vlapic_mmio_read(&c->lapic, offset, size, core_time_ns());
    lapic_unlock(c, f);
    return 0;
}

static int lapic_mmio_write(void *ctx, uint64_t offset, unsigned size, uint64_t val)
{
    struct vmm_vcpu *c = ctx;
    uint64_t f = lapic_lock(c);
    vlapic_mmio_write(&c->lapic, offset, size, (uint32_t)val, core_time_ns());
    lapic_unlock(c, f);
    lapic_flush(c);
    return 0;
}

bool vmm_lapic_attach(struct vmm_vm *m)
{
    return mmio_bus_claim(&m->mmio, VLAPIC_DEFAULT_BASE, VLAPIC_MMIO_SIZE, lapic_mmio_read,
                          lapic_mmio_write, NULL);
}

bool vmm_lapic_msr_read(struct vmm_vcpu *c, uint32_t msr, uint64_t *v, bool *handled)
{
    *handled = true;
    bool ok = false;
    uint64_t f = lapic_lock(c);
    if (msr >= 0x800 && msr <= 0x8ff) {
        ok = vlapic_msr_read(&c->lapic, msr, v, core_time_ns());
    } else if (msr == MSR_TSC_DEADLINE) {
        *v = c->lapic.tsc_deadline;
        ok = true;
    } else {
        *handled = false;
    }
    lapic_unlock(c, f);
    return ok;
}

bool vmm_lapic_msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v, bool *handled)
{
    *handled = true;
    bool ok = false;
    uint64_t f = lapic_lock(c);
    if (msr >= 0x800 && msr <= 0x8ff) {
        ok = vlapic_msr_write(&c->lapic, msr, v, core_time_ns());
    } else if (msr == MSR_TSC_DEADLINE) {
        vlapic_set_tsc_deadline(&c->lapic, v);
        ok = true;
    } else {
        *handled = false;
    }
    lapic_unlock(c, f);
    lapic_flush(c);
    return ok;
}

bool vmm_lapic_set_base_mode(struct vmm_vcpu *c, bool enabled, bool x2apic)
{
    uint64_t f = lapic_lock(c);
    bool ok = vlapic_set_base_mode(&c->lapic, enabled, x2apic);
    lapic_unlock(c, f);
    return ok;
}

/* ---- before each entry ---- */

/* When the core must run this vCPU again for its timer: the APIC timer's next expiry,
 * or a TSC deadline converted from guest TSC ticks to the core's nanoseconds.  Called
 * without lapic_lock (it takes it for the APIC's part only): what is merged in after
 * may take the platform lock, which comes before any vlapic lock. */
static uint64_t next_deadline(struct vmm_vcpu *c)
{
    uint64_t f = lapic_lock(c);
    /* While the timer's last interrupt still waits in the IRR, another expiry would
     * only merge into it (an APIC holds one request per vector): no need to wake the
     * vCPU for it, which would only steal the time the guest needs to take it. */
    uint8_t vec = (uint8_t)c->lapic.lvt[1];
    bool timer_waiting = vec >= 16 && (c->lapic.irr[vec / 32] >> (vec % 32)) & 1;
    uint64_t d = timer_waiting ? UINT64_MAX : vlapic_next_timer_ns(&c->lapic);
    if (!timer_waiting && c->lapic.tsc_deadline && !(c->lapic.lvt[1] & (1u << 16))) {
        uint64_t tsc = vmm_guest_tsc(c), khz = core_tsc_khz();
        /* Ticks to ns in two parts, so that a deadline far in the future cannot wrap
         * to a near one (it is capped at centuries instead). */
        uint64_t ticks = c->lapic.tsc_deadline > tsc && khz ? c->lapic.tsc_deadline - tsc : 0;
        uint64_t whole = khz ? ticks / khz : 0;
        uint64_t ns = whole >= UINT64_MAX / 4000000ull ? UINT64_MAX / 4
                      : whole * 1000000ull + (ticks % (khz ? khz : 1)) * 1000000ull / (khz ? khz : 1);
        uint64_t at = core_time_ns() + (ns ? ns : 1);
        if (at < d)
            d = at;
    }
    lapic_unlock(c, f);
    /* vCPU 0 also runs the platform's timers (PIT, RTC, PM timer). */
    uint64_t p = vmm_platform_next_event(c);
    if (p && p < d)
        d = p;
    return d == UINT64_MAX ? 0 : d;
}

/* The state a start-up IPI with vector v leaves: real mode at v << 8 : 0 (SDM Vol.
 * 3A §12.6.1 for CS:IP; the rest as after INIT, "Processor State After Reset":
 * EDX the processor signature, caches and paging off, PAT and MTRRs kept). */
static void lapic_sipi_state(struct vmm_vcpu *c, uint8_t v)
{
    struct hvm_state s;
    core_vcpu_get_state(c->h, &s);
    uint64_t pat = s.pat;
    memset(&s, 0, sizeof s);
    s.pat = pat;
    s.rflags = 0x2;
    s.cr0 = 0x10;                                   /* ET */
    s.dr7 = 0x400;
    s.gpr[HVM_RDX] = 0x600;                         /* a family-6 signature */
    s.rip = 0;
    s.seg[HVM_CS] = (struct hvm_segment){ .selector = (uint16_t)(v << 8), .base = (uint64_t)v << 12,
                                          .limit = 0xffff, .ar = 0x9b };
    for (int i = HVM_ES; i <= HVM_GS; i++)
        if (i != HVM_CS)
            s.seg[i] = (struct hvm_segment){ .limit = 0xffff, .ar = 0x93 };
    s.seg[HVM_LDTR] = (struct hvm_segment){ .ar = HVM_AR_UNUSABLE };
    s.seg[HVM_TR] = (struct hvm_segment){ .limit = 0xffff, .ar = 0x8b };
    s.gdtr.limit = 0xffff;
    s.idtr.limit = 0xffff;
    core_vcpu_set_state(c->h, &s);
}

bool vmm_lapic_pre_entry(struct vmm_vcpu *c)
{
    if (!vmm_vm_pre_entry(c))
        return false;
    bool reset_bsp = false, init = false, start = false, waiting, nmi;
    uint8_t sipi = 0;
    uint64_t f = lapic_lock(c);
    if (c->init_pending) {
        c->init_pending = false;
        if (c->index == 0) {
            /* INIT sends the BSP to the reset vector, into firmware that is not
             * there: the equivalent here is the whole VM's reset. */
            reset_bsp = true;
        } else {
            /* INIT resets the APIC but keeps its ID and mode (§12.4.7.3, §12.12.5.1). */
            lapic_init_model(c, c->lapic.x2apic, c->lapic.hw_enabled);
            c->nmi_pending = false;
            c->wait_sipi = true;
            init = true;
        }
    }
    if (c->wait_sipi && c->sipi_pending) {
        c->wait_sipi = false;
        c->sipi_pending = false;
        sipi = c->sipi_vector;
        start = true;
    }
    waiting = c->wait_sipi;
    nmi = c->nmi_pending && !waiting;
    lapic_unlock(c, f);
    if (reset_bsp) {
        /* A VM stopped instead (the reset loops): this vCPU must not enter again. */
        if (vmm_vm_reset(c, "INIT to the bootstrap processor") == VMM_STOP) {
            core_vcpu_stop(c->h);
            core_vcpu_block(c->h);
            return false;
        }
        if (!vmm_vm_pre_entry(c))
            return false;
    }
    if (init) {
        /* Nothing of the interrupted run (a queued event, NMI blocking, an
         * interrupt shadow) may survive into the next start. */
        core_vcpu_reset_private(c->h);
    }
    if (start)
        lapic_sipi_state(c, sipi);
    if (waiting) {
        core_vcpu_set_deadline(c->h, 0);
        /* The vCPUs that halted for good looked while this one still ran. */
        if (init && vmm_vm_ended_at_init(c))
            core_vcpu_stop(c->h);
        core_vcpu_block(c->h);
        return false;
    }

    f = lapic_lock(c);
    vlapic_tick(&c->lapic, core_time_ns(), vmm_guest_tsc(c));
    int vec = vlapic_pending(&c->lapic);
    bool injected_nmi = false;
    if (nmi) {
        if (core_vcpu_can_inject(c->h, HVM_EVENT_NMI)) {
            struct hvm_event e = { .type = HVM_EVENT_NMI, .vector = 2 };
            if (core_vcpu_inject(c->h, &e)) {
                __atomic_add_fetch(&c->vm->injected, 1, __ATOMIC_RELAXED);
                c->nmi_pending = false;
                injected_nmi = true;
            }
        } else {
            /* NMIs are blocked (one is being handled): exit at its IRET. */
            core_vcpu_request_window(c->h, HVM_WINDOW_NMI);
        }
    }
    if (vec >= 0) {
        if (!injected_nmi && core_vcpu_can_inject(c->h, HVM_EVENT_EXTINT)) {
            struct hvm_event e = { .type = HVM_EVENT_EXTINT, .vector = (uint8_t)vec };
            if (core_vcpu_inject(c->h, &e)) {
                __atomic_add_fetch(&c->vm->injected, 1, __ATOMIC_RELAXED);
                vlapic_ack(&c->lapic, (uint8_t)vec);
            }
        } else {
            /* Interrupts are off in the guest (or an NMI goes in first): exit as
             * soon as they are on again. */
            core_vcpu_request_window(c->h, HVM_WINDOW_INTR);
        }
    }
    lapic_unlock(c, f);
    core_vcpu_set_deadline(c->h, next_deadline(c));
    return true;
}

bool vmm_lapic_can_wake_masked(struct vmm_vcpu *c)
{
    uint64_t f = lapic_lock(c);
    bool wake = c->nmi_pending || c->init_pending || c->sipi_pending;
    lapic_unlock(c, f);
    return wake || __atomic_load_n(&c->park, __ATOMIC_ACQUIRE);
}

bool vmm_lapic_can_wake(struct vmm_vcpu *c)
{
    uint64_t f = lapic_lock(c);
    vlapic_tick(&c->lapic, core_time_ns(), vmm_guest_tsc(c));
    bool wake = vlapic_pending(&c->lapic) >= 0 || c->nmi_pending || c->init_pending || c->sipi_pending;
    lapic_unlock(c, f);
    core_vcpu_set_deadline(c->h, next_deadline(c));
    return wake || __atomic_load_n(&c->park, __ATOMIC_ACQUIRE);
}
