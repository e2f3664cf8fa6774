/* The CPU model's corners in the monitor, against the fake core: IA32_MISC_ENABLE
 * by vendor, AMD's performance counters and RDPMC, IA32_XSS and IA32_TSC_AUX, the
 * hypercall and task-switch exits, CR8 by decoding (LOCK MOV CR0 included), the PAE
 * PDPTEs an emulated CR0 write loads, string I/O, page faults and data breakpoints of
 * emulated MOVS, the single-step trap after a completed instruction, and the bounded
 * logging of unknown MSRs. */
#include "fake_core.h"

static struct vmm_vm vm;
static uint8_t ram[4 << 20];

/* The port the string I/O tests drive: a byte FIFO, and what was written. */
static uint8_t port_in[64];
static unsigned port_in_next;
static uint8_t port_out[8192];
static unsigned port_out_len;

static uint8_t test_port_read(void *ctx, uint16_t port)
{
    (void)ctx;
    (void)port;
    return port_in_next < sizeof port_in ? port_in[port_in_next++] : 0xff;
}

static void test_port_write(void *ctx, uint16_t port, uint8_t v)
{
    (void)ctx;
    (void)port;
    if (port_out_len < sizeof port_out)
        port_out[port_out_len++] = v;
}

static uint64_t dev_value;
static int dev_read_cb(void *ctx, uint64_t off, unsigned size, uint64_t *v)
{
    (void)ctx;
    (void)off;
    (void)size;
    *v = dev_value;
    return 0;
}

static int dev_write_cb(void *ctx, uint64_t off, unsigned size, uint64_t v)
{
    (void)ctx;
    (void)off;
    (void)size;
    dev_value = v;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    fake_core_reset();
    memset(&vm, 0, sizeof vm);
    memset(ram, 0, sizeof ram);
    strcpy(vm.conf.name, "t");
    vm.ram = ram;
    vm.ram_size = sizeof ram;
    vm.vcpu_count = 1;
    vm.vcpus[0] = (struct vmm_vcpu){ .vm = &vm, .index = 0 };
    vmm_vcpu_reset_msrs(&vm.vcpus[0]);
    vmm_lapic_reset(&vm.vcpus[0]);
    st.rip = 0x1000;
    st.rflags = 2;
    st.cr0 = 0x11;
    st.seg[HVM_CS].ar = 0xc09b;
    st.seg[HVM_SS].ar = 0xc093;
    host_max_ext = 0;
    host_leaves();
    host_amd = false;
    port_in_next = port_out_len = 0;
    for (unsigned i = 0; i < sizeof port_in; i++)
        port_in[i] = (uint8_t)(0xa0 + i);
    assert_true(io_bus_claim(&vm.io, 0x2f0, 0x2f0, test_port_read, test_port_write, NULL));
    assert_true(mmio_bus_claim(&vm.mmio, 0xfed00000, 0x1000, dev_read_cb, dev_write_cb, NULL));
    dev_value = 0x11223344;
    return 0;
}

static struct vmm_vcpu *cpu0(void) { return &vm.vcpus[0]; }

static enum vmm_action exit_msr(bool write, uint32_t msr, uint64_t v)
{
    st.gpr[HVM_RCX] = msr;
    st.gpr[HVM_RAX] = (uint32_t)v;
    st.gpr[HVM_RDX] = v >> 32;
    struct hvm_exit x = { .reason = write ? HVM_EXIT_WRMSR : HVM_EXIT_RDMSR, .insn_len = 2, .msr.msr = msr };
    injections = 0;
    return vmm_handle_exit(cpu0(), 0, &x);
}

static bool msr_faults(bool write, uint32_t msr, uint64_t v)
{
    exit_msr(write, msr, v);
    return injections == 1 && injected.vector == 13;
}

static uint64_t msr_value(uint32_t msr)
{
    assert_false(msr_faults(false, msr, 0));
    return (uint32_t)st.gpr[HVM_RAX] | st.gpr[HVM_RDX] << 32;
}

static void test_misc_enable_by_vendor(void **state)
{
    (void)state;
    uint64_t v = msr_value(0x1a0);
    assert_int_equal(v, 0x1801);                        /* fast strings, no BTS/PEBS */
    assert_false(msr_faults(true, 0x1a0, v));           /* written back as read */
    assert_false(msr_faults(true, 0x1a0, (v & ~1ull) | 1ull << 16 | 1ull << 22 | 1ull << 34));
    assert_int_equal(msr_value(0x1a0), (v & ~1ull) | 1ull << 16 | 1ull << 22 | 1ull << 34);
    assert_false(msr_faults(true, 0x1a0, 1ull << 7));   /* read-only bits stay */
    assert_int_equal(msr_value(0x1a0), 0x1800);
    assert_true(msr_faults(true, 0x1a0, 1ull << 63));   /* reserved */
    assert_true(msr_faults(true, 0x1a0, 1ull << 1));
    host_amd = true;                                     /* AMD CPUs have none */
    assert_true(msr_faults(false, 0x1a0, 0));
    assert_true(msr_faults(true, 0x1a0, 0x1801));
}

static void test_amd_counters_and_rdpmc(void **state)
{
    (void)state;
    /* Intel (no PMU): the counter MSRs do not exist, RDPMC is #GP for every index. */
    assert_true(msr_faults(false, 0xc0010000u, 0));
    st.gpr[HVM_RCX] = 0;
    struct hvm_exit x = { .reason = HVM_EXIT_RDPMC, .insn_len = 2 };
    injections = 0;
    vmm_handle_exit(cpu0(), 0, &x);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 13);
    assert_int_equal(st.rip, 0x1000);

    host_amd = true;
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(msr_value(0xc0010000u + i), 0);
    assert_false(msr_faults(true, 0xc0010001u, 0x0043003cull));
    assert_int_equal(msr_value(0xc0010001u), 0x0043003cull);
    assert_true(msr_faults(true, 0xc0010001u, 1ull << 50));     /* reserved control bit */
    assert_false(msr_faults(true, 0xc0010005u, 0xffff123456789abcull));
    assert_int_equal(msr_value(0xc0010005u), 0x123456789abcull); /* 48-bit counter */
    assert_true(msr_faults(false, 0xc0010008u, 0));               /* no fifth counter */
    /* RDPMC 1 reads PERF_CTR1; 4 does not exist; ring 3 without CR4.PCE faults. */
    st.rip = 0x1000;
    st.gpr[HVM_RCX] = 1;
    injections = 0;
    vmm_handle_exit(cpu0(), 0, &x);
    assert_int_equal(injections, 0);
    assert_int_equal(st.gpr[HVM_RAX], 0x56789abc);
    assert_int_equal(st.gpr[HVM_RDX], 0x1234);
    assert_int_equal(st.rip, 0x1002);
    st.gpr[HVM_RCX] = 4;
    vmm_handle_exit(cpu0(), 0, &x);
    assert_int_equal(injections, 1);
    st.gpr[HVM_RCX] = 1;
    st.seg[HVM_SS].ar = 0xc0f3;                                   /* DPL 3 */
    injections = 0;
    vmm_handle_exit(cpu0(), 0, &x);
    assert_int_equal(injections, 1);
    st.cr4 = 1u << 8;                                             /* PCE */
    injections = 0;
    vmm_handle_exit(cpu0(), 0, &x);
    assert_int_equal(injections, 0);
}

static void test_xss_and_tsc_aux(void **state)
{
    (void)state;
    assert_int_equal(msr_value(0xda0), 0);
    assert_false(msr_faults(true, 0xda0, 0));
    assert_true(msr_faults(true, 0xda0, 1ull << 8));              /* no supervisor state */
    fake_guest_xsaves = false;                                     /* XSAVES hidden: no XSS */
    assert_true(msr_faults(false, 0xda0, 0));
    /* TSC_AUX writes reach the core, reserved bits 63:32 #GP. */
    assert_false(msr_faults(true, 0xc0000103u, 0x5a000001u));
    assert_int_equal(tsc_aux_set, 0x5a000001u);
    assert_true(msr_faults(true, 0xc0000103u, 1ull << 32));
    fake_guest_rdtscp = false;
    assert_true(msr_faults(true, 0xc0000103u, 1));
    /* CPUID shows RDTSCP and RDPID by what the core can give, XSAVES likewise. */
    uint32_t r[4];
    fake_guest_rdtscp = true;
    vmm_cpuid(cpu0(), 0x80000001u, 0, r);
    assert_int_not_equal(r[3] & (1u << 27), 0);
    vmm_cpuid(cpu0(), 7, 0, r);
    assert_int_not_equal(r[2] & (1u << 22), 0);
    fake_guest_rdtscp = false;
    vmm_cpuid(cpu0(), 0x80000001u, 0, r);
    assert_int_equal(r[3] & (1u << 27), 0);
    vmm_cpuid(cpu0(), 7, 0, r);
    assert_int_equal(r[2] & (1u << 22), 0);
    fake_guest_xsaves = true;
    vmm_cpuid(cpu0(), 0xd, 1, r);
    assert_int_equal(r[0], 0xf);                                  /* XSAVEOPT, XSAVEC, XGETBV1, XSAVES */
    assert_int_equal(r[2] | r[3], 0);
    fake_guest_xsaves = false;
    vmm_cpuid(cpu0(), 0xd, 1, r);
    assert_int_equal(r[0], 0x7);
}

static void test_unknown_msrs_logged_then_counted(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < VMM_MSR_WARN_MAX + 10; i++)
        assert_true(msr_faults(false, 0x5000 + i, 0));
    /* One line per MSR for the first VMM_MSR_WARN_MAX, one saying the rest are counted. */
    assert_int_equal(warnings, VMM_MSR_WARN_MAX + 1);
    assert_int_equal(vm.unlogged_msr, 10);
}

static void test_hypercall_and_task_switch(void **state)
{
    (void)state;
    st.gpr[HVM_RAX] = 0x12345;
    struct hvm_exit x = { .reason = HVM_EXIT_HYPERCALL, .insn_len = 3 };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 6);
    assert_int_equal(st.rip, 0x1000);
    assert_int_equal(st.gpr[HVM_RAX], 0x12345);
    x = (struct hvm_exit){ .reason = HVM_EXIT_TASK_SWITCH, .task = { .selector = 0x28, .source = HVM_TASK_JMP } };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_STOP);
    assert_non_null(strstr(stop_reason, "task switch to TSS selector 0x28 by a JMP"));
}

/* 4-level paging: the first 2 MiB identity-mapped from a PML4 at 0x20000. */
static void long_mode_tables(void)
{
    uint64_t e = 0x21000 | 3;
    memcpy(ram + 0x20000, &e, 8);
    e = 0x22000 | 3;
    memcpy(ram + 0x21000, &e, 8);
    e = 0x83;                                                     /* 2 MiB page at 0 */
    memcpy(ram + 0x22000, &e, 8);
    st.cr3 = 0x20000;
}

static void test_cr8_decoded(void **state)
{
    (void)state;
    /* 64-bit mode: mov cr8, rax (44 0f 22 c0) and mov rcx, cr8 (44 0f 20 c1). */
    long_mode_tables();
    st.efer = (1u << 8) | (1u << 10);
    st.cr0 = 0x80000011;
    st.cr4 = 1u << 5;
    st.seg[HVM_CS].ar = 0xa09b;                                   /* L = 1 */
    memcpy(ram + 0x1000, "\x44\x0f\x22\xc0\x44\x0f\x20\xc1", 8);
    st.gpr[HVM_RAX] = 9;
    struct hvm_exit x = { .reason = HVM_EXIT_CR, .cr = { .cr = 8, .gpr = HVM_CR_GPR_DECODE, .type = HVM_CR_MOV_TO } };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(cpu0()->lapic.tpr, 0x90);
    assert_int_equal(st.rip, 0x1004);
    x.cr.type = HVM_CR_MOV_FROM;
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(st.gpr[HVM_RCX], 9);
    assert_int_equal(st.rip, 0x1008);
    /* 32-bit: lock mov cr0, eax (f0 0f 22 c0) is CR8 on AMD. */
    st.efer = 0;
    st.cr0 = 0x11;
    st.cr4 = 0;
    st.seg[HVM_CS].ar = 0xc09b;
    st.rip = 0x1000;
    memcpy(ram + 0x1000, "\xf0\x0f\x22\xc0", 4);
    st.gpr[HVM_RAX] = 3;
    x.cr.type = HVM_CR_MOV_TO;
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(cpu0()->lapic.tpr, 0x30);
    /* A plain MOV to CR0 is no CR8 write: the exit does not match, the VM stops. */
    st.rip = 0x1000;
    memcpy(ram + 0x1000, "\x0f\x22\xc0", 3);
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_STOP);
}

static void test_pae_pdptes_loaded(void **state)
{
    (void)state;
    /* PDPT at 0x3000: two present entries, one with a reserved bit later. */
    uint64_t pdpt[4] = { 0x4000 | 1, 0, 0x5000 | 1, 0 };
    memcpy(ram + 0x3000, pdpt, sizeof pdpt);
    st.cr3 = 0x3000;
    st.cr4 = 1u << 5;                                             /* PAE */
    memcpy(ram + 0x1000, "\x0f\x22\xc0", 3);                      /* mov cr0, eax */
    st.gpr[HVM_RAX] = 0x80000011;
    struct hvm_exit x = { .reason = HVM_EXIT_CR, .insn_len = 3, .cr = { .cr = 0, .gpr = HVM_RAX, .type = HVM_CR_MOV_TO } };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 0);
    assert_int_equal(pdpte_loads, 1);
    assert_int_equal(pdptes_set[2], 0x5001);
    assert_int_equal(st.cr0, 0x80000011);
    /* A reserved bit (bit 1) in a present PDPTE: the MOV #GPs, CR0 stays. */
    pdpt[2] |= 2;
    memcpy(ram + 0x3000, pdpt, sizeof pdpt);
    st.cr0 = 0x11;
    st.rip = 0x1000;
    vmm_handle_exit(cpu0(), 0, &x);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 13);
    assert_int_equal(st.cr0, 0x11);
    /* Entering long mode (EFER.LME): CR3 holds a PML4, no PDPTEs. */
    injections = 0;
    pdpte_loads = 0;
    st.efer = 1u << 8;
    vmm_handle_exit(cpu0(), 0, &x);
    assert_int_equal(injections, 0);
    assert_int_equal(pdpte_loads, 0);
}

static void string_io(bool in, uint8_t size, const char *bytes, size_t n)
{
    memcpy(ram + st.rip, bytes, n);
    struct hvm_exit x = { .reason = HVM_EXIT_IO, .io = { .port = 0x2f0, .size = size, .in = in, .string = true } };
    injections = 0;
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
}

static void test_string_io(void **state)
{
    (void)state;
    /* rep outsb (f3 6e): 5 bytes from DS:ESI, forwards. */
    memcpy(ram + 0x8000, "hello", 5);
    st.gpr[HVM_RSI] = 0x8000;
    st.gpr[HVM_RCX] = 5;
    st.gpr[HVM_RDX] = 0x2f0;
    string_io(false, 1, "\xf3\x6e", 2);
    assert_int_equal(port_out_len, 5);
    assert_memory_equal(port_out, "hello", 5);
    assert_int_equal(st.gpr[HVM_RSI], 0x8005);
    assert_int_equal(st.gpr[HVM_RCX], 0);
    assert_int_equal(st.rip, 0x1002);

    /* rep insw (f3 66 6d) backwards: two words into ES:EDI, EDI going down. */
    st.rflags |= 1u << 10;
    st.gpr[HVM_RDI] = 0x9002;
    st.gpr[HVM_RCX] = 2;
    string_io(true, 2, "\xf3\x66\x6d", 3);
    /* (A word from byte-wide ports: 0x2f0, then 0x2f1, which nothing claims.) */
    assert_int_equal(ram[0x9002], 0xa0);
    assert_int_equal(ram[0x9003], 0xff);
    assert_int_equal(ram[0x9000], 0xa1);
    assert_int_equal(st.gpr[HVM_RDI], 0x8ffe);
    assert_int_equal(st.rip, 0x1005);
    st.rflags &= ~(1ull << 10);

    /* 16-bit address size (67 f3 6c): only DI and CX, their upper halves kept. */
    st.gpr[HVM_RDI] = 0xabcd0000ffffull;
    st.gpr[HVM_RCX] = 0x77770001ull;
    string_io(true, 1, "\x67\xf3\x6c", 3);
    assert_int_equal(st.gpr[HVM_RDI], 0xabcd00000000ull);
    assert_int_equal(st.gpr[HVM_RCX], 0x77770000ull);
    assert_int_equal(ram[0xffff], 0xa2);

    /* A REP far longer than one exit does: cut short, RIP stays, the rest follows. */
    uint64_t rip = st.rip;
    st.gpr[HVM_RSI] = 0x10000;
    st.gpr[HVM_RCX] = 6000;
    port_out_len = 0;
    string_io(false, 1, "\xf3\x6e", 2);
    assert_int_equal(st.rip, rip);
    assert_int_equal(st.gpr[HVM_RCX], 6000 - STRING_IO_MAX_ELEMENTS);
    string_io(false, 1, "\xf3\x6e", 2);
    assert_int_equal(st.gpr[HVM_RCX], 0);
    assert_int_equal(st.rip, rip + 2);
    assert_int_equal(port_out_len, 6000);

    /* Outside the VM's RAM: stopped, naming the address. */
    st.gpr[HVM_RSI] = 0x40000000;
    st.gpr[HVM_RCX] = 1;
    struct hvm_exit x = { .reason = HVM_EXIT_IO, .io = { .port = 0x2f0, .size = 1, .string = true } };
    memcpy(ram + st.rip, "\xf3\x6e", 2);
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_STOP);
    assert_non_null(strstr(stop_reason, "0x40000000"));
}

/* 32-bit paging: page directory at 0x20000, one page table at 0x21000 mapping the
 * first 4 MiB identically but for linear 0x50000, not present. */
static void paging_with_hole(void)
{
    uint32_t pde = 0x21000 | 3;
    memcpy(ram + 0x20000, &pde, 4);
    for (uint32_t i = 0; i < 1024; i++) {
        uint32_t pte = i == 0x50 ? 0 : (i << 12) | 3;
        memcpy(ram + 0x21000 + 4 * i, &pte, 4);
    }
    st.cr3 = 0x20000;
    st.cr0 = 0x80000011;
}

static void test_string_io_page_fault(void **state)
{
    (void)state;
    paging_with_hole();
    /* rep insb into 0x4fffe: two bytes land, the third faults on the absent page. */
    st.gpr[HVM_RDI] = 0x4fffe;
    st.gpr[HVM_RCX] = 4;
    string_io(true, 1, "\xf3\x6c", 2);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 14);
    assert_int_equal(injected.error_code, 2);                    /* write, not present */
    assert_int_equal(st.cr2, 0x50000);
    assert_int_equal(st.gpr[HVM_RDI], 0x50000);
    assert_int_equal(st.gpr[HVM_RCX], 2);
    assert_int_equal(st.rip, 0x1000);
    assert_int_equal(ram[0x4fffe], 0xa0);
}

static void test_movs_page_fault_and_breakpoints(void **state)
{
    (void)state;
    paging_with_hole();
    /* rep movsd (f3 a5) from the device into 0x4fff8: two dwords, then the hole. */
    memcpy(ram + 0x1000, "\xf3\xa5", 2);
    st.gpr[HVM_RSI] = 0xfed00000;
    st.gpr[HVM_RDI] = 0x4fff8;
    st.gpr[HVM_RCX] = 4;
    struct hvm_exit x = { .reason = HVM_EXIT_NPF, .npf = { .gpa = 0xfed00000, .read = true } };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 14);
    assert_int_equal(injected.error_code, 2);
    assert_int_equal(st.cr2, 0x50000);
    assert_int_equal(st.gpr[HVM_RCX], 2);
    assert_int_equal(st.gpr[HVM_RDI], 0x50000);
    assert_int_equal(st.gpr[HVM_RSI], 0xfed00008);
    assert_int_equal(st.rip, 0x1000);
    assert_int_equal(*(uint32_t *)(ram + 0x4fffc), 0x11223344);

    /* mov [0xfed00010], eax with DR0 on it (L0, write, 4 bytes) and TF set: the write
     * is done, then one #DB with B0 and BS. */
    injections = 0;
    st.rip = 0x1000;
    memcpy(ram + 0x1000, "\xa3\x10\x00\xd0\xfe", 5);
    st.dr7 = 1 | 1u << 16 | 3u << 18;
    fake_dr[0] = 0xfed00010;
    st.rflags |= 1u << 8;
    st.gpr[HVM_RAX] = 0x55;
    x.npf = (typeof(x.npf)){ .gpa = 0xfed00010, .write = true };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(dev_value, 0x55);
    assert_int_equal(st.rip, 0x1005);
    assert_int_equal(debug_trap_bits, (1u << 14) | 1u);
    /* A read does not hit a write breakpoint. */
    debug_trap_bits = 0;
    st.rflags &= ~(1ull << 8);
    st.rip = 0x1000;
    memcpy(ram + 0x1000, "\xa1\x10\x00\xd0\xfe", 5);
    x.npf.write = false;
    vmm_handle_exit(cpu0(), 0, &x);
    assert_int_equal(debug_trap_bits, 0);
}

/* A MOVS element that crosses a page boundary on the RAM side: both pages present,
 * it lands in two pieces; the second page absent, #PF on that page's first byte and
 * nothing of the element written (it was refused before, stopping the VM). */
static void test_movs_element_crossing_pages(void **state)
{
    (void)state;
    paging_with_hole();
    memcpy(ram + 0x1000, "\xa5", 1);                             /* movsd */
    st.gpr[HVM_RSI] = 0xfed00000;
    st.gpr[HVM_RDI] = 0x4effe;
    struct hvm_exit x = { .reason = HVM_EXIT_NPF, .npf = { .gpa = 0xfed00000, .read = true } };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 0);
    uint32_t got;
    memcpy(&got, ram + 0x4effe, 4);
    assert_int_equal(got, 0x11223344);
    assert_int_equal(st.rip, 0x1001);

    st.rip = 0x1000;
    st.gpr[HVM_RSI] = 0xfed00000;
    st.gpr[HVM_RDI] = 0x4fffe;
    memset(ram + 0x4fffe, 0xee, 2);
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 14);
    assert_int_equal(injected.error_code, 2);
    assert_int_equal(st.cr2, 0x50000);
    assert_int_equal(st.gpr[HVM_RDI], 0x4fffe);
    assert_int_equal(st.rip, 0x1000);
    assert_int_equal(ram[0x4fffe], 0xee);
    assert_int_equal(ram[0x4ffff], 0xee);
}

/* What the CPU faults before any access, should its NPF reach plinth anyway: LOCK on
 * a MOV is #UD, a 16-byte instruction #GP(0); the device is untouched, RIP stays. */
static void test_npf_lock_and_too_long(void **state)
{
    (void)state;
    memcpy(ram + 0x1000, "\xf0\xa3\x10\x00\xd0\xfe", 6);   /* lock mov [0xfed00010], eax */
    st.gpr[HVM_RAX] = 0x55;
    struct hvm_exit x = { .reason = HVM_EXIT_NPF, .npf = { .gpa = 0xfed00010, .write = true } };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.vector, 6);
    assert_int_equal(dev_value, 0x11223344);
    assert_int_equal(st.rip, 0x1000);

    memset(ram + 0x1000, 0x3e, 11);                               /* 11 x ds: + 5 bytes */
    memcpy(ram + 0x100b, "\xa3\x10\x00\xd0\xfe", 5);
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_CONTINUE);
    assert_int_equal(injections, 2);
    assert_int_equal(injected.vector, 13);
    assert_int_equal(injected.error_code, 0);
    assert_int_equal(dev_value, 0x11223344);
    assert_int_equal(st.rip, 0x1000);
}

/* An NPF on device memory in the middle of an event's delivery (its stack there) is
 * the delivery's access: the MOV at RIP, which never ran, is not emulated against the
 * device; the VM stops, naming the delivery. */
static void test_npf_during_delivery(void **state)
{
    (void)state;
    memcpy(ram + 0x1000, "\xa3\x10\x00\xd0\xfe", 5);   /* mov [0xfed00010], eax */
    st.gpr[HVM_RAX] = 0x55;
    struct hvm_exit x = { .reason = HVM_EXIT_NPF, .npf = { .gpa = 0xfed00010, .write = true },
                          .delivering = true, .delivering_vector = 14 };
    assert_int_equal(vmm_handle_exit(cpu0(), 0, &x), VMM_STOP);
    assert_int_equal(dev_value, 0x11223344);
    assert_int_equal(st.rip, 0x1000);
    assert_non_null(strstr(stop_reason, "the delivery of vector 14 at rip 0x1000 made a write of device memory "
                                        "0xfed00010"));
}

static void test_event_insn_len(void **state)
{
    (void)state;
    memcpy(ram + 0x1000, "\x66\xcd\x80", 3);                     /* o16 int 0x80 */
    assert_int_equal(vmm_event_insn_len(cpu0(), 0), 3);
    memcpy(ram + 0x1000, "\xcc", 1);
    assert_int_equal(vmm_event_insn_len(cpu0(), 0), 1);
    st.rip = sizeof ram - 1;                                      /* fetch runs off RAM */
    ram[sizeof ram - 1] = 0xcd;
    assert_int_equal(vmm_event_insn_len(cpu0(), 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_misc_enable_by_vendor, setup),
        cmocka_unit_test_setup(test_amd_counters_and_rdpmc, setup),
        cmocka_unit_test_setup(test_xss_and_tsc_aux, setup),
        cmocka_unit_test_setup(test_unknown_msrs_logged_then_counted, setup),
        cmocka_unit_test_setup(test_hypercall_and_task_switch, setup),
        cmocka_unit_test_setup(test_cr8_decoded, setup),
        cmocka_unit_test_setup(test_pae_pdptes_loaded, setup),
        cmocka_unit_test_setup(test_string_io, setup),
        cmocka_unit_test_setup(test_string_io_page_fault, setup),
        cmocka_unit_test_setup(test_movs_page_fault_and_breakpoints, setup),
        cmocka_unit_test_setup(test_movs_element_crossing_pages, setup),
        cmocka_unit_test_setup(test_npf_lock_and_too_long, setup),
        cmocka_unit_test_setup(test_npf_during_delivery, setup),
        cmocka_unit_test_setup(test_event_insn_len, setup),
    };
    return cmocka_run_group_tests_name("vmm_cpu_model", tests, NULL, NULL);
}
