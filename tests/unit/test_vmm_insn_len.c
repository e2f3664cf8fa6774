/* The monitor without instruction lengths from the CPU (AMD-V without nRIP-save and
 * decode assists, e.g. QEMU's TCG): vmm_insn_len fetches and decodes the instruction
 * at RIP, and a CR4 write with HVM_CR_GPR_DECODE finds its register by decoding.
 * The fake core: tests/unit/fake_core.h. */
#include "fake_core.h"

/* ---- a VM around the fake ---- */
static struct vmm_vm vm;
static uint8_t ram[1 << 20];

static int setup(void **state)
{
    (void)state;
    fake_core_reset();
    memset(&vm, 0, sizeof vm);
    memset(ram, 0, sizeof ram);
    strcpy(vm.conf.name, "t");
    vm.ram = ram;
    vm.ram_size = sizeof ram;
    vm.vcpu_count = 2;
    vm.vcpus[1] = (struct vmm_vcpu){ .vm = &vm, .index = 1 };
    vmm_vcpu_reset_msrs(&vm.vcpus[1]);
    st.rip = 0x1000;
    st.rflags = 2;
    st.cr0 = 0x11;
    st.seg[HVM_CS].ar = 0xc09b;
    return 0;
}

static struct vmm_vcpu *cpu1(void) { return &vm.vcpus[1]; }

static enum vmm_action run(enum hvm_exit_reason r, uint8_t len)
{
    struct hvm_exit x = { .reason = r, .insn_len = len };
    return vmm_handle_exit(cpu1(), 0, &x);
}

static void put_bytes(uint64_t at, const char *bytes, size_t n)
{
    memcpy(ram + at, bytes, n);
}

static void test_length_decoded_in_protected_mode(void **state)
{
    (void)state;
    /* RDMSR (0F 32) of an unknown MSR faults and does not move RIP; WRMSR of the PAT
     * (0F 30) completes: RIP moves by the decoded 2 bytes. */
    put_bytes(0x1000, "\x0f\x30", 2);
    st.gpr[HVM_RCX] = 0x277;
    st.gpr[HVM_RAX] = 0x00070406;
    st.gpr[HVM_RDX] = 0x00070406;
    struct hvm_exit x = { .reason = HVM_EXIT_WRMSR, .msr = { 0x277 } };
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 0);
    assert_int_equal(st.rip, 0x1002);
    /* HLT with interrupts enabled: 1 byte. */
    put_bytes(0x1002, "\xf4", 1);
    st.rflags = 0x202;
    x = (struct hvm_exit){ .reason = HVM_EXIT_HLT };
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_BLOCK);
    assert_int_equal(st.rip, 0x1003);
    /* A prefixed CPUID (2E 0F A2: 3 bytes) */
    put_bytes(0x1003, "\x2e\x0f\xa2", 3);
    x = (struct hvm_exit){ .reason = HVM_EXIT_CPUID };
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_RESUME);
    assert_int_equal(st.rip, 0x1006);
    assert_int_equal(stops, 0);
}

static void test_length_decoded_in_real_mode(void **state)
{
    (void)state;
    /* Real mode: the bytes are at CS.base + IP. */
    st.cr0 = 0x10;
    st.seg[HVM_CS].base = 0x7c00;
    st.seg[HVM_CS].ar = 0x9b;
    st.rip = 0x20;
    put_bytes(0x7c20, "\x66\x0f\xa2", 3);
    struct hvm_exit x = { .reason = HVM_EXIT_CPUID };
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_RESUME);
    assert_int_equal(st.rip, 0x23);
}

static void test_reported_length_wins(void **state)
{
    (void)state;
    /* Where the CPU reports a length it is used as is: the bytes are not read. */
    put_bytes(0x1000, "\x0f\xa2", 2);
    struct hvm_exit x = { .reason = HVM_EXIT_CPUID, .insn_len = 5 };
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(st.rip, 0x1005);
}

static void test_undecodable_stops_the_vm(void **state)
{
    (void)state;
    /* The instruction runs off the end of RAM: nothing to skip, the VM stops. */
    st.rip = sizeof ram - 1;
    ram[sizeof ram - 1] = 0x0f;
    st.rflags = 0x202;
    struct hvm_exit x = { .reason = HVM_EXIT_HLT };
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(stops, 1);
    assert_int_equal(st.rip, sizeof ram - 1);
    assert_non_null(strstr(stop_reason, "cannot decode"));
}

static void test_cr4_write_register_decoded(void **state)
{
    (void)state;
    /* MOV CR4, EAX (0F 22 E0): register from ModRM.rm, length 3. */
    put_bytes(0x1000, "\x0f\x22\xe0", 3);
    st.gpr[HVM_RAX] = 0x20;
    struct hvm_exit x = { .reason = HVM_EXIT_CR, .cr = { .cr = 4, .gpr = HVM_CR_GPR_DECODE, .type = HVM_CR_MOV_TO } };
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_CONTINUE);
    assert_int_equal(st.cr4, 0x20);
    assert_int_equal(st.rip, 0x1003);
    /* MOV CR4, R9 in 64-bit mode (41 0F 22 E1): REX.B selects r9. */
    st.cr0 = 0x80000011;
    st.efer = 0x500;
    st.seg[HVM_CS].ar = 0xa09b;
    st.rip = 0x2000;
    /* 64-bit mode fetches through the guest's page tables: identity-map 0-2 MiB. */
    st.cr3 = 0x10000;
    uint64_t pml4 = 0x11003, pdpt = 0x12003, pd = 0x83;
    memcpy(ram + 0x10000, &pml4, 8);
    memcpy(ram + 0x11000, &pdpt, 8);
    memcpy(ram + 0x12000, &pd, 8);
    put_bytes(0x2000, "\x41\x0f\x22\xe1", 4);
    st.gpr[HVM_R9] = 0x20 | 0x200;
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 0);
    assert_int_equal(st.cr4, 0x220);
    assert_int_equal(st.rip, 0x2004);
    /* The exit said CR4 but the bytes are MOV CR3: the VM stops, nothing is written. */
    put_bytes(0x2004, "\x0f\x22\xd8", 3);
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_STOP);
    assert_int_equal(stops, 1);
    assert_int_equal(st.cr4, 0x220);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_length_decoded_in_protected_mode, setup),
        cmocka_unit_test_setup(test_length_decoded_in_real_mode, setup),
        cmocka_unit_test_setup(test_reported_length_wins, setup),
        cmocka_unit_test_setup(test_undecodable_stops_the_vm, setup),
        cmocka_unit_test_setup(test_cr4_write_register_decoded, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
