/* The MSRs a guest may use, virtualized by the monitor.  Everything else raises
 * #GP, as reading a non-existent MSR does on hardware, and is logged once per MSR for
 * the first VMM_MSR_WARN_MAX of them per VM, then counted only, so a guest that probes
 * many does not flood the console. */
#include "vmm/exit.h"
#include "vmm/lapic.h"
#include "vmm/pvclock.h"
#include "kernel/log.h"

#define VEC_GP 13

/* Architectural MSR numbers (SDM Vol. 4, Table 2-2). */
#define MSR_TSC              0x10
#define MSR_PLATFORM_ID      0x17
#define MSR_APIC_BASE        0x1b
#define MSR_FEATURE_CONTROL  0x3a
/* Machine-check global registers (SDM Vol. 3B §17.3.1): no banks, nothing to report. */
#define MSR_MCG_CAP          0x179
#define MSR_MCG_STATUS       0x17a
#define MSR_BIOS_SIGN_ID     0x8b
#define MSR_MTRRCAP          0xfe
#define MSR_MISC_ENABLE      0x1a0
/* IA32_MISC_ENABLE (SDM Vol. 4 Table 2-2): read/write fast strings 0, automatic
 * thermal control 3, EIST 16, MONITOR FSM 18, limit CPUID maxval 22, xTPR message
 * disable 23, XD bit disable 34; read-only performance monitoring available 7 (no
 * PMU: 0), BTS unavailable 11, PEBS unavailable 12; the rest reserved.  Kept, with no
 * effect on the CPUID view. */
#define MISC_ENABLE_RW       ((1ull << 0) | (1ull << 3) | (1ull << 16) | (1ull << 18) | (1ull << 22) | \
                              (1ull << 23) | (1ull << 34))
#define MISC_ENABLE_RO       ((1ull << 7) | (1ull << 11) | (1ull << 12))
#define MISC_ENABLE_RESET    ((1ull << 0) | (1ull << 11) | (1ull << 12))
/* IA32_XSS: supervisor state components of XSAVES; plinth offers none. */
#define MSR_XSS              0xda0
#define MSR_TSC_AUX          0xc0000103
#define MSR_MTRR_PHYS_FIRST  0x200
#define MSR_MTRR_PHYS_LAST   0x20f
#define MSR_MTRR_FIX64K      0x250
#define MSR_MTRR_FIX16K_80   0x258
#define MSR_MTRR_FIX16K_A0   0x259
#define MSR_MTRR_FIX4K_FIRST 0x268
#define MSR_MTRR_FIX4K_LAST  0x26f
#define MSR_PAT              0x277
#define MSR_MTRR_DEF_TYPE    0x2ff
#define MSR_EFER             0xc0000080
/* AMD's system configuration and hardware configuration registers (APM Vol. 2
 * §7.9.1, BKDG "MSRC001_0010/0015"): Linux reads SYSCFG unconditionally on AMD
 * while setting up MTRRs.  Guests see them with every optional behaviour off. */
#define MSR_AMD_SYSCFG       0xc0010010
#define MSR_AMD_HWCR         0xc0010015
/* K8's interrupt-pending message register: Linux reads it on family 0xf parts to
 * see whether C1E is enabled (none here). */
#define MSR_AMD_INT_PENDING  0xc0010055

#define APIC_BASE_DEFAULT    0xfee00000ull
#define APIC_BASE_BSP        (1ull << 8)
#define APIC_BASE_ENABLE     (1ull << 11)
#define APIC_BASE_EXTD       (1ull << 10)

/* EFER bits a guest may set: SCE, LME, NXE (LMA is the CPU's to set). */
#define EFER_GUEST_WRITABLE  ((1ull << 0) | (1ull << 8) | (1ull << 11))
#define EFER_LMA             (1ull << 10)

void vmm_vcpu_reset_msrs(struct vmm_vcpu *c)
{
    for (int i = 0; i < 16; i++)
        c->mtrr_var[i] = 0;
    for (int i = 0; i < 11; i++)
        c->mtrr_fixed[i] = 0;
    c->mtrr_def = 0;
    c->apic_base = APIC_BASE_DEFAULT | APIC_BASE_ENABLE | (c->index == 0 ? APIC_BASE_BSP : 0);
    c->pvclock_msr = 0;
    c->misc_enable = MISC_ENABLE_RESET;
    for (int i = 0; i < 4; i++)
        c->perf_ctl[i] = c->perf_ctr[i] = 0;
    if (c->index == 0)
        c->vm->pvclock_wall_msr = 0;
}

static int fixed_index(uint32_t msr)
{
    if (msr == MSR_MTRR_FIX64K) return 0;
    if (msr == MSR_MTRR_FIX16K_80) return 1;
    if (msr == MSR_MTRR_FIX16K_A0) return 2;
    if (msr >= MSR_MTRR_FIX4K_FIRST && msr <= MSR_MTRR_FIX4K_LAST) return 3 + (int)(msr - MSR_MTRR_FIX4K_FIRST);
    return -1;
}

/* A memory type byte is valid if it is UC, WC, WT, WP or WB (and for PAT also UC-). */
static bool types_valid(uint64_t v, bool pat)
{
    for (int i = 0; i < 8; i++) {
        uint8_t t = (uint8_t)(v >> (8 * i));
        if (!(t == 0 || t == 1 || t == 4 || t == 5 || t == 6 || (pat && t == 7)))
            return false;
    }
    return true;
}

static void warn_once(struct vmm_vcpu *c, uint32_t msr, bool write)
{
    struct vmm_vm *m = c->vm;
    uint64_t key = (uint64_t)msr << 1 | write;
    uint64_t flags = spin_lock_irqsave(&m->lock);
    bool seen = false, full = false;
    for (unsigned i = 0; i < m->warned_msr_count; i++)
        seen |= m->warned_msr[i] == key;
    if (!seen && m->warned_msr_count < VMM_MSR_WARN_MAX)
        m->warned_msr[m->warned_msr_count++] = key;
    else if (!seen)
        full = m->unlogged_msr++ == 0;
    spin_unlock_irqrestore(&m->lock, flags);
    if (full)
        log_warn("vm %s: %s of MSR %#x, which plinth does not virtualize: #GP injected; this VM has touched "
                 "%u such MSRs, further ones are counted, not logged", m->conf.name, write ? "write" : "read",
                 msr, VMM_MSR_WARN_MAX);
    else if (!seen && !m->unlogged_msr)
        log_warn("vm %s: %s of MSR %#x, which plinth does not virtualize: #GP injected",
                 m->conf.name, write ? "write" : "read", msr);
}

enum msr_result { MSR_OK, MSR_UNKNOWN, MSR_BAD_VALUE };

/* MSR_UNKNOWN for an MSR plinth does not virtualize (logged once), MSR_BAD_VALUE for
 * a value the hardware would refuse (not logged: a guest's own mistake); both #GP. */
static enum msr_result msr_read(struct vmm_vcpu *c, uint32_t msr, uint64_t *v)
{
    struct hvm_state s;
    int fi = fixed_index(msr);
    switch (msr) {
    case MSR_TSC:
        /* The same clock RDTSC reads: the host TSC plus this vCPU's offset. */
        *v = vmm_guest_tsc(c);
        return MSR_OK;
    case MSR_PLATFORM_ID:
    case MSR_BIOS_SIGN_ID:
    case MSR_AMD_SYSCFG:
    case MSR_AMD_HWCR:
    case MSR_AMD_INT_PENDING:
    case MSR_MCG_CAP:
    case MSR_MCG_STATUS:
        *v = 0;
        return MSR_OK;
    case MSR_APIC_BASE:
        /* EN and EXTD as the APIC model has them (SDM Vol. 3A §12.12.1). */
        *v = (c->apic_base & ~(APIC_BASE_ENABLE | APIC_BASE_EXTD)) |
             (c->lapic.hw_enabled ? APIC_BASE_ENABLE : 0) | (c->lapic.x2apic ? APIC_BASE_EXTD : 0);
        return MSR_OK;
    case MSR_FEATURE_CONTROL:
        /* Locked with VMX off: guests see no VT-x to enable. */
        *v = 1;
        return MSR_OK;
    case MSR_MTRRCAP:
        /* 8 variable ranges, fixed ranges, write-combining (SDM Vol. 3A §13.11.1). */
        *v = 8 | (1u << 8) | (1u << 10);
        return MSR_OK;
    case MSR_MISC_ENABLE:
        /* Intel's: AMD CPUs have no such MSR. */
        if (vmm_guest_is_amd())
            return MSR_UNKNOWN;
        *v = c->misc_enable;
        return MSR_OK;
    case MSR_XSS:
        if (!core_guest_has(CORE_GUEST_XSAVES))
            return MSR_UNKNOWN;
        *v = 0;
        return MSR_OK;
    case MSR_MTRR_DEF_TYPE:
        *v = c->mtrr_def;
        return MSR_OK;
    case MSR_PAT:
        core_vcpu_get_state(c->h, &s);
        *v = s.pat;
        return MSR_OK;
    case MSR_EFER:
        core_vcpu_get_state(c->h, &s);
        *v = s.efer;
        return MSR_OK;
    default:
        if (msr >= MSR_MTRR_PHYS_FIRST && msr <= MSR_MTRR_PHYS_LAST) {
            *v = c->mtrr_var[msr - MSR_MTRR_PHYS_FIRST];
            return MSR_OK;
        }
        if (fi >= 0) {
            *v = c->mtrr_fixed[fi];
            return MSR_OK;
        }
        bool handled;
        bool ok = vmm_lapic_msr_read(c, msr, v, &handled);
        if (!handled)
            ok = pvclock_msr_read(c, msr, v, &handled);
        if (!handled)
            ok = vmm_pmu_msr_read(c, msr, v, &handled);
        if (handled)
            return ok ? MSR_OK : MSR_BAD_VALUE;
        return MSR_UNKNOWN;
    }
}

static enum msr_result msr_write(struct vmm_vcpu *c, uint32_t msr, uint64_t v)
{
    struct hvm_state s;
    int fi = fixed_index(msr);
    switch (msr) {
    case MSR_BIOS_SIGN_ID:
        return MSR_OK; /* microcode revision query: accepted, nothing to load */
    case MSR_AMD_SYSCFG:
    case MSR_AMD_HWCR:
    case MSR_AMD_INT_PENDING:
    case MSR_MCG_STATUS:
        /* Nothing to turn on: writing back what was read is all that is valid. */
        return v == 0 ? MSR_OK : MSR_BAD_VALUE;
    case MSR_MISC_ENABLE:
        if (vmm_guest_is_amd())
            return MSR_UNKNOWN;
        if (v & ~(MISC_ENABLE_RW | MISC_ENABLE_RO))
            return MSR_BAD_VALUE;
        c->misc_enable = (v & MISC_ENABLE_RW) | (c->misc_enable & MISC_ENABLE_RO);
        return MSR_OK;
    case MSR_XSS:
        if (!core_guest_has(CORE_GUEST_XSAVES))
            return MSR_UNKNOWN;
        return v == 0 ? MSR_OK : MSR_BAD_VALUE;
    case MSR_TSC_AUX:
        /* Reads need no exit; writes keep bits 63:32 reserved (SDM Vol. 4 Table 2-2). */
        if (!core_guest_has(CORE_GUEST_RDTSCP))
            return MSR_UNKNOWN;
        if (v >> 32)
            return MSR_BAD_VALUE;
        core_vcpu_set_tsc_aux(c->h, (uint32_t)v);
        return MSR_OK;
    case MSR_TSC:
        c->tsc_offset = (int64_t)(v - core_tsc());
        core_vcpu_set_tsc_offset(c->h, c->tsc_offset);
        pvclock_tsc_written(c);
        return MSR_OK;
    case MSR_APIC_BASE:
        /* The BSP flag is read-only; the base may not move (no APIC relocation); EN
         * and EXTD change mode only along the legal transitions. */
        if ((v & ~(APIC_BASE_BSP | APIC_BASE_ENABLE | APIC_BASE_EXTD)) != APIC_BASE_DEFAULT ||
            !vmm_lapic_set_base_mode(c, v & APIC_BASE_ENABLE, v & APIC_BASE_EXTD))
            return MSR_BAD_VALUE;
        c->apic_base = (v & ~APIC_BASE_BSP) | (c->apic_base & APIC_BASE_BSP);
        return MSR_OK;
    case MSR_MTRR_DEF_TYPE:
        if (v & ~0xcffull || !types_valid(v & 0xff, false))
            return MSR_BAD_VALUE;
        c->mtrr_def = v;
        return MSR_OK;
    case MSR_PAT:
        if (!types_valid(v, true))
            return MSR_BAD_VALUE;
        core_vcpu_get_state(c->h, &s);
        s.pat = v;
        core_vcpu_set_state(c->h, &s);
        return MSR_OK;
    case MSR_EFER: {
        core_vcpu_get_state(c->h, &s);
        if (v & ~(EFER_GUEST_WRITABLE | EFER_LMA))
            return MSR_BAD_VALUE;
        /* LME may not change while paging is on (SDM Vol. 3A §10.8.5). */
        if ((s.cr0 & (1ull << 31)) && ((v ^ s.efer) & (1ull << 8)))
            return MSR_BAD_VALUE;
        s.efer = (v & EFER_GUEST_WRITABLE) | (s.efer & EFER_LMA);
        core_vcpu_set_state(c->h, &s);
        return MSR_OK;
    }
    default:
        if (msr >= MSR_MTRR_PHYS_FIRST && msr <= MSR_MTRR_PHYS_LAST) {
            if ((msr & 1) == 0 && !types_valid(v & 0xff, false))
                return MSR_BAD_VALUE;
            c->mtrr_var[msr - MSR_MTRR_PHYS_FIRST] = v;
            return MSR_OK;
        }
        if (fi >= 0) {
            if (!types_valid(v, false))
                return MSR_BAD_VALUE;
            c->mtrr_fixed[fi] = v;
            return MSR_OK;
        }
        bool handled;
        bool ok = vmm_lapic_msr_write(c, msr, v, &handled);
        if (!handled)
            ok = pvclock_msr_write(c, msr, v, &handled);
        if (!handled)
            ok = vmm_pmu_msr_write(c, msr, v, &handled);
        if (handled)
            return ok ? MSR_OK : MSR_BAD_VALUE;
        return MSR_UNKNOWN;
    }
}

enum vmm_action vmm_exit_rdmsr(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    uint64_t v;
    enum msr_result r = msr_read(c, x->msr.msr, &v);
    if (r != MSR_OK) {
        if (r == MSR_UNKNOWN)
            warn_once(c, x->msr.msr, false);
        vmm_inject_exception(c, VEC_GP, true, 0);
        return VMM_CONTINUE;
    }
    core_vcpu_set_gpr(c->h, HVM_RAX, (uint32_t)v);
    core_vcpu_set_gpr(c->h, HVM_RDX, v >> 32);
    core_vcpu_skip_insn(c->h, vmm_insn_len(c, x));
    return VMM_CONTINUE;
}

enum vmm_action vmm_exit_wrmsr(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    uint64_t v = (core_vcpu_get_gpr(c->h, HVM_RDX) << 32) | (uint32_t)core_vcpu_get_gpr(c->h, HVM_RAX);
    enum msr_result r = msr_write(c, x->msr.msr, v);
    if (r != MSR_OK) {
        if (r == MSR_UNKNOWN)
            warn_once(c, x->msr.msr, true);
        vmm_inject_exception(c, VEC_GP, true, 0);
        return VMM_CONTINUE;
    }
    core_vcpu_skip_insn(c->h, vmm_insn_len(c, x));
    return VMM_CONTINUE;
}
