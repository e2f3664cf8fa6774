/* cpu_msr_sweep: every MSR index class swept.  RDMSR of every index of the low range
 * (0-0x1fff), the hypervisor range (0x40000000-0x400001ff, with KVM's 0x4b564d00),
 * AMD's and Intel's 0xc0000000 and 0xc0010000 ranges (0x2000 each), and every 2^20th
 * index elsewhere; then WRMSR of odd values (all-ones, alternating bits either way)
 * to every MSR that read back, each followed by writing back what was read.
 * Hardware (SDM Vol. 2B RDMSR/WRMSR): an MSR that does not exist, or a value it
 * refuses, raises #GP(0) at the instruction, and nothing else happens; the guest
 * recovers from each and counts outcomes.  plinth must answer every access so and
 * log its "MSR not virtualized" warnings rate-limited (the boot test counts them),
 * and the state the guest relies on (EFER, PAT, APIC base, CR0/CR4) is unchanged. */
#include "hostile.h"

struct range { uint32_t first, count, stride; const char *name; };
static const struct range ranges[] = {
    { 0x00000000u, 0x2000, 1, "low" },
    { 0x40000000u, 0x200, 1, "hypervisor" },
    { 0x4b564d00u, 0x100, 1, "kvm" },
    { 0xc0000000u, 0x2000, 1, "c000" },
    { 0xc0010000u, 0x2000, 1, "c001" },
    { 0x00000000u, 0x1000, 0x100000, "every-2^20th" },
};

/* MSRs that read back: written with odd values below. */
#define READABLE_MAX 256
static uint32_t readable[READABLE_MAX];
static uint64_t readable_value[READABLE_MAX];
static unsigned readable_count;
static unsigned bad_faults;            /* any vector but #GP(0) at the instruction */
static uint32_t first_bad_msr;
static int first_bad_vector = -1;

static void note_fault(uint32_t msr)
{
    if (probe.vector < 0)
        return;
    if (probe.vector == 13 && probe.error == 0 && probe.eip == probe.at)
        return;
    if (!bad_faults++) {
        first_bad_msr = msr;
        first_bad_vector = probe.vector;
    }
}

/* Writes plinth keeps with effects on this guest itself beyond the MSR (its TSC):
 * written back from the value read, as every other. */
static const uint64_t odd_values[] = { 0xffffffffffffffffull, 0xaaaaaaaaaaaaaaaaull, 0x5555555555555555ull,
                                       0x8000000000000001ull };

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_msr_sweep";
    uint64_t efer0 = 0, pat0 = 0, apic0 = 0;
    probe_rdmsr(0xc0000080u, &efer0);
    probe_rdmsr(0x277, &pat0);
    probe_rdmsr(0x1b, &apic0);
    uint32_t cr0 = (uint32_t)read_cr0(), cr4 = (uint32_t)read_cr4();
    unsigned reads = 0, read_ok = 0, read_gp = 0;
    for (unsigned r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        unsigned ok = 0, gp = 0;
        for (uint32_t i = 0; i < ranges[r].count; i++) {
            uint32_t msr = ranges[r].first + i * ranges[r].stride;
            uint64_t v;
            int vec = probe_rdmsr(msr, &v);
            reads++;
            note_fault(msr);
            if (vec < 0) {
                ok++;
                if (readable_count < READABLE_MAX && (ranges[r].stride == 1 || msr >= 0x2000)) {
                    bool seen = false;
                    for (unsigned k = 0; k < readable_count; k++)
                        seen |= readable[k] == msr;
                    if (!seen) {
                        readable[readable_count] = msr;
                        readable_value[readable_count++] = v;
                    }
                }
            } else if (vec == 13) {
                gp++;
            }
        }
        read_ok += ok;
        read_gp += gp;
        gprintf("INFO cpu_msr_sweep: %s: %u reads, %u read back, %u #GP\n", ranges[r].name, ranges[r].count,
                ok, gp);
    }
    unsigned writes = 0, write_ok = 0, write_gp = 0, restore_bad = 0;
    uint32_t first_restore_bad = 0;
    for (unsigned k = 0; k < readable_count; k++) {
        uint32_t msr = readable[k];
        for (unsigned j = 0; j < sizeof odd_values / sizeof odd_values[0]; j++) {
            int vec = probe_wrmsr(msr, odd_values[j]);
            writes++;
            note_fault(msr);
            write_ok += vec < 0;
            write_gp += vec == 13;
            if (vec < 0) {
                /* Taken: the value read before goes back, as on hardware it would. */
                uint64_t back = readable_value[k];
                if (msr == 0x10)
                    back = rdtsc();
                if (probe_wrmsr(msr, back) >= 0 && !restore_bad++)
                    first_restore_bad = msr;
            }
        }
    }
    gprintf("INFO cpu_msr_sweep: %u MSRs read back; %u writes: %u taken, %u #GP\n", readable_count, writes,
            write_ok, write_gp);
    check(bad_faults == 0 && read_ok + read_gp == reads, "cpu-msr-sweep-gp-only",
          "%u accesses raised something else than #GP(0) at the instruction (first: MSR %#x vector %d)",
          bad_faults, first_bad_msr, first_bad_vector);
    check(read_gp > 20000 && read_ok > 10 && read_ok < 1000, "cpu-msr-sweep-counted",
          "%u of %u reads read back, %u #GP: not what a virtualized MSR set gives", read_ok, reads, read_gp);
    check(restore_bad == 0, "cpu-msr-sweep-restored",
          "%u MSRs refused the value they had read back (first %#x)", restore_bad, first_restore_bad);
    uint64_t efer1 = 0, pat1 = 0, apic1 = 0;
    int v0 = probe_rdmsr(0xc0000080u, &efer1), v1 = probe_rdmsr(0x277, &pat1), v2 = probe_rdmsr(0x1b, &apic1);
    check(v0 < 0 && v1 < 0 && v2 < 0 && efer1 == efer0 && pat1 == pat0 && apic1 == apic0 &&
          (uint32_t)read_cr0() == cr0 && (uint32_t)read_cr4() == cr4, "cpu-msr-sweep-state-intact",
          "EFER %#llx -> %#llx, PAT %#llx -> %#llx, APIC base %#llx -> %#llx, CR0 %#x -> %#x, CR4 %#x -> %#x",
          efer0, efer1, pat0, pat1, apic0, apic1, cr0, (uint32_t)read_cr0(), cr4, (uint32_t)read_cr4());
}
