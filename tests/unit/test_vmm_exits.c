/* The monitor's exit handlers against a fake core: everything they do to a vCPU goes
 * through kernel/core_api.h, which this file implements over a plain hvm_state. */
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
    vmm_lapic_reset(&vm.vcpus[1]);
    st.rip = 0x1000;
    st.rflags = 2;
    st.cr0 = 0x11;
    st.seg[HVM_CS].ar = 0xc09b;
    host_max_ext = 0;   /* vmm/cpuid.c snapshots the fake host's leaves anew */
    return 0;
}

static struct vmm_vcpu *cpu1(void) { return &vm.vcpus[1]; }

static enum vmm_action run(enum hvm_exit_reason r, uint8_t len)
{
    struct hvm_exit x = { .reason = r, .insn_len = len };
    /* The backends put CPUID's EAX and ECX in the exit record. */
    if (r == HVM_EXIT_CPUID) {
        x.cpuid.leaf = (uint32_t)st.gpr[HVM_RAX];
        x.cpuid.subleaf = (uint32_t)st.gpr[HVM_RCX];
    }
    return vmm_handle_exit(cpu1(), 0, &x);
}

static void expect_fault(uint8_t vector)
{
    assert_int_equal(injections, 1);
    assert_int_equal(injected.type, HVM_EVENT_EXCEPTION);
    assert_int_equal(injected.vector, vector);
    assert_int_equal(st.rip, 0x1000); /* a faulting instruction does not complete */
}

static void test_cpuid_hypervisor_leaf_and_hidden_vmx(void **state)
{
    (void)state;
    st.gpr[HVM_RAX] = 0x40000000;
    assert_int_equal(run(HVM_EXIT_CPUID, 2), VMM_RESUME);
    char sig[13] = { 0 };
    memcpy(sig, &st.gpr[HVM_RBX], 4);
    memcpy(sig + 4, &st.gpr[HVM_RCX], 4);
    memcpy(sig + 8, &st.gpr[HVM_RDX], 4);
    assert_string_equal(sig, "plinthplinth");
    assert_int_equal(st.gpr[HVM_RAX], 0x40000010);          /* up to the timing leaf */
    assert_int_equal(st.rip, 0x1002);

    /* A host with every feature: what plinth does not provide is hidden. */
    st.gpr[HVM_RAX] = 1;
    st.gpr[HVM_RCX] = 0;
    run(HVM_EXIT_CPUID, 2);
    assert_int_equal(st.gpr[HVM_RCX] & (1u << 5), 0);        /* no VMX */
    assert_int_equal(st.gpr[HVM_RCX] & (1u << 3), 0);        /* no MONITOR/MWAIT */
    assert_int_equal(st.gpr[HVM_RBX] >> 24, 1);               /* APIC ID = vCPU index */
    assert_int_equal((st.gpr[HVM_RBX] >> 16) & 0xff, 2);      /* two logical CPUs */
    st.gpr[HVM_RAX] = 0x80000001;
    run(HVM_EXIT_CPUID, 2);
    assert_int_equal(st.gpr[HVM_RCX] & (1u << 2), 0);         /* no SVM */

    /* A host with no features: what plinth provides itself is shown. */
    fake_host_bits = 0;
    host_max_ext = 0;   /* vmm/cpuid.c snapshots the host's leaves anew */
    st.gpr[HVM_RAX] = 1;
    run(HVM_EXIT_CPUID, 2);
    assert_int_not_equal(st.gpr[HVM_RCX] & (1u << 31), 0);   /* hypervisor present */
    assert_int_not_equal(st.gpr[HVM_RCX] & (1u << 21), 0);   /* x2APIC (modelled) */
    assert_int_not_equal(st.gpr[HVM_RDX] & (1u << 9), 0);    /* APIC (modelled) */
}

static void test_unknown_msr_gp_logged_once(void **state)
{
    (void)state;
    st.gpr[HVM_RCX] = 0x1234;
    struct hvm_exit x = { .reason = HVM_EXIT_RDMSR, .insn_len = 2, .msr.msr = 0x1234 };
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_CONTINUE);
    expect_fault(13);
    assert_int_equal(warnings, 1);
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(warnings, 1); /* once per MSR per VM */
    x.reason = HVM_EXIT_WRMSR; /* a write is warned about apart from a read */
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(warnings, 2);
    x.msr.msr = 0x4321;
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(warnings, 3);
}

static void test_efer_pat_mtrr(void **state)
{
    (void)state;
    struct hvm_exit w = { .reason = HVM_EXIT_WRMSR, .insn_len = 2, .msr.msr = 0xc0000080 };
    st.gpr[HVM_RAX] = 0x901; /* SCE | LME | NXE */
    vmm_handle_exit(cpu1(), 0, &w);
    assert_int_equal(injections, 0);
    assert_int_equal(st.efer, 0x901);
    st.gpr[HVM_RAX] = 1u << 12; /* SVME */
    st.rip = 0x1000;
    vmm_handle_exit(cpu1(), 0, &w);
    expect_fault(13);

    injections = 0;
    w.msr.msr = 0x277;
    st.gpr[HVM_RAX] = 0x02; /* memory type 2 is reserved */
    vmm_handle_exit(cpu1(), 0, &w);
    expect_fault(13);
    assert_int_equal(warnings, 0); /* a bad value is the guest's mistake, not a missing MSR */

    injections = 0;
    w.msr.msr = 0x200;
    st.gpr[HVM_RAX] = 0x80000006;
    st.gpr[HVM_RDX] = 0x1;
    vmm_handle_exit(cpu1(), 0, &w);
    assert_int_equal(injections, 0);
    struct hvm_exit r = { .reason = HVM_EXIT_RDMSR, .insn_len = 2, .msr.msr = 0x200 };
    st.gpr[HVM_RAX] = st.gpr[HVM_RDX] = 0;
    vmm_handle_exit(cpu1(), 0, &r);
    assert_int_equal(st.gpr[HVM_RAX], 0x80000006);
    assert_int_equal(st.gpr[HVM_RDX], 1);

    r.msr.msr = 0x1b; /* APIC base: not the BSP on vCPU 1 */
    vmm_handle_exit(cpu1(), 0, &r);
    assert_int_equal(st.gpr[HVM_RAX], 0xfee00800);
}

static void test_cr_writes(void **state)
{
    (void)state;
    struct hvm_exit x = { .reason = HVM_EXIT_CR, .insn_len = 3, .cr = { .cr = 0, .gpr = HVM_RBX, .type = HVM_CR_MOV_TO } };
    st.gpr[HVM_RBX] = 0x80000000; /* PG without PE */
    vmm_handle_exit(cpu1(), 0, &x);
    expect_fault(13);

    injections = 0;
    x.cr.cr = 4;
    st.gpr[HVM_RBX] = 1u << 13; /* VMXE: no nested virtualization */
    vmm_handle_exit(cpu1(), 0, &x);
    expect_fault(13);

    /* Long-mode entry the usual way: PAE, LME, then PG. */
    injections = 0;
    st.gpr[HVM_RBX] = 0x20;
    vmm_handle_exit(cpu1(), 0, &x);
    st.efer = 0x100;
    x.cr.cr = 0;
    st.gpr[HVM_RBX] = 0x80000011;
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(injections, 0);
    assert_int_equal(st.cr4, 0x20);
    assert_int_equal(st.cr0, 0x80000011);
    assert_int_equal(st.rip, 0x1006);

    x.cr.cr = 8;
    st.gpr[HVM_RBX] = 0x10; /* CR8 takes 4 bits */
    st.rip = 0x1000;
    vmm_handle_exit(cpu1(), 0, &x);
    expect_fault(13);
}

static uint8_t dev_last;
static uint8_t fake_read(void *ctx, uint16_t port) { (void)ctx; return (uint8_t)(port & 0xff); }
static void fake_write(void *ctx, uint16_t port, uint8_t v) { (void)ctx; (void)port; dev_last = v; }

static void test_port_io(void **state)
{
    (void)state;
    struct hvm_exit x = { .reason = HVM_EXIT_IO, .insn_len = 1, .io = { .port = 0x80, .size = 2, .in = true } };
    st.gpr[HVM_RAX] = 0x1122334455667788ull;
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(st.gpr[HVM_RAX], 0x112233445566ffffull); /* unclaimed: all ones, AX only */
    assert_true(io_bus_claim(&vm.io, 0x40, 0x43, fake_read, fake_write, NULL));
    assert_false(io_bus_claim(&vm.io, 0x43, 0x44, fake_read, fake_write, NULL));
    x.io.port = 0x41;
    x.io.size = 4;
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(st.gpr[HVM_RAX], 0xff434241ull); /* 32-bit IN zero-extends */
    x.io.in = false;
    x.io.size = 1;
    st.gpr[HVM_RAX] = 0x5a;
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(dev_last, 0x5a);
    x.io.string = true;
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_STOP);
    assert_non_null(strstr(stop_reason, "string I/O"));
}

static void test_hlt(void **state)
{
    (void)state;
    st.rflags = 0x202;
    assert_int_equal(run(HVM_EXIT_HLT, 1), VMM_BLOCK);
    st.rflags = 0x2;
    assert_int_equal(run(HVM_EXIT_HLT, 1), VMM_STOP);
    assert_non_null(strstr(stop_reason, "halted with interrupts disabled"));
}

static uint64_t mmio_last_off, mmio_last_val;
static unsigned mmio_last_size;
static int fake_mmio_read(void *ctx, uint64_t off, unsigned size, uint64_t *v)
{
    (void)ctx;
    mmio_last_off = off;
    mmio_last_size = size;
    *v = 0xcafebabe;
    return 0;
}
static int fake_mmio_write(void *ctx, uint64_t off, unsigned size, uint64_t v)
{
    (void)ctx;
    mmio_last_off = off;
    mmio_last_size = size;
    mmio_last_val = v;
    return 0;
}

static void test_mmio_emulated_through_decoder(void **state)
{
    (void)state;
    assert_true(mmio_bus_claim(&vm.mmio, 0xfed00000, 0x1000, fake_mmio_read, fake_mmio_write, NULL));
    /* mov dword [ebx+0x10], ecx  (89 4b 10) at rip 0x1000, 32-bit flat, paging off */
    memcpy(ram + 0x1000, "\x89\x4b\x10", 3);
    st.gpr[HVM_RBX] = 0xfed00000;
    st.gpr[HVM_RCX] = 0x12345678;
    struct hvm_exit x = { .reason = HVM_EXIT_NPF, .npf = { .gpa = 0xfed00010, .write = true } };
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_CONTINUE);
    assert_int_equal(mmio_last_off, 0x10);
    assert_int_equal(mmio_last_size, 4);
    assert_int_equal(mmio_last_val, 0x12345678);
    assert_int_equal(st.rip, 0x1003);

    /* mov eax, [ebx+4]  (8b 43 04) */
    memcpy(ram + 0x1003, "\x8b\x43\x04", 3);
    x.npf = (typeof(x.npf)){ .gpa = 0xfed00004, .read = true };
    vmm_handle_exit(cpu1(), 0, &x);
    assert_int_equal(st.gpr[HVM_RAX], 0xcafebabe);
    assert_int_equal(st.rip, 0x1006);

    /* An instruction the emulator does not do (DIV through MMIO) stops the VM, naming the bytes. */
    memcpy(ram + 0x1006, "\xf7\x73\x04", 3);
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_STOP);
    assert_non_null(strstr(stop_reason, "f7 73 04"));

    /* Outside RAM and any region: stopped with the address and rip. */
    x.npf = (typeof(x.npf)){ .gpa = 0x4000000, .read = true };
    assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_STOP);
    assert_non_null(strstr(stop_reason, "0x4000000 outside its memory"));
}

static void test_xsetbv_and_virt_insns(void **state)
{
    (void)state;
    st.gpr[HVM_RCX] = 1; /* only XCR0 exists */
    st.gpr[HVM_RAX] = 1;
    run(HVM_EXIT_XSETBV, 3);
    expect_fault(13);
    injections = 0;
    st.gpr[HVM_RCX] = 0;
    st.gpr[HVM_RAX] = 7;
    run(HVM_EXIT_XSETBV, 3);
    assert_int_equal(xcr0_set, 7);
    assert_int_equal(st.rip, 0x1003);
    st.rip = 0x1000;
    run(HVM_EXIT_VIRT_INSN, 3);
    expect_fault(6);
}

static void test_lapic_timer_interrupt_and_hlt(void **state)
{
    (void)state;
    assert_true(vmm_lapic_attach(&vm));
    struct vlapic *l = &cpu1()->lapic;
    /* Through the MMIO path: mov [ebx], eax with ebx = the SVR, then the timer LVT and count. */
    memcpy(ram + 0x1000, "\x89\x03", 2);
    struct hvm_exit x = { .reason = HVM_EXIT_NPF };
    uint32_t writes[][2] = { { 0xf0, 0x1ff }, { 0x3e0, 0xb }, { 0x320, 0x40 }, { 0x380, 500 } };
    for (unsigned i = 0; i < 4; i++) {
        st.rip = 0x1000;
        st.gpr[HVM_RBX] = 0xfee00000 + writes[i][0];
        st.gpr[HVM_RAX] = writes[i][1];
        x.npf = (typeof(x.npf)){ .gpa = st.gpr[HVM_RBX], .write = true };
        assert_int_equal(vmm_handle_exit(cpu1(), 0, &x), VMM_CONTINUE);
    }
    assert_int_equal(l->timer_icr, 500);
    /* Halting before the timer is due sleeps, with the core told when to wake. */
    st.rflags = 0x202;
    assert_int_equal(run(HVM_EXIT_HLT, 1), VMM_BLOCK);
    assert_int_equal(deadline_set, 1000 + 500);
    /* Once due, the next entry injects vector 0x40 and the deadline clears. */
    now_ns = 1500;
    injections = 0;
    vmm_pre_entry(cpu1(), 0);
    assert_int_equal(injections, 1);
    assert_int_equal(injected.type, HVM_EVENT_EXTINT);
    assert_int_equal(injected.vector, 0x40);
    assert_int_equal(deadline_set, 0);
    /* The guest's EOI; then, with its interrupts off, a pending vector asks for an
     * interrupt window instead of being injected. */
    vlapic_mmio_write(l, 0xb0, 4, 0, now_ns);
    l->lvt[1] = 0x40 | (1u << 17); /* periodic */
    l->timer_armed = true;
    l->timer_start_ns = 1500;
    now_ns = 2000;
    can_inject = false;
    injections = 0;
    vmm_pre_entry(cpu1(), 0);
    assert_int_equal(injections, 0);
    assert_int_equal(windows, HVM_WINDOW_INTR);
    /* And a halt with that interrupt pending does not sleep. */
    assert_int_equal(run(HVM_EXIT_HLT, 1), VMM_CONTINUE);
}

static void test_x2apic_msrs_and_cpuid(void **state)
{
    (void)state;
    fake_host_bits = 0;
    st.gpr[HVM_RAX] = 1;
    st.gpr[HVM_RCX] = 0;
    run(HVM_EXIT_CPUID, 2);
    assert_int_not_equal(st.gpr[HVM_RDX] & (1u << 9), 0);    /* APIC */
    assert_int_not_equal(st.gpr[HVM_RCX] & (1u << 21), 0);   /* x2APIC */
    struct hvm_exit r = { .reason = HVM_EXIT_RDMSR, .insn_len = 2, .msr.msr = 0x802 };
    st.rip = 0x1000;
    vmm_handle_exit(cpu1(), 0, &r);                          /* xAPIC mode: #GP */
    expect_fault(13);
    injections = 0;
    struct hvm_exit w = { .reason = HVM_EXIT_WRMSR, .insn_len = 2, .msr.msr = 0x1b };
    st.gpr[HVM_RAX] = 0xfee00c00;                            /* EN | EXTD */
    st.gpr[HVM_RDX] = 0;
    vmm_handle_exit(cpu1(), 0, &w);
    assert_int_equal(injections, 0);
    vmm_handle_exit(cpu1(), 0, &r);
    assert_int_equal(injections, 0);
    assert_int_equal(st.gpr[HVM_RAX], 1);                    /* x2APIC ID = vCPU 1 */
    st.gpr[HVM_RAX] = 0xfee00800;                            /* x2APIC -> xAPIC: illegal */
    vmm_handle_exit(cpu1(), 0, &w);
    assert_int_equal(injections, 1);
    assert_int_equal(warnings, 0);                           /* a bad value, not an unknown MSR */
}

/* ---- CPUID: topology, TSC and APIC frequencies ---- */

/* CPUID leaf/subleaf on vCPU 1; returns EAX..EDX. */
static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    st.gpr[HVM_RAX] = leaf | 0xdead000000000000ull;   /* bits 63:32 are ignored and cleared */
    st.gpr[HVM_RCX] = sub;
    st.rip = 0x1000;
    assert_int_equal(run(HVM_EXIT_CPUID, 2), VMM_RESUME);
    assert_int_equal(st.rip, 0x1002);
    for (int i = 0; i < 4; i++) {
        static const enum hvm_gpr regs[4] = { HVM_RAX, HVM_RBX, HVM_RCX, HVM_RDX };
        assert_true(st.gpr[regs[i]] <= 0xffffffffull);
        r[i] = (uint32_t)st.gpr[regs[i]];
    }
}

/* The host vendor the monitor's CPUID view is built for: the snapshot vmm/cpuid.c
 * keeps of the fake host's leaves, taken again, with the vendor forced. */
static void cpuid_host(bool amd)
{
    host_max_ext = 0;
    host_leaves();
    host_amd = amd;
}

static void test_cpuid_topology(void **state)
{
    (void)state;
    uint32_t r[4];
    cpuid_host(false);
    /* vCPU 1 of 2: x2APIC ID 1; SMT level of one thread, core level of 2 cores. */
    for (uint32_t leaf = 0xb; leaf <= 0x1f; leaf += 0x1f - 0xb) {
        cpuid(leaf, 0, r);
        assert_int_equal(r[0], 0);
        assert_int_equal(r[1], 1);
        assert_int_equal(r[2], 0x100);
        assert_int_equal(r[3], 1);
        cpuid(leaf, 1, r);
        assert_int_equal(r[0], 1);
        assert_int_equal(r[1], 2);
        assert_int_equal(r[2], 0x201);
        assert_int_equal(r[3], 1);
        cpuid(leaf, 2, r);                                  /* level type 0: the end */
        assert_int_equal(r[0], 0);
        assert_int_equal(r[1], 0);
        assert_int_equal(r[2], 2);
        assert_int_equal(r[3], 1);
    }
    cpuid(1, 0, r);
    assert_int_equal(r[1] >> 24, 1);
    assert_int_equal((r[1] >> 16) & 0xff, 2);
    assert_int_not_equal(r[3] & (1u << 28), 0);            /* HTT */
    /* Leaf 4 on a host whose every bit is set: L3 shared by the 2 cores, 2 cores. */
    cpuid(4, 0, r);
    assert_int_equal(r[0] >> 26, 1);
    assert_int_equal((r[0] >> 14) & 0xfff, 1);
    assert_int_equal(r[0] & 0x3fff, 0x3fff);
    cpuid(0x80000008u, 0, r);
    assert_int_equal(r[2], 0);                             /* reserved on Intel */

    /* Three vCPUs: IDs need 2 bits. */
    vm.vcpu_count = 3;
    cpuid(0xb, 1, r);
    assert_int_equal(r[0], 2);
    assert_int_equal(r[1], 3);
    cpuid(1, 0, r);
    assert_int_equal((r[1] >> 16) & 0xff, 4);
    cpuid(4, 0, r);
    assert_int_equal(r[0] >> 26, 3);

    /* One vCPU: no HTT, one logical processor. */
    vm.vcpu_count = 1;
    cpuid(1, 0, r);
    assert_int_equal(r[3] & (1u << 28), 0);
    assert_int_equal((r[1] >> 16) & 0xff, 1);
    cpuid(0xb, 1, r);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[1], 1);
    cpuid(4, 0, r);
    assert_int_equal(r[0] >> 14, 0);

    /* A null cache entry stays null (the end of leaf 4's list). */
    vm.vcpu_count = 2;
    fake_host_bits = 0;
    cpuid(4, 3, r);
    assert_int_equal(r[0], 0);

    /* AMD: NC = cores - 1 and ApicIdSize in 0x80000008 ECX, CmpLegacy with HTT; no
     * TopologyExtensions (its leaves are past the maximum), no SVM. */
    fake_host_bits = ~0u;
    cpuid_host(true);
    cpuid(0x80000008u, 0, r);
    assert_int_equal(r[2], (1u << 12) | 1);
    assert_int_equal(r[1] & ~((1u << 0) | (1u << 2) | (1u << 9)), 0);
    cpuid(0x80000001u, 0, r);
    assert_int_not_equal(r[2] & (1u << 1), 0);
    assert_int_equal(r[2] & ((1u << 2) | (1u << 22)), 0);
    vm.vcpu_count = 1;
    cpuid(0x80000001u, 0, r);
    assert_int_equal(r[2] & (1u << 1), 0);
    cpuid(0x80000008u, 0, r);
    assert_int_equal(r[2], 0);
    cpuid_host(false);
}

/* What Linux's native_calibrate_tsc computes from leaf 0x15: unsigned int arithmetic. */
static uint32_t linux_tsc_khz(uint32_t eax, uint32_t ebx, uint32_t ecx)
{
    uint64_t product = (uint64_t)(ecx / 1000) * ebx;
    assert_true(product <= 0xffffffffull);                 /* no 32-bit overflow there */
    return eax ? (uint32_t)product / eax : 0;
}

static void test_cpuid_tsc_and_apic_frequency(void **state)
{
    (void)state;
    uint32_t r[4];
    cpuid_host(false);
    cpuid(0, 0, r);
    assert_int_equal(r[0], 0x1f);                          /* covers 0x15, 0x16, 0x1f */
    /* The fake core's TSC runs at 1 GHz. */
    cpuid(0x15, 0, r);
    assert_int_equal(r[2], LAPIC_TIMER_HZ);                /* crystal = the APIC timer clock */
    assert_int_equal(linux_tsc_khz(r[0], r[1], r[2]), core_tsc_khz());
    cpuid(0x16, 0, r);
    assert_int_equal(r[0], 1000);
    assert_int_equal(r[1], 1000);
    assert_int_equal(r[2], LAPIC_TIMER_HZ / 1000000);
    assert_int_equal(r[3], 0);
    cpuid(0x40000010u, 0, r);
    assert_int_equal(r[0], core_tsc_khz());
    assert_int_equal(r[1], LAPIC_TIMER_HZ / 1000);
    assert_int_equal(r[2] | r[3], 0);
    cpuid(0x40000005u, 0, r);                              /* between: nothing */
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    cpuid(0x80000007u, 0, r);                              /* invariant TSC, nothing else */
    assert_int_equal(r[0] | r[1] | r[2], 0);
    assert_int_equal(r[3], 1u << 8);
    /* Leaves past the host's (0xd here) that plinth does not build read as zero. */
    cpuid(0x12, 0, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    /* Past every range (basic, hypervisor, KVM clock, extended, and none): an Intel
     * CPU answers with the highest basic leaf's data for that subleaf (leaf 0x1f), an
     * AMD one with zeros (SDM Vol. 2A and APM Vol. 3, CPUID). */
    static const uint32_t out_of_range[] = { 0x20, 0x3fffffffu, 0x40000011u, 0x40000102u, 0x4fffffffu,
                                             0x50000000u, 0x7fffffffu, 0x80000009u, 0xc0000000u,
                                             0xffffffffu };
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        uint32_t w[4];
        for (uint32_t sub = 0; sub < 3; sub++) {
            cpuid(0x1f, sub, w);
            cpuid(out_of_range[i], sub, r);
            assert_memory_equal(r, w, sizeof r);
        }
    }
    cpuid(0x1f, 1, r);
    assert_int_equal(r[2] & 0xffff, 0x201);                /* core level, subleaf 1 echoed */
    cpuid(0x40000101u, 0, r);                              /* the clock leaves stay in range */
    assert_int_not_equal(r[0], 0);
    cpuid_host(true);
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        cpuid(out_of_range[i], 1, r);
        assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    }
    cpuid_host(false);

    /* Ratios for other TSC rates: exact through Linux's formula, or none at all. */
    static const uint64_t khz[] = { 1, 999, 3999, 4000, 1000000, 2112345, 2993456, 3600000,
                                    4294000, 4295000 };
    for (size_t i = 0; i < sizeof khz / sizeof khz[0]; i++) {
        uint32_t num, den;
        assert_true(vmm_cpuid_tsc_ratio(khz[i], &num, &den));
        assert_true(num >= 1 && num <= 4294 && den >= 1);
        assert_int_equal(linux_tsc_khz(den, num, LAPIC_TIMER_HZ), khz[i]);
    }
    uint32_t num = 7, den = 7;
    assert_false(vmm_cpuid_tsc_ratio(0, &num, &den));
    assert_false(vmm_cpuid_tsc_ratio(3999999, &num, &den)); /* no fraction within 1 kHz */
    assert_false(vmm_cpuid_tsc_ratio(1ull << 40, &num, &den));
}

static void test_cpuid_mirrors_and_hidden_state(void **state)
{
    (void)state;
    uint32_t r[4];
    cpuid_host(false);
    /* Static answers go to the core's cache; leaf 1 (CR4, APIC_BASE) and 0xD (XCR0)
     * change with the guest's state and are asked anew every time. */
    cpuid_cached = 0;
    cpuid(0xb, 1, r);
    assert_int_equal(cpuid_cached, 1);
    assert_int_equal(cpuid_cached_leaf, 0xb);
    cpuid(1, 0, r);
    cpuid(0xd, 0, r);
    assert_int_equal(cpuid_cached, 1);
    st.cr4 = 0;
    cpuid(1, 0, r);
    assert_int_equal(r[2] & (1u << 27), 0);                /* OSXSAVE follows CR4 */
    st.cr4 = 1u << 18;
    cpuid(1, 0, r);
    assert_int_not_equal(r[2] & (1u << 27), 0);
    /* XCR0 may hold x87/SSE/AVX only: AVX-512, PKU and AMX are not shown. */
    cpuid(7, 0, r);
    assert_int_equal(r[1] & (1u << 16), 0);
    assert_int_equal(r[2] & ((1u << 3) | (1u << 4)), 0);
    assert_int_equal(r[3] & ((1u << 22) | (1u << 24) | (1u << 25)), 0);
    assert_int_not_equal(r[1] & (1u << 5), 0);             /* AVX2 is */
    cpuid(0xd, 5, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_cpuid_hypervisor_leaf_and_hidden_vmx, setup),
        cmocka_unit_test_setup(test_unknown_msr_gp_logged_once, setup),
        cmocka_unit_test_setup(test_efer_pat_mtrr, setup),
        cmocka_unit_test_setup(test_cr_writes, setup),
        cmocka_unit_test_setup(test_port_io, setup),
        cmocka_unit_test_setup(test_hlt, setup),
        cmocka_unit_test_setup(test_mmio_emulated_through_decoder, setup),
        cmocka_unit_test_setup(test_xsetbv_and_virt_insns, setup),
        cmocka_unit_test_setup(test_lapic_timer_interrupt_and_hlt, setup),
        cmocka_unit_test_setup(test_x2apic_msrs_and_cpuid, setup),
        cmocka_unit_test_setup(test_cpuid_topology, setup),
        cmocka_unit_test_setup(test_cpuid_tsc_and_apic_frequency, setup),
        cmocka_unit_test_setup(test_cpuid_mirrors_and_hidden_state, setup),
    };
    return cmocka_run_group_tests_name("vmm_exits", tests, NULL, NULL);
}
