#include "arch/x86_64/hvm.h"
#include "arch/x86_64/vmx/vmx_caps.h"
#include "arch/x86_64/svm/svm_caps.h"
#include "kernel/log.h"

static struct hvm_info hvm_info;
static bool hvm_detected;

static void hvm_detect_vmx(const struct vmx_caps *vc)
{
    hvm_info.vendor = HVM_VMX;
    hvm_info.caps = (struct hvm_caps){
        .nested_paging = vc->ept,
        .large_pages_2m = vc->ept_2m,
        .large_pages_1g = vc->ept_1g,
        .tagged_tlb = vc->vpid,
        .real_mode_guests = vc->unrestricted_guest,
        .preemption_timer = vc->preemption_timer,
        /* VM exits always report the exiting instruction's length (SDM Vol. 3C
         * "VM-Exit Instruction Length"). */
        .nrip = true,
        /* Exit qualifications and VM-exit instruction information decode the operands
         * of the instructions that exit (SDM Vol. 3C "Exit Qualification"). */
        .decode_assists = true,
    };
    vmx_caps_describe(vc, hvm_info.features, sizeof hvm_info.features);
}

static void hvm_detect_svm(const struct svm_caps *sc)
{
    hvm_info.vendor = HVM_SVM;
    hvm_info.caps = (struct hvm_caps){
        .nested_paging = sc->npt,
        /* Nested page tables have the host's long-mode format (APM Vol. 2 "Nested
         * Paging"), which always has 2 MiB pages. */
        .large_pages_2m = sc->npt,
        .large_pages_1g = sc->npt_1g,
        .tagged_tlb = sc->asids > 1,
        /* SVM runs guests with CR0.PE or CR0.PG clear: under NPT as they are, without
         * it as "paged real mode" (APM Vol. 2). */
        .real_mode_guests = true,
        .nrip = sc->nrips,
        .decode_assists = sc->decode_assists,
    };
    svm_caps_describe(sc, hvm_info.features, sizeof hvm_info.features);
}

const struct hvm_info *hvm_detect(void)
{
    if (hvm_detected)
        return &hvm_info;
    hvm_detected = true;
    hvm_info = (struct hvm_info){ .vendor = HVM_NONE };

    /* Chosen by feature bit, not by vendor string: VIA/Zhaoxin have VT-x and Hygon
     * has SVM. */
    struct vmx_caps_raw vraw;
    vmx_caps_read(&vraw);
    struct vmx_caps vc = vmx_caps_decode(&vraw);
    if (vc.status != VMX_CAPS_ABSENT) {
        if (vc.status == VMX_CAPS_OK && vc.feature_control_unlocked && !vmx_feature_control_enable()) {
            hvm_info.reason = "IA32_FEATURE_CONTROL would not enable VMX outside SMX; "
                              "enable \"Intel Virtualization Technology\" in the firmware setup";
            return &hvm_info;
        }
        if (vc.status != VMX_CAPS_OK)
            hvm_info.reason = vmx_caps_reason(&vc);
        else
            hvm_detect_vmx(&vc);
        return &hvm_info;
    }

    struct svm_caps_raw sraw;
    svm_caps_read(&sraw);
    struct svm_caps sc = svm_caps_decode(&sraw);
    if (sc.status != SVM_CAPS_ABSENT) {
        if (sc.status != SVM_CAPS_OK)
            hvm_info.reason = svm_caps_reason(&sc);
        else
            hvm_detect_svm(&sc);
        return &hvm_info;
    }

    hvm_info.reason = "this CPU has neither VT-x nor AMD-V; plinth needs one to run guests";
    return &hvm_info;
}

void virt_log(void)
{
    const struct hvm_info *hi = hvm_detect();
    /* log_info, not log_warn: the line must read "virt: ..." for tools that grep it. */
    if (hi->vendor == HVM_NONE)
        log_info("virt: none: %s", hi->reason);
    else
        log_info("virt: %s", hi->features);
}
