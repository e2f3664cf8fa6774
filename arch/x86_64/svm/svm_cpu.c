/* Per-CPU AMD-V enable: EFER.SVME and the host save area (AMD APM Vol. 2 §15.4,
 * "Enabling SVM", and §15.30.4, "VM_HSAVE_PA MSR"). */
#include "arch/x86_64/svm/svm.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/fpu.h"
#include "kernel/log.h"
#include "arch/x86_64/page_alloc.h"
#include "arch/x86_64/cpu/percpu.h"
#include "kernel/spinlock.h"
#include "kernel/string.h"

static struct svm_caps caps;
static bool caps_read, backend_logged;
static struct spinlock caps_lock = SPINLOCK_INIT;
static uint64_t host_area[PERCPU_MAX_CPUS];

const struct svm_caps *svm_caps(void)
{
    return &caps;
}

uint64_t svm_host_area(void)
{
    return host_area[percpu_index()];
}

static uint64_t alloc_zeroed_page(void)
{
    uint64_t p = arch_alloc_page();
    if (p)
        memset(phys_to_virt(p), 0, PAGE_SIZE);
    return p;
}

/* "virt:" lists what the CPU has; this line says what the backend makes of it. */
static void log_backend(void)
{
    log_info("svm: backend svm in use: NPT with 2 MiB%s pages, %u ASIDs (%s), "
             "instruction lengths from %s, %s, VMCB clean bits %s",
             caps.npt_1g ? " and 1 GiB" : "", caps.asids,
             caps.flush_by_asid ? "flush by ASID"
                                : "no flush by ASID: a new ASID's first run flushes the whole TLB",
             caps.nrips ? "nRIP-save" : "plinth's decoder (no nRIP-save)",
             caps.decode_assists ? "decode assists present" : "MMIO operands from plinth's decoder",
             caps.vmcb_clean ? "present but unused (every field is reloaded)" : "absent");
}

int svm_cpu_enable(void)
{
    /* Each CPU checks its own VM_CR: firmware may disable SVM per CPU. */
    struct svm_caps_raw raw;
    svm_caps_read(&raw);
    struct svm_caps mine = svm_caps_decode(&raw);
    spin_lock(&caps_lock);
    if (!caps_read) {
        caps = mine;
        caps_read = true;
    }
    bool first_log = !backend_logged && mine.status == SVM_CAPS_OK && mine.npt;
    if (first_log)
        backend_logged = true;
    spin_unlock(&caps_lock);
    if (mine.status != SVM_CAPS_OK) {
        log_error("svm: %s", svm_caps_reason(&mine));
        return -1;
    }
    if (!mine.npt) {
        log_error("svm: this CPU has no nested paging (CPUID Fn8000_000A EDX.NP = 0); plinth needs it");
        return -1;
    }
    if (mine.asids < 2) {
        log_error("svm: this CPU reports %u ASIDs; guests need at least one besides the host's ASID 0",
                  mine.asids);
        return -1;
    }
    if (first_log)
        log_backend();
    fpu_cpu_init();

    uint32_t cpu = percpu_index();
    uint64_t hsave = alloc_zeroed_page();
    uint64_t area = alloc_zeroed_page();
    if (!hsave || !area) {
        log_error("svm: out of memory for the host save areas of CPU %u", cpu);
        if (hsave)
            arch_free_pages(hsave, 1);
        if (area)
            arch_free_pages(area, 1);
        return -1;
    }
    /* SVMDIS was clear above, so setting SVME cannot #GP (APM §15.4). */
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    wrmsr(MSR_VM_HSAVE_PA, hsave);
    host_area[cpu] = area;
    return 0;
}
