#include "arch/x86_64/vmx/vmx_caps.h"
#include "arch/x86_64/vmx/vmx_msr.h"
#include "arch/x86_64/cpu/cpu.h"

/* SDM Vol. 3C A.3-A.5: bits 31:0 are the allowed 0-settings (a 1 there means the
 * control must be 1), bits 63:32 the allowed 1-settings. */
static struct vmx_ctls vmx_ctls_from_msr(uint64_t msr)
{
    return (struct vmx_ctls){ .must_be_1 = (uint32_t)msr, .may_be_1 = (uint32_t)(msr >> 32) };
}

struct vmx_caps vmx_caps_decode(const struct vmx_caps_raw *raw)
{
    struct vmx_caps c = { .status = VMX_CAPS_OK };

    if (!(raw->cpuid1_ecx & CPUID_1_ECX_VMX)) {
        c.status = VMX_CAPS_ABSENT;
        return c;
    }
    /* SDM Vol. 3C "Enabling and Entering VMX Operation": with the MSR locked, only
     * firmware (after a reset) can allow VMXON outside SMX again. */
    if (raw->feature_control & FEATURE_CONTROL_LOCK) {
        if (!(raw->feature_control & FEATURE_CONTROL_VMX_OUTSIDE_SMX)) {
            c.status = VMX_CAPS_FIRMWARE_DISABLED;
            return c;
        }
    } else {
        c.feature_control_unlocked = true;
    }

    c.vmcs_revision = (uint32_t)(raw->basic & VMX_BASIC_REVISION_MASK);
    c.vmcs_size = (uint32_t)((raw->basic >> VMX_BASIC_REGION_SIZE_SHIFT) & VMX_BASIC_REGION_SIZE_MASK);

    /* SDM Vol. 3C A.3.1, A.3.2, A.4, A.5: with IA32_VMX_BASIC[55] the TRUE MSRs hold
     * the full answer (including which default1 controls may be 0); without it the
     * plain MSRs do and the TRUE ones do not exist. */
    bool true_ctls = raw->basic & VMX_BASIC_TRUE_CTLS;
    c.pin   = vmx_ctls_from_msr(true_ctls ? raw->true_pinbased : raw->pinbased);
    c.proc  = vmx_ctls_from_msr(true_ctls ? raw->true_procbased : raw->procbased);
    c.exit  = vmx_ctls_from_msr(true_ctls ? raw->true_exit : raw->exit);
    c.entry = vmx_ctls_from_msr(true_ctls ? raw->true_entry : raw->entry);
    /* SDM Vol. 3C A.3.3: IA32_VMX_PROCBASED_CTLS2 exists only if the primary controls
     * allow "activate secondary controls" to be 1. */
    if (c.proc.may_be_1 & CPU_BASED_ACTIVATE_SECONDARY)
        c.proc2 = vmx_ctls_from_msr(raw->procbased2);

    /* plinth runs in 64-bit mode, so every VM exit must return to a 64-bit host
     * (SDM Vol. 3C "Checks on VM-Exit Control Fields"/"Checks Related to Address-Space
     * Size"); the VMXON region and VMCS must fit the 4 KiB page plinth gives them
     * (A.1: the size is at most 4096) and be write-back, the memory type plinth
     * maps its own RAM with. */
    if (!(c.exit.may_be_1 & VM_EXIT_HOST_ADDR_SPACE_SIZE) || c.vmcs_size == 0 || c.vmcs_size > 4096 ||
        ((raw->basic >> VMX_BASIC_MEM_TYPE_SHIFT) & VMX_BASIC_MEM_TYPE_MASK) != VMX_BASIC_MEM_TYPE_WB) {
        c.status = VMX_CAPS_UNUSABLE;
        return c;
    }

    c.preemption_timer = c.pin.may_be_1 & PIN_BASED_PREEMPTION_TIMER;
    if (c.preemption_timer)
        c.preemption_timer_rate = (uint8_t)(raw->misc & VMX_MISC_PREEMPTION_TIMER_RATE_MASK);

    bool ept_ctl = c.proc2.may_be_1 & SECONDARY_ENABLE_EPT;
    bool vpid_ctl = c.proc2.may_be_1 & SECONDARY_ENABLE_VPID;
    uint64_t cap = (ept_ctl || vpid_ctl) ? raw->ept_vpid_cap : 0; /* A.10: exists only then */

    /* plinth builds 4-level EPT tables in write-back memory (SDM Vol. 3C "Extended
     * Page Table Pointer": walk length 4 and memory type WB must be allowed by A.10). */
    c.ept = ept_ctl && (cap & VMX_EPT_PAGE_WALK_4) && (cap & VMX_EPT_MEMTYPE_WB);
    if (c.ept) {
        c.ept_2m = cap & VMX_EPT_2MB_PAGE;
        c.ept_1g = cap & VMX_EPT_1GB_PAGE;
        c.ept_ad = cap & VMX_EPT_AD_BITS;
        c.invept = cap & VMX_EPT_INVEPT;
        c.invept_single = c.invept && (cap & VMX_EPT_INVEPT_SINGLE_CONTEXT);
        c.invept_all = c.invept && (cap & VMX_EPT_INVEPT_ALL_CONTEXT);
    }
    c.vpid = vpid_ctl;
    if (c.vpid) {
        c.invvpid = cap & VMX_VPID_INVVPID;
        c.invvpid_single = c.invvpid && (cap & VMX_VPID_INVVPID_SINGLE_CONTEXT);
        c.invvpid_all = c.invvpid && (cap & VMX_VPID_INVVPID_ALL_CONTEXT);
    }
    /* SDM Vol. 3C "Checks on VMX Controls": "unrestricted guest" requires "enable EPT". */
    c.unrestricted_guest = c.ept && (c.proc2.may_be_1 & SECONDARY_UNRESTRICTED_GUEST);
    return c;
}

struct vmx_caps_text {
    char *buf;
    size_t size, len;
};

static void vmx_caps_text_put(struct vmx_caps_text *t, char c)
{
    if (t->len + 1 < t->size) {
        t->buf[t->len] = c;
        t->buf[t->len + 1] = '\0';
    }
    t->len++;
}

size_t vmx_caps_describe(const struct vmx_caps *caps, char *buf, size_t size)
{
    struct vmx_caps_text t = { buf, size, 0 };
    if (size)
        buf[0] = '\0';
    if (caps->status != VMX_CAPS_OK)
        return 0;
    const struct { bool present; const char *word; } features[] = {
        { true, "vmx" }, { caps->ept, "ept" }, { caps->vpid, "vpid" },
        { caps->unrestricted_guest, "ug" }, { caps->preemption_timer, "preempt-timer" },
        { caps->ept_2m, "ept-2m" }, { caps->ept_1g, "ept-1g" },
    };
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        if (!features[i].present)
            continue;
        if (t.len)
            vmx_caps_text_put(&t, ' ');
        for (const char *p = features[i].word; *p; p++)
            vmx_caps_text_put(&t, *p);
    }
    return t.len;
}

const char *vmx_caps_reason(const struct vmx_caps *caps)
{
    switch (caps->status) {
    case VMX_CAPS_OK:
        return 0;
    case VMX_CAPS_ABSENT:
        return "this CPU has no VT-x";
    case VMX_CAPS_FIRMWARE_DISABLED:
        return "VT-x is disabled by the firmware (IA32_FEATURE_CONTROL locked with VMX off); "
               "enable \"Intel Virtualization Technology\" in the firmware setup";
    case VMX_CAPS_UNUSABLE:
        return "this CPU's VT-x cannot return to a 64-bit host with a write-back VMCS of at most "
               "4 KiB; plinth cannot run guests on it";
    }
    return "unknown VT-x status";
}

void vmx_caps_read(struct vmx_caps_raw *raw)
{
    *raw = (struct vmx_caps_raw){ 0 };
    raw->cpuid1_ecx = cpuid(1, 0).ecx;
    /* SDM Vol. 4, architectural MSRs: every VMX MSR below exists only if CPUID.1:ECX.VMX,
     * and the later ones only under the conditions noted; reading an absent MSR #GPs. */
    if (!(raw->cpuid1_ecx & CPUID_1_ECX_VMX))
        return;
    raw->feature_control = rdmsr(MSR_IA32_FEATURE_CONTROL);
    raw->basic = rdmsr(MSR_IA32_VMX_BASIC);
    raw->pinbased = rdmsr(MSR_IA32_VMX_PINBASED_CTLS);
    raw->procbased = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS);
    raw->exit = rdmsr(MSR_IA32_VMX_EXIT_CTLS);
    raw->entry = rdmsr(MSR_IA32_VMX_ENTRY_CTLS);
    raw->misc = rdmsr(MSR_IA32_VMX_MISC);
    if (raw->basic & VMX_BASIC_TRUE_CTLS) {
        raw->true_pinbased = rdmsr(MSR_IA32_VMX_TRUE_PINBASED_CTLS);
        raw->true_procbased = rdmsr(MSR_IA32_VMX_TRUE_PROCBASED_CTLS);
        raw->true_exit = rdmsr(MSR_IA32_VMX_TRUE_EXIT_CTLS);
        raw->true_entry = rdmsr(MSR_IA32_VMX_TRUE_ENTRY_CTLS);
    }
    if (!(raw->procbased >> 32 & CPU_BASED_ACTIVATE_SECONDARY))
        return;
    raw->procbased2 = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);
    if ((raw->procbased2 >> 32) & (SECONDARY_ENABLE_EPT | SECONDARY_ENABLE_VPID))
        raw->ept_vpid_cap = rdmsr(MSR_IA32_VMX_EPT_VPID_CAP);
}

bool vmx_feature_control_enable(void)
{
    if (!(cpuid(1, 0).ecx & CPUID_1_ECX_VMX))
        return false;
    uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
    if (fc & FEATURE_CONTROL_LOCK)
        return fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX;
    /* Locking is what makes VMXON legal at all (SDM Vol. 3C "Enabling and Entering
     * VMX Operation": VMXON #GPs while the lock bit is clear).  Other bits (SMX, SGX,
     * LMCE) stay as the firmware left them. */
    wrmsr(MSR_IA32_FEATURE_CONTROL, fc | FEATURE_CONTROL_VMX_OUTSIDE_SMX | FEATURE_CONTROL_LOCK);
    return rdmsr(MSR_IA32_FEATURE_CONTROL) & FEATURE_CONTROL_VMX_OUTSIDE_SMX;
}
