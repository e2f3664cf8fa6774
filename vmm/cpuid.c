/* The CPUID a guest sees: the host's, filtered to what plinth actually provides
 * (SDM Vol. 2A, CPUID), with plinth's own hypervisor leaves at 0x40000000. */
#include "vmm/exit.h"
#include "kernel/string.h"

#define LEAF_MAX_BASIC    0xd
#define LEAF_MAX_EXT      0x80000008u
#define LEAF_HV_BASE      0x40000000u
#define LEAF_HV_MAX       0x40000001u

/* CPUID.1 bits (SDM Vol. 2A Table 3-10/3-11). */
#define C1_ECX_MONITOR  (1u << 3)
#define C1_ECX_DSCPL    (1u << 4)
#define C1_ECX_VMX      (1u << 5)
#define C1_ECX_SMX      (1u << 6)
#define C1_ECX_EST      (1u << 7)
#define C1_ECX_TM2      (1u << 8)
#define C1_ECX_PDCM     (1u << 15)
#define C1_ECX_DTES64   (1u << 2)
#define C1_ECX_X2APIC   (1u << 21)
#define C1_ECX_TSC_DL   (1u << 24)
#define C1_ECX_OSXSAVE  (1u << 27)
#define C1_ECX_HYPERVISOR (1u << 31)
#define C1_EDX_APIC     (1u << 9)
#define C1_EDX_MTRR     (1u << 12)
#define C1_EDX_MCE      (1u << 7)
#define C1_EDX_MCA      (1u << 14)
#define C1_EDX_DS       (1u << 21)
#define C1_EDX_ACPI     (1u << 22)
#define C1_EDX_HTT      (1u << 28)
#define C1_EDX_TM       (1u << 29)
#define C1_EDX_PBE      (1u << 31)
/* CPUID.7.0 */
#define C7_EBX_TSC_ADJ  (1u << 1)
#define C7_EBX_SGX      (1u << 2)
#define C7_EBX_MPX      (1u << 14)
#define C7_EBX_PT       (1u << 25)
#define C7_ECX_WAITPKG  (1u << 5)
/* Features whose MSRs plinth does not emulate (SPEC_CTRL, PRED_CMD, FLUSH_CMD,
 * ARCH_CAPABILITIES, CORE_CAPABILITIES, SSBD): shown, they would send guests to
 * MSRs that #GP. */
#define C7_EDX_UNEMULATED ((1u << 26) | (1u << 27) | (1u << 28) | (1u << 29) | (1u << 30) | (1u << 31))
/* CPUID.80000001 */
#define E1_ECX_SVM      (1u << 2)
#define E1_ECX_SKINIT   (1u << 12)

void vmm_cpuid(struct vmm_vcpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    uint32_t host0[4];
    memset(r, 0, 4 * sizeof r[0]);
    if (leaf >= LEAF_HV_BASE && leaf < 0x50000000u) {
        if (leaf == LEAF_HV_BASE) {
            /* Max hypervisor leaf and the 12-byte signature "plinthplinth". */
            r[0] = LEAF_HV_MAX;
            memcpy(&r[1], "plin", 4);
            memcpy(&r[2], "thpl", 4);
            memcpy(&r[3], "inth", 4);
        }
        return;
    }
    if (leaf >= 0x80000000u) {
        core_host_cpuid(0x80000000u, 0, host0);
        uint32_t max = host0[0] < LEAF_MAX_EXT ? host0[0] : LEAF_MAX_EXT;
        if (leaf > max)
            return;
        core_host_cpuid(leaf, sub, r);
        if (leaf == 0x80000000u)
            r[0] = max;
        if (leaf == 0x80000001u)
            r[2] &= ~(E1_ECX_SVM | E1_ECX_SKINIT);
        return;
    }
    core_host_cpuid(0, 0, host0);
    uint32_t max = host0[0] < LEAF_MAX_BASIC ? host0[0] : LEAF_MAX_BASIC;
    if (leaf > max)
        return;
    core_host_cpuid(leaf, sub, r);
    switch (leaf) {
    case 0:
        r[0] = max;
        break;
    case 1:
        /* Hidden: nested virtualization, MONITOR/MWAIT (intercepted as #UD), thermal/
         * power and debug-store features plinth does not virtualize.  Shown: the
         * modelled local APIC (x2APIC and TSC-deadline capable; the APIC flag follows
         * IA32_APIC_BASE.EN as on hardware) and "running on a hypervisor". */
        r[2] &= ~(C1_ECX_MONITOR | C1_ECX_DSCPL | C1_ECX_VMX | C1_ECX_SMX | C1_ECX_EST | C1_ECX_TM2 |
                  C1_ECX_PDCM | C1_ECX_DTES64 | C1_ECX_OSXSAVE);
        r[2] |= C1_ECX_HYPERVISOR | C1_ECX_X2APIC | C1_ECX_TSC_DL;
        r[3] &= ~(C1_EDX_APIC | C1_EDX_DS | C1_EDX_ACPI | C1_EDX_TM | C1_EDX_PBE | C1_EDX_HTT |
                  C1_EDX_MCE | C1_EDX_MCA);
        if (c->lapic.hw_enabled)
            r[3] |= C1_EDX_APIC;
        /* EBX: initial APIC ID 31:24 = vCPU index, logical count 23:16. */
        r[1] = (r[1] & 0x0000ffffu) | (c->index << 24) | ((uint32_t)c->vm->vcpu_count << 16);
        if (c->vm->vcpu_count > 1)
            r[3] |= C1_EDX_HTT;
        {
            /* OSXSAVE mirrors the guest's own CR4.OSXSAVE. */
            struct hvm_state s;
            core_vcpu_get_state(c->h, &s);
            if (s.cr4 & (1u << 18))
                r[2] |= C1_ECX_OSXSAVE;
        }
        break;
    case 4:
        /* Cache topology: one core per package as far as the guest knows. */
        r[0] &= 0x03ffffffu;
        break;
    case 6:  /* thermal and power management: none */
    case 0xa: /* performance monitoring: none */
    case 0xb: /* extended topology: not modelled */
        memset(r, 0, 4 * sizeof r[0]);
        break;
    case 7:
        if (sub == 0) {
            r[0] = 0;
            r[1] &= ~(C7_EBX_TSC_ADJ | C7_EBX_SGX | C7_EBX_MPX | C7_EBX_PT);
            r[2] &= ~C7_ECX_WAITPKG;
            r[3] &= ~C7_EDX_UNEMULATED;
        } else {
            memset(r, 0, 4 * sizeof r[0]);
        }
        break;
    case 0xd: {
        /* XSAVE: only the components guests may enable (x87, SSE, AVX). */
        uint64_t mask = core_guest_xcr0_mask();
        if (sub == 0) {
            r[0] = (uint32_t)mask;
            r[3] = (uint32_t)(mask >> 32);
        } else if (sub == 1) {
            r[0] &= 0x1;           /* XSAVEOPT only: no XSAVES/XSAVEC state tracking */
            r[1] = r[2] = r[3] = 0;
        } else if (sub >= 2 && (sub >= 64 || !(mask & (1ull << sub)))) {
            memset(r, 0, 4 * sizeof r[0]);
        }
        break;
    }
    default:
        break;
    }
}

enum vmm_action vmm_exit_cpuid(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    uint32_t r[4];
    uint32_t leaf = (uint32_t)core_vcpu_get_gpr(c->h, HVM_RAX);
    uint32_t sub = (uint32_t)core_vcpu_get_gpr(c->h, HVM_RCX);
    vmm_cpuid(c, leaf, sub, r);
    /* CPUID writes the 32-bit registers, zeroing bits 63:32 of each. */
    core_vcpu_set_gpr(c->h, HVM_RAX, r[0]);
    core_vcpu_set_gpr(c->h, HVM_RBX, r[1]);
    core_vcpu_set_gpr(c->h, HVM_RCX, r[2]);
    core_vcpu_set_gpr(c->h, HVM_RDX, r[3]);
    core_vcpu_skip_insn(c->h, vmm_insn_len(c, x));
    return VMM_CONTINUE;
}
