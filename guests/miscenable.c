/* miscenable: IA32_MISC_ENABLE (0x1a0), which kernels read and write back with a few
 * bits changed (SDM Vol. 4 Table 2-2): on an Intel CPU the read/write bits (fast
 * strings 0, automatic thermal control 3, EIST 16, MONITOR FSM 18, limit CPUID maxval
 * 22, xTPR disable 23, XD disable 34) keep what is written, the read-only ones
 * (performance monitoring available 7, BTS and PEBS unavailable 11 and 12) stay as
 * they are, and a reserved bit #GPs.  AMD CPUs have no such MSR: #GP. */
#include "guest.h"

#define MSR_MISC_ENABLE 0x1a0u
#define RW_BITS ((1ull << 0) | (1ull << 3) | (1ull << 16) | (1ull << 18) | (1ull << 22) | \
                 (1ull << 23) | (1ull << 34))

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "miscenable";
    uint64_t v, orig;
    if (cpu_is_amd()) {
        probe_rdmsr(MSR_MISC_ENABLE, &v);
        expect_fault("miscenable-amd-read-gp", 13, 0);
        probe_wrmsr(MSR_MISC_ENABLE, 1);
        expect_fault("miscenable-amd-write-gp", 13, 0);
        return;
    }
    check(probe_rdmsr(MSR_MISC_ENABLE, &orig) == -1, "miscenable-read", "vector %d", probe.vector);
    gprintf("INFO miscenable: IA32_MISC_ENABLE = %#llx\n", orig);
    check(probe_wrmsr(MSR_MISC_ENABLE, orig) == -1, "miscenable-write-back", "vector %d", probe.vector);
    /* As Linux does: fast strings off and on, MONITOR FSM off, XD disable cleared. */
    uint64_t want = (orig & ~1ull) | (1ull << 16) | (1ull << 22);
    bool ok = probe_wrmsr(MSR_MISC_ENABLE, want) == -1 && probe_rdmsr(MSR_MISC_ENABLE, &v) == -1 && v == want;
    check(ok, "miscenable-rw-bits-kept", "wrote %#llx, read %#llx (vector %d)", want, v, probe.vector);
    want = orig | RW_BITS;
    ok = probe_wrmsr(MSR_MISC_ENABLE, want) == -1 && probe_rdmsr(MSR_MISC_ENABLE, &v) == -1 && v == want;
    check(ok, "miscenable-all-rw-bits", "wrote %#llx, read %#llx (vector %d)", want, v, probe.vector);
    ok = probe_wrmsr(MSR_MISC_ENABLE, orig ^ (1ull << 7)) == -1 && probe_rdmsr(MSR_MISC_ENABLE, &v) == -1 &&
         ((v ^ orig) & (1ull << 7)) == 0;
    check(ok, "miscenable-ro-bit-unchanged", "bit 7 toggled to %#llx (vector %d)", v, probe.vector);
    probe_wrmsr(MSR_MISC_ENABLE, orig | (1ull << 63));
    expect_fault("miscenable-reserved-gp", 13, 0);
    probe_wrmsr(MSR_MISC_ENABLE, orig);
}
