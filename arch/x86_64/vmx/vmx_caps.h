/* What this CPU's VT-x can do: decoded from CPUID and the VMX capability MSRs by a
 * pure function, so the decoding is unit-tested on recorded values. */
#ifndef PLINTH_ARCH_VMX_CAPS_H
#define PLINTH_ARCH_VMX_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Raw values as the hardware reports them.  An MSR that does not exist on this CPU
 * (its presence condition is false) is left 0; vmx_caps_read() never reads it. */
struct vmx_caps_raw {
    uint32_t cpuid1_ecx;
    uint64_t feature_control;   /* IA32_FEATURE_CONTROL */
    uint64_t basic;             /* IA32_VMX_BASIC */
    uint64_t pinbased, true_pinbased;
    uint64_t procbased, true_procbased;
    uint64_t procbased2;        /* only if procbased allows "activate secondary controls" */
    uint64_t exit, true_exit;
    uint64_t entry, true_entry;
    uint64_t misc;
    uint64_t ept_vpid_cap;      /* only if procbased2 allows EPT or VPID */
};

enum vmx_caps_status {
    VMX_CAPS_OK,
    VMX_CAPS_ABSENT,              /* CPUID.1:ECX.VMX = 0 */
    VMX_CAPS_FIRMWARE_DISABLED,   /* IA32_FEATURE_CONTROL locked with VMX outside SMX off */
    VMX_CAPS_UNUSABLE,            /* VMX present but lacks what a 64-bit host needs */
};

/* One class of VM-execution/exit/entry controls: a control may be 0 unless its bit
 * is in must_be_1, and may be 1 only if its bit is in may_be_1 (SDM Vol. 3C A.3-A.5:
 * allowed 0-settings in bits 31:0, allowed 1-settings in bits 63:32). */
struct vmx_ctls {
    uint32_t must_be_1;
    uint32_t may_be_1;
};

struct vmx_caps {
    enum vmx_caps_status status;
    /* IA32_FEATURE_CONTROL is unlocked: set VMX-outside-SMX and lock it before VMXON
     * (vmx_feature_control_enable), on every CPU. */
    bool feature_control_unlocked;

    uint32_t vmcs_revision;
    uint32_t vmcs_size;          /* bytes of the VMXON region and of each VMCS */
    struct vmx_ctls pin, proc, proc2, exit, entry;

    bool ept;                    /* EPT usable: 4-level walk and write-back tables */
    bool vpid;
    bool unrestricted_guest;     /* only with EPT, which it requires */
    bool preemption_timer;
    uint8_t preemption_timer_rate; /* ticks once every 2^rate TSC ticks */
    bool ept_2m, ept_1g;
    bool ept_ad;
    bool invept, invept_single, invept_all;
    bool invvpid, invvpid_single, invvpid_all;
};

struct vmx_caps vmx_caps_decode(const struct vmx_caps_raw *raw);
/* The feature list of the "virt:" line: "vmx ept vpid ug preempt-timer ept-2m ept-1g",
 * only those present, in that order.  Returns the length (as snprintf). */
size_t vmx_caps_describe(const struct vmx_caps *caps, char *buf, size_t size);
/* Why VT-x cannot be used and how to fix it; NULL when status is VMX_CAPS_OK. */
const char *vmx_caps_reason(const struct vmx_caps *caps);

/* Reads the raw values on the calling CPU, each MSR only where the SDM says it exists. */
void vmx_caps_read(struct vmx_caps_raw *raw);
/* Sets VMX-outside-SMX and the lock bit in IA32_FEATURE_CONTROL on the calling CPU if
 * it is still unlocked.  Returns true when VMXON outside SMX is now allowed. */
bool vmx_feature_control_enable(void);

#endif
