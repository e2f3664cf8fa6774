#include "arch/x86_64/svm/svm_caps.h"
#include "arch/x86_64/cpu/cpu.h"

struct svm_caps svm_caps_decode(const struct svm_caps_raw *raw)
{
    struct svm_caps c = { .status = SVM_CAPS_OK };

    if (raw->max_ext_leaf < 0x80000001u || !(raw->ext1_ecx & CPUID_80000001_ECX_SVM)) {
        c.status = SVM_CAPS_ABSENT;
        return c;
    }
    /* APM Vol. 2 "Enabling SVM": with SVMDIS set, EFER.SVME cannot be set, so VMRUN
     * is out of reach whatever the feature bits say. */
    if (raw->vm_cr & VM_CR_SVMDIS) {
        c.status = SVM_CAPS_FIRMWARE_DISABLED;
        return c;
    }
    if (raw->max_ext_leaf < CPUID_LEAF_SVM)
        return c; /* SVM without the feature leaf: the base architecture only */

    c.revision = (uint8_t)raw->svm_eax;
    c.asids = raw->svm_ebx;
    c.npt = raw->svm_edx & CPUID_SVM_EDX_NP;
    c.npt_1g = c.npt && (raw->ext1_edx & CPUID_80000001_EDX_PAGE1GB);
    c.nrips = raw->svm_edx & CPUID_SVM_EDX_NRIPS;
    c.decode_assists = raw->svm_edx & CPUID_SVM_EDX_DECODE_ASSISTS;
    c.flush_by_asid = raw->svm_edx & CPUID_SVM_EDX_FLUSH_BY_ASID;
    c.vmcb_clean = raw->svm_edx & CPUID_SVM_EDX_VMCB_CLEAN;
    c.tsc_rate_msr = raw->svm_edx & CPUID_SVM_EDX_TSC_RATE_MSR;
    return c;
}

struct svm_caps_text {
    char *buf;
    size_t size, len;
};

static void svm_caps_text_put(struct svm_caps_text *t, char c)
{
    if (t->len + 1 < t->size) {
        t->buf[t->len] = c;
        t->buf[t->len + 1] = '\0';
    }
    t->len++;
}

size_t svm_caps_describe(const struct svm_caps *caps, char *buf, size_t size)
{
    struct svm_caps_text t = { buf, size, 0 };
    if (size)
        buf[0] = '\0';
    if (caps->status != SVM_CAPS_OK)
        return 0;
    const struct { bool present; const char *word; } features[] = {
        { true, "svm" }, { caps->npt, "npt" }, { caps->nrips, "nrips" },
        { caps->decode_assists, "decode-assists" }, { caps->flush_by_asid, "flush-by-asid" },
        { caps->vmcb_clean, "vmcb-clean" },
    };
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        if (!features[i].present)
            continue;
        if (t.len)
            svm_caps_text_put(&t, ' ');
        for (const char *p = features[i].word; *p; p++)
            svm_caps_text_put(&t, *p);
    }
    return t.len;
}

const char *svm_caps_reason(const struct svm_caps *caps)
{
    switch (caps->status) {
    case SVM_CAPS_OK:
        return 0;
    case SVM_CAPS_ABSENT:
        return "this CPU has no AMD-V (SVM)";
    case SVM_CAPS_FIRMWARE_DISABLED:
        return "AMD-V (SVM) is disabled by the firmware (VM_CR.SVMDIS); "
               "enable \"SVM Mode\" in the firmware setup";
    }
    return "unknown AMD-V status";
}

void svm_caps_read(struct svm_caps_raw *raw)
{
    *raw = (struct svm_caps_raw){ 0 };
    raw->max_ext_leaf = cpuid(0x80000000u, 0).eax;
    if (raw->max_ext_leaf < 0x80000001u || raw->max_ext_leaf > 0x8fffffffu) {
        raw->max_ext_leaf = 0; /* no extended leaves: the reply is another leaf's data */
        return;
    }
    struct cpuid_regs r = cpuid(0x80000001u, 0);
    raw->ext1_ecx = r.ecx;
    raw->ext1_edx = r.edx;
    /* VM_CR exists on every CPU with SVM (APM Vol. 2 "VM_CR MSR"); elsewhere reading
     * it may #GP. */
    if (!(raw->ext1_ecx & CPUID_80000001_ECX_SVM))
        return;
    raw->vm_cr = rdmsr(MSR_VM_CR);
    if (raw->max_ext_leaf >= CPUID_LEAF_SVM) {
        r = cpuid(CPUID_LEAF_SVM, 0);
        raw->svm_eax = r.eax;
        raw->svm_ebx = r.ebx;
        raw->svm_edx = r.edx;
    }
}
