/* The paravirtual clock Linux and other guests read the TSC's frequency and a
 * boot-relative time from: the pvclock ABI that KVM defined (Linux's
 * Documentation/virt/kvm/x86/msr.rst; "kvmclock"), offered at CPUID leaves
 * 0x40000100-0x40000101 beside plinth's own signature at 0x40000000, as Xen offers
 * its leaves above another hypervisor's.  Only the clock is offered (feature bits
 * CLOCKSOURCE2 and CLOCKSOURCE_STABLE_BIT): no hypercalls, no other PV feature.
 *
 * Why: Linux takes the TSC frequency from CPUID leaf 0x15 only on Intel; on AMD it
 * calibrates against the PIT or PM timer, which fails when every port read is a VM
 * exit (the readings come out too slow to trust, "Marking TSC unstable").  With the
 * pvclock it knows the frequency exactly on both vendors, and keeps the TSC as its
 * clocksource because the TSC is invariant. */
#ifndef PLINTH_VMM_PVCLOCK_H
#define PLINTH_VMM_PVCLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct vmm_vcpu;

#define PVCLOCK_CPUID_BASE        0x40000100u
#define PVCLOCK_CPUID_FEATURES    0x40000101u
#define MSR_PVCLOCK_WALL_CLOCK    0x4b564d00u
#define MSR_PVCLOCK_SYSTEM_TIME   0x4b564d01u

/* pvclock_vcpu_time_info's scale: ns = ((tsc delta << shift, or >> -shift) * mul) >> 32. */
struct pvclock_scale {
    uint32_t mul;
    int8_t   shift;
};
struct pvclock_scale pvclock_scale_for_khz(uint64_t tsc_khz);

/* CPUID leaves PVCLOCK_CPUID_BASE and _FEATURES; false for any other leaf. */
bool pvclock_cpuid(uint32_t leaf, uint32_t r[4]);
/* The two MSRs: *handled false for any other; the return value says whether the
 * access is valid (false: #GP). */
bool pvclock_msr_read(struct vmm_vcpu *c, uint32_t msr, uint64_t *v, bool *handled);
bool pvclock_msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v, bool *handled);

/* The guest moved this vCPU's TSC (IA32_TSC): its time info follows. */
void pvclock_tsc_written(struct vmm_vcpu *c);

#endif
