/* tscaux: IA32_TSC_AUX (0xc0000103) is each vCPU's own.  CPUID shows RDTSCP
 * (0x80000001 EDX bit 27) where the CPU has it; the MSR reads 0 at start, keeps what is
 * written (bits 63:32 are reserved: #GP), and RDTSCP (ECX) and RDPID (where CPUID leaf
 * 7 ECX bit 22 shows it) read it back, round after round while another VM with
 * another seed runs on the same CPU (SDM Vol. 2B RDTSCP, RDPID; Vol. 4 Table 2-2).
 * Command line: seed=N, rounds=N (default 6). */
#include "guest.h"

#define MSR_TSC_AUX 0xc0000103u

static uint32_t rdtscp_aux(uint64_t *tsc)
{
    uint32_t lo, hi, aux;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    *tsc = (uint64_t)hi << 32 | lo;
    return aux;
}

static uint32_t rdpid(void)
{
    uint32_t v;
    __asm__ volatile(".byte 0xf3, 0x0f, 0xc7, 0xf8" : "=a"(v));   /* rdpid %eax */
    return v;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "tscaux";
    uint32_t seed = cmdline_number(mbi, "seed", 1);
    uint32_t rounds = cmdline_number(mbi, "rounds", 6);
    uint32_t r[4];
    cpuid(0x80000001u, 0, r);
    bool have_rdtscp = r[3] & (1u << 27);
    check(have_rdtscp, "tscaux-cpuid-rdtscp", "CPUID.80000001H:EDX = %#x", r[3]);
    cpuid(7, 0, r);
    bool have_rdpid = r[2] & (1u << 22);
    gprintf("INFO tscaux: RDPID %s\n", have_rdpid ? "shown" : "not shown");
    if (!have_rdtscp)
        return;
    uint64_t v, tsc;
    check(probe_rdmsr(MSR_TSC_AUX, &v) == -1 && v == 0, "tscaux-zero-at-start", "vector %d, value %#llx",
          probe.vector, v);
    check(rdtscp_aux(&tsc) == 0, "tscaux-rdtscp-zero-at-start", "RDTSCP ECX = %#x", rdtscp_aux(&tsc));
    uint32_t mine = 0x5a000000u | seed;
    check(probe_wrmsr(MSR_TSC_AUX, mine) == -1, "tscaux-writable", "vector %d", probe.vector);
    probe_wrmsr(MSR_TSC_AUX, 1ull << 32);
    expect_fault("tscaux-reserved-gp", 13, 0);
    uint32_t bad = 0, seen = 0;
    for (uint32_t i = 1; i <= rounds; i++) {
        for (volatile uint32_t spin = 0; spin < 2000000; spin++)
            ;
        uint32_t a = rdtscp_aux(&tsc);
        uint32_t p = have_rdpid ? rdpid() : mine;
        uint64_t m = rdmsr(MSR_TSC_AUX);
        if ((a != mine || p != mine || m != mine) && !bad++)
            seen = a != mine ? a : p != mine ? p : (uint32_t)m;
        gprintf("INFO tscaux: round %u of %u, TSC_AUX %#x\n", i, rounds, a);
    }
    check(bad == 0, "tscaux-kept", "read %#x, not %#x (%u of %u rounds)", seen, mine, bad, rounds);
}
