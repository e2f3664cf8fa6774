/* cpuid: the CPUID view plinth gives a guest (vmm/cpuid.c): its hypervisor leaves,
 * VMX, SVM and MONITOR hidden, the hypervisor bit set (SDM Vol. 2A, CPUID); OSXSAVE
 * following the guest's CR4, and XSETBV refusing invalid XCR0 values with #GP
 * (SDM Vol. 2D, XSETBV). */
#include "guest.h"

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "cpuid";
    uint32_t r[4];
    char vendor[13];

    cpuid(0, 0, r);
    memcpy(vendor, &r[1], 4);
    memcpy(vendor + 4, &r[3], 4);
    memcpy(vendor + 8, &r[2], 4);
    vendor[12] = 0;
    gprintf("INFO cpuid: vendor %s, max basic leaf %#x\n", vendor, r[0]);
    check(r[0] >= 1, "cpuid-basic-leaves", "max basic leaf %#x", r[0]);

    cpuid(1, 0, r);
    uint32_t ecx1 = r[2];
    check(ecx1 & (1u << 31), "cpuid-hypervisor-bit", "CPUID.1:ECX = %#x, bit 31 clear", ecx1);
    check(!(ecx1 & (1u << 5)), "cpuid-vmx-hidden", "CPUID.1:ECX = %#x, bit 5 (VMX) set", ecx1);
    check(!(ecx1 & (1u << 3)), "cpuid-monitor-hidden", "CPUID.1:ECX = %#x, bit 3 (MONITOR) set", ecx1);
    check((r[1] >> 24) == 0, "cpuid-apic-id", "CPUID.1:EBX = %#x: vCPU 0 has initial APIC ID %u", r[1], r[1] >> 24);

    cpuid(0x80000000u, 0, r);
    if (r[0] >= 0x80000001u) {
        cpuid(0x80000001u, 0, r);
        check(!(r[2] & (1u << 2)), "cpuid-svm-hidden", "CPUID.80000001:ECX = %#x, bit 2 (SVM) set", r[2]);
    } else {
        fail("cpuid-svm-hidden", "max extended leaf %#x has no 0x80000001", r[0]);
    }

    cpuid(0x40000000u, 0, r);
    char sig[13];
    memcpy(sig, &r[1], 4);
    memcpy(sig + 4, &r[2], 4);
    memcpy(sig + 8, &r[3], 4);
    sig[12] = 0;
    for (int i = 0; i < 12; i++)
        if (sig[i] < 0x20 || sig[i] > 0x7e)
            sig[i] = '?';
    check(memcmp(sig, "plinthplinth", 12) == 0, "cpuid-hv-signature", "leaf 0x40000000 signature '%s'", sig);
    check(r[0] == 0x40000010u, "cpuid-hv-max-leaf", "leaf 0x40000000 EAX = %#x, expected 0x40000010", r[0]);

    /* The TSC: invariant, and its frequency in the timing leaf 0x40000010 (kHz) equal
     * to what leaf 0x15 gives (crystal Hz / 1000 * EBX / EAX, when it has a ratio),
     * with the crystal = the APIC timer's 1 GHz (vmm/cpuid.c). */
    cpuid(0x80000007u, 0, r);
    check(r[3] & (1u << 8), "cpuid-invariant-tsc", "CPUID.80000007:EDX = %#x, bit 8 clear", r[3]);
    uint32_t hv[4];
    cpuid(0x40000010u, 0, hv);
    cpuid(0x15, 0, r);
    /* In 32 bits, as Linux's native_calibrate_tsc computes it. */
    uint32_t khz15 = r[0] ? r[2] / 1000 * r[1] / r[0] : hv[0];
    check(hv[0] && hv[1] == 1000000 && r[2] == 1000000000u && khz15 == hv[0], "cpuid-tsc-frequency",
          "TSC %u kHz, APIC %u kHz (leaf 0x40000010); leaf 0x15 EAX %#x EBX %#x ECX %u", hv[0], hv[1],
          r[0], r[1], r[2]);

    cpuid(1, 0, r);
    if (!(r[2] & (1u << 26))) {
        gprintf("INFO cpuid: no XSAVE in CPUID; OSXSAVE and XSETBV not checked\n");
        return;
    }
    check(!(r[2] & (1u << 27)), "cpuid-osxsave-clear", "CPUID.1:ECX = %#x: OSXSAVE set with CR4.OSXSAVE clear", r[2]);
    __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | (1u << 18)));
    cpuid(1, 0, r);
    check(r[2] & (1u << 27), "cpuid-osxsave-follows-cr4", "CPUID.1:ECX = %#x: OSXSAVE clear with CR4.OSXSAVE set", r[2]);

    /* AVX without SSE, and x87 cleared, are invalid XCR0 values; XCR1 is not writable. */
    PROBE_ASM("xsetbv", : : "c"(0), "a"(5), "d"(0) : "memory");
    expect_fault("xsetbv-avx-without-sse-gp", 13, 0);
    PROBE_ASM("xsetbv", : : "c"(0), "a"(2), "d"(0) : "memory");
    expect_fault("xsetbv-no-x87-gp", 13, 0);
    PROBE_ASM("xsetbv", : : "c"(1), "a"(3), "d"(0) : "memory");
    expect_fault("xsetbv-xcr1-gp", 13, 0);
    PROBE_ASM("xsetbv", : : "c"(0), "a"(3), "d"(0) : "memory");
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    check(probe.vector < 0 && lo == 3 && hi == 0, "xsetbv-x87-sse", "vector %d, XCR0 reads %#x:%#x after writing 3",
          probe.vector, hi, lo);
}
