/* The CPUID a guest sees: the host's, filtered to what plinth actually provides
 * (SDM Vol. 2A, CPUID; AMD APM Vol. 3, Appendix E), with the VM's own topology (one
 * thread per core, one core per vCPU, x2APIC ID = vCPU index), the TSC and APIC
 * clock frequencies, and plinth's own hypervisor leaves at 0x40000000. */
#include "vmm/exit.h"
#include "vmm/pvclock.h"
#include "kernel/string.h"

/* Basic leaves up to 0x1F (V2 extended topology); what lies between the host's
 * leaves plinth passes on and 0x1F reads as zero ("not supported"). */
#define LEAF_MAX_BASIC    0x1fu
#define LEAF_MAX_EXT      0x80000008u
#define LEAF_HV_BASE      0x40000000u
#define LEAF_HV_FEATURES  0x40000001u
/* The timing leaf other hypervisors also use at this number: EAX = TSC kHz, EBX =
 * local APIC timer (bus) kHz. */
#define LEAF_HV_TIMING    0x40000010u
#define LEAF_HV_MAX       LEAF_HV_TIMING
#define LEAF_HV_END       0x50000000u

/* The local APIC timer's input clock: LAPIC_TIMER_HZ of vmm/lapic.c (a unit test
 * checks they agree).  Leaf 0x15 gives it as the core crystal clock, because Linux's
 * native_calibrate_tsc also takes its APIC timer period from the crystal. */
#define CPUID_APIC_BUS_KHZ 1000000u
/* Leaf 0x15's TSC = crystal * EBX / EAX, which Linux computes as a 32-bit product
 * crystal_kHz * EBX: with a 1 GHz crystal, EBX may be at most 4294. */
#define CPUID_RATIO_NUM_MAX (0xffffffffu / CPUID_APIC_BUS_KHZ)

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
#define CR4_OSXSAVE     (1u << 18)
/* CPUID.7.0 */
#define C7_EBX_TSC_ADJ  (1u << 1)
#define C7_EBX_SGX      (1u << 2)
#define C7_EBX_RDT_M    (1u << 12)
#define C7_EBX_MPX      (1u << 14)
#define C7_EBX_RDT_A    (1u << 15)
#define C7_EBX_PT       (1u << 25)
#define C7_ECX_PKU      (1u << 3)
#define C7_ECX_OSPKE    (1u << 4)
#define C7_ECX_WAITPKG  (1u << 5)
#define C7_ECX_CET_SS   (1u << 7)
/* RDPID (leaf 7 ECX) and RDTSCP (0x80000001 EDX) read IA32_TSC_AUX, which the
 * backend switches per vCPU where it can let guests run them (core_guest_has). */
#define C7_ECX_RDPID    (1u << 22)
#define E1_EDX_RDTSCP   (1u << 27)
/* CPUID.(EAX=0DH,ECX=1):EAX: XSAVEOPT, XSAVEC, XGETBV with ECX = 1, XSAVES/XRSTORS. */
#define D1_EAX_XSAVEOPT (1u << 0)
#define D1_EAX_XSAVEC   (1u << 1)
#define D1_EAX_XGETBV1  (1u << 2)
#define D1_EAX_XSAVES   (1u << 3)
#define C7_EDX_CET_IBT  (1u << 20)
/* AVX-512 (EBX F, DQ, IFMA, PF, ER, CD, BW, VL; ECX VBMI, VBMI2, VNNI, BITALG,
 * VPOPCNTDQ; EDX 4VNNIW, 4FMAPS, VP2INTERSECT, FP16) and AMX (EDX BF16, TILE, INT8):
 * shown only when XCR0 may enable their state components (SDM Vol. 1 §13.2). */
#define C7_EBX_AVX512   ((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | \
                         (1u << 28) | (1u << 30) | (1u << 31))
#define C7_ECX_AVX512   ((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14))
#define C7_EDX_AVX512   ((1u << 2) | (1u << 3) | (1u << 8) | (1u << 23))
#define C7_EDX_AMX      ((1u << 22) | (1u << 24) | (1u << 25))
#define XCR0_AVX512     ((1ull << 5) | (1ull << 6) | (1ull << 7))
#define XCR0_PKRU       (1ull << 9)
#define XCR0_AMX        ((1ull << 17) | (1ull << 18))
/* Features whose MSRs plinth does not emulate (SPEC_CTRL, PRED_CMD, FLUSH_CMD,
 * ARCH_CAPABILITIES, CORE_CAPABILITIES, SSBD): shown, they would send guests to
 * MSRs that #GP. */
#define C7_EDX_UNEMULATED ((1u << 26) | (1u << 27) | (1u << 28) | (1u << 29) | (1u << 30) | (1u << 31))
/* CPUID.80000001 ECX (APM Vol. 3 E.4.2): CmpLegacy, SVM, IBS, SKINIT, WDT, LWP,
 * TopologyExtensions (its leaves lie past LEAF_MAX_EXT), the core/NB/LLC performance
 * counter extensions, MONITORX. */
#define E1_ECX_CMP_LEGACY (1u << 1)
#define E1_ECX_HIDDEN   ((1u << 2) | (1u << 10) | (1u << 12) | (1u << 13) | (1u << 15) | \
                         (1u << 22) | (1u << 23) | (1u << 24) | (1u << 28) | (1u << 29))
/* CPUID.80000007 EDX bit 8: the TSC runs at a constant rate in every state (SDM Vol.
 * 2A, APM E.4.6); Linux then sets constant_tsc and nonstop_tsc. */
#define E7_EDX_INVARIANT_TSC (1u << 8)
/* CPUID.80000008 EBX: only CLZERO, XSaveErPtr and WBNOINVD; the rest name MSRs plinth
 * does not emulate (IRPERF, IBPB, IBRS, STIBP, SSBD...). */
#define E8_EBX_SHOWN    ((1u << 0) | (1u << 2) | (1u << 9))

/* The host's leaves the guest's view is built from most often (0, 1, 2, 7.0 and
 * 0x80000000-0x80000008), its maximum leaves and its vendor, read once: they do not
 * change (leaf 1's APIC ID, which does, is replaced), and a CPUID in plinth is itself
 * an exit when plinth runs nested.  host_max_ext != 0: the snapshot is complete. */
#define HOST_BASIC_SAVED 3
#define HOST_EXT_SAVED   9
static uint32_t host_basic[HOST_BASIC_SAVED][4], host_leaf7[4], host_ext[HOST_EXT_SAVED][4];
static uint32_t host_max_basic, host_max_ext;
static bool host_amd;

static void host_leaves(void)
{
    if (__atomic_load_n(&host_max_ext, __ATOMIC_ACQUIRE))
        return;
    uint32_t r[4];
    core_host_cpuid(0, 0, r);
    /* "AuthenticAMD" and "HygonGenuine" follow the APM's topology rules. */
    host_amd = !memcmp(&r[1], "Auth", 4) || !memcmp(&r[1], "Hygo", 4);
    host_max_basic = r[0];
    /* Leaves past the host's maximum are not asked for: Intel CPUs answer them with
     * the highest basic leaf's data. */
    for (uint32_t i = 0; i < HOST_BASIC_SAVED; i++)
        if (i <= host_max_basic)
            core_host_cpuid(i, 0, host_basic[i]);
    if (host_max_basic >= 7)
        core_host_cpuid(7, 0, host_leaf7);
    core_host_cpuid(0x80000000u, 0, r);
    uint32_t max_ext = r[0] >= 0x80000000u ? r[0] : 0x80000000u;
    for (uint32_t i = 0; i < HOST_EXT_SAVED; i++)
        if (0x80000000u + i <= max_ext)
            core_host_cpuid(0x80000000u + i, 0, host_ext[i]);
    __atomic_store_n(&host_max_ext, max_ext, __ATOMIC_RELEASE);
}

/* The host's leaf: from the snapshot where it has it. */
static void host_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    const uint32_t *saved = NULL;
    if (leaf < HOST_BASIC_SAVED)
        saved = host_basic[leaf];
    else if (leaf == 7 && sub == 0)
        saved = host_leaf7;
    else if (leaf - 0x80000000u < HOST_EXT_SAVED)
        saved = host_ext[leaf - 0x80000000u];
    if (saved)
        memcpy(r, saved, 4 * sizeof r[0]);
    else
        core_host_cpuid(leaf, sub, r);
}

/* Bits needed to number count IDs: the x2APIC ID's core field width. */
static unsigned id_bits(unsigned count)
{
    unsigned b = 0;
    while ((1u << b) < count)
        b++;
    return b;
}

/* Leaf 0x15's EBX/EAX for a TSC of tsc_khz on the 1 GHz crystal: the smallest ratio
 * num/den with num <= CPUID_RATIO_NUM_MAX for which floor(crystal_kHz * num / den)
 * is exactly tsc_khz (what Linux computes).  False when none exists (rare: e.g.
 * 3999999 kHz, where the fractions this close to 4 are too sparse): then the leaf
 * reports no ratio, and Linux falls back to leaf 0x16's MHz and refines that against
 * a timer. */
static bool vmm_cpuid_tsc_ratio(uint64_t tsc_khz, uint32_t *num, uint32_t *den)
{
    if (!tsc_khz || tsc_khz > 0xffffffffull)
        return false;
    for (uint64_t n = 1; n <= CPUID_RATIO_NUM_MAX; n++) {
        /* The largest den with crystal * n / den >= tsc_khz; then check the floor. */
        uint64_t d = (uint64_t)CPUID_APIC_BUS_KHZ * n / tsc_khz;
        if (d && d <= 0xffffffffull && (uint64_t)CPUID_APIC_BUS_KHZ * n / d == tsc_khz) {
            *num = (uint32_t)n;
            *den = (uint32_t)d;
            return true;
        }
    }
    return false;
}

static void hv_leaf(uint32_t leaf, uint32_t r[4])
{
    switch (leaf) {
    case LEAF_HV_BASE:
        /* Max hypervisor leaf and the 12-byte signature "plinthplinth". */
        r[0] = LEAF_HV_MAX;
        memcpy(&r[1], "plin", 4);
        memcpy(&r[2], "thpl", 4);
        memcpy(&r[3], "inth", 4);
        break;
    case LEAF_HV_TIMING: {
        uint64_t khz = core_tsc_khz();
        r[0] = khz > 0xffffffffull ? 0 : (uint32_t)khz;
        r[1] = CPUID_APIC_BUS_KHZ;
        break;
    }
    default:
        break;    /* LEAF_HV_FEATURES: no paravirtual features */
    }
}

static void ext_leaf(struct vmm_vcpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    uint32_t max = host_max_ext < LEAF_MAX_EXT ? host_max_ext : LEAF_MAX_EXT;
    if (leaf > max)
        return;
    host_cpuid(leaf, sub, r);
    unsigned count = c->vm->vcpu_count;
    switch (leaf) {
    case 0x80000000u:
        r[0] = max;
        break;
    case 0x80000001u:
        r[2] &= ~(E1_ECX_HIDDEN | E1_ECX_CMP_LEGACY);
        if (!core_guest_has(CORE_GUEST_RDTSCP))
            r[3] &= ~E1_EDX_RDTSCP;
        /* AMD: with HTT, CmpLegacy says leaf 1's logical count counts cores (APM
         * E.4.2, E.5), which is all plinth's vCPUs are. */
        if (host_amd && count > 1)
            r[2] |= E1_ECX_CMP_LEGACY;
        break;
    case 0x80000007u:
        /* Power management: none, but the TSC is invariant. */
        r[0] = r[1] = r[2] = 0;
        r[3] = E7_EDX_INVARIANT_TSC;
        break;
    case 0x80000008u:
        /* ECX: ApicIdSize 15:12 and NC 7:0 = cores - 1 (APM E.4.7); on Intel the
         * register is reserved and stays zero. */
        r[1] &= E8_EBX_SHOWN;
        r[2] = host_amd ? (id_bits(count) << 12) | ((count - 1) & 0xff) : 0;
        break;
    default:
        break;
    }
}

/* Leaves 0xB and 0x1F (SDM Vol. 2A, CPUID "V2 Extended Topology"): an SMT level of
 * one thread, then a core level of count cores; EDX = x2APIC ID = vCPU index. */
static void topology_leaf(struct vmm_vcpu *c, uint32_t sub, uint32_t r[4])
{
    unsigned count = c->vm->vcpu_count;
    r[2] = sub & 0xff;
    r[3] = c->index;
    if (sub == 0) {
        r[0] = 0;                        /* no bits for the thread within a core */
        r[1] = 1;
        r[2] |= 1u << 8;                 /* level type 1: SMT */
    } else if (sub == 1) {
        r[0] = id_bits(count);
        r[1] = count;
        r[2] |= 2u << 8;                 /* level type 2: core */
    }
}

static void basic_leaf(struct vmm_vcpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    unsigned count = c->vm->vcpu_count, bits = id_bits(count);
    /* Leaves plinth builds itself, whatever the host has. */
    switch (leaf) {
    case 0xb:
    case 0x1f:
        topology_leaf(c, sub, r);
        return;
    case 0x15: {
        /* TSC / core crystal clock ratio (SDM Vol. 2A, CPUID leaf 15H; Vol. 3B
         * §18.7.3): TSC kHz = ECX / 1000 * EBX / EAX. */
        uint32_t num, den;
        if (vmm_cpuid_tsc_ratio(core_tsc_khz(), &num, &den)) {
            r[0] = den;
            r[1] = num;
        }
        r[2] = CPUID_APIC_BUS_KHZ * 1000u;
        return;
    }
    case 0x16: {
        /* Base and maximum frequency = the TSC's, bus (reference) = the crystal, in
         * MHz, 16 bits each (SDM Vol. 2A, CPUID leaf 16H). */
        uint64_t mhz = core_tsc_khz() / 1000;
        r[0] = r[1] = mhz > 0xffff ? 0xffff : (uint32_t)mhz;
        r[2] = CPUID_APIC_BUS_KHZ / 1000;
        return;
    }
    default:
        break;
    }
    if (leaf > host_max_basic)
        return;
    switch (leaf) {
    case 0:
        host_cpuid(0, 0, r);
        r[0] = LEAF_MAX_BASIC;
        break;
    case 1:
        host_cpuid(1, 0, r);
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
        /* EBX: initial APIC ID 31:24 = vCPU index; 23:16 the addressable logical
         * processor IDs of the package, valid with HTT (Table 3-8). */
        r[1] = (r[1] & 0x0000ffffu) | (c->index << 24) | ((1u << bits) & 0xff) << 16;
        if (count > 1)
            r[3] |= C1_EDX_HTT;
        /* OSXSAVE mirrors the guest's own CR4.OSXSAVE. */
        if (core_vcpu_get_cr4(c->h) & CR4_OSXSAVE)
            r[2] |= C1_ECX_OSXSAVE;
        break;
    case 2:
        host_cpuid(2, 0, r);       /* cache and TLB descriptors */
        break;
    case 4:
        /* Deterministic cache parameters (Intel only; zero on AMD): cores of the
         * package 31:26, and the logical processors sharing a cache 25:14: L1 and L2
         * are each core's own, L3 is shared by the package. */
        host_cpuid(4, sub, r);
        if (r[0] & 0x1f) {
            unsigned level = (r[0] >> 5) & 7;
            uint32_t sharing = level >= 3 ? (1u << bits) - 1 : 0;
            r[0] = (r[0] & 0x3fffu) | (sharing << 14) | (((1u << bits) - 1) << 26);
        }
        break;
    case 7:
        if (sub == 0) {
            uint64_t mask = core_guest_xcr0_mask();
            host_cpuid(7, 0, r);
            r[0] = 0;
            r[1] &= ~(C7_EBX_TSC_ADJ | C7_EBX_SGX | C7_EBX_MPX | C7_EBX_PT | C7_EBX_RDT_M | C7_EBX_RDT_A);
            r[2] &= ~(C7_ECX_WAITPKG | C7_ECX_CET_SS);
            if (!core_guest_has(CORE_GUEST_RDTSCP))
                r[2] &= ~C7_ECX_RDPID;
            r[3] &= ~(C7_EDX_UNEMULATED | C7_EDX_CET_IBT);
            if ((mask & XCR0_AVX512) != XCR0_AVX512) {
                r[1] &= ~C7_EBX_AVX512;
                r[2] &= ~C7_ECX_AVX512;
                r[3] &= ~C7_EDX_AVX512;
            }
            if (!(mask & XCR0_PKRU))
                r[2] &= ~(C7_ECX_PKU | C7_ECX_OSPKE);
            if ((mask & XCR0_AMX) != XCR0_AMX)
                r[3] &= ~C7_EDX_AMX;
        }
        break;
    case 0xd: {
        /* XSAVE: only the components guests may enable (x87, SSE, AVX). */
        uint64_t mask = core_guest_xcr0_mask();
        host_cpuid(0xd, sub, r);
        if (sub == 0) {
            r[0] = (uint32_t)mask;
            r[3] = (uint32_t)(mask >> 32);
        } else if (sub == 1) {
            /* XSAVES with no supervisor component (ECX/EDX 0, IA32_XSS always 0):
             * where the backend keeps XSS at 0 for the guest.  EBX, the compacted
             * size for XCR0 | XSS, is the host's answer now: the guest's XCR0 is the
             * one in force while plinth handles its exit. */
            uint32_t keep = D1_EAX_XSAVEOPT | D1_EAX_XSAVEC | D1_EAX_XGETBV1 |
                            (core_guest_has(CORE_GUEST_XSAVES) ? D1_EAX_XSAVES : 0);
            r[0] &= keep;
            if (!(r[0] & (D1_EAX_XSAVEC | D1_EAX_XSAVES)))
                r[1] = 0;
            r[2] = r[3] = 0;
        } else if (sub >= 64 || !(mask & (1ull << sub))) {
            memset(r, 0, 4 * sizeof r[0]);
        }
        break;
    }
    default:
        /* 3 (serial number), 5 (MONITOR), 6 (thermal and power), 8-0xA (DCA,
         * performance monitoring), 0xC-0x14 (RDT, SGX, PT...), 0x17-0x1E: none. */
        break;
    }
}

unsigned vmm_guest_maxphyaddr(void)
{
    host_leaves();
    unsigned m = host_max_ext >= 0x80000008u ? host_ext[8][0] & 0xff : 36;
    /* Sane bounds for the page walker (pagewalk.h: 32..52). */
    return m < 32 ? 32 : m > 52 ? 52 : m;
}

bool vmm_guest_is_amd(void)
{
    host_leaves();
    return host_amd;
}

/* A leaf past every range the guest's view reports: past the highest basic leaf,
 * past the hypervisor leaves (plinth's and the KVM-compatible clock's), past the
 * highest extended leaf, or in none of those ranges. */
static bool leaf_out_of_range(uint32_t leaf)
{
    uint32_t max_ext = host_max_ext < LEAF_MAX_EXT ? host_max_ext : LEAF_MAX_EXT;
    if (leaf <= LEAF_MAX_BASIC)
        return false;
    if (leaf >= LEAF_HV_BASE && leaf < LEAF_HV_END)
        return leaf > LEAF_HV_MAX && !(leaf >= PVCLOCK_CPUID_BASE && leaf <= PVCLOCK_CPUID_FEATURES);
    return leaf < 0x80000000u || leaf > max_ext;
}

void vmm_cpuid(struct vmm_vcpu *c, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    r[0] = r[1] = r[2] = r[3] = 0;
    host_leaves();
    if (pvclock_cpuid(leaf, r))
        return;
    /* Out of range: AMD CPUs answer zeros (APM Vol. 3, CPUID); Intel CPUs the highest
     * basic leaf's data (SDM Vol. 2A, CPUID: "If a value entered for CPUID.EAX is
     * higher than the maximum input value for basic or extended function for that
     * processor then the data for the highest basic information leaf is returned"),
     * as KVM gives its Intel guests too. */
    if (leaf_out_of_range(leaf)) {
        if (!host_amd)
            basic_leaf(c, LEAF_MAX_BASIC, sub, r);
        return;
    }
    if (leaf >= LEAF_HV_BASE && leaf < LEAF_HV_END)
        hv_leaf(leaf, r);
    else if (leaf >= 0x80000000u)
        ext_leaf(c, leaf, sub, r);
    else
        basic_leaf(c, leaf, sub, r);
}

/* Whether a leaf's answer stays the same for the vCPU's life: all but leaf 1
 * (OSXSAVE follows CR4, APIC follows IA32_APIC_BASE.EN) and leaf 0xD (its sizes follow
 * the XCR0 in force). */
static bool cpuid_static(uint32_t leaf)
{
    return leaf != 1 && leaf != 0xd;
}

/* The hottest exit of a booting guest: leaf and subleaf come in the exit record, the
 * four results and the skip go back in one core call, and as CPUID touches no
 * interrupt, timer or device state, the core may re-enter without pre_entry.  Static
 * answers are left with the core, which answers them itself from then on. */
enum vmm_action vmm_exit_cpuid(struct vmm_vcpu *c, const struct hvm_exit *x)
{
    uint32_t r[4];
    vmm_cpuid(c, x->cpuid.leaf, x->cpuid.subleaf, r);
    uint8_t len = vmm_insn_len(c, x);
    if (!len)
        return VMM_CONTINUE;   /* undecodable: vmm_insn_len stopped the VM */
    core_vcpu_finish_cpuid(c->h, r, len);
    if (cpuid_static(x->cpuid.leaf))
        core_vcpu_cache_cpuid(c->h, x->cpuid.leaf, x->cpuid.subleaf, r);
    return VMM_RESUME;
}
