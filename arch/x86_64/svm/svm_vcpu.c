/* A vCPU on AMD-V: its VMCB, the intercepts and permission maps, ASIDs and TLB
 * control, entry and exit, event injection with re-injection of interrupted
 * deliveries (AMD APM Vol. 2 chapter 15). */
#include "arch/x86_64/svm/svm.h"
#include "arch/x86_64/svm/npt.h"
#include "arch/x86_64/hvm_msr.h"
#include "arch/x86_64/hvm_common.h"
#include "arch/x86_64/fpu.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/cpu/percpu.h"
#include "kernel/log.h"
#include "arch/x86_64/page_alloc.h"
#include "kernel/string.h"

/* MSR permission map: 2 pages, I/O permission map: 3 pages (APM §15.10.1, §15.11). */
#define MSRPM_PAGES 2
#define IOPM_PAGES  3

/* ASIDs tracked per CPU for TLB reuse decisions; more ASIDs than this are not used. */
#define SVM_ASID_TRACKED 64

#define PAT_RESET 0x0007040600070406ull
#define RFLAGS_VM (1ull << 17)
#define MSR_TSC_AUX 0xc0000103u
/* Exceptions intercepted while the IRET of an NMI handler is single-stepped: all but
 * #MC, which must reach the guest as the CPU raised it. */
#define IRET_STEP_EXCEPTIONS (~(1u << 18))
#define VEC_DB 1
#define VEC_PF 14
/* Vectors that push an error code (APM Vol. 2 §8.2, Table 8-1). */
#define ERROR_CODE_VECTORS ((1u << 8) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) | \
                            (1u << 14) | (1u << 17) | (1u << 21) | (1u << 29) | (1u << 30))

/* The first 16 qwords are the guest GPRs: svm_entry.asm depends on it.  The RAX and
 * RSP slots are unused: those two live in the VMCB. */
struct hvm_vcpu {
    uint64_t gpr[HVM_GPR_COUNT];
    struct vmcb *vmcb;
    uint64_t vmcb_phys, msrpm, iopm;
    int      cpu;                   /* the CPU it runs on; -1: not run yet */
    uint32_t asid;
    bool     flush;                 /* the nested tables changed: flush before the next run */
    struct hvm_common c;            /* FPU, DR0-DR3, TSC_AUX, events (hvm_common.h) */
    bool     nmi_masked;            /* an injected NMI's handler has not IRETed yet */
    bool     want_nmi_window;
    /* The NMI handler's IRET, single-stepped to find where NMI blocking really ends
     * (no virtual NMIs on this CPU): the guest's own TF and RF before, and its DR6. */
    bool     iret_stepping;
    uint64_t iret_flags, iret_dr6;
    /* A software event re-injected past its instruction (RIP moved from soft_rip by
     * soft_len): if its delivery is interrupted again, RIP goes back first. */
    bool     soft_injected;
    uint64_t soft_rip;
    uint8_t  soft_len;
};

void svm_enter(struct hvm_vcpu *v, uint64_t vmcb_pa, uint64_t host_area_pa);

/* Which vCPU last ran with each ASID on each CPU (its TLB entries under that ASID
 * belong to it). */
static struct hvm_vcpu *asid_owner[PERCPU_MAX_CPUS][SVM_ASID_TRACKED];
static uint32_t next_asid;

static void svm_vcpu_destroy(struct hvm_vcpu *v);

static uint64_t alloc_filled(unsigned pages, uint8_t fill)
{
    uint64_t p = arch_alloc_pages(pages, PAGE_SIZE);
    if (p)
        memset(phys_to_virt(p), fill, (size_t)pages * PAGE_SIZE);
    return p;
}

/* Makes v's FPU state, DR0-DR3 and TSC_AUX live on this CPU (DR6 and DR7 are VMCB
 * fields, APM Vol. 2 §15.5; VMLOAD/VMSAVE switch the SYSCALL family).  A VMCB could
 * move between CPUs, but plinth keeps each vCPU on the CPU it first ran on, as on
 * VT-x. */
static bool bind(struct hvm_vcpu *v)
{
    struct hvm_common *prev;
    return hvm_common_loaded(percpu_index()) == &v->c || hvm_common_switch(&v->c, "svm", &prev);
}

static bool svm_guest_has_rdtscp(void)
{
    return hvm_tsc_aux_supported();
}

/* AMD-V cannot make XSAVES #UD: it runs with the CPU's IA32_XSS, which plinth keeps at
 * 0 (fpu_cpu_init) and guests may only set to 0 (vmm/msr.c). */
static bool svm_guest_has_xsaves(void)
{
    return cpuid(0, 0).eax >= 0xd && (cpuid(1, 0).ecx & (1u << 26)) && (cpuid(0xd, 1).eax & (1u << 3));
}

static struct hvm_vcpu *svm_vcpu_create(const struct gpt *nested)
{
    const struct svm_caps *c = svm_caps();
    static struct hvm_vcpu none;
    uint64_t vp = arch_alloc_pages((sizeof(struct hvm_vcpu) + PAGE_SIZE - 1) / PAGE_SIZE, PAGE_SIZE);
    if (!vp) {
        log_error("svm: out of memory for a vCPU");
        return NULL;
    }
    struct hvm_vcpu *v = phys_to_virt(vp);
    *v = none;
    v->vmcb_phys = alloc_filled(1, 0);
    v->msrpm = alloc_filled(MSRPM_PAGES, 0xff);
    v->iopm = alloc_filled(IOPM_PAGES, 0xff);
    if (!v->vmcb_phys || !v->msrpm || !v->iopm || !hvm_common_init(&v->c)) {
        log_error("svm: out of memory for a vCPU");
        svm_vcpu_destroy(v);
        return NULL;
    }
    for (size_t i = 0; i < hvm_msr_passthrough_count; i++)
        svm_msrpm_allow(phys_to_virt(v->msrpm), hvm_msr_passthrough[i]);
    /* TSC_AUX is switched per vCPU (hvm_common) and reaches no one else: reads go to
     * it directly, writes through the monitor, which refuses the reserved bits. */
    if (svm_guest_has_rdtscp())
        svm_msrpm_allow_read(phys_to_virt(v->msrpm), MSR_TSC_AUX);
    v->vmcb = phys_to_virt(v->vmcb_phys);

    /* ASIDs 1..n in turn; a reused one is flushed on its first run (asid_owner). */
    uint32_t n = c->asids - 1 < SVM_ASID_TRACKED - 1 ? c->asids - 1 : SVM_ASID_TRACKED - 1;
    v->asid = 1 + __atomic_fetch_add(&next_asid, 1, __ATOMIC_RELAXED) % n;

    struct vmcb_control *ctl = &v->vmcb->control;
    /* Same events as the VT-x backend.  Not intercepted, and why that is fine here:
     * CR0 writes (SVM has no fixed CR0 bits, and with NPT the CPU itself handles
     * paging-mode switches and EFER.LMA, APM §15.19 and §15.25), CR3 (NPT), RDTSC
     * (TSC_OFFSET), task switches (the CPU performs them).  CR4 writes are
     * intercepted: the monitor allows only the bits of features the guest's CPUID
     * view shows, and QEMU's TCG answers a reserved CR4 bit in a guest with a
     * VMEXIT_INVALID instead of the #GP the guest must get.  CR8 reads and writes are
     * intercepted: CR8 is the modelled local APIC's TPR (the monitor keeps one value
     * for both, as on VT-x); V_TPR would be a second copy the APIC page never sees
     * (§15.21.4). */
    ctl->intercept_cr = VMCB_I_CR_WRITE(4) | VMCB_I_CR_READ(8) | VMCB_I_CR_WRITE(8);
    ctl->intercept_misc1 = VMCB_I_INTR | VMCB_I_NMI | VMCB_I_CPUID | VMCB_I_INVD | VMCB_I_HLT |
                           VMCB_I_INVLPGA | VMCB_I_IOIO_PROT | VMCB_I_MSR_PROT | VMCB_I_SHUTDOWN |
                           VMCB_I_RDPMC;
    /* The VMRUN intercept is mandatory (§15.5.1); the other SVM instructions get #UD
     * from the monitor, as VMX instructions do on VT-x. */
    ctl->intercept_misc2 = VMCB_I2_VMRUN | VMCB_I2_VMMCALL | VMCB_I2_VMLOAD | VMCB_I2_VMSAVE |
                           VMCB_I2_STGI | VMCB_I2_CLGI | VMCB_I2_SKINIT | VMCB_I2_WBINVD |
                           VMCB_I2_MONITOR | VMCB_I2_MWAIT | VMCB_I2_MWAIT_ARMED | VMCB_I2_XSETBV;
    ctl->iopm_base_pa = v->iopm;
    ctl->msrpm_base_pa = v->msrpm;
    ctl->guest_asid = v->asid;
    ctl->vintr = VMCB_V_INTR_MASKING;
    ctl->np_control = VMCB_NP_ENABLE;
    ctl->n_cr3 = npt_cr3(nested);
    v->vmcb->save.efer = EFER_SVME;
    v->vmcb->save.dr6 = HVM_DR6_RESET;
    v->vmcb->save.g_pat = PAT_RESET;
    v->vmcb->save.rflags = 2;
    return v;
}

static void svm_vcpu_destroy(struct hvm_vcpu *v)
{
    if (v->c.cpu >= 0) {
        hvm_common_forget(&v->c);
        for (int i = 0; i < SVM_ASID_TRACKED; i++)
            if (asid_owner[v->c.cpu][i] == v)
                asid_owner[v->c.cpu][i] = NULL;
    }
    arch_free_pages(v->vmcb_phys, 1);
    arch_free_pages(v->msrpm, MSRPM_PAGES);
    arch_free_pages(v->iopm, IOPM_PAGES);
    hvm_common_free(&v->c);
    arch_free_pages(virt_to_phys(v), (sizeof *v + PAGE_SIZE - 1) / PAGE_SIZE);
}

static struct vmcb_seg *vmcb_seg(struct vmcb *vmcb, enum hvm_sreg s)
{
    struct vmcb_save *sv = &vmcb->save;
    switch (s) {
    case HVM_ES: return &sv->es;
    case HVM_CS: return &sv->cs;
    case HVM_SS: return &sv->ss;
    case HVM_DS: return &sv->ds;
    case HVM_FS: return &sv->fs;
    case HVM_GS: return &sv->gs;
    case HVM_LDTR: return &sv->ldtr;
    default: return &sv->tr;
    }
}

static void svm_get_state(struct hvm_vcpu *v, struct hvm_state *s)
{
    const struct vmcb_save *sv = &v->vmcb->save;
    memcpy(s->gpr, v->gpr, sizeof s->gpr);
    s->gpr[HVM_RAX] = sv->rax;
    s->gpr[HVM_RSP] = sv->rsp;
    s->rip = sv->rip;
    s->rflags = sv->rflags;
    s->cr0 = sv->cr0;
    s->cr2 = sv->cr2;
    s->cr3 = sv->cr3;
    s->cr4 = sv->cr4;
    s->efer = sv->efer & ~EFER_SVME;   /* plinth's, not the guest's */
    s->pat = sv->g_pat;
    s->dr7 = sv->dr7;
    for (int i = 0; i < HVM_SREG_COUNT; i++) {
        const struct vmcb_seg *g = vmcb_seg(v->vmcb, (enum hvm_sreg)i);
        s->seg[i].selector = g->selector;
        s->seg[i].base = g->base;
        s->seg[i].limit = g->limit;
        s->seg[i].ar = svm_ar_from_attrib(g->attrib);
    }
    /* The CPL is the VMCB's own field, and SS.DPL as saved need not match it (APM
     * Vol. 2 §15.5.1): the state says CPL as VT-x does, in SS.DPL, so that setting
     * it back (a snapshot's restore) keeps the guest in its ring. */
    if ((sv->cr0 & CR0_PE) && !(sv->rflags & RFLAGS_VM))
        s->seg[HVM_SS].ar = (s->seg[HVM_SS].ar & ~(3u << 5)) | ((uint32_t)(sv->cpl & 3) << 5);
    s->gdtr.base = sv->gdtr.base;
    s->gdtr.limit = (uint16_t)sv->gdtr.limit;
    s->idtr.base = sv->idtr.base;
    s->idtr.limit = (uint16_t)sv->idtr.limit;
    s->sysenter_cs = sv->sysenter_cs;
    s->sysenter_esp = sv->sysenter_esp;
    s->sysenter_eip = sv->sysenter_eip;
}

static void svm_set_state(struct hvm_vcpu *v, const struct hvm_state *s)
{
    struct vmcb_save *sv = &v->vmcb->save;
    memcpy(v->gpr, s->gpr, sizeof v->gpr);
    sv->rax = s->gpr[HVM_RAX];
    sv->rsp = s->gpr[HVM_RSP];
    sv->rip = s->rip;
    sv->rflags = s->rflags | 2; /* bit 1 is reserved as 1 */
    /* Long mode is active when EFER.LME is set with paging on; VMRUN takes LMA
     * from the VMCB, so it must agree (§15.5.1). */
    bool lma = (s->efer & EFER_LME) && (s->cr0 & CR0_PG);
    sv->efer = (lma ? s->efer | EFER_LMA : s->efer & ~EFER_LMA) | EFER_SVME;
    sv->cr0 = s->cr0;
    sv->cr2 = s->cr2;
    sv->cr3 = s->cr3;
    sv->cr4 = s->cr4;
    sv->g_pat = s->pat;
    sv->dr7 = s->dr7;
    for (int i = 0; i < HVM_SREG_COUNT; i++) {
        struct vmcb_seg *g = vmcb_seg(v->vmcb, (enum hvm_sreg)i);
        g->selector = s->seg[i].selector;
        g->base = s->seg[i].base;
        g->limit = s->seg[i].limit;
        g->attrib = svm_attrib_from_ar(s->seg[i].ar);
    }
    sv->gdtr.base = s->gdtr.base;
    sv->gdtr.limit = s->gdtr.limit;
    sv->idtr.base = s->idtr.base;
    sv->idtr.limit = s->idtr.limit;
    sv->sysenter_cs = s->sysenter_cs;
    sv->sysenter_esp = s->sysenter_esp;
    sv->sysenter_eip = s->sysenter_eip;
    /* The VMCB holds the CPL separately: 0 in real mode, 3 in virtual-8086 mode,
     * else SS.DPL (§15.5.1). */
    if (!(s->cr0 & CR0_PE))
        sv->cpl = 0;
    else if (s->rflags & RFLAGS_VM)
        sv->cpl = 3;
    else
        sv->cpl = (uint8_t)((s->seg[HVM_SS].ar >> 5) & 3);
}

static uint64_t svm_get_gpr(struct hvm_vcpu *v, enum hvm_gpr r)
{
    if (r == HVM_RAX)
        return v->vmcb->save.rax;
    if (r == HVM_RSP)
        return v->vmcb->save.rsp;
    return v->gpr[r & 15];
}

static void svm_set_gpr(struct hvm_vcpu *v, enum hvm_gpr r, uint64_t value)
{
    if (r == HVM_RAX)
        v->vmcb->save.rax = value;
    else if (r == HVM_RSP)
        v->vmcb->save.rsp = value;
    else
        v->gpr[r & 15] = value;
}

static uint64_t svm_get_rip(struct hvm_vcpu *v)
{
    return v->vmcb->save.rip;
}

static uint64_t svm_get_cr4(struct hvm_vcpu *v)
{
    return v->vmcb->save.cr4;
}

static void svm_skip_insn(struct hvm_vcpu *v, uint8_t len)
{
    v->vmcb->save.rip += len;
    /* Completing an instruction ends an STI or MOV SS shadow (APM Vol. 2, "Interrupt
     * Shadows"), and with TF set raises the single-step #DB (APM Vol. 2 §13.1.4),
     * which the CPU never did for an intercepted instruction. */
    v->vmcb->control.interrupt_shadow &= ~VMCB_INT_SHADOW;
    if (v->vmcb->save.rflags & HVM_RFLAGS_TF)
        v->c.debug_trap |= HVM_DR6_BS;
}

static void svm_debug_trap(struct hvm_vcpu *v, uint32_t dr6_bits)
{
    v->c.debug_trap |= dr6_bits & (HVM_DR6_BS | HVM_DR6_B0_3);
}

static void svm_get_dr0_3(struct hvm_vcpu *v, uint64_t dr[4])
{
    if (bind(v))
        read_dr0_3(dr);
    else
        memcpy(dr, v->c.dr, sizeof v->c.dr);
}

static void svm_set_event_len(struct hvm_vcpu *v, uint8_t len)
{
    v->c.reinject_len = len;
}

/* With nested paging the CPU reads the PAE PDPTEs from guest memory itself (APM Vol.
 * 2 §15.25.10): nothing to load. */
static void svm_set_tsc_aux(struct hvm_vcpu *v, uint32_t value)
{
    if (bind(v))
        hvm_common_set_tsc_aux(&v->c, value);
}

static void svm_set_pdptes(struct hvm_vcpu *v, const uint64_t pdpte[4])
{
    (void)v;
    (void)pdpte;
}

static void svm_finish_cpuid(struct hvm_vcpu *v, const uint32_t r[4], uint8_t len)
{
    v->vmcb->save.rax = r[0];
    v->gpr[HVM_RBX] = r[1];
    v->gpr[HVM_RCX] = r[2];
    v->gpr[HVM_RDX] = r[3];
    svm_skip_insn(v, len);
}

static bool deliverable(struct hvm_vcpu *v, enum hvm_event_type t)
{
    bool shadow = v->vmcb->control.interrupt_shadow & VMCB_INT_SHADOW;
    /* Nothing goes in while an IRET is being stepped: it would be delivered before
     * the IRET, in the middle of the handler returning. */
    if (v->iret_stepping)
        return false;
    if (t == HVM_EVENT_EXTINT)
        return (v->vmcb->save.rflags & HVM_RFLAGS_IF) && !shadow;
    if (t == HVM_EVENT_NMI)
        return !v->nmi_masked && !shadow;
    return true;
}

static bool svm_can_inject(struct hvm_vcpu *v, enum hvm_event_type t)
{
    return !v->c.reinject && !v->c.have_event && deliverable(v, t);
}

static bool svm_inject(struct hvm_vcpu *v, const struct hvm_event *e)
{
    return hvm_common_queue(&v->c, e);
}

/* The interrupt window is a virtual interrupt that never gets delivered: V_IRQ with
 * the VINTR intercept exits as soon as the guest could take it (§15.21.4).  The NMI
 * window opens when the NMI handler's IRET has run (§15.21.2, no virtual NMIs here):
 * its intercept, then a single step over it (decode_exit).  With NMIs not blocked
 * there is nothing to wait for: the NMI goes in at the next entry. */
static void svm_request_window(struct hvm_vcpu *v, unsigned windows)
{
    struct vmcb_control *ctl = &v->vmcb->control;
    if (windows & HVM_WINDOW_INTR) {
        ctl->vintr |= VMCB_V_IRQ | VMCB_V_IGN_TPR | (0xfull << VMCB_V_INTR_PRIO_SHIFT);
        ctl->intercept_misc1 |= VMCB_I_VINTR;
    }
    if ((windows & HVM_WINDOW_NMI) && v->nmi_masked) {
        v->want_nmi_window = true;
        if (!v->iret_stepping)
            ctl->intercept_misc1 |= VMCB_I_IRET;
    }
}

/* Writes EVENTINJ.  A software event is delivered as if its instruction had just run:
 * EVENTINJ pushes the VMCB's RIP (§15.20), so RIP moves past the instruction first
 * (and nRIP with it, for CPUs that take the return address from there).  A fault
 * pushes RFLAGS with RF set, as the CPU's own faults do (APM Vol. 2 §13.1.3.1). */
static void write_eventinj(struct hvm_vcpu *v, const struct hvm_event *e, uint8_t len)
{
    struct vmcb_save *sv = &v->vmcb->save;
    if (hvm_event_is_soft(e)) {
        if (!len)
            return;     /* length unknown: the instruction runs again and raises it */
        v->soft_injected = true;
        v->soft_rip = sv->rip;
        v->soft_len = len;
        sv->rip += len;
        v->vmcb->control.nrip = sv->rip;
    }
    if (hvm_event_sets_rf(e))
        sv->rflags |= HVM_RFLAGS_RF;
    v->vmcb->control.eventinj = svm_event_inj(e);
}

/* What this entry delivers, in hvm_common_next's order. */
static void inject_for_entry(struct hvm_vcpu *v)
{
    struct vmcb_control *ctl = &v->vmcb->control;
    struct hvm_common *c = &v->c;
    ctl->eventinj = 0;
    switch (hvm_common_next(c, c->have_event && deliverable(v, c->event.type))) {
    case HVM_NEXT_NONE:
        return;
    case HVM_NEXT_REINJECT:
        c->reinject = false;
        write_eventinj(v, &c->reinject_event, c->reinject_len);
        return;
    case HVM_NEXT_DEBUG_TRAP:
        /* The trap's DR6 bits, then the #DB itself (APM Vol. 2 §13.1.1.3): a queued
         * interrupt waits for its window, as behind a trap on hardware. */
        v->vmcb->save.dr6 |= c->debug_trap;
        c->debug_trap = 0;
        write_eventinj(v, &(struct hvm_event){ .type = HVM_EVENT_EXCEPTION, .vector = VEC_DB }, 0);
        if (c->have_event)
            svm_request_window(v, c->event.type == HVM_EVENT_NMI ? HVM_WINDOW_NMI : HVM_WINDOW_INTR);
        return;
    case HVM_NEXT_WAIT:
        svm_request_window(v, c->event.type == HVM_EVENT_NMI ? HVM_WINDOW_NMI : HVM_WINDOW_INTR);
        return;
    case HVM_NEXT_EVENT:
        write_eventinj(v, &c->event, 0);
        if (c->event.type == HVM_EVENT_NMI) {
            /* NMIs stay blocked until the handler's IRET, which only an intercept shows. */
            v->nmi_masked = true;
            ctl->intercept_misc1 |= VMCB_I_IRET;
        }
        hvm_common_event_taken(c);
        return;
    }
}

/* An exit in the middle of an event's delivery: the event goes in again at the next
 * entry.  A software event re-injected past its instruction that is interrupted
 * again first puts RIP back on the instruction, so that its length applies once. */
static void record_vectoring(struct hvm_vcpu *v, uint64_t code, struct hvm_exit *x)
{
    struct hvm_event e;
    bool again = v->soft_injected;
    v->soft_injected = false;
    if (!svm_interrupted_event(v->vmcb->control.exitintinfo, code, &e))
        return;
    uint8_t len = 0;
    if (hvm_event_is_soft(&e)) {
        if (again && v->vmcb->save.rip == v->soft_rip + v->soft_len) {
            v->vmcb->save.rip = v->soft_rip;
            len = v->soft_len;
        } else {
            /* nRIP is not saved for an exit during event delivery (APM Vol. 2 §15.7.1):
             * the monitor decodes the instruction (vmm_vcpu_ops.event_insn_len). */
            x->needs_event_len = true;
        }
    }
    hvm_common_interrupted(&v->c, &e, len);
    x->delivering = true;
    x->delivering_vector = e.vector;
}

/* Starts single-stepping an NMI handler's IRET (its intercept came): the #DB after it
 * says the IRET completed, and NMI blocking ended there.  Every exception is
 * intercepted meanwhile: one means the IRET faulted instead, and it reaches the guest
 * with the guest's own TF (IRET_STEP_EXCEPTIONS). */
static void iret_step_start(struct hvm_vcpu *v)
{
    struct vmcb_save *sv = &v->vmcb->save;
    v->iret_stepping = true;
    v->iret_flags = sv->rflags & (HVM_RFLAGS_TF | HVM_RFLAGS_RF);
    v->iret_dr6 = sv->dr6;
    sv->rflags |= HVM_RFLAGS_TF | HVM_RFLAGS_RF;
    v->vmcb->control.intercept_exceptions = IRET_STEP_EXCEPTIONS;
    v->vmcb->control.intercept_misc1 &= ~VMCB_I_IRET;
}

static void iret_step_end(struct hvm_vcpu *v)
{
    v->iret_stepping = false;
    v->vmcb->control.intercept_exceptions = 0;
}

/* An exception while the IRET was stepped.  #DB with BS: the IRET ran; NMIs are
 * unblocked, and the trap is the guest's only if it was single-stepping itself (its
 * TF was set before the IRET: APM Vol. 2 §13.1.4) or a breakpoint matched.  Any other
 * exception: the IRET faulted; the CPU unblocks NMIs before the handler of such a
 * fault runs (SDM Vol. 3A §6.7.1), and the exception reaches the guest as raised,
 * with the guest's TF and RF back.  Returns the exit's reason for the monitor. */
static enum hvm_exit_reason iret_step_exception(struct hvm_vcpu *v, uint8_t vector, uint64_t info1,
                                                uint64_t info2)
{
    struct vmcb_save *sv = &v->vmcb->save;
    iret_step_end(v);
    v->nmi_masked = false;
    if (vector == VEC_DB && (sv->dr6 & HVM_DR6_BS)) {
        uint64_t fresh = sv->dr6 & ~v->iret_dr6;
        bool guest_stepping = v->iret_flags & HVM_RFLAGS_TF;
        uint64_t dr6 = v->iret_dr6 | (fresh & (guest_stepping ? ~0ull : ~(uint64_t)HVM_DR6_BS));
        sv->dr6 = dr6;
        if (guest_stepping || (fresh & HVM_DR6_B0_3))
            hvm_common_interrupted(&v->c, &(struct hvm_event){ .type = HVM_EVENT_EXCEPTION, .vector = VEC_DB }, 0);
    } else {
        sv->rflags = (sv->rflags & ~(HVM_RFLAGS_TF | HVM_RFLAGS_RF)) | v->iret_flags;
        if (vector == VEC_PF)
            sv->cr2 = info2;   /* an intercepted #PF leaves CR2 to the VMM (§15.12) */
        struct hvm_event e = { .type = HVM_EVENT_EXCEPTION, .vector = vector,
                               .has_error = (ERROR_CODE_VECTORS >> vector) & 1, .error_code = (uint32_t)info1 };
        hvm_common_interrupted(&v->c, &e, 0);
    }
    if (v->want_nmi_window) {
        v->want_nmi_window = false;
        return HVM_EXIT_NMI_WINDOW;
    }
    return HVM_EXIT_NONE;
}

static uint8_t exit_insn_len(const struct hvm_vcpu *v, uint64_t rip)
{
    /* nRIP-save (CPUID Fn8000_000A EDX[3]) gives the next RIP; without it the
     * monitor decodes the instruction (vmm_insn_len). */
    if (!svm_caps()->nrips)
        return 0;
    uint64_t len = v->vmcb->control.nrip - rip;
    return len > 0 && len <= 15 ? (uint8_t)len : 0;
}

static void decode_exit(struct hvm_vcpu *v, struct hvm_exit *x)
{
    struct vmcb_control *ctl = &v->vmcb->control;
    uint64_t code = ctl->exitcode, info1 = ctl->exitinfo1, info2 = ctl->exitinfo2;
    uint64_t rip = v->vmcb->save.rip;
    *x = (struct hvm_exit){ .raw_reason = (uint32_t)code, .insn_len = exit_insn_len(v, rip) };
    switch (code) {
    /* QEMU 7.2 stores VMEXIT_INVALID (-1) as a 32-bit value. */
    case SVM_EXIT_INVALID:
    case 0xffffffffu:       x->reason = HVM_EXIT_ENTRY_FAILED; return;
    case SVM_EXIT_CR4_WRITE:
    case SVM_EXIT_CR8_WRITE:
    case SVM_EXIT_CR8_READ:
        x->reason = HVM_EXIT_CR;
        x->cr.cr = code == SVM_EXIT_CR4_WRITE ? 4 : 8;
        x->cr.type = code == SVM_EXIT_CR8_READ ? HVM_CR_MOV_FROM : HVM_CR_MOV_TO;
        x->cr.gpr = svm_caps()->decode_assists && (info1 & SVM_CR_INFO_MOV) ? (uint8_t)(info1 & 15)
                                                                            : HVM_CR_GPR_DECODE;
        return;
    /* Host interrupts and NMIs stay pending through the exit (GIF=0): the NMI is
     * taken at STGI in svm_enter, the interrupt when the core enables interrupts. */
    case SVM_EXIT_INTR:
    case SVM_EXIT_NMI:      x->reason = HVM_EXIT_INTERRUPT; return;
    case SVM_EXIT_SHUTDOWN: x->reason = HVM_EXIT_TRIPLE_FAULT; return;
    case SVM_EXIT_INIT:     x->reason = HVM_EXIT_INIT; return;
    case SVM_EXIT_VINTR:
        ctl->vintr &= ~(VMCB_V_IRQ | VMCB_V_IGN_TPR | (0xfull << VMCB_V_INTR_PRIO_SHIFT));
        ctl->intercept_misc1 &= ~VMCB_I_VINTR;
        x->reason = HVM_EXIT_INTR_WINDOW;
        return;
    case SVM_EXIT_IRET:
        /* The IRET has not run yet; NMI blocking ends with it, or with the fault it
         * raises: step over it to see which (iret_step_exception). */
        ctl->intercept_misc1 &= ~VMCB_I_IRET;
        if (v->nmi_masked)
            iret_step_start(v);
        x->reason = HVM_EXIT_NONE;
        return;
    case SVM_EXIT_CPUID:
        x->reason = HVM_EXIT_CPUID;
        x->cpuid.leaf = (uint32_t)v->vmcb->save.rax;
        x->cpuid.subleaf = (uint32_t)v->gpr[HVM_RCX];
        return;
    case SVM_EXIT_HLT:      x->reason = HVM_EXIT_HLT; return;
    case SVM_EXIT_INVD:     x->reason = HVM_EXIT_INVD; return;
    case SVM_EXIT_WBINVD:   x->reason = HVM_EXIT_WBINVD; return;
    case SVM_EXIT_XSETBV:   x->reason = HVM_EXIT_XSETBV; return;
    /* QEMU's TCG reports RDTSCP as RDTSC: the length comes from the decoder. */
    case SVM_EXIT_RDTSC:
    case SVM_EXIT_RDTSCP:   x->reason = HVM_EXIT_RDTSC; x->insn_len = 0; return;
    case SVM_EXIT_PAUSE:    x->reason = HVM_EXIT_PAUSE; return;
    case SVM_EXIT_RDPMC:    x->reason = HVM_EXIT_RDPMC; return;
    case SVM_EXIT_VMMCALL:  x->reason = HVM_EXIT_HYPERCALL; return;
    case SVM_EXIT_MONITOR:
    case SVM_EXIT_MWAIT:
    case SVM_EXIT_MWAIT_COND: x->reason = HVM_EXIT_MWAIT; return;
    case SVM_EXIT_VMRUN: case SVM_EXIT_VMLOAD: case SVM_EXIT_VMSAVE:
    case SVM_EXIT_STGI: case SVM_EXIT_CLGI: case SVM_EXIT_SKINIT: case SVM_EXIT_INVLPGA:
        x->reason = HVM_EXIT_VIRT_INSN;
        return;
    case SVM_EXIT_MSR:
        /* EXITINFO1: 0 read, 1 write (§15.11). */
        x->reason = info1 & 1 ? HVM_EXIT_WRMSR : HVM_EXIT_RDMSR;
        x->msr.msr = (uint32_t)v->gpr[HVM_RCX];
        return;
    case SVM_EXIT_IOIO:
        svm_decode_ioio(info1, info2, rip, x);
        return;
    case SVM_EXIT_NPF:
        svm_decode_npf(info1, info2, x);
        return;
    default:
        if (code >= SVM_EXIT_EXCP_BASE && code < SVM_EXIT_EXCP_BASE + 32 && v->iret_stepping) {
            x->reason = iret_step_exception(v, (uint8_t)(code - SVM_EXIT_EXCP_BASE), info1, info2);
            return;
        }
        if (code >= SVM_EXIT_EXCP_BASE && code < SVM_EXIT_EXCP_BASE + 32) {
            x->reason = HVM_EXIT_EXCEPTION;
            x->exception.vector = (uint8_t)(code - SVM_EXIT_EXCP_BASE);
            x->exception.error_code = (uint32_t)info1;
            x->exception.cr2 = info2;
            return;
        }
        x->reason = HVM_EXIT_UNHANDLED;
        return;
    }
}

/* QEMU's TCG (7.2) does not implement the XSETBV intercept (APM Vol. 2 "Instruction
 * Intercepts"): a guest's XSETBV there writes XCR0 itself, with the CPU's own validity
 * checks.  The vCPU's copy follows the hardware, so that fpu_switch gives each vCPU
 * back its own XCR0. */
static void follow_xcr0(struct hvm_vcpu *v)
{
    static bool warned;
    if (!(read_cr4() & CR4_OSXSAVE))
        return;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    uint64_t xcr0 = (uint64_t)hi << 32 | lo;
    if (xcr0 == v->c.fpu.xcr0)
        return;
    if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
        log_warn("svm: a guest changed XCR0 from %#lx to %#lx without an XSETBV exit: this "
                 "CPU (an emulator) ignores the XSETBV intercept; plinth follows the new value",
                 (unsigned long)v->c.fpu.xcr0, (unsigned long)xcr0);
    v->c.fpu.xcr0 = xcr0;
}

static void svm_vcpu_run(struct hvm_vcpu *v, uint64_t preempt_tsc, struct hvm_exit *x)
{
    (void)preempt_tsc; /* no preemption timer on SVM: the core slices with the APIC timer */
    *x = (struct hvm_exit){ .reason = HVM_EXIT_NONE };
    if (!bind(v)) {
        x->reason = HVM_EXIT_ENTRY_FAILED;
        return;
    }
    uint32_t cpu = (uint32_t)v->c.cpu;
    struct vmcb_control *ctl = &v->vmcb->control;
    /* TLB entries tagged with this ASID may be another vCPU's (ASIDs are reused) or
     * stale (nested tables changed): flush them, by ASID where the CPU can (§15.16). */
    bool flush_by_asid = svm_caps()->flush_by_asid;
    ctl->tlb_control = VMCB_TLB_NOTHING;
    if (asid_owner[cpu][v->asid] != v || v->flush) {
        ctl->tlb_control = flush_by_asid ? VMCB_TLB_FLUSH_ASID : VMCB_TLB_FLUSH_ALL;
        asid_owner[cpu][v->asid] = v;
        v->flush = false;
    }
    /* No clean bits claimed: the CPU reloads every field (APM Vol. 2 "VMCB Clean Bits"). */
    ctl->clean_bits = 0;
    inject_for_entry(v);
    svm_enter(v, v->vmcb_phys, svm_host_area());
    follow_xcr0(v);
    decode_exit(v, x);
    record_vectoring(v, ctl->exitcode, x);
    if (x->reason == HVM_EXIT_ENTRY_FAILED) {
        log_error("svm: VMRUN failed with VMEXIT_INVALID: the VMCB breaks a consistency check "
                  "(APM Vol. 2 §15.5.1)");
        svm_diagnose_vmcb(v->vmcb);
    }
}

static void svm_nested_flush(struct hvm_vcpu *v)
{
    v->flush = true;
}

static void svm_reset_private(struct hvm_vcpu *v)
{
    if (!bind(v))
        return;
    hvm_common_reset(&v->c);
    struct vmcb_save *sv = &v->vmcb->save;
    sv->dr6 = HVM_DR6_RESET;
    /* The SYSCALL family and KERNEL_GS_BASE are VMCB fields here (VMLOAD/VMSAVE). */
    sv->star = sv->lstar = sv->cstar = sv->sfmask = sv->kernel_gs_base = 0;
    v->nmi_masked = false;
    v->want_nmi_window = false;
    v->soft_injected = false;
    iret_step_end(v);
    v->vmcb->control.eventinj = 0;
    v->vmcb->control.interrupt_shadow = 0;
    v->vmcb->control.vintr = VMCB_V_INTR_MASKING;
    v->vmcb->control.intercept_misc1 &= ~(VMCB_I_VINTR | VMCB_I_IRET);
    /* No translation of the crashed run may survive under this ASID. */
    v->flush = true;
}

/* hvm_extra.backend on AMD-V: flags, then the IRET step's and the re-injected
 * software event's saved values. */
enum { SX_IRET_STEPPING, SX_WANT_NMI_WINDOW, SX_SOFT_INJECTED, SX_SOFT_LEN, SX_NMI_MASKED,
       SX_IRET_FLAGS = 8, SX_IRET_DR6 = 16, SX_SOFT_RIP = 24 };

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void svm_save_extra(struct hvm_vcpu *v, struct hvm_extra *x)
{
    *x = (struct hvm_extra){ 0 };
    if (!bind(v))
        return;
    hvm_common_save(&v->c, x);
    const struct vmcb_save *sv = &v->vmcb->save;
    x->dr6 = sv->dr6;
    x->syscall_msr[0] = sv->star;
    x->syscall_msr[1] = sv->lstar;
    x->syscall_msr[2] = sv->cstar;
    x->syscall_msr[3] = sv->sfmask;
    x->syscall_msr[4] = sv->kernel_gs_base;
    /* One shadow bit for STI and MOV SS alike (APM Vol. 2 §15.21.5); NMI blocking is
     * plinth's own (no virtual NMIs). */
    x->interruptibility = (v->vmcb->control.interrupt_shadow & VMCB_INT_SHADOW ? HVM_INTR_STI : 0) |
                          (v->nmi_masked ? HVM_INTR_NMI : 0);
    x->backend[SX_IRET_STEPPING] = v->iret_stepping;
    x->backend[SX_WANT_NMI_WINDOW] = v->want_nmi_window;
    x->backend[SX_SOFT_INJECTED] = v->soft_injected;
    x->backend[SX_SOFT_LEN] = v->soft_len;
    x->backend[SX_NMI_MASKED] = v->nmi_masked;
    put64(x->backend + SX_IRET_FLAGS, v->iret_flags);
    put64(x->backend + SX_IRET_DR6, v->iret_dr6);
    put64(x->backend + SX_SOFT_RIP, v->soft_rip);
}

static bool svm_load_extra(struct hvm_vcpu *v, const struct hvm_extra *x, const char **why)
{
    if (!bind(v)) {
        *why = "the vCPU cannot be bound to this CPU";
        return false;
    }
    const uint8_t *b = x->backend;
    if ((x->dr6 >> 32) || !hvm_canonical(x->syscall_msr[1]) || !hvm_canonical(x->syscall_msr[2]) ||
        !hvm_canonical(x->syscall_msr[4]) || (x->syscall_msr[3] >> 32) ||
        (x->interruptibility & ~(HVM_INTR_STI | HVM_INTR_MOVSS | HVM_INTR_NMI)) ||
        b[SX_IRET_STEPPING] > 1 || b[SX_WANT_NMI_WINDOW] > 1 || b[SX_SOFT_INJECTED] > 1 ||
        b[SX_NMI_MASKED] > 1 || b[SX_SOFT_LEN] > 15 ||
        ((x->interruptibility & HVM_INTR_NMI) != 0) != (b[SX_NMI_MASKED] != 0) ||
        (get64(b + SX_IRET_FLAGS) & ~(HVM_RFLAGS_TF | HVM_RFLAGS_RF)) || (get64(b + SX_IRET_DR6) >> 32)) {
        *why = "DR6, a SYSCALL MSR or the interrupt state holds a value the CPU refuses";
        return false;
    }
    if (!hvm_common_load(&v->c, x, why))
        return false;
    struct vmcb_save *sv = &v->vmcb->save;
    sv->dr6 = x->dr6;
    sv->star = x->syscall_msr[0];
    sv->lstar = x->syscall_msr[1];
    sv->cstar = x->syscall_msr[2];
    sv->sfmask = x->syscall_msr[3];
    sv->kernel_gs_base = x->syscall_msr[4];
    v->nmi_masked = b[SX_NMI_MASKED];
    v->want_nmi_window = b[SX_WANT_NMI_WINDOW];
    v->soft_injected = b[SX_SOFT_INJECTED];
    v->soft_len = b[SX_SOFT_LEN];
    v->soft_rip = get64(b + SX_SOFT_RIP);
    v->vmcb->control.eventinj = 0;
    v->vmcb->control.interrupt_shadow = x->interruptibility & (HVM_INTR_STI | HVM_INTR_MOVSS) ? VMCB_INT_SHADOW : 0;
    /* Windows are asked for again by the monitor's pre_entry; an IRET being stepped
     * goes on being stepped (its TF and RF are in the restored RFLAGS). */
    v->vmcb->control.vintr = VMCB_V_INTR_MASKING;
    v->vmcb->control.intercept_misc1 &= ~(VMCB_I_VINTR | VMCB_I_IRET);
    iret_step_end(v);
    if (b[SX_IRET_STEPPING]) {
        v->iret_stepping = true;
        v->iret_flags = get64(b + SX_IRET_FLAGS);
        v->iret_dr6 = get64(b + SX_IRET_DR6);
        v->vmcb->control.intercept_exceptions = IRET_STEP_EXCEPTIONS;
    } else if (v->want_nmi_window && v->nmi_masked) {
        v->vmcb->control.intercept_misc1 |= VMCB_I_IRET;
    }
    v->flush = true;
    return true;
}

static bool svm_set_xcr0(struct hvm_vcpu *v, uint64_t xcr0)
{
    return bind(v) && fpu_set_guest_xcr0(&v->c.fpu, xcr0);
}

static void svm_set_tsc_offset(struct hvm_vcpu *v, int64_t offset)
{
    v->vmcb->control.tsc_offset = (uint64_t)offset;
}

static void svm_dump(struct hvm_vcpu *v)
{
    const struct vmcb_control *ctl = &v->vmcb->control;
    const struct vmcb_save *sv = &v->vmcb->save;
    log_error("svm: last exit %#lx (%s), exitinfo1 %#lx, exitinfo2 %#lx, exitintinfo %#lx, "
              "guest rip %#lx, rsp %#lx, rflags %#lx",
              (unsigned long)ctl->exitcode, svm_exit_name(ctl->exitcode), (unsigned long)ctl->exitinfo1,
              (unsigned long)ctl->exitinfo2, (unsigned long)ctl->exitintinfo, (unsigned long)sv->rip,
              (unsigned long)sv->rsp, (unsigned long)sv->rflags);
    svm_diagnose_vmcb(v->vmcb);
}

const struct hvm_backend svm_backend = {
    .name = "svm",
    .nested_format = &npt_format,
    .cpu_enable = svm_cpu_enable,
    .vcpu_create = svm_vcpu_create,
    .vcpu_destroy = svm_vcpu_destroy,
    .vcpu_run = svm_vcpu_run,
    .get_state = svm_get_state,
    .set_state = svm_set_state,
    .get_gpr = svm_get_gpr,
    .set_gpr = svm_set_gpr,
    .get_rip = svm_get_rip,
    .get_cr4 = svm_get_cr4,
    .skip_insn = svm_skip_insn,
    .debug_trap = svm_debug_trap,
    .get_dr0_3 = svm_get_dr0_3,
    .set_event_len = svm_set_event_len,
    .set_pdptes = svm_set_pdptes,
    .set_tsc_aux = svm_set_tsc_aux,
    .finish_cpuid = svm_finish_cpuid,
    .inject = svm_inject,
    .can_inject = svm_can_inject,
    .request_window = svm_request_window,
    .nested_flush = svm_nested_flush,
    .reset_private = svm_reset_private,
    .set_xcr0 = svm_set_xcr0,
    .save_extra = svm_save_extra,
    .load_extra = svm_load_extra,
    .set_tsc_offset = svm_set_tsc_offset,
    .guest_has_rdtscp = svm_guest_has_rdtscp,
    .guest_has_xsaves = svm_guest_has_xsaves,
    .dump = svm_dump,
};
