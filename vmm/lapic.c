/* Each vCPU's local APIC (vmm/dev/vlapic) wired into the monitor: its MMIO page at
 * 0xfee00000, the x2APIC and TSC-deadline MSRs, and interrupt delivery before each
 * entry, with the core asked to wake the vCPU when the timer is next due. */
#include "vmm/lapic.h"
#include "vmm/exit.h"
#include "kernel/log.h"

/* The APIC timer's input clock: 1 GHz, so one count is one nanosecond before the
 * divider (what the guest is told through CPUID leaf 0x15 once that exists). */
#define LAPIC_TIMER_HZ 1000000000ull

static void lapic_ipi(void *ctx, const struct vlapic_ipi *ipi)
{
    struct vmm_vcpu *c = ctx;
    /* One vCPU per VM for now (vm.c): an IPI to another CPU has nobody to reach.
     * Logged once per VM: a guest sending them in a loop must not flood the console. */
    if (__atomic_exchange_n(&c->vm->warned_ipi, true, __ATOMIC_RELAXED))
        return;
    log_warn("vm %s: vCPU %u sent an IPI (mode %u, vector %#x) to a vCPU that does not exist; "
             "further IPIs of this VM are dropped silently", c->vm->conf.name, c->index, ipi->mode, ipi->vector);
}

static void lapic_eoi_level(void *ctx, uint8_t vector)
{
    /* No IOAPIC is wired yet, so no level-triggered vector can be in service. */
    (void)ctx;
    (void)vector;
}

void vmm_lapic_reset(struct vmm_vcpu *c)
{
    const struct vlapic_ops ops = { lapic_ipi, lapic_eoi_level, c };
    vlapic_init(&c->lapic, c->index, false, LAPIC_TIMER_HZ, &ops);
}

static int lapic_mmio_read(void *ctx, uint64_t offset, unsigned size, uint64_t *val)
{
    struct vmm_vcpu *c = ctx;
    *val = vlapic_mmio_read(&c->lapic, offset, size, core_time_ns());
    return 0;
}

static int lapic_mmio_write(void *ctx, uint64_t offset, unsigned size, uint64_t val)
{
    struct vmm_vcpu *c = ctx;
    vlapic_mmio_write(&c->lapic, offset, size, (uint32_t)val, core_time_ns());
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
    if (msr >= 0x800 && msr <= 0x8ff)
        return vlapic_msr_read(&c->lapic, msr, v, core_time_ns());
    if (msr == MSR_TSC_DEADLINE) {
        *v = c->lapic.tsc_deadline;
        return true;
    }
    *handled = false;
    return false;
}

bool vmm_lapic_msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v, bool *handled)
{
    *handled = true;
    if (msr >= 0x800 && msr <= 0x8ff)
        return vlapic_msr_write(&c->lapic, msr, v, core_time_ns());
    if (msr == MSR_TSC_DEADLINE) {
        vlapic_set_tsc_deadline(&c->lapic, v);
        return true;
    }
    *handled = false;
    return false;
}

/* When the core must run this vCPU again for its timer: the APIC timer's next expiry,
 * or a TSC deadline converted from guest TSC ticks to the core's nanoseconds. */
static uint64_t next_deadline(struct vmm_vcpu *c)
{
    /* While the timer's last interrupt still waits in the IRR, another expiry would
     * only merge into it (an APIC holds one request per vector): no need to wake the
     * vCPU for it, which would only steal the time the guest needs to take it. */
    uint8_t vec = (uint8_t)c->lapic.lvt[1];
    if (vec >= 16 && (c->lapic.irr[vec / 32] >> (vec % 32)) & 1)
        return 0;
    uint64_t d = vlapic_next_timer_ns(&c->lapic);
    if (c->lapic.tsc_deadline && !(c->lapic.lvt[1] & (1u << 16))) {
        uint64_t tsc = vmm_guest_tsc(c), khz = core_tsc_khz();
        uint64_t ns = c->lapic.tsc_deadline > tsc && khz
                      ? (c->lapic.tsc_deadline - tsc) * 1000000ull / khz : 0;
        uint64_t at = core_time_ns() + (ns ? ns : 1);
        if (at < d)
            d = at;
    }
    return d == UINT64_MAX ? 0 : d;
}

void vmm_lapic_pre_entry(struct vmm_vcpu *c)
{
    vlapic_tick(&c->lapic, core_time_ns(), vmm_guest_tsc(c));
    int vec = vlapic_pending(&c->lapic);
    if (vec >= 0) {
        if (core_vcpu_can_inject(c->h, HVM_EVENT_EXTINT)) {
            struct hvm_event e = { .type = HVM_EVENT_EXTINT, .vector = (uint8_t)vec };
            if (core_vcpu_inject(c->h, &e))
                vlapic_ack(&c->lapic, (uint8_t)vec);
        } else {
            /* Interrupts are off in the guest: exit as soon as they are on again. */
            core_vcpu_request_window(c->h, HVM_WINDOW_INTR);
        }
    }
    core_vcpu_set_deadline(c->h, next_deadline(c));
}

bool vmm_lapic_can_wake(struct vmm_vcpu *c)
{
    vlapic_tick(&c->lapic, core_time_ns(), vmm_guest_tsc(c));
    core_vcpu_set_deadline(c->h, next_deadline(c));
    return vlapic_pending(&c->lapic) >= 0;
}
