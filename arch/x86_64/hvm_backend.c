/* The one place the backend is chosen: by what hvm_detect found on the boot CPU. */
#include "arch/x86_64/hvm.h"
#include "arch/x86_64/hvm_vcpu.h"
#include "arch/x86_64/vmx/vmx.h"
#include "arch/x86_64/svm/svm.h"
#include "kernel/fmt.h"

/* Looked up on every exit (kernel/vcpu.c): the choice is kept after the first call. */
static const struct hvm_backend *chosen;

const struct hvm_backend *hvm_backend(void)
{
    const struct hvm_backend *be = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (be)
        return be;
    const struct hvm_info *info = hvm_detect();
    if (info->vendor == HVM_VMX && info->caps.nested_paging)
        be = &vmx_backend;
    else if (info->vendor == HVM_SVM && info->caps.nested_paging)
        be = &svm_backend;
    if (be)
        __atomic_store_n(&chosen, be, __ATOMIC_RELEASE);
    return be;
}

const char *hvm_exit_reason_name(enum hvm_exit_reason r)
{
    static const char *const names[HVM_EXIT_REASON_COUNT] = {
        [HVM_EXIT_NONE] = "none", [HVM_EXIT_INTERRUPT] = "interrupt", [HVM_EXIT_PREEMPT] = "preempt",
        [HVM_EXIT_CPUID] = "cpuid", [HVM_EXIT_RDMSR] = "rdmsr", [HVM_EXIT_WRMSR] = "wrmsr",
        [HVM_EXIT_IO] = "io", [HVM_EXIT_NPF] = "npf", [HVM_EXIT_CR] = "cr", [HVM_EXIT_HLT] = "hlt",
        [HVM_EXIT_XSETBV] = "xsetbv", [HVM_EXIT_INVD] = "invd", [HVM_EXIT_WBINVD] = "wbinvd",
        [HVM_EXIT_TRIPLE_FAULT] = "triple-fault", [HVM_EXIT_VIRT_INSN] = "virt-insn",
        [HVM_EXIT_HYPERCALL] = "hypercall", [HVM_EXIT_RDPMC] = "rdpmc", [HVM_EXIT_TASK_SWITCH] = "task-switch",
        [HVM_EXIT_INTR_WINDOW] = "intr-window", [HVM_EXIT_NMI_WINDOW] = "nmi-window",
        [HVM_EXIT_EXCEPTION] = "exception", [HVM_EXIT_INIT] = "init", [HVM_EXIT_SIPI] = "sipi",
        [HVM_EXIT_RDTSC] = "rdtsc", [HVM_EXIT_PAUSE] = "pause", [HVM_EXIT_MWAIT] = "mwait",
        [HVM_EXIT_ENTRY_FAILED] = "entry-failed", [HVM_EXIT_UNHANDLED] = "unhandled",
    };
    return (unsigned)r < HVM_EXIT_REASON_COUNT && names[r] ? names[r] : "?";
}

size_t hvm_exit_counts_text(const uint64_t counts[HVM_EXIT_REASON_COUNT], char *buf, size_t len)
{
    size_t n = 0;
    for (int r = 0; r < HVM_EXIT_REASON_COUNT && n < len; r++)
        if (counts[r])
            n += (size_t)fmt_snprintf(buf + n, len - n, "%s%s %lu", n ? ", " : "",
                                      hvm_exit_reason_name((enum hvm_exit_reason)r), (unsigned long)counts[r]);
    if (!n && len)
        n = (size_t)fmt_snprintf(buf, len, "none");
    return n < len ? n : len - 1;
}
