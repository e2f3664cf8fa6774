/* VT-x capability MSRs and the control bits plinth looks at (Intel SDM Vol. 3C
 * Appendix A "VMX Capability Reporting Facility"; the control bits from the tables of
 * the chapter "Virtual Machine Control Structures", sections "VM-Execution Control
 * Fields", "VM-Exit Control Fields", "VM-Entry Control Fields"; MSR numbers from
 * Vol. 4 "Model-Specific Registers", architectural MSRs). */
#ifndef PLINTH_ARCH_VMX_MSR_H
#define PLINTH_ARCH_VMX_MSR_H

/* CPUID.01H:ECX feature bits (SDM Vol. 2A, CPUID, "Feature Information Returned in
 * the ECX Register"). */
#define CPUID_1_ECX_VMX   (1u << 5)
#define CPUID_1_ECX_SMX   (1u << 6)

/* IA32_FEATURE_CONTROL (0x3a; MSR_IA32_FEATURE_CONTROL in cpu/cpu.h), SDM Vol. 3C
 * "Enabling and Entering VMX Operation": once the lock bit is set the MSR
 * cannot change until reset, and VMXON outside SMX #GPs unless bit 2 is set. */
#define FEATURE_CONTROL_LOCK               (1ull << 0)
#define FEATURE_CONTROL_VMX_INSIDE_SMX     (1ull << 1)
#define FEATURE_CONTROL_VMX_OUTSIDE_SMX    (1ull << 2)

#define MSR_IA32_VMX_BASIC                 0x480
#define MSR_IA32_VMX_PINBASED_CTLS         0x481
#define MSR_IA32_VMX_PROCBASED_CTLS        0x482
#define MSR_IA32_VMX_EXIT_CTLS             0x483
#define MSR_IA32_VMX_ENTRY_CTLS            0x484
#define MSR_IA32_VMX_MISC                  0x485
#define MSR_IA32_VMX_CR0_FIXED0            0x486
#define MSR_IA32_VMX_CR0_FIXED1            0x487
#define MSR_IA32_VMX_CR4_FIXED0            0x488
#define MSR_IA32_VMX_CR4_FIXED1            0x489
#define MSR_IA32_VMX_PROCBASED_CTLS2       0x48b
#define MSR_IA32_VMX_EPT_VPID_CAP          0x48c
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS    0x48d
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS   0x48e
#define MSR_IA32_VMX_TRUE_EXIT_CTLS        0x48f
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS       0x490

/* IA32_VMX_BASIC (SDM Vol. 3C A.1). */
#define VMX_BASIC_REVISION_MASK            0x7fffffffull       /* bits 30:0 */
#define VMX_BASIC_REGION_SIZE_SHIFT        32                  /* bits 44:32 */
#define VMX_BASIC_REGION_SIZE_MASK         0x1fffull
#define VMX_BASIC_PHYS_ADDR_32BIT          (1ull << 48)
#define VMX_BASIC_MEM_TYPE_SHIFT           50                  /* bits 53:50 */
#define VMX_BASIC_MEM_TYPE_MASK            0xfull
#define VMX_BASIC_MEM_TYPE_WB              6
#define VMX_BASIC_TRUE_CTLS                (1ull << 55)

/* Pin-based VM-execution controls. */
#define PIN_BASED_EXT_INTR_EXITING         (1u << 0)
#define PIN_BASED_NMI_EXITING              (1u << 3)
#define PIN_BASED_VIRTUAL_NMIS             (1u << 5)
#define PIN_BASED_PREEMPTION_TIMER         (1u << 6)

/* Primary processor-based VM-execution controls. */
#define CPU_BASED_HLT_EXITING              (1u << 7)
#define CPU_BASED_USE_IO_BITMAPS           (1u << 25)
#define CPU_BASED_USE_MSR_BITMAPS          (1u << 28)
#define CPU_BASED_ACTIVATE_SECONDARY       (1u << 31)

/* Secondary processor-based VM-execution controls. */
#define SECONDARY_ENABLE_EPT               (1u << 1)
#define SECONDARY_ENABLE_RDTSCP            (1u << 3)
#define SECONDARY_ENABLE_VPID              (1u << 5)
#define SECONDARY_UNRESTRICTED_GUEST       (1u << 7)

/* VM-exit controls. */
#define VM_EXIT_SAVE_DEBUG_CONTROLS        (1u << 2)
#define VM_EXIT_HOST_ADDR_SPACE_SIZE       (1u << 9)
#define VM_EXIT_SAVE_IA32_PAT              (1u << 18)
#define VM_EXIT_LOAD_IA32_PAT              (1u << 19)
#define VM_EXIT_SAVE_IA32_EFER             (1u << 20)
#define VM_EXIT_LOAD_IA32_EFER             (1u << 21)

/* VM-entry controls. */
#define VM_ENTRY_LOAD_DEBUG_CONTROLS       (1u << 2)
#define VM_ENTRY_IA32E_MODE_GUEST          (1u << 9)
#define VM_ENTRY_LOAD_IA32_PAT             (1u << 14)
#define VM_ENTRY_LOAD_IA32_EFER            (1u << 15)

/* IA32_VMX_MISC (SDM Vol. 3C A.6). */
#define VMX_MISC_PREEMPTION_TIMER_RATE_MASK 0x1full /* bits 4:0: timer ticks every 2^N TSC ticks */
#define VMX_MISC_STORE_LMA                 (1ull << 5)

/* IA32_VMX_EPT_VPID_CAP (SDM Vol. 3C A.10). */
#define VMX_EPT_EXECUTE_ONLY               (1ull << 0)
#define VMX_EPT_PAGE_WALK_4                (1ull << 6)
#define VMX_EPT_MEMTYPE_UC                 (1ull << 8)
#define VMX_EPT_MEMTYPE_WB                 (1ull << 14)
#define VMX_EPT_2MB_PAGE                   (1ull << 16)
#define VMX_EPT_1GB_PAGE                   (1ull << 17)
#define VMX_EPT_INVEPT                     (1ull << 20)
#define VMX_EPT_AD_BITS                    (1ull << 21)
#define VMX_EPT_INVEPT_SINGLE_CONTEXT      (1ull << 25)
#define VMX_EPT_INVEPT_ALL_CONTEXT         (1ull << 26)
#define VMX_VPID_INVVPID                   (1ull << 32)
#define VMX_VPID_INVVPID_ADDRESS           (1ull << 40)
#define VMX_VPID_INVVPID_SINGLE_CONTEXT    (1ull << 41)
#define VMX_VPID_INVVPID_ALL_CONTEXT       (1ull << 42)
#define VMX_VPID_INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS (1ull << 43)

#endif
