/* cpu_cr_reserved: control registers written with reserved bits and invalid
 * combinations: CR0 with PG but not PE and with NW but not CD, CR4 with reserved
 * bits and features its CPUID hides (VMXE, SMXE, PCIDE outside long mode), EFER with
 * reserved bits and SVME (hidden).  Hardware (SDM Vol. 2B MOV CR, Vol. 3A §2.5, §2.2.1;
 * APM Vol. 2 §3.1): #GP(0) at the instruction each time, the register unchanged. */
#include "hostile.h"

#define MSR_EFER 0xc0000080u

static void cr0_case(const char *name, uint32_t value)
{
    uint32_t before = (uint32_t)read_cr0();
    PROBE_ASM("mov %0, %%cr0", : : "r"((greg_t)value) : "memory");
    uint32_t after = (uint32_t)read_cr0();
    if (probe.vector == 13 && probe.error == 0 && probe.eip == probe.at && after == before)
        pass(name);
    else
        fail(name, "MOV CR0 <- %#x: vector %d error %#x, CR0 %#x -> %#x", value, probe.vector, probe.error,
             before, after);
}

static void cr4_case(const char *name, uint32_t value)
{
    uint32_t before = (uint32_t)read_cr4();
    probe_write_cr4(value);
    uint32_t after = (uint32_t)read_cr4();
    if (probe.vector == 13 && probe.error == 0 && probe.eip == probe.at && after == before)
        pass(name);
    else
        fail(name, "MOV CR4 <- %#x: vector %d error %#x, CR4 %#x -> %#x", value, probe.vector, probe.error,
             before, after);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_cr_reserved";
    uint32_t cr0 = (uint32_t)read_cr0(), cr4 = (uint32_t)read_cr4(), r[4];
    /* (QEMU's TCG, which performs guests' CR0 writes itself on AMD-V, takes PG without
     * PE and drops to real mode: the SVM test skips these two.) */
    if (!skipped("cpu-cr0-pg-without-pe-gp"))
        cr0_case("cpu-cr0-pg-without-pe-gp", (cr0 & ~1u) | (1u << 31));
    if (!skipped("cpu-cr0-nw-without-cd-gp"))
        cr0_case("cpu-cr0-nw-without-cd-gp", (cr0 & ~(1u << 30)) | (1u << 29));
    /* Many times, each value different: plinth answers each, logs nothing. */
    if (!skipped("cpu-cr0-storm-gp")) {
        bool ok = true;
        uint32_t seed = 1;
        for (int i = 0; i < 300; i++) {
            uint32_t v = (lcg(&seed) | (1u << 31)) & ~1u;
            PROBE_ASM("mov %0, %%cr0", : : "r"((greg_t)v) : "memory");
            ok &= probe.vector == 13 && (uint32_t)read_cr0() == cr0;
        }
        check(ok, "cpu-cr0-storm-gp", "a MOV CR0 with PG but not PE did not #GP (vector %d, CR0 %#x)",
              probe.vector, (uint32_t)read_cr0());
    }
    cr4_case("cpu-cr4-bit15-gp", cr4 | (1u << 15));
    cr4_case("cpu-cr4-bit31-gp", cr4 | (1u << 31));
    cr4_case("cpu-cr4-all-ones-gp", 0xffffffffu);
    cr4_case("cpu-cr4-vmxe-gp", cr4 | (1u << 13));
    cr4_case("cpu-cr4-smxe-gp", cr4 | (1u << 14));
    cpuid(1, 0, r);
    if (r[2] & (1u << 17))
        cr4_case("cpu-cr4-pcide-gp", cr4 | (1u << 17));    /* outside IA-32e mode */
    else
        cr4_case("cpu-cr4-pcide-gp", cr4 | (1u << 17));    /* PCID hidden: reserved */
    uint64_t efer = 0;
    probe_rdmsr(MSR_EFER, &efer);
    static const struct { const char *name; uint64_t bits; } efer_cases[] = {
        { "cpu-efer-bit1-gp", 1ull << 1 }, { "cpu-efer-svme-gp", 1ull << 12 },
        { "cpu-efer-bit63-gp", 1ull << 63 }, { "cpu-efer-all-ones-gp", ~0ull },
    };
    for (unsigned i = 0; i < sizeof efer_cases / sizeof efer_cases[0]; i++) {
        probe_wrmsr(MSR_EFER, efer | efer_cases[i].bits);
        int vec = probe.vector;
        uint32_t err = probe.error;
        uint64_t after = 0;
        probe_rdmsr(MSR_EFER, &after);
        check(vec == 13 && err == 0 && after == efer, efer_cases[i].name, "WRMSR EFER <- %#llx: vector %d, EFER "
              "%#llx -> %#llx", efer | efer_cases[i].bits, vec, efer, after);
    }
    check((uint32_t)read_cr0() == cr0 && (uint32_t)read_cr4() == cr4, "cpu-cr-unchanged",
          "CR0 %#x -> %#x, CR4 %#x -> %#x", cr0, (uint32_t)read_cr0(), cr4, (uint32_t)read_cr4());
}
