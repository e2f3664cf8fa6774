/* vmx: plinth offers no nested virtualization: every VMX instruction, and MONITOR/
 * MWAIT (hidden in CPUID), raise #UD in the guest (SDM Vol. 3C §25.1.3 lists which
 * exit; plinth then injects #UD); CR4.VMXE cannot be set (#GP, SDM Vol. 3A §2.5). */
#include "guest.h"

static uint64_t region[4] __attribute__((aligned(16)));

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "vmx";

    PROBE_ASM("vmxon (%0)", : : "r"(region) : "memory");
    expect_fault("vmx-vmxon-ud", 6, -1);
    PROBE_ASM("vmcall", : : : "memory");
    expect_fault("vmx-vmcall-ud", 6, -1);
    PROBE_ASM("vmclear (%0)", : : "r"(region) : "memory");
    expect_fault("vmx-vmclear-ud", 6, -1);
    PROBE_ASM("vmptrld (%0)", : : "r"(region) : "memory");
    expect_fault("vmx-vmptrld-ud", 6, -1);
    PROBE_ASM("vmptrst (%0)", : : "r"(region) : "memory");
    expect_fault("vmx-vmptrst-ud", 6, -1);
    PROBE_ASM("vmread %%eax, %%ebx", : : "a"(0x4402) : "ebx", "memory");
    expect_fault("vmx-vmread-ud", 6, -1);
    PROBE_ASM("vmwrite %%eax, %%ebx", : : "a"(0), "b"(0x681e) : "memory");
    expect_fault("vmx-vmwrite-ud", 6, -1);
    PROBE_ASM("vmlaunch", : : : "memory");
    expect_fault("vmx-vmlaunch-ud", 6, -1);
    PROBE_ASM("vmresume", : : : "memory");
    expect_fault("vmx-vmresume-ud", 6, -1);
    PROBE_ASM("invept (%0), %1", : : "r"(region), "r"(1) : "memory");
    expect_fault("vmx-invept-ud", 6, -1);
    PROBE_ASM("invvpid (%0), %1", : : "r"(region), "r"(1) : "memory");
    expect_fault("vmx-invvpid-ud", 6, -1);
    PROBE_ASM("vmxoff", : : : "memory");
    expect_fault("vmx-vmxoff-ud", 6, -1);
    PROBE_ASM("vmfunc", : "+a"((uint32_t){ 0 }) : : "memory");
    expect_fault("vmx-vmfunc-ud", 6, -1);
    PROBE_ASM("monitor", : : "a"(region), "c"(0), "d"(0) : "memory");
    expect_fault("vmx-monitor-ud", 6, -1);
    PROBE_ASM("mwait", : : "a"(0), "c"(0) : "memory");
    expect_fault("vmx-mwait-ud", 6, -1);

    /* Last: QEMU's TCG (used to check these guests without plinth) loops forever on
     * this write instead of raising #GP. */
    uint32_t cr4 = read_cr4();
    probe_write_cr4(cr4 | (1u << 13));
    expect_fault("vmx-cr4-vmxe-gp", 13, 0);
    uint32_t cr4_after = read_cr4();
    check(!(cr4_after & (1u << 13)), "vmx-cr4-vmxe-clear", "CR4 = %#x", cr4_after);

    /* Still alive and in one piece after all that. */
    uint32_t r[4];
    cpuid(1, 0, r);
    check(!(r[2] & (1u << 5)), "vmx-survived", "CPUID.1:ECX = %#x shows VMX", r[2]);
}
