/* Performance monitoring as plinth's guests see it: there is none that counts.  On an
 * Intel CPUID vendor CPUID leaf 0xA reports no architectural PMU (version 0), so
 * RDPMC raises #GP for every counter (SDM Vol. 2B RDPMC) and the counter MSRs do not
 * exist.  Every AMD CPU has the four legacy counters (APM Vol. 2 §13.2.1, PERF_CTL0-3
 * and PERF_CTR0-3 at 0xc0010000-0xc0010007), which stock kernels and test programs
 * touch at boot without asking CPUID: they exist here, read zero at reset, keep what
 * is written, and never count; RDPMC reads them by ECX 0-3 (the core counter
 * extension, ECX 4-5 and 0xc0010200, stays hidden in CPUID). */
#include "vmm/exit.h"

#define VEC_GP 13
#define AMD_PERF_CTL0 0xc0010000u
#define AMD_PERF_CTR0 0xc0010004u
#define AMD_COUNTERS  4
/* PERF_CTL: EventSelect 7:0 and 35:32, UnitMask 15:8, USR, OS, Edge, INT, EN, INV,
 * CntMask 31:24, HostOnly/GuestOnly 41:40; the rest reserved (APM Vol. 2 Figure
 * 13-7).  PERF_CTR: 48 bits. */
#define AMD_PERF_CTL_VALID 0x0000030fffffffffull
#define AMD_PERF_CTR_MASK  0x0000ffffffffffffull
#define CR4_PCE (1ull << 8)

bool vmm_pmu_msr_read(struct vmm_vcpu *c, uint32_t msr, uint64_t *v, bool *handled)
{
    *handled = vmm_guest_is_amd() && msr >= AMD_PERF_CTL0 && msr < AMD_PERF_CTR0 + AMD_COUNTERS;
    if (!*handled)
        return false;
    *v = msr < AMD_PERF_CTR0 ? c->perf_ctl[msr - AMD_PERF_CTL0] : c->perf_ctr[msr - AMD_PERF_CTR0];
    return true;
}

bool vmm_pmu_msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v, bool *handled)
{
    *handled = vmm_guest_is_amd() && msr >= AMD_PERF_CTL0 && msr < AMD_PERF_CTR0 + AMD_COUNTERS;
    if (!*handled)
        return false;
    if (msr < AMD_PERF_CTR0) {
        if (v & ~AMD_PERF_CTL_VALID)
            return false;
        c->perf_ctl[msr - AMD_PERF_CTL0] = v;
    } else {
        c->perf_ctr[msr - AMD_PERF_CTR0] = v & AMD_PERF_CTR_MASK;
    }
    return true;
}

enum vmm_action vmm_exit_rdpmc(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    struct hvm_state s;
    core_vcpu_get_state(c->h, &s);
    uint32_t index = (uint32_t)s.gpr[HVM_RCX];
    unsigned cpl = (s.seg[HVM_SS].ar >> 5) & 3;
    /* #GP outside ring 0 without CR4.PCE (real mode counts as ring 0), and for a
     * counter that does not exist. */
    bool allowed = cpl == 0 || !(s.cr0 & 1) || (s.cr4 & CR4_PCE);
    if (!allowed || !vmm_guest_is_amd() || index >= AMD_COUNTERS) {
        vmm_inject_exception(c, VEC_GP, true, 0);
        return VMM_CONTINUE;
    }
    uint64_t v = c->perf_ctr[index];
    core_vcpu_set_gpr(c->h, HVM_RAX, (uint32_t)v);
    core_vcpu_set_gpr(c->h, HVM_RDX, v >> 32);
    core_vcpu_skip_insn(c->h, vmm_insn_len(c, x));
    return VMM_CONTINUE;
}
