/* A vCPU on VT-x: its VMCS, the controls chosen from the capability MSRs, entry
 * and exit, event injection with re-injection of interrupted deliveries. */
#include "arch/x86_64/vmx/vmx.h"
#include "arch/x86_64/vmx/vmcs.h"
#include "arch/x86_64/vmx/vmx_msr.h"
#include "arch/x86_64/vmx/ept.h"
#include "arch/x86_64/hvm_msr.h"
#include "arch/x86_64/fpu.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"
#include "kernel/log.h"
#include "kernel/pmm.h"
#include "kernel/smp.h"
#include "kernel/string.h"
#include "kernel/time.h"

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
#define SECONDARY_ENABLE_INVPCID        (1u << 12)

/* The first 16 qwords are the guest GPRs: vmx_entry.asm depends on it. */
struct hvm_vcpu {
    uint64_t gpr[HVM_GPR_COUNT];
    uint64_t cr2;
    uint64_t vmcs_phys;
    int      cpu;                   /* where the VMCS is current; -1: nowhere yet */
    bool     launched;
    uint16_t vpid;
    uint64_t eptp;
    uint64_t msr_bitmap, io_bitmap_a, io_bitmap_b;
    uint32_t proc;                  /* current primary controls (windows toggle) */
    uint32_t entry;                 /* entry controls without IA-32e mode */
    uint64_t cr0_mask, cr4_mask, cr0_fix0, cr0_fix1, cr4_fix0, cr4_fix1;
    bool     have_event;
    struct hvm_event event;         /* queued by the monitor */
    bool     reinject;              /* an interrupted delivery to redo first */
    uint32_t reinject_info, reinject_error, reinject_len;
    uint64_t swapped_msr[HVM_SWAPPED_MSRS];
    uint64_t dr[4], dr6;            /* debug registers the VMCS does not switch */
    struct fpu_state fpu;
    uint8_t  preempt_rate;
    bool     preempt;
};

/* DR6 after reset: reserved bits read as 1 (SDM Vol. 3B §18.2.3). */
#define DR6_RESET 0xffff0ff0ull

void vmx_exit_entry(void);
int vmx_enter(struct hvm_vcpu *v, int launched);
static void vmx_nested_flush(struct hvm_vcpu *v);

/* The vCPU whose VMCS and SYSCALL MSRs each CPU holds now. */
static struct hvm_vcpu *loaded[SMP_MAX_CPUS];
static uint16_t next_vpid = 1;

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
    uint64_t p = pmm_alloc_page();
    if (p)
        memset(phys_to_virt(p), fill, PAGE_SIZE);
    return p;
}

/* Clears the exit bit for an MSR in all four quarters of the bitmap (§25.6.9):
 * read-low, read-high, write-low, write-high at offsets 0, 1024, 2048, 3072. */
static void msr_bitmap_allow(uint8_t *bm, uint32_t msr)
{
    uint32_t base;
    if (msr <= 0x1fff)
        base = 0;
    else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
        base = 1024, msr -= 0xc0000000;
    else
        return;
    bm[base + msr / 8] &= (uint8_t)~(1u << (msr % 8));
    bm[base + 2048 + msr / 8] &= (uint8_t)~(1u << (msr % 8));
}

static bool host_has_invpcid(void)
{
    return cpuid(0, 0).eax >= 7 && (cpuid(7, 0).ebx & (1u << 10));
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

/* DR0-DR3 and DR6 stay in the CPU while a guest runs (MOV DR does not exit; the VMCS
 * switches only DR7): plinth's own code never uses them, so they are swapped only
 * when a CPU changes vCPU. */
static void debugregs_save(struct hvm_vcpu *v)
{
    read_dr0_3(v->dr);
    v->dr6 = read_dr6();
}

static void debugregs_load(const struct hvm_vcpu *v)
{
    write_dr0_3(v->dr);
    write_dr6(v->dr6);
}

/* The switch from another vCPU (or none) to v on this CPU: out of line, so that the
 * check every accessor makes stays a few instructions. */
static __attribute__((noinline)) bool switch_to(struct hvm_vcpu *v, uint32_t cpu)
{
    if (v->cpu >= 0 && v->cpu != (int)cpu) {
        /* A VMCS active on another CPU must be VMCLEARed there first (§25.11.1);
         * plinth keeps each vCPU on the CPU it first ran on. */
        log_error("vmx: vCPU moved from CPU %d to CPU %u; vCPUs stay on one CPU", v->cpu, cpu);
        return false;
    }
    struct hvm_vcpu *old = loaded[cpu];
    if (old) {
        for (int i = 0; i < HVM_SWAPPED_MSRS; i++)
            old->swapped_msr[i] = rdmsr(hvm_swapped_msrs[i]);
        debugregs_save(old);
    }
    if (!vmcs_load(v->vmcs_phys)) {
        log_error("vmx: VMPTRLD failed");
        return false;
    }
    for (int i = 0; i < HVM_SWAPPED_MSRS; i++)
        wrmsr(hvm_swapped_msrs[i], v->swapped_msr[i]);
    debugregs_load(v);
    fpu_switch(old ? &old->fpu : NULL, &v->fpu);
    loaded[cpu] = v;
    v->cpu = (int)cpu;
    write_host_state();
    return true;
}

/* Makes v's VMCS current on this CPU, and its SYSCALL MSRs live. */
static inline bool make_current(struct hvm_vcpu *v)
{
    uint32_t cpu = this_cpu()->index;
    return __builtin_expect(loaded[cpu] == v, 1) || switch_to(v, cpu);
}

static struct hvm_vcpu *vmx_vcpu_create(const struct gpt *nested)
{
    const struct vmx_caps *c = vmx_caps();
    static struct hvm_vcpu none;
    struct hvm_vcpu *v;
    uint64_t vp = pmm_alloc_contig((sizeof *v + PAGE_SIZE - 1) / PAGE_SIZE, PAGE_SIZE);
    if (!vp)
        return NULL;
    v = phys_to_virt(vp);
    *v = none;
    v->cpu = -1;
    v->dr6 = DR6_RESET;
    v->vmcs_phys = pmm_alloc_page();
    v->msr_bitmap = alloc_filled_page(0xff);
    v->io_bitmap_a = alloc_filled_page(0xff);
    v->io_bitmap_b = alloc_filled_page(0xff);
    if (!v->vmcs_phys || !v->msr_bitmap || !v->io_bitmap_a || !v->io_bitmap_b || !fpu_state_init(&v->fpu)) {
        log_error("vmx: out of memory for a vCPU");
        return NULL; /* the pages taken so far stay with the failed VM's teardown */
    }
    for (size_t i = 0; i < hvm_msr_passthrough_count; i++)
        msr_bitmap_allow(phys_to_virt(v->msr_bitmap), hvm_msr_passthrough[i]);
    *(uint32_t *)phys_to_virt(v->vmcs_phys) = c->vmcs_revision;

    uint32_t pin, proc, proc2, exit, entry;
    uint32_t want_proc2 = SECONDARY_ENABLE_RDTSCP | (host_has_invpcid() ? SECONDARY_ENABLE_INVPCID : 0);
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
              vmx_ctl(&c->exit, VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_LOAD_IA32_EFER | VM_EXIT_SAVE_IA32_EFER,
                      VM_EXIT_SAVE_IA32_PAT | VM_EXIT_LOAD_IA32_PAT, "VM-exit", &exit) &&
              vmx_ctl(&c->entry, VM_ENTRY_LOAD_IA32_EFER, VM_ENTRY_LOAD_IA32_PAT, "VM-entry", &entry);
    if (!ok)
        return NULL;
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
        return NULL;
    }
    if (proc2 & SECONDARY_ENABLE_VPID) {
        v->vpid = __atomic_fetch_add(&next_vpid, 1, __ATOMIC_RELAXED);
        vmcs_write(VMCS_VPID, v->vpid);
    }
    v->eptp = ept_pointer(nested);
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
    if (v->cpu >= 0 && loaded[v->cpu] == v) {
        vmcs_clear(v->vmcs_phys);
        loaded[v->cpu] = NULL;
    }
    pmm_free_pages(v->vmcs_phys, 1);
    pmm_free_pages(v->msr_bitmap, 1);
    pmm_free_pages(v->io_bitmap_a, 1);
    pmm_free_pages(v->io_bitmap_b, 1);
    fpu_state_free(&v->fpu);
    pmm_free_pages(virt_to_phys(v), (sizeof *v + PAGE_SIZE - 1) / PAGE_SIZE);
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
    if (!make_current(v) || v->reinject || v->have_event)
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
    if (v->have_event)
        return false;
    v->event = *e;
    v->have_event = true;
    return true;
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

static uint32_t event_info(const struct hvm_event *e)
{
    static const uint32_t type[] = {
        [HVM_EVENT_EXTINT] = VMX_INTR_TYPE_EXTERNAL, [HVM_EVENT_NMI] = VMX_INTR_TYPE_NMI,
        [HVM_EVENT_EXCEPTION] = VMX_INTR_TYPE_HW_EXCEPTION, [HVM_EVENT_SOFTINT] = VMX_INTR_TYPE_SW_INTERRUPT,
    };
    uint32_t info = VMX_INTR_INFO_VALID | type[e->type] << VMX_INTR_INFO_TYPE_SHIFT | (e->type == HVM_EVENT_NMI ? 2 : e->vector);
    if (e->type == HVM_EVENT_EXCEPTION && e->has_error)
        info |= VMX_INTR_INFO_ERROR_CODE;
    return info;
}

/* Re-injection first: an event whose delivery an exit interrupted must be
 * delivered before anything new (§28.2.4, §27.6.1.1). */
static void inject_for_entry(struct hvm_vcpu *v)
{
    if (v->reinject) {
        vmcs_write(VMCS_ENTRY_INTR_INFO, v->reinject_info);
        vmcs_write(VMCS_ENTRY_EXCEPTION_ERROR, v->reinject_error);
        vmcs_write(VMCS_ENTRY_INSTRUCTION_LEN, v->reinject_len);
        v->reinject = false;
        return;
    }
    if (!v->have_event)
        return;
    bool deliverable = true;
    uint64_t intr = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
    if (v->event.type == HVM_EVENT_EXTINT)
        deliverable = (vmcs_read(VMCS_GUEST_RFLAGS) & (1u << 9)) &&
                      !(intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS));
    else if (v->event.type == HVM_EVENT_NMI)
        deliverable = !(intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS |
                                VMX_INTERRUPTIBILITY_NMI));
    if (!deliverable) {
        vmx_request_window(v, v->event.type == HVM_EVENT_NMI ? HVM_WINDOW_NMI : HVM_WINDOW_INTR);
        return;
    }
    vmcs_write(VMCS_ENTRY_INTR_INFO, event_info(&v->event));
    vmcs_write(VMCS_ENTRY_EXCEPTION_ERROR, v->event.error_code);
    vmcs_write(VMCS_ENTRY_INSTRUCTION_LEN, 0);
    v->have_event = false;
}

static void record_vectoring(struct hvm_vcpu *v, uint32_t basic)
{
    uint32_t info = (uint32_t)vmcs_read(VMCS_IDT_VECTORING_INFO);
    if (!(info & VMX_INTR_INFO_VALID) || basic == VMX_EXIT_TRIPLE_FAULT)
        return;
    uint32_t type = (info & VMX_INTR_INFO_TYPE_MASK) >> VMX_INTR_INFO_TYPE_SHIFT;
    v->reinject = true;
    v->reinject_info = info & (VMX_INTR_INFO_VALID | VMX_INTR_INFO_TYPE_MASK |
                               VMX_INTR_INFO_ERROR_CODE | VMX_INTR_INFO_VECTOR_MASK);
    v->reinject_error = (uint32_t)vmcs_read(VMCS_IDT_VECTORING_ERROR);
    /* Software events are re-executed from the instruction: entry needs its length. */
    v->reinject_len = (type == VMX_INTR_TYPE_SW_INTERRUPT || type == VMX_INTR_TYPE_SW_EXCEPTION ||
                       type == VMX_INTR_TYPE_PRIV_SW_EXCEPTION)
                      ? (uint32_t)vmcs_read(VMCS_EXIT_INSTRUCTION_LEN) : 0;
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
    case VMX_EXIT_MWAIT:
    case VMX_EXIT_MONITOR: x->reason = HVM_EXIT_MWAIT; return;
    case VMX_EXIT_PREEMPTION_TIMER: x->reason = HVM_EXIT_PREEMPT; return;
    case VMX_EXIT_VMCALL: case VMX_EXIT_VMCLEAR: case VMX_EXIT_VMLAUNCH: case VMX_EXIT_VMPTRLD:
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
        if ((q & (1u << 12)) && !v->reinject)
            vmcs_write(VMCS_GUEST_INTERRUPTIBILITY,
                       vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) | VMX_INTERRUPTIBILITY_NMI);
        return;
    default:
        x->reason = HVM_EXIT_UNHANDLED;
        return;
    }
}

static void vmx_vcpu_run(struct hvm_vcpu *v, uint64_t preempt_ns, struct hvm_exit *x)
{
    /* *x is filled by decode_exit after an exit, here only when there is none. */
    if (!make_current(v)) {
        *x = (struct hvm_exit){ .reason = HVM_EXIT_ENTRY_FAILED };
        return;
    }
    inject_for_entry(v);
    if (v->preempt) {
        /* The timer counts down once every 2^rate TSC ticks (§26.5.1). */
        /* Capped at 1 s, so that ns * kHz cannot overflow whatever deadline a guest sets. */
        uint64_t ns = preempt_ns > 1000000000ull ? 1000000000ull : preempt_ns;
        uint64_t ticks = preempt_ns ? ns * time_tsc_khz() / 1000000 >> v->preempt_rate : ~0ull;
        vmcs_write(VMCS_PREEMPTION_TIMER_VALUE, ticks > 0xffffffffull ? 0xffffffffull : ticks ? ticks : 1);
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
    fpu_state_reset(&v->fpu);
    for (int i = 0; i < 4; i++)
        v->dr[i] = 0;
    v->dr6 = DR6_RESET;
    for (int i = 0; i < HVM_SWAPPED_MSRS; i++)
        v->swapped_msr[i] = 0;
    /* It is live on this CPU: load the reset values into the hardware now. */
    for (int i = 0; i < HVM_SWAPPED_MSRS; i++)
        wrmsr(hvm_swapped_msrs[i], 0);
    debugregs_load(v);
    fpu_switch(NULL, &v->fpu);
    v->reinject = false;
    v->have_event = false;
    /* Nothing of the crashed run may reach the next: no interrupt shadow, NMI
     * blocking, pending debug exception, queued event or window exit, and no
     * translation cached under this VPID (SDM Vol. 3C §30.4.3.3). */
    vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, 0);
    vmcs_write(VMCS_GUEST_PENDING_DBG, 0);
    vmcs_write(VMCS_GUEST_ACTIVITY_STATE, 0);
    vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
    set_proc(v, v->proc & ~(CPU_BASED_INTR_WINDOW_EXITING | CPU_BASED_NMI_WINDOW_EXITING));
    const struct vmx_caps *c = vmx_caps();
    if (v->vpid && c->invvpid_single)
        vmx_invvpid(1, v->vpid);
    else if (c->invvpid_all)
        vmx_invvpid(2, 0);
}

static bool vmx_set_xcr0(struct hvm_vcpu *v, uint64_t xcr0)
{
    return make_current(v) && fpu_set_guest_xcr0(&v->fpu, xcr0);
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
    .finish_cpuid = vmx_finish_cpuid,
    .inject = vmx_inject,
    .can_inject = vmx_can_inject,
    .request_window = vmx_request_window,
    .nested_flush = vmx_nested_flush,
    .reset_private = vmx_reset_private,
    .set_xcr0 = vmx_set_xcr0,
    .set_tsc_offset = vmx_set_tsc_offset,
    .dump = vmx_dump,
};
