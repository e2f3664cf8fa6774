/* A vCPU on VT-x: its VMCS, the controls chosen from the capability MSRs, entry
 * and exit, event injection with re-injection of interrupted deliveries. */
#include "arch/x86_64/vmx/vmx.h"
#include "arch/x86_64/vmx/vmcs.h"
#include "arch/x86_64/vmx/vmx_msr.h"
#include "arch/x86_64/vmx/ept.h"
#include "arch/x86_64/vmx/vpid.h"
#include "arch/x86_64/hvm_msr.h"
#include "arch/x86_64/hvm_common.h"
#include "arch/x86_64/fpu.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/cpu/percpu.h"
#include "kernel/log.h"
#include "arch/x86_64/page_alloc.h"
#include "kernel/string.h"

/* Primary processor-based controls used here beyond vmx_msr.h (SDM Vol. 3C §25.6.2). */
#define CPU_BASED_INTR_WINDOW_EXITING   (1u << 2)
#define CPU_BASED_USE_TSC_OFFSETTING    (1u << 3)
#define CPU_BASED_MWAIT_EXITING         (1u << 10)
#define CPU_BASED_RDPMC_EXITING         (1u << 11)
#define CPU_BASED_CR3_LOAD_EXITING      (1u << 15)
#define CPU_BASED_CR3_STORE_EXITING     (1u << 16)
#define CPU_BASED_CR8_LOAD_EXITING      (1u << 19)
#define CPU_BASED_CR8_STORE_EXITING     (1u << 20)
#define CPU_BASED_NMI_WINDOW_EXITING    (1u << 22)
#define CPU_BASED_MONITOR_EXITING       (1u << 29)
#define SECONDARY_WBINVD_EXITING        (1u << 6)
#define SECONDARY_ENABLE_INVPCID        (1u << 12)
#define SECONDARY_ENABLE_XSAVES         (1u << 20)
/* The XSS-exiting bitmap: which IA32_XSS bits make XSAVES/XRSTORS exit (§25.6.20);
 * with no supervisor component ever enabled, none. */
#define VMCS_XSS_EXITING_BITMAP         0x202c
/* Pending debug exceptions (§25.4.2, Table 25-4): BS, bit 14. */
#define PENDING_DBG_BS                  (1u << 14)
#define MSR_TSC_AUX                     0xc0000103u

/* The first 16 qwords are the guest GPRs: vmx_entry.asm depends on it. */
struct hvm_vcpu {
    uint64_t gpr[HVM_GPR_COUNT];
    uint64_t cr2;
    uint64_t vmcs_phys;
    int      cpu;                   /* where the VMCS is current; -1: nowhere yet */
    bool     launched;
    bool     xsaves;                /* the "enable XSAVES/XRSTORS" control is on */
    uint16_t vpid;
    uint64_t eptp;
    uint64_t msr_bitmap, io_bitmap_a, io_bitmap_b;
    uint32_t proc;                  /* current primary controls (windows toggle) */
    uint32_t entry;                 /* entry controls without IA-32e mode */
    uint64_t cr0_mask, cr4_mask, cr0_fix0, cr0_fix1, cr4_fix0, cr4_fix1;
    struct hvm_common c;            /* FPU, DR0-DR3, TSC_AUX, events (hvm_common.h) */
    uint64_t swapped_msr[HVM_SWAPPED_MSRS];
    uint64_t dr6;                   /* live in the CPU while the guest runs, like DR0-DR3 */
    uint8_t  preempt_rate;
    bool     preempt;
};

void vmx_exit_entry(void);
int vmx_enter(struct hvm_vcpu *v, int launched);
static void vmx_nested_flush(struct hvm_vcpu *v);
static void vmx_vpid_flush(struct hvm_vcpu *v);

static struct vpid_pool vpids;

static void vmx_vcpu_destroy(struct hvm_vcpu *v);

static struct hvm_vcpu *of_common(struct hvm_common *c)
{
    return c ? (struct hvm_vcpu *)((char *)c - __builtin_offsetof(struct hvm_vcpu, c)) : NULL;
}

/* A control word: required bits must be settable (else this CPU is unusable),
 * wanted ones are taken where settable, must-be-1 bits always (Appendix A.3-A.5). */
static bool vmx_ctl(const struct vmx_ctls *c, uint32_t need, uint32_t want, const char *what,
                    uint32_t *out)
{
    if (need & ~c->may_be_1) {
        log_error("vmx: this CPU cannot enable %s controls %#x, which plinth needs",
                  what, need & ~c->may_be_1);
        return false;
    }
    *out = (c->must_be_1 | need | want) & c->may_be_1;
    return true;
}

static uint64_t alloc_filled_page(uint8_t fill)
{
    uint64_t p = arch_alloc_page();
    if (p)
        memset(phys_to_virt(p), fill, PAGE_SIZE);
    return p;
}

/* Clears the exit bits for an MSR in the bitmap (§25.6.9): read-low, read-high,
 * write-low, write-high at offsets 0, 1024, 2048, 3072; reads only, or both. */
static void msr_bitmap_allow_access(uint8_t *bm, uint32_t msr, bool writes)
{
    uint32_t base;
    if (msr <= 0x1fff)
        base = 0;
    else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
        base = 1024, msr -= 0xc0000000;
    else
        return;
    bm[base + msr / 8] &= (uint8_t)~(1u << (msr % 8));
    if (writes)
        bm[base + 2048 + msr / 8] &= (uint8_t)~(1u << (msr % 8));
}

static void msr_bitmap_allow(uint8_t *bm, uint32_t msr)
{
    msr_bitmap_allow_access(bm, msr, true);
}

static bool host_has_invpcid(void)
{
    return cpuid(0, 0).eax >= 7 && (cpuid(7, 0).ebx & (1u << 10));
}

static bool host_has_xsaves(void)
{
    return cpuid(0, 0).eax >= 0xd && (cpuid(1, 0).ecx & (1u << 26)) && (cpuid(0xd, 1).eax & (1u << 3));
}

/* RDTSCP and RDPID are #UD in a guest without the "enable RDTSCP" control (§26.3). */
static bool vmx_guest_has_rdtscp(void)
{
    return hvm_tsc_aux_supported() && (vmx_caps()->proc2.may_be_1 & SECONDARY_ENABLE_RDTSCP);
}

static bool vmx_guest_has_xsaves(void)
{
    return host_has_xsaves() && (vmx_caps()->proc2.may_be_1 & SECONDARY_ENABLE_XSAVES);
}

/* Host state differs per CPU (GS base, TSS, GDT), so it is written whenever this
 * VMCS becomes current on a CPU (§26.5: checked at every entry). */
static void write_host_state(void)
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } gdtr, idtr;
    uint16_t tr;
    __asm__ volatile("sgdt %0; sidt %1; str %2" : "=m"(gdtr), "=m"(idtr), "=r"(tr));
    const uint8_t *d = (const uint8_t *)gdtr.base + (tr & ~7u);
    uint64_t tr_base = d[2] | (uint64_t)d[3] << 8 | (uint64_t)d[4] << 16 | (uint64_t)d[7] << 24 |
                       (uint64_t)(*(const uint32_t *)(d + 8)) << 32;
    uint16_t cs, ss, ds, es;
    __asm__ volatile("mov %%cs, %0; mov %%ss, %1; mov %%ds, %2; mov %%es, %3"
                     : "=r"(cs), "=r"(ss), "=r"(ds), "=r"(es));
    vmcs_write(VMCS_HOST_CR0, read_cr0());
    vmcs_write(VMCS_HOST_CR3, read_cr3());
    vmcs_write(VMCS_HOST_CR4, read_cr4());
    vmcs_write(VMCS_HOST_CS_SEL, cs & ~7u);
    /* A null SS is fine for a 64-bit host; DS/ES/FS/GS selectors must have RPL 0
     * and TI 0 (§26.2.3). */
    vmcs_write(VMCS_HOST_SS_SEL, ss & ~7u);
    vmcs_write(VMCS_HOST_DS_SEL, ds & ~7u);
    vmcs_write(VMCS_HOST_ES_SEL, es & ~7u);
    vmcs_write(VMCS_HOST_FS_SEL, 0);
    vmcs_write(VMCS_HOST_GS_SEL, 0);
    vmcs_write(VMCS_HOST_TR_SEL, tr);
    vmcs_write(VMCS_HOST_FS_BASE, rdmsr(MSR_FS_BASE));
    vmcs_write(VMCS_HOST_GS_BASE, rdmsr(MSR_GS_BASE));
    vmcs_write(VMCS_HOST_TR_BASE, tr_base);
    vmcs_write(VMCS_HOST_GDTR_BASE, gdtr.base);
    vmcs_write(VMCS_HOST_IDTR_BASE, idtr.base);
    vmcs_write(VMCS_HOST_SYSENTER_CS, 0);
    vmcs_write(VMCS_HOST_SYSENTER_ESP, 0);
    vmcs_write(VMCS_HOST_SYSENTER_EIP, 0);
    vmcs_write(VMCS_HOST_PAT, rdmsr(MSR_IA32_PAT));
    vmcs_write(VMCS_HOST_EFER, rdmsr(MSR_EFER));
    vmcs_write(VMCS_HOST_RIP, (uint64_t)vmx_exit_entry);
}

/* The switch from another vCPU (or none) to v on this CPU: out of line, so that the
 * check every accessor makes stays a few instructions.  Beside what hvm_common
 * switches, VT-x keeps in the CPU the SYSCALL MSRs and DR6 (MOV DR does not exit and
 * the VMCS switches only DR7; plinth's own code uses neither). */
static __attribute__((noinline)) bool switch_to(struct hvm_vcpu *v)
{
    /* A VMCS active on another CPU must be VMCLEARed there first (§25.11.1):
     * hvm_common refuses the move. */
    struct hvm_common *prev;
    if (!hvm_common_switch(&v->c, "vmx", &prev))
        return false;
    struct hvm_vcpu *old = of_common(prev);
    if (old) {
        for (int i = 0; i < HVM_SWAPPED_MSRS; i++)
            old->swapped_msr[i] = rdmsr(hvm_swapped_msrs[i]);
        old->dr6 = read_dr6();
    }
    if (!vmcs_load(v->vmcs_phys)) {
        log_error("vmx: VMPTRLD failed");
        hvm_common_forget(&v->c);
        return false;
    }
    for (int i = 0; i < HVM_SWAPPED_MSRS; i++)
        wrmsr(hvm_swapped_msrs[i], v->swapped_msr[i]);
    write_dr6(v->dr6);
    write_host_state();
    return true;
}

/* Makes v's VMCS current on this CPU, and its SYSCALL MSRs live. */
static inline bool make_current(struct hvm_vcpu *v)
{
    return __builtin_expect(hvm_common_loaded(percpu_index()) == &v->c, 1) || switch_to(v);
}

static struct hvm_vcpu *vmx_vcpu_create(const struct gpt *nested)
{
    const struct vmx_caps *c = vmx_caps();
    static struct hvm_vcpu none;
    struct hvm_vcpu *v;
    uint64_t vp = arch_alloc_pages((sizeof *v + PAGE_SIZE - 1) / PAGE_SIZE, PAGE_SIZE);
    if (!vp)
        return NULL;
    v = phys_to_virt(vp);
    *v = none;
    v->dr6 = HVM_DR6_RESET;
    v->vmcs_phys = arch_alloc_page();
    v->msr_bitmap = alloc_filled_page(0xff);
    v->io_bitmap_a = alloc_filled_page(0xff);
    v->io_bitmap_b = alloc_filled_page(0xff);
    if (!v->vmcs_phys || !v->msr_bitmap || !v->io_bitmap_a || !v->io_bitmap_b || !hvm_common_init(&v->c)) {
        log_error("vmx: out of memory for a vCPU");
        vmx_vcpu_destroy(v);
        return NULL;
    }
    for (size_t i = 0; i < hvm_msr_passthrough_count; i++)
        msr_bitmap_allow(phys_to_virt(v->msr_bitmap), hvm_msr_passthrough[i]);
    /* TSC_AUX is switched per vCPU (hvm_common) and reaches no one else: reads go to
     * it directly, writes through the monitor, which refuses the reserved bits. */
    if (vmx_guest_has_rdtscp())
        msr_bitmap_allow_access(phys_to_virt(v->msr_bitmap), MSR_TSC_AUX, false);
    *(uint32_t *)phys_to_virt(v->vmcs_phys) = c->vmcs_revision;

    uint32_t pin, proc, proc2, exit, entry;
    /* WBINVD exits: a guest must not write back and flush the whole machine's caches
     * at will (§25.6.2); without passthrough devices it has nothing to flush. */
    uint32_t want_proc2 = SECONDARY_WBINVD_EXITING | (host_has_invpcid() ? SECONDARY_ENABLE_INVPCID : 0) |
                          (vmx_guest_has_rdtscp() ? SECONDARY_ENABLE_RDTSCP : 0) |
                          (vmx_guest_has_xsaves() ? SECONDARY_ENABLE_XSAVES : 0);
    if (c->vpid)
        want_proc2 |= SECONDARY_ENABLE_VPID;
    bool ok = vmx_ctl(&c->pin, PIN_BASED_EXT_INTR_EXITING | PIN_BASED_NMI_EXITING,
                      PIN_BASED_VIRTUAL_NMIS | (c->preemption_timer ? PIN_BASED_PREEMPTION_TIMER : 0),
                      "pin-based", &pin) &&
              /* CR8 exits: without a TPR shadow a guest's MOV to CR8 would write the
               * host's own APIC TPR and could mask plinth's interrupts. */
              vmx_ctl(&c->proc, CPU_BASED_HLT_EXITING | CPU_BASED_USE_IO_BITMAPS |
                      CPU_BASED_USE_MSR_BITMAPS | CPU_BASED_ACTIVATE_SECONDARY |
                      CPU_BASED_CR8_LOAD_EXITING | CPU_BASED_CR8_STORE_EXITING |
                      CPU_BASED_USE_TSC_OFFSETTING,
                      CPU_BASED_MWAIT_EXITING | CPU_BASED_MONITOR_EXITING | CPU_BASED_RDPMC_EXITING,
                      "processor-based", &proc) &&
              vmx_ctl(&c->proc2, SECONDARY_ENABLE_EPT | SECONDARY_UNRESTRICTED_GUEST, want_proc2,
                      "secondary", &proc2) &&
              /* DR7 (and DEBUGCTL) saved at each exit and loaded at each entry: the
               * guest's own breakpoints, which MOV DR sets without an exit, would
               * otherwise be lost at the first exit (§27.3.1, §28.3.1). */
              vmx_ctl(&c->exit, VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_LOAD_IA32_EFER | VM_EXIT_SAVE_IA32_EFER |
                      VM_EXIT_SAVE_DEBUG_CONTROLS,
                      VM_EXIT_SAVE_IA32_PAT | VM_EXIT_LOAD_IA32_PAT, "VM-exit", &exit) &&
              vmx_ctl(&c->entry, VM_ENTRY_LOAD_IA32_EFER | VM_ENTRY_LOAD_DEBUG_CONTROLS, VM_ENTRY_LOAD_IA32_PAT,
                      "VM-entry", &entry);
    if (!ok) {
        vmx_vcpu_destroy(v);
        return NULL;
    }
    /* With EPT, CR3 accesses need no exits (§25.6.2); clear them if TRUE controls allow. */
    proc &= ~((CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_CR3_STORE_EXITING) & ~c->proc.must_be_1);
    entry &= ~VM_ENTRY_IA32E_MODE_GUEST;
    v->proc = proc;
    v->entry = entry;
    v->preempt = (pin & PIN_BASED_PREEMPTION_TIMER) != 0;
    v->preempt_rate = c->preemption_timer_rate;

    /* CR0/CR4 bits the guest may not choose freely (fixed by VMX operation, §24.8),
     * plus PE/PG/PAE, whose changes decide the paging mode and IA-32e entry. */
    v->cr0_fix0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0) & ~(uint64_t)(CR0_PE | CR0_PG);
    v->cr0_fix1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
    v->cr4_fix0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
    v->cr4_fix1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
    v->cr0_mask = (v->cr0_fix0 | (~v->cr0_fix1 & 0xffffffffull) | CR0_PE | CR0_PG) & 0xffffffffull;
    v->cr4_mask = (v->cr4_fix0 | (~v->cr4_fix1 & 0xffffffffull) | CR4_PAE | CR4_VMXE) & 0xffffffffull;

    if (!vmcs_clear(v->vmcs_phys) || !make_current(v)) {
        log_error("vmx: cannot load a new VMCS");
        vmx_vcpu_destroy(v);
        return NULL;
    }
    if (proc2 & SECONDARY_ENABLE_VPID) {
        v->vpid = vpid_alloc(&vpids);
        if (!v->vpid) {
            /* 65,535 live vCPUs: this one runs untagged (every entry and exit then
             * flushes its translations, SDM §30.4.3.1), slower but correct. */
            log_warn("vmx: every VPID is in use; a vCPU runs without one");
            proc2 &= ~SECONDARY_ENABLE_VPID;
        } else {
            vmcs_write(VMCS_VPID, v->vpid);
            /* The tag may have been a destroyed vCPU's on this CPU, the only one the
             * new vCPU runs on: drop what was cached under it (§30.4.3.3). */
            vmx_vpid_flush(v);
        }
    }
    v->eptp = ept_pointer(nested);
    v->xsaves = proc2 & SECONDARY_ENABLE_XSAVES;
    if (v->xsaves)
        vmcs_write(VMCS_XSS_EXITING_BITMAP, 0);
    vmcs_write(VMCS_PIN_CONTROLS, pin);
    vmcs_write(VMCS_PROC_CONTROLS, proc);
    vmcs_write(VMCS_PROC_CONTROLS2, proc2);
    vmcs_write(VMCS_EXIT_CONTROLS, exit);
    vmcs_write(VMCS_ENTRY_CONTROLS, entry);
    vmcs_write(VMCS_EXCEPTION_BITMAP, 0);
    vmcs_write(VMCS_PF_ERROR_MASK, 0);
    vmcs_write(VMCS_PF_ERROR_MATCH, 0);
    vmcs_write(VMCS_CR3_TARGET_COUNT, 0);
    vmcs_write(VMCS_EXIT_MSR_STORE_COUNT, 0);
    vmcs_write(VMCS_EXIT_MSR_LOAD_COUNT, 0);
    vmcs_write(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
    vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
    vmcs_write(VMCS_MSR_BITMAP, v->msr_bitmap);
    vmcs_write(VMCS_IO_BITMAP_A, v->io_bitmap_a);
    vmcs_write(VMCS_IO_BITMAP_B, v->io_bitmap_b);
    vmcs_write(VMCS_EPT_POINTER, v->eptp);
    /* The root's address may have been another VM's before: drop what any CPU
     * cached under it (§30.4.3.3). */
    vmx_nested_flush(v);
    vmcs_write(VMCS_TSC_OFFSET, 0);
    vmcs_write(VMCS_CR0_MASK, v->cr0_mask);
    vmcs_write(VMCS_CR4_MASK, v->cr4_mask);
    /* No VMCS shadowing: the link pointer must be all ones (§27.3.1.5). */
    vmcs_write(VMCS_LINK_POINTER, ~0ull);
    vmcs_write(VMCS_GUEST_ACTIVITY_STATE, 0);
    vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, 0);
    vmcs_write(VMCS_GUEST_PENDING_DBG, 0);
    vmcs_write(VMCS_GUEST_DEBUGCTL, 0);
    return v;
}

static void vmx_vcpu_destroy(struct hvm_vcpu *v)
{
    if (v->c.cpu >= 0 && hvm_common_loaded((uint32_t)v->c.cpu) == &v->c) {
        vmcs_clear(v->vmcs_phys);
        hvm_common_forget(&v->c);
    }
    vpid_free(&vpids, v->vpid);
    arch_free_pages(v->vmcs_phys, 1);
    arch_free_pages(v->msr_bitmap, 1);
    arch_free_pages(v->io_bitmap_a, 1);
    arch_free_pages(v->io_bitmap_b, 1);
    hvm_common_free(&v->c);
    arch_free_pages(virt_to_phys(v), (sizeof *v + PAGE_SIZE - 1) / PAGE_SIZE);
}

static const uint32_t seg_fields[HVM_SREG_COUNT][4] = {
    /* selector, base, limit, access rights */
    [HVM_ES]   = { VMCS_GUEST_ES_SEL, VMCS_GUEST_ES_BASE, VMCS_GUEST_ES_LIMIT, VMCS_GUEST_ES_AR },
    [HVM_CS]   = { VMCS_GUEST_CS_SEL, VMCS_GUEST_CS_BASE, VMCS_GUEST_CS_LIMIT, VMCS_GUEST_CS_AR },
    [HVM_SS]   = { VMCS_GUEST_SS_SEL, VMCS_GUEST_SS_BASE, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_SS_AR },
    [HVM_DS]   = { VMCS_GUEST_DS_SEL, VMCS_GUEST_DS_BASE, VMCS_GUEST_DS_LIMIT, VMCS_GUEST_DS_AR },
    [HVM_FS]   = { VMCS_GUEST_FS_SEL, VMCS_GUEST_FS_BASE, VMCS_GUEST_FS_LIMIT, VMCS_GUEST_FS_AR },
    [HVM_GS]   = { VMCS_GUEST_GS_SEL, VMCS_GUEST_GS_BASE, VMCS_GUEST_GS_LIMIT, VMCS_GUEST_GS_AR },
    [HVM_LDTR] = { VMCS_GUEST_LDTR_SEL, VMCS_GUEST_LDTR_BASE, VMCS_GUEST_LDTR_LIMIT, VMCS_GUEST_LDTR_AR },
    [HVM_TR]   = { VMCS_GUEST_TR_SEL, VMCS_GUEST_TR_BASE, VMCS_GUEST_TR_LIMIT, VMCS_GUEST_TR_AR },
};

/* The guest sees the read shadow for masked bits, the real register elsewhere. */
static uint64_t guest_view(uint64_t real, uint64_t shadow, uint64_t mask)
{
    return (real & ~mask) | (shadow & mask);
}

static void vmx_get_state(struct hvm_vcpu *v, struct hvm_state *s)
{
    if (!make_current(v))
        return;
    memcpy(s->gpr, v->gpr, sizeof s->gpr);
    s->gpr[HVM_RSP] = vmcs_read(VMCS_GUEST_RSP);
    s->rip = vmcs_read(VMCS_GUEST_RIP);
    s->rflags = vmcs_read(VMCS_GUEST_RFLAGS);
    s->cr0 = guest_view(vmcs_read(VMCS_GUEST_CR0), vmcs_read(VMCS_CR0_READ_SHADOW), v->cr0_mask);
    s->cr4 = guest_view(vmcs_read(VMCS_GUEST_CR4), vmcs_read(VMCS_CR4_READ_SHADOW), v->cr4_mask);
    s->cr2 = v->cr2;
    s->cr3 = vmcs_read(VMCS_GUEST_CR3);
    s->efer = vmcs_read(VMCS_GUEST_EFER);
    s->pat = vmcs_read(VMCS_GUEST_PAT);
    s->dr7 = vmcs_read(VMCS_GUEST_DR7);
    for (int i = 0; i < HVM_SREG_COUNT; i++) {
        s->seg[i].selector = (uint16_t)vmcs_read(seg_fields[i][0]);
        s->seg[i].base = vmcs_read(seg_fields[i][1]);
        s->seg[i].limit = (uint32_t)vmcs_read(seg_fields[i][2]);
        s->seg[i].ar = (uint32_t)vmcs_read(seg_fields[i][3]);
    }
    s->gdtr.base = vmcs_read(VMCS_GUEST_GDTR_BASE);
    s->gdtr.limit = (uint16_t)vmcs_read(VMCS_GUEST_GDTR_LIMIT);
    s->idtr.base = vmcs_read(VMCS_GUEST_IDTR_BASE);
    s->idtr.limit = (uint16_t)vmcs_read(VMCS_GUEST_IDTR_LIMIT);
    s->sysenter_cs = vmcs_read(VMCS_GUEST_SYSENTER_CS);
    s->sysenter_esp = vmcs_read(VMCS_GUEST_SYSENTER_ESP);
    s->sysenter_eip = vmcs_read(VMCS_GUEST_SYSENTER_EIP);
}

static void vmx_set_state(struct hvm_vcpu *v, const struct hvm_state *s)
{
    if (!make_current(v))
        return;
    memcpy(v->gpr, s->gpr, sizeof v->gpr);
    v->cr2 = s->cr2;
    vmcs_write(VMCS_GUEST_RSP, s->gpr[HVM_RSP]);
    vmcs_write(VMCS_GUEST_RIP, s->rip);
    vmcs_write(VMCS_GUEST_RFLAGS, s->rflags | 2); /* bit 1 is reserved as 1 */
    /* IA-32e mode is EFER.LME with paging on; LMA and the entry control follow it
     * (§27.3.1.1: they must agree at entry). */
    bool lma = (s->efer & EFER_LME) && (s->cr0 & CR0_PG);
    uint64_t efer = lma ? s->efer | EFER_LMA : s->efer & ~EFER_LMA;
    vmcs_write(VMCS_GUEST_EFER, efer);
    vmcs_write(VMCS_ENTRY_CONTROLS, v->entry | (lma ? VM_ENTRY_IA32E_MODE_GUEST : 0));
    vmcs_write(VMCS_GUEST_CR0, (s->cr0 | v->cr0_fix0) & v->cr0_fix1);
    vmcs_write(VMCS_CR0_READ_SHADOW, s->cr0);
    vmcs_write(VMCS_GUEST_CR4, (s->cr4 | v->cr4_fix0) & v->cr4_fix1);
    vmcs_write(VMCS_CR4_READ_SHADOW, s->cr4);
    vmcs_write(VMCS_GUEST_CR3, s->cr3);
    vmcs_write(VMCS_GUEST_PAT, s->pat);
    vmcs_write(VMCS_GUEST_DR7, s->dr7);
    for (int i = 0; i < HVM_SREG_COUNT; i++) {
        vmcs_write(seg_fields[i][0], s->seg[i].selector);
        vmcs_write(seg_fields[i][1], s->seg[i].base);
        vmcs_write(seg_fields[i][2], s->seg[i].limit);
        vmcs_write(seg_fields[i][3], s->seg[i].ar);
    }
    vmcs_write(VMCS_GUEST_GDTR_BASE, s->gdtr.base);
    vmcs_write(VMCS_GUEST_GDTR_LIMIT, s->gdtr.limit);
    vmcs_write(VMCS_GUEST_IDTR_BASE, s->idtr.base);
    vmcs_write(VMCS_GUEST_IDTR_LIMIT, s->idtr.limit);
    vmcs_write(VMCS_GUEST_SYSENTER_CS, s->sysenter_cs);
    vmcs_write(VMCS_GUEST_SYSENTER_ESP, s->sysenter_esp);
    vmcs_write(VMCS_GUEST_SYSENTER_EIP, s->sysenter_eip);
}

static uint64_t vmx_get_gpr(struct hvm_vcpu *v, enum hvm_gpr r)
{
    if (r == HVM_RSP)
        return make_current(v) ? vmcs_read(VMCS_GUEST_RSP) : 0;
    return v->gpr[r & 15];
}

static void vmx_set_gpr(struct hvm_vcpu *v, enum hvm_gpr r, uint64_t value)
{
    if (r == HVM_RSP) {
        if (make_current(v))
            vmcs_write(VMCS_GUEST_RSP, value);
        return;
    }
    v->gpr[r & 15] = value;
}

static uint64_t vmx_get_rip(struct hvm_vcpu *v)
{
    return make_current(v) ? vmcs_read(VMCS_GUEST_RIP) : 0;
}

static uint64_t vmx_get_cr4(struct hvm_vcpu *v)
{
    if (!make_current(v))
        return 0;
    return guest_view(vmcs_read(VMCS_GUEST_CR4), vmcs_read(VMCS_CR4_READ_SHADOW), v->cr4_mask);
}

static void vmx_skip_insn(struct hvm_vcpu *v, uint8_t len)
{
    if (!make_current(v))
        return;
    vmcs_write(VMCS_GUEST_RIP, vmcs_read(VMCS_GUEST_RIP) + len);
    /* Completing an instruction ends an STI or MOV SS shadow (SDM Vol. 3A §6.8.3). */
    uint64_t intr = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
    if (intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS))
        vmcs_write(VMCS_GUEST_INTERRUPTIBILITY,
                   intr & ~(uint64_t)(VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS));
    /* The instruction ran with TF set: its single-step trap follows.  The CPU records
     * none for an instruction that exits (§28.3.4: BS only under MOV-SS blocking);
     * IA32_DEBUGCTL.BTF, which would make it a branch trap, is 0 in every guest. */
    if (vmcs_read(VMCS_GUEST_RFLAGS) & HVM_RFLAGS_TF)
        v->c.debug_trap |= HVM_DR6_BS;
}

static void vmx_debug_trap(struct hvm_vcpu *v, uint32_t dr6_bits)
{
    v->c.debug_trap |= dr6_bits & (HVM_DR6_BS | HVM_DR6_B0_3);
}

static void vmx_get_dr0_3(struct hvm_vcpu *v, uint64_t dr[4])
{
    /* Live in the CPU while v is current on it (switch_to). */
    if (make_current(v))
        read_dr0_3(dr);
    else
        memcpy(dr, v->c.dr, sizeof v->c.dr);
}

static void vmx_set_event_len(struct hvm_vcpu *v, uint8_t len)
{
    v->c.reinject_len = len;
}

static void vmx_set_tsc_aux(struct hvm_vcpu *v, uint32_t value)
{
    if (make_current(v))
        hvm_common_set_tsc_aux(&v->c, value);
}

static void vmx_set_pdptes(struct hvm_vcpu *v, const uint64_t pdpte[4])
{
    if (!make_current(v))
        return;
    vmcs_write(VMCS_GUEST_PDPTE0, pdpte[0]);
    vmcs_write(VMCS_GUEST_PDPTE1, pdpte[1]);
    vmcs_write(VMCS_GUEST_PDPTE2, pdpte[2]);
    vmcs_write(VMCS_GUEST_PDPTE3, pdpte[3]);
}

static void vmx_finish_cpuid(struct hvm_vcpu *v, const uint32_t r[4], uint8_t len)
{
    v->gpr[HVM_RAX] = r[0];
    v->gpr[HVM_RBX] = r[1];
    v->gpr[HVM_RCX] = r[2];
    v->gpr[HVM_RDX] = r[3];
    vmx_skip_insn(v, len);
}

static bool vmx_can_inject(struct hvm_vcpu *v, enum hvm_event_type t)
{
    if (!make_current(v) || v->c.reinject || v->c.have_event)
        return false;
    uint64_t intr = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
    if (t == HVM_EVENT_NMI)
        return !(intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS | VMX_INTERRUPTIBILITY_NMI));
    if (t == HVM_EVENT_EXTINT)
        return (vmcs_read(VMCS_GUEST_RFLAGS) & (1u << 9)) &&
               !(intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS));
    return true;
}

static bool vmx_inject(struct hvm_vcpu *v, const struct hvm_event *e)
{
    return hvm_common_queue(&v->c, e);
}

static void set_proc(struct hvm_vcpu *v, uint32_t proc)
{
    if (proc != v->proc) {
        v->proc = proc;
        vmcs_write(VMCS_PROC_CONTROLS, proc);
    }
}

static void vmx_request_window(struct hvm_vcpu *v, unsigned windows)
{
    if (!make_current(v))
        return;
    uint32_t proc = v->proc;
    if (windows & HVM_WINDOW_INTR)
        proc |= CPU_BASED_INTR_WINDOW_EXITING;
    /* NMI-window exiting exists only with virtual NMIs (§25.6.2). */
    if ((windows & HVM_WINDOW_NMI) && (vmx_caps()->proc.may_be_1 & CPU_BASED_NMI_WINDOW_EXITING))
        proc |= CPU_BASED_NMI_WINDOW_EXITING;
    set_proc(v, proc);
}

/* The event types in the VMX interruption-information encoding (§25.8.3). */
static const uint32_t vmx_event_type[] = {
    [HVM_EVENT_EXTINT] = VMX_INTR_TYPE_EXTERNAL, [HVM_EVENT_NMI] = VMX_INTR_TYPE_NMI,
    [HVM_EVENT_EXCEPTION] = VMX_INTR_TYPE_HW_EXCEPTION, [HVM_EVENT_SOFTINT] = VMX_INTR_TYPE_SW_INTERRUPT,
    [HVM_EVENT_SOFT_EXCEPTION] = VMX_INTR_TYPE_SW_EXCEPTION,
    [HVM_EVENT_PRIV_SOFT_EXCEPTION] = VMX_INTR_TYPE_PRIV_SW_EXCEPTION,
};

/* Writes the entry's event: a software event is delivered as if its instruction
 * (len bytes) had just run (§27.6.1.1).  A fault pushes RFLAGS with RF set, as the
 * CPU's own faults do (SDM Vol. 3A §6.8.3): the entry does not do it by itself. */
static void write_entry_event(const struct hvm_event *e, uint8_t len)
{
    uint32_t info = VMX_INTR_INFO_VALID | vmx_event_type[e->type] << VMX_INTR_INFO_TYPE_SHIFT |
                    (e->type == HVM_EVENT_NMI ? 2 : e->vector);
    if ((e->type == HVM_EVENT_EXCEPTION || e->type == HVM_EVENT_SOFT_EXCEPTION) && e->has_error)
        info |= VMX_INTR_INFO_ERROR_CODE;
    vmcs_write(VMCS_ENTRY_INTR_INFO, info);
    vmcs_write(VMCS_ENTRY_EXCEPTION_ERROR, e->error_code);
    vmcs_write(VMCS_ENTRY_INSTRUCTION_LEN, hvm_event_is_soft(e) ? len : 0);
    if (hvm_event_sets_rf(e))
        vmcs_write(VMCS_GUEST_RFLAGS, vmcs_read(VMCS_GUEST_RFLAGS) | HVM_RFLAGS_RF);
}

static bool event_deliverable(const struct hvm_event *e)
{
    uint64_t intr = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
    if (e->type == HVM_EVENT_EXTINT)
        return (vmcs_read(VMCS_GUEST_RFLAGS) & HVM_RFLAGS_IF) &&
               !(intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS));
    if (e->type == HVM_EVENT_NMI)
        return !(intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS | VMX_INTERRUPTIBILITY_NMI));
    return true;
}

/* What this entry delivers, in hvm_common_next's order.  A debug trap owed is
 * injected as a #DB with its bits added to DR6 (live in the CPU while v is current),
 * as the CPU delivers one after the instruction; injecting it as an event, not through
 * the pending debug exceptions, keeps any interrupt queued behind it for its window
 * (an entry injecting an external interrupt or NMI would lose pending debug
 * exceptions, §27.7.3), and leaves nothing pending to deliver twice. */
static void inject_for_entry(struct hvm_vcpu *v)
{
    struct hvm_common *c = &v->c;
    switch (hvm_common_next(c, c->have_event && event_deliverable(&c->event))) {
    case HVM_NEXT_NONE:
        return;
    case HVM_NEXT_REINJECT:
        write_entry_event(&c->reinject_event, c->reinject_len);
        c->reinject = false;
        return;
    case HVM_NEXT_DEBUG_TRAP:
        write_dr6(read_dr6() | c->debug_trap);
        c->debug_trap = 0;
        if (!(vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS)))
            vmcs_write(VMCS_GUEST_PENDING_DBG, 0);
        write_entry_event(&(struct hvm_event){ .type = HVM_EVENT_EXCEPTION, .vector = 1 }, 0);
        if (c->have_event)
            vmx_request_window(v, c->event.type == HVM_EVENT_NMI ? HVM_WINDOW_NMI : HVM_WINDOW_INTR);
        return;
    case HVM_NEXT_WAIT:
        vmx_request_window(v, c->event.type == HVM_EVENT_NMI ? HVM_WINDOW_NMI : HVM_WINDOW_INTR);
        return;
    case HVM_NEXT_EVENT:
        write_entry_event(&c->event, 0);
        hvm_common_event_taken(c);
        return;
    }
}

static void record_vectoring(struct hvm_vcpu *v, uint32_t basic)
{
    uint32_t info = (uint32_t)vmcs_read(VMCS_IDT_VECTORING_INFO);
    if (!(info & VMX_INTR_INFO_VALID) || basic == VMX_EXIT_TRIPLE_FAULT)
        return;
    uint32_t type = (info & VMX_INTR_INFO_TYPE_MASK) >> VMX_INTR_INFO_TYPE_SHIFT;
    static const enum hvm_event_type of_type[8] = {
        [VMX_INTR_TYPE_EXTERNAL] = HVM_EVENT_EXTINT, [VMX_INTR_TYPE_NMI] = HVM_EVENT_NMI,
        [VMX_INTR_TYPE_HW_EXCEPTION] = HVM_EVENT_EXCEPTION, [VMX_INTR_TYPE_SW_INTERRUPT] = HVM_EVENT_SOFTINT,
        [VMX_INTR_TYPE_PRIV_SW_EXCEPTION] = HVM_EVENT_PRIV_SOFT_EXCEPTION,
        [VMX_INTR_TYPE_SW_EXCEPTION] = HVM_EVENT_SOFT_EXCEPTION,
    };
    struct hvm_event e = {
        .type = of_type[type], .vector = (uint8_t)(info & VMX_INTR_INFO_VECTOR_MASK),
        .has_error = (info & VMX_INTR_INFO_ERROR_CODE) != 0,
        .error_code = (uint32_t)vmcs_read(VMCS_IDT_VECTORING_ERROR),
    };
    /* Software events are re-injected as if their instruction had just run: entry
     * needs its length, which this exit reports (§28.2.4). */
    hvm_common_interrupted(&v->c, &e, hvm_event_is_soft(&e) ? (uint8_t)vmcs_read(VMCS_EXIT_INSTRUCTION_LEN) : 0);
}

static void decode_exit(struct hvm_vcpu *v, uint32_t raw, struct hvm_exit *x)
{
    uint32_t basic = raw & 0xffff;
    uint64_t q = vmcs_read(VMCS_EXIT_QUALIFICATION);
    *x = (struct hvm_exit){ .raw_reason = raw, .insn_len = (uint8_t)vmcs_read(VMCS_EXIT_INSTRUCTION_LEN) };
    if (raw & VMX_EXIT_REASON_ENTRY_FAILURE) {
        x->reason = HVM_EXIT_ENTRY_FAILED;
        return;
    }
    switch (basic) {
    case VMX_EXIT_EXCEPTION_NMI: {
        uint32_t info = (uint32_t)vmcs_read(VMCS_EXIT_INTR_INFO);
        uint32_t type = (info & VMX_INTR_INFO_TYPE_MASK) >> VMX_INTR_INFO_TYPE_SHIFT;
        if (type == VMX_INTR_TYPE_NMI) {
            /* A host NMI (panic's stop signal, a watchdog) arrived while the guest
             * ran: give it to plinth's own handler. */
            __asm__ volatile("int $2");
            x->reason = HVM_EXIT_INTERRUPT;
            return;
        }
        x->reason = HVM_EXIT_EXCEPTION;
        x->exception.vector = info & VMX_INTR_INFO_VECTOR_MASK;
        x->exception.has_error = (info & VMX_INTR_INFO_ERROR_CODE) != 0;
        x->exception.error_code = (uint32_t)vmcs_read(VMCS_EXIT_INTR_ERROR);
        x->exception.cr2 = q;
        return;
    }
    case VMX_EXIT_EXTERNAL_INTERRUPT: x->reason = HVM_EXIT_INTERRUPT; return;
    case VMX_EXIT_TRIPLE_FAULT:       x->reason = HVM_EXIT_TRIPLE_FAULT; return;
    case VMX_EXIT_INIT:               x->reason = HVM_EXIT_INIT; return;
    case VMX_EXIT_SIPI:               x->reason = HVM_EXIT_SIPI; x->sipi.vector = q & 0xff; return;
    case VMX_EXIT_INTERRUPT_WINDOW:
        set_proc(v, v->proc & ~CPU_BASED_INTR_WINDOW_EXITING);
        x->reason = HVM_EXIT_INTR_WINDOW;
        return;
    case VMX_EXIT_NMI_WINDOW:
        set_proc(v, v->proc & ~CPU_BASED_NMI_WINDOW_EXITING);
        x->reason = HVM_EXIT_NMI_WINDOW;
        return;
    case VMX_EXIT_CPUID:
        x->reason = HVM_EXIT_CPUID;
        x->cpuid.leaf = (uint32_t)v->gpr[HVM_RAX];
        x->cpuid.subleaf = (uint32_t)v->gpr[HVM_RCX];
        return;
    case VMX_EXIT_HLT:     x->reason = HVM_EXIT_HLT; return;
    case VMX_EXIT_INVD:    x->reason = HVM_EXIT_INVD; return;
    case VMX_EXIT_WBINVD:  x->reason = HVM_EXIT_WBINVD; return;
    case VMX_EXIT_XSETBV:  x->reason = HVM_EXIT_XSETBV; return;
    case VMX_EXIT_RDTSC:
    case VMX_EXIT_RDTSCP:  x->reason = HVM_EXIT_RDTSC; return;
    case VMX_EXIT_PAUSE:   x->reason = HVM_EXIT_PAUSE; return;
    case VMX_EXIT_RDPMC:   x->reason = HVM_EXIT_RDPMC; return;
    case VMX_EXIT_VMCALL:  x->reason = HVM_EXIT_HYPERCALL; return;
    case VMX_EXIT_TASK_SWITCH:
        /* Table 28-2: selector 15:0, source 31:30 (0 CALL, 1 IRET, 2 JMP, 3 IDT task gate). */
        x->reason = HVM_EXIT_TASK_SWITCH;
        x->task.selector = (uint16_t)q;
        x->task.source = (uint8_t)((q >> 30) & 3);
        return;
    case VMX_EXIT_MWAIT:
    case VMX_EXIT_MONITOR: x->reason = HVM_EXIT_MWAIT; return;
    case VMX_EXIT_PREEMPTION_TIMER: x->reason = HVM_EXIT_PREEMPT; return;
    case VMX_EXIT_VMCLEAR: case VMX_EXIT_VMLAUNCH: case VMX_EXIT_VMPTRLD:
    case VMX_EXIT_VMPTRST: case VMX_EXIT_VMREAD: case VMX_EXIT_VMRESUME: case VMX_EXIT_VMWRITE:
    case VMX_EXIT_VMXOFF: case VMX_EXIT_VMXON: case VMX_EXIT_INVEPT: case VMX_EXIT_INVVPID:
    case VMX_EXIT_VMFUNC:
        x->reason = HVM_EXIT_VIRT_INSN;
        return;
    case VMX_EXIT_RDMSR:
    case VMX_EXIT_WRMSR:
        x->reason = basic == VMX_EXIT_RDMSR ? HVM_EXIT_RDMSR : HVM_EXIT_WRMSR;
        x->msr.msr = (uint32_t)v->gpr[HVM_RCX];
        return;
    case VMX_EXIT_IO:
        /* Exit qualification for I/O instructions (§28.2.1, Table 28-5). */
        x->reason = HVM_EXIT_IO;
        x->io.size = (uint8_t)((q & 7) + 1);
        x->io.in = (q >> 3) & 1;
        x->io.string = (q >> 4) & 1;
        x->io.rep = (q >> 5) & 1;
        x->io.port = (uint16_t)(q >> 16);
        return;
    case VMX_EXIT_CR_ACCESS:
        /* Table 28-3: CR number 3:0, access type 5:4, GPR 11:8, LMSW data 31:16. */
        x->reason = HVM_EXIT_CR;
        x->cr.cr = q & 15;
        x->cr.type = (enum hvm_cr_access)((q >> 4) & 3);
        x->cr.gpr = (q >> 8) & 15;
        x->cr.lmsw_value = (uint16_t)(q >> 16);
        return;
    case VMX_EXIT_EPT_VIOLATION:
        /* Table 28-7: read 0, write 1, fetch 2, linear address valid 7, NMI unblocked by IRET 12. */
        x->reason = HVM_EXIT_NPF;
        x->npf.gpa = vmcs_read(VMCS_GUEST_PHYSICAL_ADDRESS);
        x->npf.read = q & 1;
        x->npf.write = (q >> 1) & 1;
        x->npf.fetch = (q >> 2) & 1;
        x->npf.gla_valid = (q >> 7) & 1;
        if (x->npf.gla_valid)
            x->npf.gla = vmcs_read(VMCS_GUEST_LINEAR_ADDRESS);
        if ((q & (1u << 12)) && !v->c.reinject)
            vmcs_write(VMCS_GUEST_INTERRUPTIBILITY,
                       vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) | VMX_INTERRUPTIBILITY_NMI);
        return;
    default:
        x->reason = HVM_EXIT_UNHANDLED;
        return;
    }
}

static void vmx_vcpu_run(struct hvm_vcpu *v, uint64_t preempt_tsc, struct hvm_exit *x)
{
    /* *x is filled by decode_exit after an exit, here only when there is none. */
    if (!make_current(v)) {
        *x = (struct hvm_exit){ .reason = HVM_EXIT_ENTRY_FAILED };
        return;
    }
    inject_for_entry(v);
    if (v->preempt) {
        /* The timer counts down once every 2^rate TSC ticks (§26.5.1). */
        uint64_t ticks = preempt_tsc ? preempt_tsc >> v->preempt_rate : ~0ull;
        vmcs_write(VMCS_PREEMPTION_TIMER_VALUE, ticks > 0xffffffffull ? 0xffffffffull : ticks ? ticks : 1);
    }
    /* §27.3.1.5: under STI or MOV-SS blocking, the pending BS bit must say whether a
     * single-step trap is due (TF set, DEBUGCTL.BTF clear in every guest); state the
     * monitor changed (RFLAGS, a completed instruction) must not break that. */
    uint64_t intr = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
    if (intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS)) {
        uint64_t pend = vmcs_read(VMCS_GUEST_PENDING_DBG);
        bool tf = vmcs_read(VMCS_GUEST_RFLAGS) & HVM_RFLAGS_TF;
        if (tf != ((pend & PENDING_DBG_BS) != 0))
            vmcs_write(VMCS_GUEST_PENDING_DBG, tf ? pend | PENDING_DBG_BS : pend & ~(uint64_t)PENDING_DBG_BS);
    }
    write_cr2(v->cr2);
    int rc = vmx_enter(v, v->launched);
    v->cr2 = read_cr2();
    if (rc != 0) {
        *x = (struct hvm_exit){ .reason = HVM_EXIT_ENTRY_FAILED, .raw_reason = ~0u };
        uint32_t err = rc == 2 ? (uint32_t)vmcs_read(VMCS_INSTRUCTION_ERROR) : 0;
        log_error("vmx: %s failed: %s (VM-instruction error %u: %s)", v->launched ? "VMRESUME" : "VMLAUNCH",
                  rc == 1 ? "no current VMCS" : "the CPU refused the controls or host state",
                  err, vmx_instruction_error_name(err));
        if (err == 7 || err == 8)
            vmx_dump_controls();
        return;
    }
    v->launched = true;
    uint32_t raw = (uint32_t)vmcs_read(VMCS_EXIT_REASON);
    record_vectoring(v, raw & 0xffff);
    decode_exit(v, raw, x);
    x->delivering = v->c.reinject;
    x->delivering_vector = v->c.reinject_event.vector;
    if (x->reason == HVM_EXIT_ENTRY_FAILED) {
        /* §27.8: the entry failed on guest state (33), MSR loading (34) or a machine
         * check (41); the VMCS is not launched in that case. */
        v->launched = false;
        log_error("vmx: VM entry failed: %s (exit reason %u, qualification %#lx)",
                  vmx_exit_reason_name(raw & 0xffff), raw & 0xffff,
                  (unsigned long)vmcs_read(VMCS_EXIT_QUALIFICATION));
        if ((raw & 0xffff) == VMX_EXIT_INVALID_GUEST_STATE)
            vmx_diagnose_guest_state();
    }
}

/* Drops the translations this CPU cached under v's VPID (all VPIDs' where the CPU
 * cannot single one out). */
static void vmx_vpid_flush(struct hvm_vcpu *v)
{
    const struct vmx_caps *c = vmx_caps();
    if (v->vpid && c->invvpid_single)
        vmx_invvpid(1, v->vpid);
    else if (c->invvpid_all)
        vmx_invvpid(2, 0);
}

static void vmx_nested_flush(struct hvm_vcpu *v)
{
    const struct vmx_caps *c = vmx_caps();
    if (c->invept_single)
        vmx_invept(1, v->eptp);
    else if (c->invept_all)
        vmx_invept(2, 0);
}

static void vmx_reset_private(struct hvm_vcpu *v)
{
    if (!make_current(v))
        return;
    hvm_common_reset(&v->c);
    v->dr6 = HVM_DR6_RESET;
    /* It is live on this CPU: load the reset values into the hardware now. */
    for (int i = 0; i < HVM_SWAPPED_MSRS; i++) {
        v->swapped_msr[i] = 0;
        wrmsr(hvm_swapped_msrs[i], 0);
    }
    write_dr6(v->dr6);
    /* Nothing of the crashed run may reach the next: no interrupt shadow, NMI
     * blocking, pending debug exception, queued event or window exit, and no
     * translation cached under this VPID (SDM Vol. 3C §30.4.3.3). */
    vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, 0);
    vmcs_write(VMCS_GUEST_PENDING_DBG, 0);
    vmcs_write(VMCS_GUEST_ACTIVITY_STATE, 0);
    vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
    set_proc(v, v->proc & ~(CPU_BASED_INTR_WINDOW_EXITING | CPU_BASED_NMI_WINDOW_EXITING));
    vmx_vpid_flush(v);
}

static void vmx_save_extra(struct hvm_vcpu *v, struct hvm_extra *x)
{
    *x = (struct hvm_extra){ 0 };
    if (!make_current(v))
        return;
    hvm_common_save(&v->c, x);
    /* Live in the CPU while v is current (switch_to). */
    x->dr6 = read_dr6();
    for (int i = 0; i < HVM_SWAPPED_MSRS; i++)
        x->syscall_msr[i] = rdmsr(hvm_swapped_msrs[i]);
    /* The VMX interruptibility bits are HVM_INTR_* (SDM Vol. 3C Table 25-3). */
    x->interruptibility = (uint32_t)vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) &
                          (HVM_INTR_STI | HVM_INTR_MOVSS | HVM_INTR_NMI);
    x->pending_dbg = vmcs_read(VMCS_GUEST_PENDING_DBG);
    x->pdpte[0] = vmcs_read(VMCS_GUEST_PDPTE0);
    x->pdpte[1] = vmcs_read(VMCS_GUEST_PDPTE1);
    x->pdpte[2] = vmcs_read(VMCS_GUEST_PDPTE2);
    x->pdpte[3] = vmcs_read(VMCS_GUEST_PDPTE3);
}

static bool vmx_load_extra(struct hvm_vcpu *v, const struct hvm_extra *x, const char **why)
{
    if (!make_current(v)) {
        *why = "its VMCS cannot be made current on this CPU";
        return false;
    }
    /* What WRMSR, MOV DR6 and VM entry would refuse (SDM Vol. 3C §27.3.1.5): plinth
     * loads the MSRs itself, so a bad value would fault in plinth, not in the guest. */
    if ((x->dr6 >> 32) || !hvm_canonical(x->syscall_msr[1]) || !hvm_canonical(x->syscall_msr[2]) ||
        !hvm_canonical(x->syscall_msr[4]) || (x->syscall_msr[3] >> 32)) {
        *why = "DR6 or a SYSCALL MSR holds a value the CPU refuses";
        return false;
    }
    uint32_t intr = x->interruptibility;
    if ((intr & ~(HVM_INTR_STI | HVM_INTR_MOVSS | HVM_INTR_NMI)) ||
        ((intr & HVM_INTR_STI) && (intr & HVM_INTR_MOVSS)) ||
        ((intr & HVM_INTR_STI) && !(vmcs_read(VMCS_GUEST_RFLAGS) & HVM_RFLAGS_IF)) ||
        (x->pending_dbg & ~0x1500full)) {
        *why = "its interruptibility or pending debug exceptions are not a state VM entry takes";
        return false;
    }
    if (!hvm_common_load(&v->c, x, why))
        return false;
    v->dr6 = x->dr6;
    write_dr6(v->dr6);
    for (int i = 0; i < HVM_SWAPPED_MSRS; i++) {
        v->swapped_msr[i] = x->syscall_msr[i];
        wrmsr(hvm_swapped_msrs[i], v->swapped_msr[i]);
    }
    vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, intr);
    vmcs_write(VMCS_GUEST_PENDING_DBG, x->pending_dbg);
    vmcs_write(VMCS_GUEST_ACTIVITY_STATE, 0);
    vmcs_write(VMCS_GUEST_PDPTE0, x->pdpte[0]);
    vmcs_write(VMCS_GUEST_PDPTE1, x->pdpte[1]);
    vmcs_write(VMCS_GUEST_PDPTE2, x->pdpte[2]);
    vmcs_write(VMCS_GUEST_PDPTE3, x->pdpte[3]);
    /* The windows of the run before are asked for again by the monitor's pre_entry;
     * translations cached for the memory the snapshot replaced must go. */
    vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
    set_proc(v, v->proc & ~(CPU_BASED_INTR_WINDOW_EXITING | CPU_BASED_NMI_WINDOW_EXITING));
    vmx_vpid_flush(v);
    vmx_nested_flush(v);
    return true;
}

static bool vmx_set_xcr0(struct hvm_vcpu *v, uint64_t xcr0)
{
    return make_current(v) && fpu_set_guest_xcr0(&v->c.fpu, xcr0);
}

static void vmx_set_tsc_offset(struct hvm_vcpu *v, int64_t offset)
{
    if (make_current(v))
        vmcs_write(VMCS_TSC_OFFSET, (uint64_t)offset);
}

static void vmx_dump(struct hvm_vcpu *v)
{
    if (!make_current(v))
        return;
    uint32_t raw = (uint32_t)vmcs_read(VMCS_EXIT_REASON);
    log_error("vmx: last exit %u (%s), qualification %#lx, guest rip %#lx, rsp %#lx, rflags %#lx",
              raw & 0xffff, vmx_exit_reason_name(raw & 0xffff),
              (unsigned long)vmcs_read(VMCS_EXIT_QUALIFICATION), (unsigned long)vmcs_read(VMCS_GUEST_RIP),
              (unsigned long)vmcs_read(VMCS_GUEST_RSP), (unsigned long)vmcs_read(VMCS_GUEST_RFLAGS));
    vmx_diagnose_guest_state();
}

int vmx_cpu_enable(void);

const struct hvm_backend vmx_backend = {
    .name = "vmx",
    .nested_format = &ept_format,
    .cpu_enable = vmx_cpu_enable,
    .vcpu_create = vmx_vcpu_create,
    .vcpu_destroy = vmx_vcpu_destroy,
    .vcpu_run = vmx_vcpu_run,
    .get_state = vmx_get_state,
    .set_state = vmx_set_state,
    .get_gpr = vmx_get_gpr,
    .set_gpr = vmx_set_gpr,
    .get_rip = vmx_get_rip,
    .get_cr4 = vmx_get_cr4,
    .skip_insn = vmx_skip_insn,
    .debug_trap = vmx_debug_trap,
    .get_dr0_3 = vmx_get_dr0_3,
    .set_event_len = vmx_set_event_len,
    .set_pdptes = vmx_set_pdptes,
    .set_tsc_aux = vmx_set_tsc_aux,
    .finish_cpuid = vmx_finish_cpuid,
    .inject = vmx_inject,
    .can_inject = vmx_can_inject,
    .request_window = vmx_request_window,
    .nested_flush = vmx_nested_flush,
    .reset_private = vmx_reset_private,
    .set_xcr0 = vmx_set_xcr0,
    .save_extra = vmx_save_extra,
    .load_extra = vmx_load_extra,
    .set_tsc_offset = vmx_set_tsc_offset,
    .guest_has_rdtscp = vmx_guest_has_rdtscp,
    .guest_has_xsaves = vmx_guest_has_xsaves,
    .dump = vmx_dump,
};
