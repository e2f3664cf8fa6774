/* Diagnostics for the SVM backend: exit names and, for a VMRUN that failed with
 * VMEXIT_INVALID, the consistency checks of AMD APM Vol. 2 §15.5.1 ("Canonicalization
 * and Consistency Checks") that plinth can repeat in software. */
#include "arch/x86_64/svm/svm.h"
#include "arch/x86_64/cpu/cpu.h"
#include "kernel/log.h"

const char *svm_exit_name(uint64_t code)
{
    switch (code) {
    case SVM_EXIT_INVALID:
    case 0xffffffffu: return "VMEXIT_INVALID";
    case SVM_EXIT_INTR: return "INTR";
    case SVM_EXIT_NMI: return "NMI";
    case SVM_EXIT_SMI: return "SMI";
    case SVM_EXIT_INIT: return "INIT";
    case SVM_EXIT_VINTR: return "VINTR";
    case SVM_EXIT_RDTSC: return "RDTSC";
    case SVM_EXIT_RDPMC: return "RDPMC";
    case SVM_EXIT_CPUID: return "CPUID";
    case SVM_EXIT_IRET: return "IRET";
    case SVM_EXIT_INVD: return "INVD";
    case SVM_EXIT_PAUSE: return "PAUSE";
    case SVM_EXIT_HLT: return "HLT";
    case SVM_EXIT_INVLPGA: return "INVLPGA";
    case SVM_EXIT_IOIO: return "IOIO";
    case SVM_EXIT_MSR: return "MSR";
    case SVM_EXIT_TASK_SWITCH: return "TASK_SWITCH";
    case SVM_EXIT_SHUTDOWN: return "SHUTDOWN";
    case SVM_EXIT_VMRUN: return "VMRUN";
    case SVM_EXIT_VMMCALL: return "VMMCALL";
    case SVM_EXIT_VMLOAD: return "VMLOAD";
    case SVM_EXIT_VMSAVE: return "VMSAVE";
    case SVM_EXIT_STGI: return "STGI";
    case SVM_EXIT_CLGI: return "CLGI";
    case SVM_EXIT_SKINIT: return "SKINIT";
    case SVM_EXIT_RDTSCP: return "RDTSCP";
    case SVM_EXIT_WBINVD: return "WBINVD";
    case SVM_EXIT_MONITOR: return "MONITOR";
    case SVM_EXIT_MWAIT: return "MWAIT";
    case SVM_EXIT_MWAIT_COND: return "MWAIT_CONDITIONAL";
    case SVM_EXIT_XSETBV: return "XSETBV";
    case SVM_EXIT_NPF: return "NPF";
    }
    if (code < 0x10) return "CR read";
    if (code < 0x20) return "CR write";
    if (code < 0x40) return "DR access";
    if (code < 0x60) return "exception";
    return "?";
}

#define CR0_CD (1ull << 30)
#define CR0_NW (1ull << 29)
#define CR4_PAE_BIT (1ull << 5)
/* EFER bits defined on AMD64 (APM Vol. 2 §3.1.7): SCE, LME, LMA, NXE, SVME, LMSLE,
 * FFXSR, TCE; the rest are MBZ. */
#define EFER_DEFINED ((1ull << 0) | (1ull << 8) | (1ull << 10) | (1ull << 11) | (1ull << 12) | \
                      (1ull << 13) | (1ull << 14) | (1ull << 15))

static void log_seg(const char *name, const struct vmcb_seg *s)
{
    log_error("svm:   %-4s sel %#06x attrib %#05x limit %#010x base %#lx", name, s->selector, s->attrib,
              s->limit, (unsigned long)s->base);
}

void svm_diagnose_vmcb(const struct vmcb *vmcb)
{
    const struct vmcb_control *c = &vmcb->control;
    const struct vmcb_save *s = &vmcb->save;
    log_error("svm: VMCB: asid %u, intercepts misc %#x/%#x, iopm %#lx, msrpm %#lx, np %#lx, n_cr3 %#lx, "
              "eventinj %#lx, tlb_control %u",
              c->guest_asid, c->intercept_misc1, c->intercept_misc2, (unsigned long)c->iopm_base_pa,
              (unsigned long)c->msrpm_base_pa, (unsigned long)c->np_control, (unsigned long)c->n_cr3,
              (unsigned long)c->eventinj, c->tlb_control);
    log_error("svm:   efer %#lx cr0 %#lx cr3 %#lx cr4 %#lx dr6 %#lx dr7 %#lx rflags %#lx rip %#lx cpl %u",
              (unsigned long)s->efer, (unsigned long)s->cr0, (unsigned long)s->cr3, (unsigned long)s->cr4,
              (unsigned long)s->dr6, (unsigned long)s->dr7, (unsigned long)s->rflags, (unsigned long)s->rip,
              s->cpl);
    log_seg("es", &s->es);
    log_seg("cs", &s->cs);
    log_seg("ss", &s->ss);
    log_seg("ds", &s->ds);
    log_seg("tr", &s->tr);
    log_seg("ldtr", &s->ldtr);

    unsigned broken = 0;
#define RULE(cond, ...) do { if (cond) { log_error("svm:   breaks: " __VA_ARGS__); broken++; } } while (0)
    RULE(!(s->efer & EFER_SVME), "EFER.SVME is zero");
    RULE(!(s->cr0 & CR0_CD) && (s->cr0 & CR0_NW), "CR0.CD is zero and CR0.NW is set");
    RULE(s->cr0 >> 32, "CR0[63:32] are not zero");
    RULE(s->efer & ~EFER_DEFINED, "EFER has must-be-zero bits set (%#lx)",
         (unsigned long)(s->efer & ~EFER_DEFINED));
    RULE(s->dr6 >> 32, "DR6[63:32] are not zero");
    RULE(s->dr7 >> 32, "DR7[63:32] are not zero");
    RULE(s->cr3 >> 52, "CR3 has must-be-zero bits above 51 set");
    RULE(s->cr4 >> 32, "CR4[63:32] are not zero");
    bool lme_pg = (s->efer & EFER_LME) && (s->cr0 & CR0_PG);
    RULE(lme_pg && !(s->cr4 & CR4_PAE_BIT), "EFER.LME and CR0.PG are set and CR4.PAE is zero");
    RULE(lme_pg && !(s->cr0 & CR0_PE), "EFER.LME and CR0.PG are set and CR0.PE is zero");
    RULE(lme_pg && (s->cr4 & CR4_PAE_BIT) && (s->cs.attrib & (1u << 9)) && (s->cs.attrib & (1u << 10)),
         "EFER.LME, CR0.PG, CR4.PAE, CS.L and CS.D are all set");
    RULE(!(c->intercept_misc2 & VMCB_I2_VMRUN), "the VMRUN intercept is clear");
    RULE(c->guest_asid == 0, "ASID is zero (the host's)");
    RULE(!(c->np_control & VMCB_NP_ENABLE), "nested paging is off (plinth always uses NPT)");
    RULE(c->msrpm_base_pa & 0xfff, "MSRPM address is not page aligned");
    RULE(c->iopm_base_pa & 0xfff, "IOPM address is not page aligned");
    if (c->eventinj & SVM_EVT_VALID) {
        uint32_t type = (uint32_t)(c->eventinj & SVM_EVT_TYPE_MASK) >> SVM_EVT_TYPE_SHIFT;
        uint32_t vec = c->eventinj & SVM_EVT_VECTOR_MASK;
        RULE(type == 1 || type > 4, "EVENTINJ has reserved type %u", type);
        RULE(type == SVM_EVT_TYPE_EXCEPT && (vec == 2 || vec > 31),
             "EVENTINJ injects exception vector %u", vec);
    }
#undef RULE
    if (!broken)
        log_error("svm: none of the checks plinth repeats fails; the CPU checks more (reserved "
                  "bits beyond its physical-address width, VMCB clean state)");
}
