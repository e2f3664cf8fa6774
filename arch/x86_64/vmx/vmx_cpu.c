/* Per-CPU VT-x enable: the VMXON region and VMX operation (SDM Vol. 3C §24.7,
 * "Enabling and Entering VMX Operation"). */
#include "arch/x86_64/vmx/vmx.h"
#include "arch/x86_64/vmx/vmcs.h"
#include "arch/x86_64/vmx/vmx_msr.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/fpu.h"
#include "kernel/log.h"
#include "arch/x86_64/page_alloc.h"
#include "kernel/spinlock.h"

static struct vmx_caps caps;
static bool caps_read;
static struct spinlock caps_lock = SPINLOCK_INIT;

const struct vmx_caps *vmx_caps(void)
{
    return &caps;
}

int vmx_cpu_enable(void)
{
    spin_lock(&caps_lock);
    if (!caps_read) {
        struct vmx_caps_raw raw;
        vmx_caps_read(&raw);
        caps = vmx_caps_decode(&raw);
        caps_read = true;
    }
    spin_unlock(&caps_lock);
    if (caps.status != VMX_CAPS_OK) {
        log_error("vmx: %s", vmx_caps_reason(&caps));
        return -1;
    }
    /* Each CPU has its own IA32_FEATURE_CONTROL; firmware may leave it unlocked. */
    if (!vmx_feature_control_enable()) {
        log_error("vmx: IA32_FEATURE_CONTROL on this CPU forbids VMXON outside SMX; "
                  "enable \"Intel Virtualization Technology\" in the firmware setup");
        return -1;
    }
    fpu_cpu_init();
    /* CR0 and CR4 must satisfy the fixed-bit MSRs in VMX operation (§24.8,
     * Appendix A.7/A.8); CR4.VMXE is one of them. */
    uint64_t cr0 = read_cr0(), cr4 = read_cr4() | CR4_VMXE;
    cr0 = (cr0 | rdmsr(MSR_IA32_VMX_CR0_FIXED0)) & rdmsr(MSR_IA32_VMX_CR0_FIXED1);
    cr4 = (cr4 | rdmsr(MSR_IA32_VMX_CR4_FIXED0)) & rdmsr(MSR_IA32_VMX_CR4_FIXED1);
    write_cr0(cr0);
    write_cr4(cr4);

    uint64_t region = arch_alloc_page();
    if (!region) {
        log_error("vmx: out of memory for the VMXON region");
        return -1;
    }
    *(uint32_t *)phys_to_virt(region) = caps.vmcs_revision;
    if (!vmx_on(region)) {
        log_error("vmx: VMXON failed on this CPU (CR0 %#lx CR4 %#lx); the firmware may have "
                  "left VMX in use", (unsigned long)read_cr0(), (unsigned long)read_cr4());
        arch_free_pages(region, 1);
        return -1;
    }
    /* Translations cached before VMXON may be tagged with any EPTP/VPID: start clean. */
    if (caps.invept_all)
        vmx_invept(2, 0);
    if (caps.invvpid_all)
        vmx_invvpid(2, 0);
    return 0;
}
