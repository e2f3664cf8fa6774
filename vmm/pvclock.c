#include "vmm/pvclock.h"
#include "vmm/vm.h"
#include "kernel/string.h"

/* Feature bits of leaf 0x40000101 EAX (Linux's Documentation/virt/kvm/x86/cpuid.rst). */
#define PV_FEATURE_CLOCKSOURCE2  (1u << 3)
#define PV_FEATURE_STABLE_BIT    (1u << 24)
/* pvclock_vcpu_time_info.flags: the TSC is synchronized and stable across vCPUs. */
#define PVCLOCK_TSC_STABLE       0x01
#define PVCLOCK_ENABLE           1ull
#define PVCLOCK_TIME_INFO_SIZE   32
#define PVCLOCK_WALL_CLOCK_SIZE  12

struct pvclock_scale pvclock_scale_for_khz(uint64_t khz)
{
    /* ns per tick = 1e6 / khz, as mul / 2^32 scaled by 2^shift, with mul in
     * [2^31, 2^32) for the most precision. */
    struct pvclock_scale s = { 0, 0 };
    if (!khz)
        return s;
    int shift = 0;
    uint64_t mul = (1000000ull << 32) / khz;
    while (mul >= (1ull << 32)) {
        shift++;
        mul = ((1000000ull << 32) >> shift) / khz;
    }
    while (mul < (1ull << 31) && shift > -31) {
        shift--;
        mul = (1000000ull << (32 - shift)) / khz;
    }
    s.mul = (uint32_t)mul;
    s.shift = (int8_t)shift;
    return s;
}

bool pvclock_cpuid(uint32_t leaf, uint32_t r[4])
{
    if (leaf == PVCLOCK_CPUID_BASE) {
        r[0] = PVCLOCK_CPUID_FEATURES;
        memcpy(&r[1], "KVMKVMKVM\0\0\0", 12);
        return true;
    }
    if (leaf == PVCLOCK_CPUID_FEATURES) {
        r[0] = PV_FEATURE_CLOCKSOURCE2 | PV_FEATURE_STABLE_BIT;
        r[1] = r[2] = r[3] = 0;
        return true;
    }
    return false;
}

static void pv_put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void pv_put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint32_t pv_get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint8_t *guest_struct(struct vmm_vm *m, uint64_t gpa, uint64_t size)
{
    if (gpa > m->ram_size || size > m->ram_size - gpa)
        return NULL;
    return m->ram + gpa;
}

/* Guest TSC ticks to nanoseconds, as the guest computes it from the time info. */
static uint64_t scale_ticks(uint64_t ticks, struct pvclock_scale s)
{
    ticks = s.shift < 0 ? ticks >> -s.shift : ticks << s.shift;
    return (uint64_t)(((unsigned __int128)ticks * s.mul) >> 32);
}

/* The VM's boot-relative time at guest TSC tsc: the host ticks since the boot
 * (the VM's TSC offset was minus the host TSC then), scaled.  Computed from the TSC
 * alone, every vCPU's time info agrees exactly (they share one TSC), even after a
 * guest moved its own TSC with a write to IA32_TSC. */
static uint64_t system_time(struct vmm_vcpu *c, uint64_t tsc, struct pvclock_scale s)
{
    return scale_ticks(tsc - (uint64_t)c->tsc_offset + (uint64_t)c->vm->tsc_offset, s);
}

/* The vCPU's time info: system time 0 at the guest TSC the VM booted with.  The TSC
 * is invariant, so this stays valid; the version is bumped odd-then-even around the
 * update as the ABI asks. */
static void write_time_info(struct vmm_vcpu *c, uint8_t *p)
{
    struct pvclock_scale s = pvclock_scale_for_khz(core_tsc_khz());
    uint32_t version = pv_get32(p);
    pv_put32(p, version | 1);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    /* One origin for the whole VM, its boot: every vCPU's structure holds the same
     * values, so no rounding can make two vCPUs disagree (the stable flag tells
     * Linux it need not guard against that). */
    pv_put64(p + 8, (uint64_t)(c->tsc_offset - c->vm->tsc_offset));
    pv_put64(p + 16, 0);
    pv_put32(p + 24, s.mul);
    p[28] = (uint8_t)s.shift;
    p[29] = PVCLOCK_TSC_STABLE;
    p[30] = p[31] = 0;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    pv_put32(p, (version | 1) + 1);
}

/* Wall-clock time at the VM's boot (system time 0), as the ABI defines it. */
static void write_wall_clock(struct vmm_vcpu *c, uint8_t *p)
{
    uint64_t sec;
    uint32_t nsec;
    core_wall_clock(&sec, &nsec);
    uint64_t since = system_time(c, vmm_guest_tsc(c), pvclock_scale_for_khz(core_tsc_khz()));
    uint64_t wall = sec * 1000000000ull + nsec - since;
    uint32_t version = pv_get32(p);
    pv_put32(p, (version | 1));
    pv_put32(p + 4, (uint32_t)(wall / 1000000000ull));
    pv_put32(p + 8, (uint32_t)(wall % 1000000000ull));
    pv_put32(p, (version | 1) + 1);
}

bool pvclock_msr_read(struct vmm_vcpu *c, uint32_t msr, uint64_t *v, bool *handled)
{
    *handled = true;
    if (msr == MSR_PVCLOCK_SYSTEM_TIME) {
        *v = c->pvclock_msr;
        return true;
    }
    if (msr == MSR_PVCLOCK_WALL_CLOCK) {
        *v = c->vm->pvclock_wall_msr;
        return true;
    }
    *handled = false;
    return false;
}

bool pvclock_msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v, bool *handled)
{
    *handled = true;
    if (msr == MSR_PVCLOCK_SYSTEM_TIME) {
        if (!(v & PVCLOCK_ENABLE)) {
            c->pvclock_msr = v;
            return true;
        }
        /* The structure must lie in the VM's RAM, naturally aligned. */
        uint64_t gpa = v & ~PVCLOCK_ENABLE;
        uint8_t *p = (gpa & 31) ? NULL : guest_struct(c->vm, gpa, PVCLOCK_TIME_INFO_SIZE);
        if (!p)
            return false;
        c->pvclock_msr = v;
        write_time_info(c, p);
        return true;
    }
    if (msr == MSR_PVCLOCK_WALL_CLOCK) {
        uint8_t *p = (v & 3) ? NULL : guest_struct(c->vm, v, PVCLOCK_WALL_CLOCK_SIZE);
        if (!p)
            return false;
        c->vm->pvclock_wall_msr = v;
        write_wall_clock(c, p);
        return true;
    }
    *handled = false;
    return false;
}

void pvclock_tsc_written(struct vmm_vcpu *c)
{
    if (!(c->pvclock_msr & PVCLOCK_ENABLE))
        return;
    uint8_t *p = guest_struct(c->vm, c->pvclock_msr & ~PVCLOCK_ENABLE, PVCLOCK_TIME_INFO_SIZE);
    if (p)
        write_time_info(c, p);
}
