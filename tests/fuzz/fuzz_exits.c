/* The monitor's exit handling (vmm/exit.c and everything it dispatches to: port and
 * string I/O, device memory through the decoder and emulator, MSRs, CPUID, control
 * registers, HLT, the platform devices and local APIC) against the fake core of the
 * unit tests, with guest RAM, register state and a stream of exits all made of the
 * fuzzer's bytes, pre_entry and time moving between them.  The guest is hostile by
 * definition here: nothing it controls may make the monitor read or write outside
 * its RAM (a heap block of exactly its size), loop, or hand the core an event it
 * would refuse; every exit gets an answer the core understands. */
#include "fuzz.h"
#include "fake_core.h"

#define RAM_SIZE (1u << 20)

static struct vmm_vm vm;
static uint8_t *ram;

static const enum hvm_exit_reason reasons[] = {
    HVM_EXIT_CPUID, HVM_EXIT_RDMSR, HVM_EXIT_WRMSR, HVM_EXIT_IO, HVM_EXIT_IO, HVM_EXIT_NPF, HVM_EXIT_NPF,
    HVM_EXIT_CR, HVM_EXIT_HLT, HVM_EXIT_XSETBV, HVM_EXIT_INVD, HVM_EXIT_WBINVD, HVM_EXIT_VIRT_INSN,
    HVM_EXIT_HYPERCALL, HVM_EXIT_RDPMC, HVM_EXIT_TASK_SWITCH, HVM_EXIT_INTR_WINDOW, HVM_EXIT_NMI_WINDOW,
    HVM_EXIT_MWAIT, HVM_EXIT_PAUSE, HVM_EXIT_TRIPLE_FAULT, HVM_EXIT_EXCEPTION,
};

/* Ports and device addresses a guest reaches: the platform's, and some nobody has. */
static const uint16_t ports[] = { 0x20, 0x21, 0x40, 0x43, 0x61, 0x60, 0x64, 0x70, 0x71, 0x92, 0xa0, 0xa1,
                                  0xcf8, 0xcfc, 0xcfe, 0xcf9, 0x3f8, 0x3fd, 0x600, 0x604, 0x608, 0x80, 0x4d0 };
static const uint64_t gpas[] = { 0xfee00000, 0xfee00080, 0xfee00300, 0xfee00380, 0xfec00000, 0xfec00010,
                                 0xfed00000, 0x100000000ull, RAM_SIZE, 0xe0000 };

static void start(struct fuzz_in *in)
{
    fake_core_reset();
    memset(&vm, 0, sizeof vm);
    strcpy(vm.conf.name, "fuzz");
    vm.ram = ram;
    vm.ram_size = RAM_SIZE;
    vm.vcpu_count = 1;
    vm.vcpus[0] = (struct vmm_vcpu){ .vm = &vm, .index = 0 };
    vmm_vcpu_reset_msrs(&vm.vcpus[0]);
    vmm_lapic_reset(&vm.vcpus[0]);
    vmm_lapic_attach(&vm);
    vmm_platform_attach(&vm);
    vmm_platform_boot(&vm);
    host_max_ext = 0;
    host_leaves();
    host_amd = fz_bool(in);
    fake_host_bits = fz_bool(in) ? ~0u : fz_u32(in);
    for (int i = 0; i < HVM_GPR_COUNT; i++)
        st.gpr[i] = fz_u64(in);
    st.rip = fz_u16(in);
    st.rflags = (fz_u32(in) & 0x3f7fd5) | 2;
    /* Real, protected (paging or not, PAE or not) or long mode. */
    switch (fz_below(in, 4)) {
    case 0: st.cr0 = 0x10; break;
    case 1: st.cr0 = 0x11; break;
    case 2: st.cr0 = 0x80000011; st.cr4 = fz_u8(in) & 0x30; break;
    default: st.cr0 = 0x80000011; st.cr4 = 0x20 | (fz_u32(in) & 0x1000); st.efer = 0x500 | (fz_u16(in) & 0x801); break;
    }
    st.cr3 = fz_u32(in) & 0xff000;
    st.dr7 = fz_bool(in) ? fz_u32(in) : 0;
    for (int i = 0; i < HVM_SREG_COUNT; i++)
        st.seg[i] = (struct hvm_segment){ .base = fz_bool(in) ? fz_u32(in) : 0, .limit = 0xffffffff,
                                          .ar = 0xc093 | (fz_u8(in) & 0x6060), .selector = fz_u16(in) };
    st.seg[HVM_CS].ar = 0xc09b | (st.efer & 0x400 && fz_bool(in) ? 0x2000 : 0);
    for (int i = 0; i < 4; i++)
        fake_dr[i] = fz_u32(in);
}

/* RAM's first 64 KiB (code at RIP, page tables at CR3) and the page at 0xff000: the
 * input's bytes over and over, so that short inputs still reach the exits. */
static void fill_ram(const uint8_t *data, size_t size)
{
    if (!size)
        return;
    for (size_t i = 0; i < 0x10000; i += size)
        memcpy(ram + i, data, size < 0x10000 - i ? size : 0x10000 - i);
    memcpy(ram + 0xff000, ram + 0x1000, 0x1000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ram)
        ram = malloc(RAM_SIZE);
    struct fuzz_in in = { data, size };
    memset(ram, 0, RAM_SIZE);
    fill_ram(data, size);
    start(&in);
    for (unsigned n = 0; in.n && n < 64; n++) {
        struct hvm_exit x = { .reason = reasons[fz_below(&in, sizeof reasons / sizeof reasons[0])],
                              .insn_len = fz_bool(&in) ? (uint8_t)(1 + fz_below(&in, 15)) : 0 };
        switch (x.reason) {
        case HVM_EXIT_CPUID:
            x.cpuid.leaf = (uint32_t)st.gpr[HVM_RAX];
            x.cpuid.subleaf = (uint32_t)st.gpr[HVM_RCX];
            break;
        case HVM_EXIT_RDMSR:
        case HVM_EXIT_WRMSR:
            x.msr.msr = (uint32_t)st.gpr[HVM_RCX];
            break;
        case HVM_EXIT_IO: {
            static const uint8_t sizes[] = { 1, 2, 4 };
            x.io.port = fz_bool(&in) ? ports[fz_below(&in, sizeof ports / sizeof ports[0])] : fz_u16(&in);
            x.io.size = sizes[fz_below(&in, 3)];
            x.io.in = fz_bool(&in);
            x.io.string = (fz_u8(&in) & 7) == 0;
            x.io.rep = x.io.string && fz_bool(&in);
            break;
        }
        case HVM_EXIT_NPF:
            x.npf.gpa = gpas[fz_below(&in, sizeof gpas / sizeof gpas[0])] + (fz_u16(&in) & 0xfff);
            x.npf.write = fz_bool(&in);
            x.npf.read = !x.npf.write;
            x.npf.fetch = (fz_u8(&in) & 0xf) == 0;
            break;
        case HVM_EXIT_CR:
            x.cr.cr = (uint8_t[]){ 0, 3, 4, 8 }[fz_below(&in, 4)];
            x.cr.type = (enum hvm_cr_access)fz_below(&in, 4);
            x.cr.gpr = fz_bool(&in) ? HVM_CR_GPR_DECODE : (uint8_t)fz_below(&in, 16);
            x.cr.lmsw_value = fz_u16(&in);
            break;
        case HVM_EXIT_TASK_SWITCH:
            x.task.selector = fz_u16(&in);
            x.task.source = (uint8_t)fz_below(&in, 4);
            break;
        case HVM_EXIT_EXCEPTION:
            x.exception.vector = (uint8_t)fz_below(&in, 32);
            break;
        default:
            break;
        }
        int inj = injections;
        enum vmm_action a = vmm_handle_exit(&vm.vcpus[0], 0, &x);
        FUZZ_CHECK(a == VMM_CONTINUE || a == VMM_BLOCK || a == VMM_STOP || a == VMM_RESUME, "action %d", a);
        if (injections != inj && injected.type == HVM_EVENT_EXCEPTION)
            FUZZ_CHECK(injected.vector < 32, "exception vector %u", injected.vector);
        if (stops)
            break;                       /* a stopped VM's vCPU never runs again */
        now_ns += fz_u32(&in);
        vmm_pre_entry(&vm.vcpus[0], 0);
    }
    return 0;
}
