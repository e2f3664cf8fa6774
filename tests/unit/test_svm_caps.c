/* AMD-V capability decoding over recorded CPUID/VM_CR values, and the "virt:" words. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/svm/svm_caps.c"

/* QEMU 7.2 TCG -cpu max: SVM with NPT and nothing else in Fn8000_000A EDX. */
static struct svm_caps_raw qemu_tcg_max(void)
{
    return (struct svm_caps_raw){
        .max_ext_leaf = 0x8000001f,
        .ext1_ecx = 0x00000ff7, .ext1_edx = 0x2fd3fbff,
        .vm_cr = 0,
        .svm_eax = 1, .svm_ebx = 0x10, .svm_edx = CPUID_SVM_EDX_NP,
    };
}

static const char *describe(const struct svm_caps *c)
{
    static char buf[128];
    size_t n = svm_caps_describe(c, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    return buf;
}

static void test_qemu_tcg_npt_only(void **state)
{
    (void)state;
    struct svm_caps_raw raw = qemu_tcg_max();
    struct svm_caps c = svm_caps_decode(&raw);
    assert_int_equal(c.status, SVM_CAPS_OK);
    assert_null(svm_caps_reason(&c));
    assert_true(c.npt);
    assert_true(c.npt_1g); /* Page1GB is set in Fn8000_0001 EDX */
    assert_false(c.nrips || c.decode_assists || c.flush_by_asid || c.vmcb_clean);
    assert_int_equal(c.asids, 16);
    assert_int_equal(c.revision, 1);
    assert_string_equal(describe(&c), "svm npt");
}

static void test_zen_all_features(void **state)
{
    (void)state;
    struct svm_caps_raw raw = qemu_tcg_max();
    raw.svm_edx = 0x0001bcff; /* a Zen 2's leaf: NP..DecodeAssists, pause filter, AVIC... */
    raw.svm_ebx = 0x8000;
    struct svm_caps c = svm_caps_decode(&raw);
    assert_true(c.npt && c.nrips && c.decode_assists && c.flush_by_asid && c.vmcb_clean && c.tsc_rate_msr);
    assert_string_equal(describe(&c), "svm npt nrips decode-assists flush-by-asid vmcb-clean");
}

static void test_feature_order_is_fixed(void **state)
{
    (void)state;
    struct svm_caps_raw raw = qemu_tcg_max();
    raw.svm_edx = CPUID_SVM_EDX_VMCB_CLEAN | CPUID_SVM_EDX_NRIPS; /* no NPT */
    struct svm_caps c = svm_caps_decode(&raw);
    assert_false(c.npt || c.npt_1g);
    assert_string_equal(describe(&c), "svm nrips vmcb-clean");
}

static void test_disabled_by_firmware(void **state)
{
    (void)state;
    struct svm_caps_raw raw = qemu_tcg_max();
    raw.vm_cr = VM_CR_SVMDIS | VM_CR_LOCK;
    struct svm_caps c = svm_caps_decode(&raw);
    assert_int_equal(c.status, SVM_CAPS_FIRMWARE_DISABLED);
    assert_string_equal(svm_caps_reason(&c),
        "AMD-V (SVM) is disabled by the firmware (VM_CR.SVMDIS); enable \"SVM Mode\" in the firmware setup");
    assert_string_equal(describe(&c), "");

    /* the lock alone changes nothing */
    raw.vm_cr = VM_CR_LOCK;
    assert_int_equal(svm_caps_decode(&raw).status, SVM_CAPS_OK);
}

static void test_absent(void **state)
{
    (void)state;
    struct svm_caps_raw raw = qemu_tcg_max();
    raw.ext1_ecx &= ~CPUID_80000001_ECX_SVM;
    assert_int_equal(svm_caps_decode(&raw).status, SVM_CAPS_ABSENT);

    struct svm_caps_raw none = { 0 }; /* no extended leaves at all */
    struct svm_caps c = svm_caps_decode(&none);
    assert_int_equal(c.status, SVM_CAPS_ABSENT);
    assert_non_null(svm_caps_reason(&c));
}

static void test_no_feature_leaf(void **state)
{
    (void)state;
    struct svm_caps_raw raw = qemu_tcg_max();
    raw.max_ext_leaf = 0x80000008;
    struct svm_caps c = svm_caps_decode(&raw); /* Fn8000_000A beyond the max: ignored */
    assert_int_equal(c.status, SVM_CAPS_OK);
    assert_false(c.npt);
    assert_int_equal(c.asids, 0);
    assert_string_equal(describe(&c), "svm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qemu_tcg_npt_only),
        cmocka_unit_test(test_zen_all_features),
        cmocka_unit_test(test_feature_order_is_fixed),
        cmocka_unit_test(test_disabled_by_firmware),
        cmocka_unit_test(test_absent),
        cmocka_unit_test(test_no_feature_leaf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
