/* A guest's port and MMIO accesses as exits into the monitor under the fake core
 * (fake_core.h), for the tests of vmm/pci.c and the virtio devices on it.  The
 * including test defines `vm` (struct vmm_vm), `ram` (its RAM, with room for an
 * instruction at 0x1000) and bsp() (the vCPU making the accesses). */
#ifndef PLINTH_TESTS_GUEST_ACCESS_H
#define PLINTH_TESTS_GUEST_ACCESS_H

static void out(uint16_t port, unsigned size, uint32_t value)
{
    struct hvm_exit x = { .reason = HVM_EXIT_IO, .insn_len = 1,
                          .io = { .port = port, .size = (uint8_t)size, .in = false } };
    st.gpr[HVM_RAX] = value;
    assert_int_equal(vmm_handle_exit(bsp(), 0, &x), VMM_CONTINUE);
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

static uint32_t conf1_read(unsigned devfn, unsigned off, unsigned size)
{
    out(0xcf8, 4, 0x80000000u | devfn << 8 | (off & 0xfc));
    return in((uint16_t)(0xcfc + (off & 3)), size);
}

static void conf1_write(unsigned devfn, unsigned off, unsigned size, uint32_t v)
{
    out(0xcf8, 4, 0x80000000u | devfn << 8 | (off & 0xfc));
    out((uint16_t)(0xcfc + (off & 3)), size, v);
}

/* mov [rbx], (e/r)ax / mov (e/r)ax, [rbx] of the access's size, through the NPF path. */
static const char *mov_bytes(unsigned size, bool write, unsigned *len)
{
    static const char *const w[] = { "\x88\x03", "\x66\x89\x03", "\x89\x03", "\x48\x89\x03" };
    static const char *const r[] = { "\x8a\x03", "\x66\x8b\x03", "\x8b\x03", "\x48\x8b\x03" };
    unsigned i = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
    *len = i == 0 || i == 2 ? 2 : 3;
    return write ? w[i] : r[i];
}

static void mmio_write(uint64_t gpa, unsigned size, uint64_t v)
{
    unsigned len = 0;
    const char *code = mov_bytes(size, true, &len);
    memcpy(ram + 0x1000, code, len);
    st.rip = 0x1000;
    st.gpr[HVM_RBX] = gpa;
    st.gpr[HVM_RAX] = v;
    struct hvm_exit x = { .reason = HVM_EXIT_NPF, .npf = { .gpa = gpa, .write = true } };
    if (vmm_handle_exit(bsp(), 0, &x) != VMM_CONTINUE)
        fail_msg("write of %#lx stopped the VM: %s", (unsigned long)gpa, stop_reason);
    assert_int_equal(stops, 0);
}

static uint64_t mmio_read(uint64_t gpa, unsigned size)
{
    unsigned len = 0;
    const char *code = mov_bytes(size, false, &len);
    memcpy(ram + 0x1000, code, len);
    st.rip = 0x1000;
    st.gpr[HVM_RBX] = gpa;
    st.gpr[HVM_RAX] = 0;
    struct hvm_exit x = { .reason = HVM_EXIT_NPF, .npf = { .gpa = gpa, .write = false } };
    if (vmm_handle_exit(bsp(), 0, &x) != VMM_CONTINUE)
        fail_msg("read of %#lx stopped the VM: %s", (unsigned long)gpa, stop_reason);
    assert_int_equal(stops, 0);
    return size == 8 ? st.gpr[HVM_RAX] : st.gpr[HVM_RAX] & ((1ull << (8 * size)) - 1);
}

/* The VM's single vCPU, local APIC, platform and PCI bus, over ram of ram_size:
 * what a device's attach needs (vm's config set by the caller first). */
static void vm_bus_up(uint64_t ram_size)
{
    vm.ram = ram;
    vm.ram_size = ram_size;
    vm.vcpu_count = 1;
    vm.vcpus[0] = (struct vmm_vcpu){ .vm = &vm, .index = 0 };
    vmm_vcpu_reset_msrs(bsp());
    vmm_lapic_reset(bsp());
    assert_true(vmm_lapic_attach(&vm));
    assert_true(vmm_platform_attach(&vm));
    assert_true(vmm_pci_attach(&vm));
}

/* After the devices' attach: the VM's boot (platform, PCI reset and BAR
 * placement) and a vCPU in protected mode at 0x1000, where the accesses'
 * instructions go. */
static void vm_boot_up(void)
{
    vmm_platform_boot(&vm);
    vmm_pci_boot(&vm);
    st.rip = 0x1000;
    st.rflags = 0x202;
    st.cr0 = 0x11;
    st.seg[HVM_CS].ar = 0xc09b;
}

#endif
