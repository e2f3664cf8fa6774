/* msr: unknown MSRs raise #GP(0) at the instruction (SDM Vol. 2B, RDMSR/WRMSR); the
 * MSRs plinth virtualizes read and write as on hardware. */
#include "guest.h"

#define MSR_TSC       0x10
#define MSR_APIC_BASE 0x1b
#define MSR_PAT       0x277
#define MSR_EFER      0xc0000080u

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "msr";
    uint64_t v;

    /* Outside every MSR range, and one inside the low range that no CPU defines. */
    probe_rdmsr(0x12345678u, &v);
    expect_fault("msr-read-unknown-gp", 13, 0);
    probe_rdmsr(0x00001234u, &v);
    expect_fault("msr-read-unknown-low-gp", 13, 0);
    probe_wrmsr(0x12345678u, 0x1122334455667788ull);
    expect_fault("msr-write-unknown-gp", 13, 0);

    int vec = probe_rdmsr(MSR_EFER, &v);
    /* Protected mode without paging: LMA clear. */
    check(vec < 0 && !(v & (1u << 10)), "msr-efer", "vector %d, EFER = %#llx", vec, v);

    vec = probe_rdmsr(MSR_APIC_BASE, &v);
    check(vec < 0 && (v & ~0xfffull) == 0xfee00000ull && (v & (1u << 8)), "msr-apic-base",
          "vector %d, IA32_APIC_BASE = %#llx (expected base 0xfee00000 with the BSP flag)", vec, v);

    uint64_t t0 = 0, t1 = 0;
    int v0 = probe_rdmsr(MSR_TSC, &t0);
    for (volatile int i = 0; i < 10000; i++)
        ;
    int v1 = probe_rdmsr(MSR_TSC, &t1);
    check(v0 < 0 && v1 < 0 && t1 > t0, "msr-tsc", "vectors %d/%d, TSC %#llx then %#llx", v0, v1, t0, t1);

    uint64_t pat0 = 0, pat1 = 0;
    const uint64_t want = 0x0007010600070106ull;   /* valid memory types only (SDM Vol. 3A §13.12.2) */
    v0 = probe_rdmsr(MSR_PAT, &pat0);
    v1 = probe_wrmsr(MSR_PAT, want);
    int v2 = probe_rdmsr(MSR_PAT, &pat1);
    probe_wrmsr(MSR_PAT, pat0);
    check(v0 < 0 && v1 < 0 && v2 < 0 && pat1 == want, "msr-pat-roundtrip",
          "vectors %d/%d/%d, wrote %#llx read %#llx", v0, v1, v2, want, pat1);

    /* PAT memory type 2 is reserved: #GP (SDM Vol. 3A §13.12.2). */
    probe_wrmsr(MSR_PAT, 0x0007040600070402ull);
    expect_fault("msr-pat-reserved-gp", 13, 0);
}
