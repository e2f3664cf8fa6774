/* What this CPU's AMD-V (SVM) can do: decoded from CPUID and VM_CR by a pure function,
 * so the decoding is unit-tested on recorded values (AMD APM Vol. 2, "Secure Virtual
 * Machine"; CPUID bits per APM Vol. 3 Appendix E "Obtaining Processor Information via
 * the CPUID Instruction"). */
#ifndef PLINTH_ARCH_SVM_CAPS_H
#define PLINTH_ARCH_SVM_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CPUID Fn8000_0001 ECX bit 2: SVM; EDX bit 26: 1 GiB pages (Page1GB). */
#define CPUID_80000001_ECX_SVM     (1u << 2)
#define CPUID_80000001_EDX_PAGE1GB (1u << 26)

/* CPUID Fn8000_000A: SVM revision (EAX[7:0]), number of ASIDs (EBX), features (EDX). */
#define CPUID_LEAF_SVM              0x8000000au
#define CPUID_SVM_EDX_NP            (1u << 0)
#define CPUID_SVM_EDX_LBRV          (1u << 1)
#define CPUID_SVM_EDX_SVML          (1u << 2)
#define CPUID_SVM_EDX_NRIPS         (1u << 3)
#define CPUID_SVM_EDX_TSC_RATE_MSR  (1u << 4)
#define CPUID_SVM_EDX_VMCB_CLEAN    (1u << 5)
#define CPUID_SVM_EDX_FLUSH_BY_ASID (1u << 6)
#define CPUID_SVM_EDX_DECODE_ASSISTS (1u << 7)

/* VM_CR (APM Vol. 2 "VM_CR MSR"): SVMDIS makes EFER.SVME must-be-zero; LOCK freezes
 * SVMDIS and LOCK themselves. */
#define MSR_VM_CR          0xc0010114
#define VM_CR_LOCK         (1ull << 3)
#define VM_CR_SVMDIS       (1ull << 4)

struct svm_caps_raw {
    uint32_t max_ext_leaf;       /* CPUID Fn8000_0000 EAX */
    uint32_t ext1_ecx, ext1_edx; /* CPUID Fn8000_0001 */
    uint64_t vm_cr;              /* only read when SVM is present */
    uint32_t svm_eax, svm_ebx, svm_edx; /* CPUID Fn8000_000A, when max_ext_leaf reaches it */
};

enum svm_caps_status {
    SVM_CAPS_OK,
    SVM_CAPS_ABSENT,            /* CPUID Fn8000_0001 ECX.SVM = 0 */
    SVM_CAPS_FIRMWARE_DISABLED, /* VM_CR.SVMDIS */
};

struct svm_caps {
    enum svm_caps_status status;
    uint8_t  revision;
    uint32_t asids;             /* number of ASIDs, ASID 0 (the host) included */
    bool npt;
    bool npt_1g;                /* nested tables use the host format: 1 GiB pages if Page1GB */
    bool nrips;
    bool decode_assists;
    bool flush_by_asid;
    bool vmcb_clean;
    bool tsc_rate_msr;
};

struct svm_caps svm_caps_decode(const struct svm_caps_raw *raw);
/* The feature list of the "virt:" line: "svm npt nrips decode-assists flush-by-asid
 * vmcb-clean", only those present, in that order.  Returns the length (as snprintf). */
size_t svm_caps_describe(const struct svm_caps *caps, char *buf, size_t size);
/* Why AMD-V cannot be used and how to fix it; NULL when status is SVM_CAPS_OK. */
const char *svm_caps_reason(const struct svm_caps *caps);

/* Reads the raw values on the calling CPU; VM_CR only where SVM exists. */
void svm_caps_read(struct svm_caps_raw *raw);

#endif
