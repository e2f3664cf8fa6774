/* cpuid: the CPUID view plinth gives a guest (vmm/cpuid.c): its hypervisor leaves,
 * VMX, SVM and MONITOR hidden, the hypervisor bit set (SDM Vol. 2A, CPUID). */
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
    check(r[0] == 0x40000001u, "cpuid-hv-max-leaf", "leaf 0x40000000 EAX = %#x, expected 0x40000001", r[0]);
}
