/* VT-x capability decoding over recorded MSR values: what plinth may use, and the
 * "virt:" feature words, for the firmware states and CPU generations it meets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/vmx/vmx_caps.c"

/* An i7-4770 (Haswell) as its firmware leaves it: VMX on and locked. */
static struct vmx_caps_raw haswell(void)
{
    return (struct vmx_caps_raw){
        .cpuid1_ecx = 0x7ffafbbf,
        .feature_control = 0x5,
        .basic = 0x00da040000000012ull,
        .pinbased = 0x0000007f00000016ull, .true_pinbased = 0x0000007f00000016ull,
        .procbased = 0xfff9fffe0401e172ull, .true_procbased = 0xfff9fffe04006172ull,
        .procbased2 = 0x000037ff00000000ull,
        .exit = 0x007fffff00036dffull, .true_exit = 0x007fffff00036dfbull,
        .entry = 0x0000ffff000011ffull, .true_entry = 0x0000ffff000011fbull,
        .misc = 0x00000000300481e5ull,
        .ept_vpid_cap = 0x00000f0106734141ull,
    };
}

static const char *describe(const struct vmx_caps *c)
{
    static char buf[128];
    size_t n = vmx_caps_describe(c, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    return buf;
}

static void test_haswell_all_features(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_int_equal(c.status, VMX_CAPS_OK);
    assert_false(c.feature_control_unlocked);
    assert_null(vmx_caps_reason(&c));
    assert_int_equal(c.vmcs_revision, 0x12);
    assert_int_equal(c.vmcs_size, 1024);
    /* bit 55 is set: the TRUE MSRs are the ones used */
    assert_int_equal(c.proc.must_be_1, 0x04006172);
    assert_int_equal(c.pin.must_be_1, 0x16);
    assert_int_equal(c.entry.must_be_1, 0x11fb);
    assert_true(c.ept && c.vpid && c.unrestricted_guest && c.preemption_timer);
    assert_true(c.ept_2m && c.ept_1g && c.ept_ad);
    assert_true(c.invept && c.invept_single && c.invept_all);
    assert_true(c.invvpid && c.invvpid_single && c.invvpid_all);
    assert_int_equal(c.preemption_timer_rate, 5);
    assert_string_equal(describe(&c), "vmx ept vpid ug preempt-timer ept-2m ept-1g");
}

static void test_no_vmx(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.cpuid1_ecx &= ~CPUID_1_ECX_VMX;
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_int_equal(c.status, VMX_CAPS_ABSENT);
    assert_string_equal(describe(&c), "");
    assert_non_null(vmx_caps_reason(&c));
}

static void test_locked_off_by_firmware(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.feature_control = FEATURE_CONTROL_LOCK;
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_int_equal(c.status, VMX_CAPS_FIRMWARE_DISABLED);
    assert_string_equal(vmx_caps_reason(&c),
        "VT-x is disabled by the firmware (IA32_FEATURE_CONTROL locked with VMX off); "
        "enable \"Intel Virtualization Technology\" in the firmware setup");
    assert_false(c.ept);
    assert_string_equal(describe(&c), "");

    /* VMX allowed only inside SMX is still off for plinth */
    raw.feature_control = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_INSIDE_SMX;
    c = vmx_caps_decode(&raw);
    assert_int_equal(c.status, VMX_CAPS_FIRMWARE_DISABLED);
}

static void test_unlocked_is_usable(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.feature_control = 0;
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_int_equal(c.status, VMX_CAPS_OK);
    assert_true(c.feature_control_unlocked);
    assert_string_equal(describe(&c), "vmx ept vpid ug preempt-timer ept-2m ept-1g");
}

static void test_no_secondary_controls(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.procbased &= ~((uint64_t)CPU_BASED_ACTIVATE_SECONDARY << 32);
    raw.true_procbased &= ~((uint64_t)CPU_BASED_ACTIVATE_SECONDARY << 32);
    /* vmx_caps_read would not read these; garbage here must not count */
    raw.procbased2 = 0xffffffff00000000ull;
    raw.ept_vpid_cap = ~0ull;
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_int_equal(c.status, VMX_CAPS_OK);
    assert_int_equal(c.proc2.may_be_1, 0);
    assert_false(c.ept || c.vpid || c.unrestricted_guest || c.ept_2m || c.ept_1g || c.invept);
    assert_string_equal(describe(&c), "vmx preempt-timer");
}

static void test_ept_without_1g_pages(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.ept_vpid_cap &= ~VMX_EPT_1GB_PAGE;
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_true(c.ept && c.ept_2m);
    assert_false(c.ept_1g);
    assert_string_equal(describe(&c), "vmx ept vpid ug preempt-timer ept-2m");
}

static void test_ept_needs_4_level_walk_and_wb(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.ept_vpid_cap &= ~VMX_EPT_MEMTYPE_WB;
    struct vmx_caps c = vmx_caps_decode(&raw);
    /* no EPT plinth can build, hence no unrestricted guest either; VPID stands alone */
    assert_false(c.ept || c.unrestricted_guest || c.ept_2m || c.ept_1g);
    assert_true(c.vpid && c.invvpid);
    assert_string_equal(describe(&c), "vmx vpid preempt-timer");

    raw = haswell();
    raw.ept_vpid_cap &= ~VMX_EPT_PAGE_WALK_4;
    c = vmx_caps_decode(&raw);
    assert_false(c.ept);
}

static void test_ug_without_ept_control(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.procbased2 &= ~((uint64_t)SECONDARY_ENABLE_EPT << 32);
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_false(c.ept || c.unrestricted_guest);
    assert_true(c.vpid);
    assert_string_equal(describe(&c), "vmx vpid preempt-timer");
}

static void test_plain_ctls_without_true_bit(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.basic &= ~VMX_BASIC_TRUE_CTLS;
    /* without bit 55 the TRUE MSRs do not exist: only the plain ones may count */
    raw.pinbased &= ~((uint64_t)PIN_BASED_PREEMPTION_TIMER << 32);
    raw.true_pinbased = ~0ull;
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_int_equal(c.status, VMX_CAPS_OK);
    assert_int_equal(c.proc.must_be_1, 0x0401e172);
    assert_false(c.preemption_timer);
    assert_int_equal(c.preemption_timer_rate, 0);
    assert_string_equal(describe(&c), "vmx ept vpid ug ept-2m ept-1g");
}

static void test_unusable_for_64bit_host(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    raw.true_exit &= ~((uint64_t)VM_EXIT_HOST_ADDR_SPACE_SIZE << 32);
    struct vmx_caps c = vmx_caps_decode(&raw);
    assert_int_equal(c.status, VMX_CAPS_UNUSABLE);
    assert_non_null(strstr(vmx_caps_reason(&c), "64-bit host"));
    assert_string_equal(describe(&c), "");

    raw = haswell();
    raw.basic = (raw.basic & ~(VMX_BASIC_REGION_SIZE_MASK << VMX_BASIC_REGION_SIZE_SHIFT)) |
                (0x1001ull << VMX_BASIC_REGION_SIZE_SHIFT);
    assert_int_equal(vmx_caps_decode(&raw).status, VMX_CAPS_UNUSABLE);

    raw = haswell();
    raw.basic &= ~(VMX_BASIC_MEM_TYPE_MASK << VMX_BASIC_MEM_TYPE_SHIFT); /* uncacheable */
    assert_int_equal(vmx_caps_decode(&raw).status, VMX_CAPS_UNUSABLE);
}

static void test_describe_truncates(void **state)
{
    (void)state;
    struct vmx_caps_raw raw = haswell();
    struct vmx_caps c = vmx_caps_decode(&raw);
    char small[10];
    memset(small, 'X', sizeof small);
    size_t n = vmx_caps_describe(&c, small, sizeof small);
    assert_int_equal(n, strlen("vmx ept vpid ug preempt-timer ept-2m ept-1g"));
    assert_string_equal(small, "vmx ept v");
    assert_int_equal(vmx_caps_describe(&c, NULL, 0), n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_haswell_all_features),
        cmocka_unit_test(test_no_vmx),
        cmocka_unit_test(test_locked_off_by_firmware),
        cmocka_unit_test(test_unlocked_is_usable),
        cmocka_unit_test(test_no_secondary_controls),
        cmocka_unit_test(test_ept_without_1g_pages),
        cmocka_unit_test(test_ept_needs_4_level_walk_and_wb),
        cmocka_unit_test(test_ug_without_ept_control),
        cmocka_unit_test(test_plain_ctls_without_true_bit),
        cmocka_unit_test(test_unusable_for_64bit_host),
        cmocka_unit_test(test_describe_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
