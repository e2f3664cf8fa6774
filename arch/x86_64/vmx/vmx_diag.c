/* Explaining VT-x failures: names for error numbers and exit reasons, and a software
 * pass over the guest-state checks of SDM Vol. 3C §27.3.1 so that a refused entry
 * says which rule the state broke, not just that it was refused. */
#include "arch/x86_64/vmx/vmx.h"
#include "arch/x86_64/vmx/vmcs.h"
#include "arch/x86_64/vmx/vmx_msr.h"
#include "arch/x86_64/cpu/cpu.h"
#include "kernel/log.h"

const char *vmx_instruction_error_name(uint32_t err)
{
    /* SDM Vol. 3C §31.4, Table 31-1. */
    static const char *const names[] = {
        [0] = "none",
        [1] = "VMCALL executed in VMX root operation",
        [2] = "VMCLEAR with invalid physical address",
        [3] = "VMCLEAR with VMXON pointer",
        [4] = "VMLAUNCH with non-clear VMCS",
        [5] = "VMRESUME with non-launched VMCS",
        [6] = "VMRESUME after VMXOFF",
        [7] = "VM entry with invalid control field(s)",
        [8] = "VM entry with invalid host-state field(s)",
        [9] = "VMPTRLD with invalid physical address",
        [10] = "VMPTRLD with VMXON pointer",
        [11] = "VMPTRLD with incorrect VMCS revision identifier",
        [12] = "VMREAD/VMWRITE from/to unsupported VMCS component",
        [13] = "VMWRITE to read-only VMCS component",
        [15] = "VMXON executed in VMX root operation",
        [16] = "VM entry with invalid executive-VMCS pointer",
        [17] = "VM entry with non-launched executive VMCS",
        [18] = "VM entry with executive-VMCS pointer not VMXON pointer",
        [19] = "VMCALL with non-clear VMCS",
        [20] = "VMCALL with invalid VM-exit control fields",
        [22] = "VMCALL with incorrect MSEG revision identifier",
        [23] = "VMXOFF under dual-monitor treatment of SMIs and SMM",
        [24] = "VMCALL with invalid SMM-monitor features",
        [25] = "VM entry with invalid VM-execution control fields in executive VMCS",
        [26] = "VM entry with events blocked by MOV SS",
        [28] = "invalid operand to INVEPT/INVVPID",
    };
    if (err < sizeof names / sizeof names[0] && names[err])
        return names[err];
    return "unknown error";
}

const char *vmx_exit_reason_name(uint32_t r)
{
    /* SDM Vol. 3C Appendix C, Table C-1. */
    static const char *const names[VMX_EXIT_REASON_MAX] = {
        [0] = "exception or NMI", [1] = "external interrupt", [2] = "triple fault", [3] = "INIT",
        [4] = "SIPI", [5] = "I/O SMI", [6] = "other SMI", [7] = "interrupt window", [8] = "NMI window",
        [9] = "task switch", [10] = "CPUID", [11] = "GETSEC", [12] = "HLT", [13] = "INVD",
        [14] = "INVLPG", [15] = "RDPMC", [16] = "RDTSC", [17] = "RSM", [18] = "VMCALL",
        [19] = "VMCLEAR", [20] = "VMLAUNCH", [21] = "VMPTRLD", [22] = "VMPTRST", [23] = "VMREAD",
        [24] = "VMRESUME", [25] = "VMWRITE", [26] = "VMXOFF", [27] = "VMXON",
        [28] = "control-register access", [29] = "MOV DR", [30] = "I/O instruction", [31] = "RDMSR",
        [32] = "WRMSR", [33] = "VM-entry failure: invalid guest state",
        [34] = "VM-entry failure: MSR loading", [36] = "MWAIT", [37] = "monitor trap flag",
        [39] = "MONITOR", [40] = "PAUSE", [41] = "VM-entry failure: machine-check event",
        [43] = "TPR below threshold", [44] = "APIC access", [45] = "virtualized EOI",
        [46] = "GDTR/IDTR access", [47] = "LDTR/TR access", [48] = "EPT violation",
        [49] = "EPT misconfiguration", [50] = "INVEPT", [51] = "RDTSCP",
        [52] = "VMX-preemption timer expired", [53] = "INVVPID", [54] = "WBINVD/WBNOINVD",
        [55] = "XSETBV", [56] = "APIC write", [57] = "RDRAND", [58] = "INVPCID", [59] = "VMFUNC",
        [60] = "ENCLS", [61] = "RDSEED", [62] = "page-modification log full", [63] = "XSAVES",
        [64] = "XRSTORS",
    };
    if (r < VMX_EXIT_REASON_MAX && names[r])
        return names[r];
    return "unknown";
}

static const char *const seg_names[] = { "es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr" };
static const uint32_t seg_sel[] = { VMCS_GUEST_ES_SEL, VMCS_GUEST_CS_SEL, VMCS_GUEST_SS_SEL, VMCS_GUEST_DS_SEL,
                                    VMCS_GUEST_FS_SEL, VMCS_GUEST_GS_SEL, VMCS_GUEST_LDTR_SEL, VMCS_GUEST_TR_SEL };
static const uint32_t seg_base[] = { VMCS_GUEST_ES_BASE, VMCS_GUEST_CS_BASE, VMCS_GUEST_SS_BASE, VMCS_GUEST_DS_BASE,
                                     VMCS_GUEST_FS_BASE, VMCS_GUEST_GS_BASE, VMCS_GUEST_LDTR_BASE, VMCS_GUEST_TR_BASE };
static const uint32_t seg_limit[] = { VMCS_GUEST_ES_LIMIT, VMCS_GUEST_CS_LIMIT, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_DS_LIMIT,
                                      VMCS_GUEST_FS_LIMIT, VMCS_GUEST_GS_LIMIT, VMCS_GUEST_LDTR_LIMIT, VMCS_GUEST_TR_LIMIT };
static const uint32_t seg_ar[] = { VMCS_GUEST_ES_AR, VMCS_GUEST_CS_AR, VMCS_GUEST_SS_AR, VMCS_GUEST_DS_AR,
                                   VMCS_GUEST_FS_AR, VMCS_GUEST_GS_AR, VMCS_GUEST_LDTR_AR, VMCS_GUEST_TR_AR };

static unsigned problems;

static void rule(bool ok, const char *what)
{
    if (!ok) {
        log_error("vmx:   breaks: %s", what);
        problems++;
    }
}

void vmx_diagnose_guest_state(void)
{
    uint64_t cr0 = vmcs_read(VMCS_GUEST_CR0), cr4 = vmcs_read(VMCS_GUEST_CR4);
    uint64_t efer = vmcs_read(VMCS_GUEST_EFER), rflags = vmcs_read(VMCS_GUEST_RFLAGS);
    uint64_t rip = vmcs_read(VMCS_GUEST_RIP);
    uint32_t entry = (uint32_t)vmcs_read(VMCS_ENTRY_CONTROLS);
    uint32_t proc2 = (uint32_t)vmcs_read(VMCS_PROC_CONTROLS2);
    uint32_t intr = (uint32_t)vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);
    uint32_t activity = (uint32_t)vmcs_read(VMCS_GUEST_ACTIVITY_STATE);
    bool ia32e = entry & VM_ENTRY_IA32E_MODE_GUEST;
    bool ug = proc2 & SECONDARY_UNRESTRICTED_GUEST;

    log_error("vmx: guest state: cr0 %#lx cr3 %#lx cr4 %#lx efer %#lx rflags %#lx rip %#lx rsp %#lx",
              (unsigned long)cr0, (unsigned long)vmcs_read(VMCS_GUEST_CR3), (unsigned long)cr4,
              (unsigned long)efer, (unsigned long)rflags, (unsigned long)rip,
              (unsigned long)vmcs_read(VMCS_GUEST_RSP));
    log_error("vmx:   entry controls %#x (ia32e %d), secondary %#x (ug %d), activity %u, "
              "interruptibility %#x, entry event %#lx, link %#lx", entry, ia32e, proc2, ug, activity, intr,
              (unsigned long)vmcs_read(VMCS_ENTRY_INTR_INFO), (unsigned long)vmcs_read(VMCS_LINK_POINTER));
    uint32_t ar[8];
    for (int i = 0; i < 8; i++) {
        ar[i] = (uint32_t)vmcs_read(seg_ar[i]);
        log_error("vmx:   %-4s sel %#06lx base %#lx limit %#lx ar %#x%s", seg_names[i],
                  (unsigned long)vmcs_read(seg_sel[i]), (unsigned long)vmcs_read(seg_base[i]),
                  (unsigned long)vmcs_read(seg_limit[i]), ar[i], (ar[i] & VMX_AR_UNUSABLE) ? " (unusable)" : "");
    }
    log_error("vmx:   gdtr %#lx/%#lx idtr %#lx/%#lx", (unsigned long)vmcs_read(VMCS_GUEST_GDTR_BASE),
              (unsigned long)vmcs_read(VMCS_GUEST_GDTR_LIMIT), (unsigned long)vmcs_read(VMCS_GUEST_IDTR_BASE),
              (unsigned long)vmcs_read(VMCS_GUEST_IDTR_LIMIT));

    /* The checks of §27.3.1 plinth's own state could plausibly break. */
    problems = 0;
    uint64_t f0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0), f1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
    if (ug)
        f0 &= ~(uint64_t)(CR0_PE | CR0_PG);
    rule((cr0 & f0) == f0 && (cr0 & ~f1) == 0, "CR0 must respect IA32_VMX_CR0_FIXED0/1 (§27.3.1.1)");
    rule(!(cr0 & CR0_PG) || (cr0 & CR0_PE), "CR0.PG requires CR0.PE (§27.3.1.1)");
    uint64_t g0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0), g1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
    rule((cr4 & g0) == g0 && (cr4 & ~g1) == 0, "CR4 must respect IA32_VMX_CR4_FIXED0/1 (§27.3.1.1)");
    rule(!ia32e || ((cr0 & CR0_PG) && (cr4 & CR4_PAE)), "IA-32e mode guest needs CR0.PG and CR4.PAE (§27.3.1.1)");
    rule(ia32e || !(cr4 & (1ull << 17)), "CR4.PCIDE needs IA-32e mode (§27.3.1.1)");
    rule(!!(efer & EFER_LMA) == ia32e, "EFER.LMA must equal the IA-32e mode guest control (§27.3.1.1)");
    rule(!(cr0 & CR0_PG) || !!(efer & EFER_LME) == ia32e, "with paging, EFER.LME must equal IA-32e mode (§27.3.1.1)");
    rule((rflags & 2) && !(rflags & 0xffffffffffc08028ull), "RFLAGS reserved bits: bit 1 set, 3/5/15/22-63 clear (§27.3.1.4)");
    rule(!ia32e || !(ar[HVM_CS] & (1u << 13)) || !(rflags & (1u << 17)),
         "RFLAGS.VM must be 0 in IA-32e mode (§27.3.1.4)");
    bool cs_l = ia32e && (ar[HVM_CS] & (1u << 13));
    rule(cs_l || (rip >> 32) == 0, "RIP bits 63:32 must be 0 outside 64-bit mode (§27.3.1.4)");
    rule(!(cs_l && (ar[HVM_CS] & (1u << 14))), "CS.L and CS.D/B cannot both be set (§27.3.1.2)");
    uint32_t cs_type = ar[HVM_CS] & 15;
    rule((cs_type == 9 || cs_type == 11 || cs_type == 13 || cs_type == 15) ||
         (ug && (cs_type == 3)), "CS type must be accessed code (9/11/13/15), or 3 with unrestricted guest (§27.3.1.2)");
    rule(ar[HVM_CS] & (1u << 4), "CS must be a code/data segment (S=1) (§27.3.1.2)");
    rule(ar[HVM_CS] & (1u << 7), "CS must be present (§27.3.1.2)");
    for (int i = 0; i < 6; i++) {
        if (ar[i] & VMX_AR_UNUSABLE)
            continue;
        rule(ar[i] & 1, "usable segment registers must be accessed (type bit 0) (§27.3.1.2)");
        uint32_t lim = (uint32_t)vmcs_read(seg_limit[i]);
        bool g = ar[i] & (1u << 15);
        rule((lim & 0xfff) == 0xfff || !g, "a limit with G=1 must have bits 11:0 set (§27.3.1.2)");
        rule((lim >> 20) == 0 || g, "a limit above 1 MiB needs G=1 (§27.3.1.2)");
        rule((ar[i] & 0xfffe0f00u) == 0, "access-rights reserved bits 11:8 and 31:17 must be 0 (§27.3.1.2)");
    }
    rule(!(ar[HVM_TR] & VMX_AR_UNUSABLE), "TR must be usable (§27.3.1.2)");
    uint32_t tr_type = ar[HVM_TR] & 15;
    rule(tr_type == 11 || (!ia32e && tr_type == 3), "TR type must be a busy TSS: 11, or 3 outside IA-32e (§27.3.1.2)");
    rule(!(ar[HVM_TR] & (1u << 4)) && (ar[HVM_TR] & (1u << 7)), "TR must be a system segment (S=0) and present (§27.3.1.2)");
    rule((ar[HVM_LDTR] & VMX_AR_UNUSABLE) || ((ar[HVM_LDTR] & 15) == 2 && (ar[HVM_LDTR] & (1u << 7))),
         "a usable LDTR must be type 2 and present (§27.3.1.2)");
    rule((ar[HVM_SS] & VMX_AR_UNUSABLE) || ((ar[HVM_SS] & 15) == 3 || (ar[HVM_SS] & 15) == 7),
         "a usable SS must be a writable data segment (type 3 or 7) (§27.3.1.2)");
    rule(activity <= 3, "activity state must be 0-3 (§27.3.1.5)");
    rule((intr & 3) != 3, "blocking by STI and by MOV SS cannot both be set (§27.3.1.5)");
    rule(!(intr & 1) || (rflags & (1u << 9)), "blocking by STI needs RFLAGS.IF=1 (§27.3.1.5)");
    rule(vmcs_read(VMCS_LINK_POINTER) == ~0ull, "the VMCS link pointer must be all ones without shadowing (§27.3.1.5)");
    if (!problems)
        log_error("vmx:   no rule plinth checks is broken; compare the fields above with SDM Vol. 3C §27.3.1");
}

void vmx_dump_controls(void)
{
    const struct vmx_caps *c = vmx_caps();
    log_error("vmx: controls: pin %#lx (may %#x must %#x) proc %#lx (may %#x must %#x) proc2 %#lx (may %#x)",
              (unsigned long)vmcs_read(VMCS_PIN_CONTROLS), c->pin.may_be_1, c->pin.must_be_1,
              (unsigned long)vmcs_read(VMCS_PROC_CONTROLS), c->proc.may_be_1, c->proc.must_be_1,
              (unsigned long)vmcs_read(VMCS_PROC_CONTROLS2), c->proc2.may_be_1);
    log_error("vmx:   exit %#lx (may %#x must %#x) entry %#lx (may %#x must %#x) eptp %#lx",
              (unsigned long)vmcs_read(VMCS_EXIT_CONTROLS), c->exit.may_be_1, c->exit.must_be_1,
              (unsigned long)vmcs_read(VMCS_ENTRY_CONTROLS), c->entry.may_be_1, c->entry.must_be_1,
              (unsigned long)vmcs_read(VMCS_EPT_POINTER));
    log_error("vmx:   host cr0 %#lx cr3 %#lx cr4 %#lx rip %#lx efer %#lx", (unsigned long)vmcs_read(VMCS_HOST_CR0),
              (unsigned long)vmcs_read(VMCS_HOST_CR3), (unsigned long)vmcs_read(VMCS_HOST_CR4),
              (unsigned long)vmcs_read(VMCS_HOST_RIP), (unsigned long)vmcs_read(VMCS_HOST_EFER));
}
