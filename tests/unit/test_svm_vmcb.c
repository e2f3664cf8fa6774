/* The SVM backend's pure encodings: MSR permission map bits, segment attributes,
 * EVENTINJ, the re-injection rule and the IOIO/NPF exit information, against values
 * worked out by hand from AMD APM Vol. 2 (§15.10.2, §15.11, §15.20, §15.25.6). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/svm/vmcb.c"

static uint8_t pm[0x2000];

static void test_msrpm_ranges(void **state)
{
    (void)state;
    memset(pm, 0xff, sizeof pm);
    /* SYSENTER_CS 0x174: byte 0x174 / 4 = 0x5d, bits (0x174 % 4) * 2 = 0..1. */
    svm_msrpm_allow(pm, 0x174);
    assert_int_equal(pm[0x5d], 0xfc);
    /* LSTAR 0xc0000082: 0x800 + 0x82 / 4 = 0x820, bits 4..5. */
    svm_msrpm_allow(pm, 0xc0000082);
    assert_int_equal(pm[0x820], 0xcf);
    /* 0xc0010117 (VM_HSAVE_PA's range): 0x1000 + 0x117 / 4 = 0x1045, bits 6..7. */
    svm_msrpm_allow(pm, 0xc0010117);
    assert_int_equal(pm[0x1045], 0x3f);
    /* Outside the three ranges: nothing changes (it stays intercepted). */
    svm_msrpm_allow(pm, 0x40000000);
    svm_msrpm_allow(pm, 0xc0002000);
    size_t cleared = 0;
    for (size_t i = 0; i < sizeof pm; i++)
        cleared += pm[i] != 0xff;
    assert_int_equal(cleared, 3);
}

static void test_attrib_roundtrip(void **state)
{
    (void)state;
    /* 64-bit code: type 0xb, S, P, L (VMX bit 13 / VMCB bit 9), G. */
    uint32_t ar = 0xb | 1u << 4 | 1u << 7 | 1u << 13 | 1u << 15;
    assert_int_equal(svm_attrib_from_ar(ar), 0xb | 1u << 4 | 1u << 7 | 1u << 9 | 1u << 11);
    assert_int_equal(svm_ar_from_attrib(svm_attrib_from_ar(ar)), ar);
    /* 32-bit data, DPL 3, D/B, AVL. */
    ar = 0x3 | 1u << 4 | 3u << 5 | 1u << 7 | 1u << 12 | 1u << 14;
    assert_int_equal(svm_attrib_from_ar(ar), 0x3 | 1u << 4 | 3u << 5 | 1u << 7 | 1u << 8 | 1u << 10);
    assert_int_equal(svm_ar_from_attrib(svm_attrib_from_ar(ar)), ar);
    /* Unusable: not present in the VMCB, and back. */
    assert_int_equal(svm_attrib_from_ar(HVM_AR_UNUSABLE | 0x93) & 0x80, 0);
    assert_true(svm_ar_from_attrib(0) & HVM_AR_UNUSABLE);
}

static void test_event_inj(void **state)
{
    (void)state;
    struct hvm_event gp = { .type = HVM_EVENT_EXCEPTION, .vector = 13, .has_error = true, .error_code = 0x18 };
    assert_int_equal(svm_event_inj(&gp), 0x80000b0dull | 0x18ull << 32);
    struct hvm_event ud = { .type = HVM_EVENT_EXCEPTION, .vector = 6 };
    assert_int_equal(svm_event_inj(&ud), 0x80000306ull);
    struct hvm_event intr = { .type = HVM_EVENT_EXTINT, .vector = 0x30 };
    assert_int_equal(svm_event_inj(&intr), 0x80000030ull);
    struct hvm_event nmi = { .type = HVM_EVENT_NMI, .vector = 99 };
    assert_int_equal(svm_event_inj(&nmi), 0x80000202ull);
    /* An error code is only delivered with exceptions. */
    struct hvm_event soft = { .type = HVM_EVENT_SOFTINT, .vector = 0x80, .has_error = true, .error_code = 5 };
    assert_int_equal(svm_event_inj(&soft), 0x80000480ull);
}

static void test_interrupted_event(void **state)
{
    (void)state;
    struct hvm_event e;
    uint64_t pf = 0x80000b0eull | 2ull << 32;  /* #PF delivery interrupted by an NPF */
    assert_true(svm_interrupted_event(pf, SVM_EXIT_NPF, &e));
    assert_int_equal(e.type, HVM_EVENT_EXCEPTION);
    assert_int_equal(e.vector, 14);
    assert_true(e.has_error);
    assert_int_equal(e.error_code, 2);
    assert_true(svm_interrupted_event(0x80000030ull, SVM_EXIT_NPF, &e));   /* external interrupt */
    assert_int_equal(e.type, HVM_EVENT_EXTINT);
    assert_int_equal(e.vector, 0x30);
    assert_true(svm_interrupted_event(0x80000202ull, SVM_EXIT_INTR, &e));  /* NMI */
    assert_int_equal(e.type, HVM_EVENT_NMI);
    assert_false(svm_interrupted_event(0x00000b0eull, SVM_EXIT_NPF, &e));  /* not valid */
    assert_false(svm_interrupted_event(pf, SVM_EXIT_SHUTDOWN, &e));        /* the guest is dead */
    assert_false(svm_interrupted_event(0x80000580ull, SVM_EXIT_NPF, &e));  /* reserved type 5 */
    /* Software events are re-injected (past their instruction), not re-executed. */
    assert_true(svm_interrupted_event(0x80000480ull, SVM_EXIT_NPF, &e));   /* INT 0x80 */
    assert_int_equal(e.type, HVM_EVENT_SOFTINT);
    assert_int_equal(e.vector, 0x80);
    assert_true(svm_interrupted_event(0x80000303ull, SVM_EXIT_INTR, &e));  /* INT3 */
    assert_int_equal(e.type, HVM_EVENT_SOFT_EXCEPTION);
    assert_true(svm_interrupted_event(0x80000304ull, SVM_EXIT_NPF, &e));   /* INTO */
    assert_int_equal(e.type, HVM_EVENT_SOFT_EXCEPTION);
    assert_true(svm_interrupted_event(0x80000306ull, SVM_EXIT_NPF, &e));   /* #UD is a fault */
    assert_int_equal(e.type, HVM_EVENT_EXCEPTION);
    /* And back: INT3 goes in as exception 3, INTn as a software interrupt. */
    assert_int_equal(svm_event_inj(&(struct hvm_event){ .type = HVM_EVENT_SOFT_EXCEPTION, .vector = 3 }),
                     0x80000303ull);
}

static void test_ioio(void **state)
{
    (void)state;
    struct hvm_exit x = { 0 };
    /* IN AL, DX on port 0x3f8 (one byte, 1-byte instruction). */
    svm_decode_ioio(0x03f80000ull | SVM_IOIO_IN | SVM_IOIO_SZ8, 0x1001, 0x1000, &x);
    assert_int_equal(x.reason, HVM_EXIT_IO);
    assert_int_equal(x.io.port, 0x3f8);
    assert_int_equal(x.io.size, 1);
    assert_true(x.io.in);
    assert_false(x.io.string);
    assert_int_equal(x.insn_len, 1);
    /* REP OUTSW to port 0x80 (66 F3 6F: 3 bytes). */
    x = (struct hvm_exit){ 0 };
    svm_decode_ioio(0x00800000ull | SVM_IOIO_STR | SVM_IOIO_REP | SVM_IOIO_SZ16, 0x2003, 0x2000, &x);
    assert_int_equal(x.io.port, 0x80);
    assert_int_equal(x.io.size, 2);
    assert_false(x.io.in);
    assert_true(x.io.string);
    assert_true(x.io.rep);
    assert_int_equal(x.insn_len, 3);
    /* A next RIP that cannot be (behind RIP, or 16+ bytes on) leaves the length to the decoder. */
    x = (struct hvm_exit){ 0 };
    svm_decode_ioio(SVM_IOIO_SZ32, 0x1000, 0x1000, &x);
    assert_int_equal(x.io.size, 4);
    assert_int_equal(x.insn_len, 0);
    svm_decode_ioio(SVM_IOIO_SZ32, 0x1010, 0x1000, &x);
    assert_int_equal(x.insn_len, 0);
}

static void test_npf(void **state)
{
    (void)state;
    struct hvm_exit x = { 0 };
    svm_decode_npf(SVM_NPF_WRITE | 1ull << 32, 0xfebf0000, &x);
    assert_int_equal(x.reason, HVM_EXIT_NPF);
    assert_int_equal(x.npf.gpa, 0xfebf0000);
    assert_true(x.npf.write);
    assert_false(x.npf.read);
    assert_false(x.npf.fetch);
    svm_decode_npf(SVM_NPF_FETCH | SVM_NPF_PRESENT, 0x4000000, &x);
    assert_true(x.npf.fetch);
    assert_false(x.npf.write);
    assert_false(x.npf.read);
    svm_decode_npf(0, 0x4000000, &x);
    assert_true(x.npf.read);
    assert_false(x.npf.gla_valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msrpm_ranges),
        cmocka_unit_test(test_attrib_roundtrip),
        cmocka_unit_test(test_event_inj),
        cmocka_unit_test(test_interrupted_event),
        cmocka_unit_test(test_ioio),
        cmocka_unit_test(test_npf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
