/* vmm/platform.c: a VM's PC platform driven the way a guest drives it, through port
 * and MMIO exits against the fake core: the PIT's interrupt reaching the guest
 * through the IOAPIC and local APIC, and through the 8259 as an ExtINT; the RTC
 * reading the host's wall clock; the PCI host bridge; guest reset and S5; the ACPI
 * tables in guest RAM; the AMD MSRs Linux reads while setting up. */
#include "fake_core.h"

static struct vmm_vm vm;
static uint8_t ram[1 << 20];
static int resets;

static struct vmm_vcpu *bsp(void) { return &vm.vcpus[0]; }

static int setup(void **state)
{
    (void)state;
    fake_core_reset();
    resets = 0;
    memset(&vm, 0, sizeof vm);
    memset(ram, 0, sizeof ram);
    strcpy(vm.conf.name, "t");
    vm.ram = ram;
    vm.ram_size = sizeof ram;
    vm.vcpu_count = 1;
    vm.vcpus[0] = (struct vmm_vcpu){ .vm = &vm, .index = 0 };
    vmm_vcpu_reset_msrs(bsp());
    vmm_lapic_reset(bsp());
    assert_true(vmm_lapic_attach(&vm));
    assert_true(vmm_platform_attach(&vm));
    vmm_platform_boot(&vm);
    st.rip = 0x1000;
    st.rflags = 0x202;
    st.cr0 = 0x11;
    st.seg[HVM_CS].ar = 0xc09b;
    return 0;
}

static enum vmm_action out(uint16_t port, unsigned size, uint32_t value)
{
    struct hvm_exit x = { .reason = HVM_EXIT_IO, .insn_len = 1,
                          .io = { .port = port, .size = (uint8_t)size, .in = false } };
    st.gpr[HVM_RAX] = value;
    return vmm_handle_exit(bsp(), 0, &x);
}

static uint32_t in(uint16_t port, unsigned size)
{
    struct hvm_exit x = { .reason = HVM_EXIT_IO, .insn_len = 1,
                          .io = { .port = port, .size = (uint8_t)size, .in = true } };
    st.gpr[HVM_RAX] = 0;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &x), VMM_CONTINUE);
    uint32_t mask = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    return (uint32_t)st.gpr[HVM_RAX] & mask;
}

/* mov [rbx], eax / mov eax, [rbx] at 0x1000, through the NPF path. */
static void mmio_write32(uint64_t gpa, uint32_t v)
{
    memcpy(ram + 0x1000, "\x89\x03", 2);
    st.rip = 0x1000;
    st.gpr[HVM_RBX] = gpa;
    st.gpr[HVM_RAX] = v;
    struct hvm_exit x = { .reason = HVM_EXIT_NPF, .npf = { .gpa = gpa, .write = true } };
    assert_int_equal(vmm_handle_exit(bsp(), 0, &x), VMM_CONTINUE);
}

/* PIT counter 0 in mode 2 with a count of 1193 (~1 ms). */
static void pit_start_1ms(void)
{
    out(0x43, 1, 0x34);
    out(0x40, 1, 1193 & 0xff);
    out(0x40, 1, 1193 >> 8);
}

static void test_pit_through_ioapic_and_lapic(void **state)
{
    (void)state;
    /* The guest's local APIC on (SVR), its IOAPIC pin 2 (ISA IRQ 0, the MADT's
     * override) to vector 0x30, edge, physical destination APIC 0. */
    mmio_write32(0xfee000f0, 0x1ff);
    mmio_write32(0xfec00000, 0x10 + 2 * 2);
    mmio_write32(0xfec00010, 0x30);
    mmio_write32(0xfec00000, 0x10 + 2 * 2 + 1);
    mmio_write32(0xfec00010, 0);
    pit_start_1ms();
    /* vCPU 0's next entry tells the core when the PIT fires. */
    vmm_pre_entry(bsp(), 0);
    assert_int_equal(injections, 0);
    assert_true(deadline_set > now_ns && deadline_set <= now_ns + 1000000 + 1000);
    /* Once it has, the interrupt arrives through IOAPIC and LAPIC. */
    now_ns += 1100000;
    vmm_pre_entry(bsp(), 0);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.type, HVM_EVENT_EXTINT);
    assert_int_equal(injected.vector, 0x30);
    assert_true(deadline_set > now_ns);
}

static void test_pit_through_8259_extint(void **state)
{
    (void)state;
    /* The local APIC as after reset (software-disabled): the PIC's INTR reaches the
     * CPU directly, as in virtual-wire mode.  ICW1-4: vectors 0x20-0x27, IRQ 0
     * unmasked on the master. */
    out(0x20, 1, 0x11);
    out(0x21, 1, 0x20);
    out(0x21, 1, 0x04);
    out(0x21, 1, 0x01);
    out(0x21, 1, 0xfe);
    pit_start_1ms();
    now_ns += 1100000;
    vmm_pre_entry(bsp(), 0);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.type, HVM_EVENT_EXTINT);
    assert_int_equal(injected.vector, 0x20);
    /* In service until the EOI: the next period merges, nothing new is injected. */
    injections = 0;
    now_ns += 1100000;
    vmm_pre_entry(bsp(), 0);
    assert_int_equal(injections, 0);
    out(0x20, 1, 0x20);
    vmm_pre_entry(bsp(), 0);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 0x20);
    /* With interrupts off the PIC's request waits for an interrupt window, and a
     * HLT with it pending does not sleep. */
    out(0x20, 1, 0x20);
    now_ns += 1100000;
    can_inject = false;
    injections = 0;
    vmm_pre_entry(bsp(), 0);
    assert_int_equal(injections, 0);
    assert_int_equal(windows, HVM_WINDOW_INTR);
    struct hvm_exit h = { .reason = HVM_EXIT_HLT, .insn_len = 1 };
    assert_int_equal(vmm_handle_exit(bsp(), 0, &h), VMM_CONTINUE);
}

static void test_extint_needs_lint0_once_apic_is_on(void **state)
{
    (void)state;
    out(0x20, 1, 0x11);
    out(0x21, 1, 0x20);
    out(0x21, 1, 0x04);
    out(0x21, 1, 0x01);
    out(0x21, 1, 0xfe);
    /* APIC enabled, LINT0 masked (what Linux does with an IOAPIC): no ExtINT. */
    mmio_write32(0xfee000f0, 0x1ff);
    mmio_write32(0xfee00350, 0x10700);
    pit_start_1ms();
    now_ns += 1100000;
    vmm_pre_entry(bsp(), 0);
    assert_int_equal(injections, 0);
    /* LINT0 unmasked in ExtINT mode: it arrives. */
    mmio_write32(0xfee00350, 0x700);
    vmm_pre_entry(bsp(), 0);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 0x20);
}

static void test_rtc_reads_host_wall_clock(void **state)
{
    (void)state;
    /* The fake wall clock is 1795000000 s = 2026-11-18 (UTC); status B: BCD, 24 h. */
    out(0x70, 1, 0x09);
    assert_int_equal(in(0x71, 1), 0x26);
    out(0x70, 1, 0x08);
    assert_int_equal(in(0x71, 1), 0x11);
    out(0x70, 1, 0x32);
    assert_int_equal(in(0x71, 1), 0x20);
}

static void test_pci_host_bridge(void **state)
{
    (void)state;
    out(0xcf8, 4, 0x80000000u);
    assert_int_equal(in(0xcf8, 4), 0x80000000u);
    assert_int_equal(in(0xcfc, 4), 0x12378086u);
    assert_int_equal(in(0xcfe, 2), 0x1237);
    /* Device 1 is absent: all ones. */
    out(0xcf8, 4, 0x80000800u);
    assert_int_equal(in(0xcfc, 4), 0xffffffffu);
}

static void test_guest_reset_and_poweroff(void **state)
{
    (void)state;
    /* 0xcf9 with SYS_RST and RST_CPU: the VM resets (vmm_vm_reset in the fake
     * returns VMM_CONTINUE and does not stop it). */
    assert_int_equal(out(0xcf9, 1, 0x06), VMM_CONTINUE);
    assert_int_equal(stops, 0);
    /* The fast-reset bit of port 0x92: the same. */
    assert_int_equal(out(0x92, 1, 0x01), VMM_CONTINUE);
    assert_int_equal(stops, 0);
    /* PM1a_CNT with SLP_TYP = the \_S5 value and SLP_EN: powered off, not crashed. */
    assert_int_equal(out(PLATFORM_PM_BASE + 4, 2, (PLATFORM_S5_SLP_TYP << 10) | (1u << 13)), VMM_STOP);
    assert_int_equal(stops, 1);
    assert_non_null(strstr(stop_reason, "powered off"));
}

static void test_acpi_tables_in_guest_ram(void **state)
{
    (void)state;
    assert_memory_equal(ram + LOADER_ACPI_GPA, "RSD PTR ", 8);
    uint8_t sum = 0;
    for (int i = 0; i < 20; i++)
        sum = (uint8_t)(sum + ram[LOADER_ACPI_GPA + i]);
    assert_int_equal(sum, 0);
    /* A smaller VM (no room up to 1 MiB) gets none, and nothing is written. */
    memset(ram, 0, sizeof ram);
    vm.ram_size = LOADER_ACPI_END - 0x1000;
    vmm_platform_boot(&vm);
    assert_int_equal(ram[LOADER_ACPI_GPA], 0);
}

static void test_amd_config_msrs(void **state)
{
    (void)state;
    struct hvm_exit r = { .reason = HVM_EXIT_RDMSR, .insn_len = 2, .msr.msr = 0xc0010010 };
    st.gpr[HVM_RAX] = st.gpr[HVM_RDX] = 0xdead;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &r), VMM_CONTINUE);
    assert_int_equal(st.gpr[HVM_RAX], 0);
    assert_int_equal(st.gpr[HVM_RDX], 0);
    assert_int_equal(injections, 0);
    struct hvm_exit w = { .reason = HVM_EXIT_WRMSR, .insn_len = 2, .msr.msr = 0xc0010015 };
    st.gpr[HVM_RAX] = 0;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &w), VMM_CONTINUE);
    assert_int_equal(injections, 0);
    st.rip = 0x1000;
    st.gpr[HVM_RAX] = 1;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &w), VMM_CONTINUE);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 13);
    assert_int_equal(warnings, 0);
}

/* The pvclock's scale turns TSC ticks into ns the way Linux's pvclock_tsc_khz
 * inverts it: the frequency comes back exact to a few parts per million. */
static void test_pvclock_scale(void **state)
{
    (void)state;
    const uint64_t khz[] = { 33000, 999999, 1000000, 2096174, 3500000, 5000000 };
    for (size_t i = 0; i < sizeof khz / sizeof khz[0]; i++) {
        struct pvclock_scale sc = pvclock_scale_for_khz(khz[i]);
        assert_true(sc.mul >= (1u << 31));
        uint64_t back = (1000000ull << 32) / sc.mul;
        back = sc.shift < 0 ? back << -sc.shift : back >> sc.shift;
        assert_true(back + 2 >= khz[i] && back <= khz[i] + 2);
    }
}

static void test_pvclock_msrs_and_cpuid(void **state)
{
    (void)state;
    uint32_t r[4];
    assert_true(pvclock_cpuid(0x40000100, r));
    assert_int_equal(r[0], 0x40000101);
    assert_memory_equal(&r[1], "KVMKVMKVM\0\0\0", 12);
    assert_true(pvclock_cpuid(0x40000101, r));
    assert_int_equal(r[0], (1u << 3) | (1u << 24));
    assert_false(pvclock_cpuid(0x40000000, r));
    /* System time: the structure at 0x3000 gets an even version, the guest TSC,
     * the time since the VM's boot, the scale for 1 GHz (fake core) and the
     * stable flag. */
    /* The VM booted when the host TSC read 400000: its TSC started at zero then. */
    vm.tsc_offset = bsp()->tsc_offset = -400000;
    struct hvm_exit w = { .reason = HVM_EXIT_WRMSR, .insn_len = 2, .msr.msr = 0x4b564d01 };
    st.gpr[HVM_RAX] = 0x3000 | 1;
    st.gpr[HVM_RDX] = 0;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &w), VMM_CONTINUE);
    assert_int_equal(injections, 0);
    uint32_t version, mul;
    uint64_t tsc, sys;
    memcpy(&version, ram + 0x3000, 4);
    memcpy(&tsc, ram + 0x3008, 8);
    memcpy(&sys, ram + 0x3010, 8);
    memcpy(&mul, ram + 0x3018, 4);
    assert_int_equal(version & 1, 0);
    assert_true(version != 0);
    /* One origin for the VM: system time 0 at the guest TSC of the boot (0). */
    assert_int_equal(tsc, 0);
    assert_int_equal(sys, 0);
    assert_int_equal(mul, 0x80000000u);
    assert_int_equal((int8_t)ram[0x301c], 1);
    assert_int_equal(ram[0x301d], 1);
    /* Reads back as written; unaligned or outside RAM: #GP. */
    struct hvm_exit rd = { .reason = HVM_EXIT_RDMSR, .insn_len = 2, .msr.msr = 0x4b564d01 };
    assert_int_equal(vmm_handle_exit(bsp(), 0, &rd), VMM_CONTINUE);
    assert_int_equal(st.gpr[HVM_RAX], 0x3001);
    st.rip = 0x1000;
    st.gpr[HVM_RAX] = 0x3008 | 1;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &w), VMM_CONTINUE);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 13);
    st.rip = 0x1000;
    st.gpr[HVM_RAX] = (sizeof ram) | 1;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &w), VMM_CONTINUE);
    assert_int_equal(injections, 2);
    /* Wall clock: the fake wall time at the VM's boot. */
    struct hvm_exit wc = { .reason = HVM_EXIT_WRMSR, .insn_len = 2, .msr.msr = 0x4b564d00 };
    st.gpr[HVM_RAX] = 0x4000;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &wc), VMM_CONTINUE);
    uint32_t sec, nsec;
    memcpy(&sec, ram + 0x4004, 4);
    memcpy(&nsec, ram + 0x4008, 4);
    /* The fake wall clock (1795000000 s + 1000 ns) less the 600 us since the boot. */
    assert_int_equal(sec, 1794999999u);
    assert_int_equal(nsec, 1000000000u + 1000 - 600000);
    /* A guest that moves its own TSC (IA32_TSC) does not move the time: the origin
     * moves with it. */
    struct hvm_exit wt = { .reason = HVM_EXIT_WRMSR, .insn_len = 2, .msr.msr = 0x10 };
    st.gpr[HVM_RAX] = 5600000;                      /* 5000000 ahead of the 600000 it read */
    st.gpr[HVM_RDX] = 0;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &wt), VMM_CONTINUE);
    memcpy(&tsc, ram + 0x3008, 8);
    memcpy(&sys, ram + 0x3010, 8);
    assert_int_equal(tsc, 5000000);
    assert_int_equal(sys, 0);
    assert_int_equal(warnings, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pit_through_ioapic_and_lapic, setup),
        cmocka_unit_test_setup(test_pit_through_8259_extint, setup),
        cmocka_unit_test_setup(test_extint_needs_lint0_once_apic_is_on, setup),
        cmocka_unit_test_setup(test_rtc_reads_host_wall_clock, setup),
        cmocka_unit_test_setup(test_pci_host_bridge, setup),
        cmocka_unit_test_setup(test_guest_reset_and_poweroff, setup),
        cmocka_unit_test_setup(test_acpi_tables_in_guest_ram, setup),
        cmocka_unit_test_setup(test_amd_config_msrs, setup),
        cmocka_unit_test(test_pvclock_scale),
        cmocka_unit_test_setup(test_pvclock_msrs_and_cpuid, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
