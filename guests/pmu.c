/* pmu: performance monitoring as a guest without a PMU sees it.  On Intel (CPUID leaf
 * 0xA version 0: no architectural counters) RDPMC raises #GP (SDM Vol. 2B, RDPMC).  On
 * AMD the four legacy counters exist on every CPU (APM Vol. 2 §13.2.1): PERF_CTL0-3
 * at 0xc0010000 and PERF_CTR0-3 at 0xc0010004 read as zero at start, keep what is
 * written (reserved control bits #GP), never count, and RDPMC with ECX 0-3 reads the
 * counters; ECX 4 and up #GP without the core counter extensions. */
#include "guest.h"

#define AMD_PERF_CTL0 0xc0010000u
#define AMD_PERF_CTR0 0xc0010004u
/* PERF_CTL: EventSelect 7:0 and 35:32, UnitMask, USR, OS, Edge, INT, EN, INV, CntMask
 * 31:24, HostOnly/GuestOnly 41:40 (APM Vol. 2 Figure 13-7). */
#define CTL_EVENT_EN  0x0043003cull   /* event 0x3c, USR, OS, EN */

static int probe_rdpmc(uint32_t index, uint64_t *value)
{
    uint32_t lo = 0, hi = 0;
    PROBE_ASM("rdpmc", : "+a"(lo), "+d"(hi) : "c"(index) : "memory");
    *value = (uint64_t)hi << 32 | lo;
    return probe.vector;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "pmu";
    uint64_t v;
    if (!cpu_is_amd()) {
        uint32_t r[4];
        cpuid(0xa, 0, r);
        check((r[0] & 0xff) == 0, "pmu-intel-no-counters", "CPUID.0AH:EAX = %#x", r[0]);
        probe_rdpmc(0, &v);
        expect_fault("pmu-intel-rdpmc-gp", 13, 0);
        probe_rdpmc(1u << 30, &v);
        expect_fault("pmu-intel-rdpmc-fixed-gp", 13, 0);
        return;
    }
    bool zero = true;
    for (uint32_t i = 0; i < 8; i++)
        if (probe_rdmsr(AMD_PERF_CTL0 + i, &v) != -1 || v != 0)
            zero = false;
    check(zero, "pmu-amd-msrs-zero", "a PERF_CTL/CTR MSR faulted or was nonzero");
    bool kept = true;
    for (uint32_t i = 0; i < 4; i++) {
        uint64_t ctl = CTL_EVENT_EN | i, ctr = 0x123456789a00ull + i;
        if (probe_wrmsr(AMD_PERF_CTL0 + i, ctl) != -1 || probe_wrmsr(AMD_PERF_CTR0 + i, ctr) != -1)
            kept = false;
        else if (probe_rdmsr(AMD_PERF_CTL0 + i, &v) != -1 || v != ctl)
            kept = false;
        else if (probe_rdmsr(AMD_PERF_CTR0 + i, &v) != -1 || v != ctr)
            kept = false;
    }
    check(kept, "pmu-amd-writes-kept", "a write faulted or did not read back");
    /* Enabled with an event that counts every cycle: still the value written. */
    for (volatile int i = 0; i < 100000; i++)
        ;
    probe_rdmsr(AMD_PERF_CTR0, &v);
    check(v == 0x123456789a00ull, "pmu-amd-never-counts", "PERF_CTR0 = %#llx", v);
    check(probe_rdpmc(2, &v) == -1 && v == 0x123456789a02ull, "pmu-amd-rdpmc",
          "vector %d, RDPMC 2 = %#llx", probe.vector, v);
    probe_rdpmc(4, &v);
    expect_fault("pmu-amd-rdpmc-4-gp", 13, 0);
    probe_wrmsr(AMD_PERF_CTL0, 1ull << 50);
    expect_fault("pmu-amd-ctl-reserved-gp", 13, 0);
    for (uint32_t i = 0; i < 8; i++)
        probe_wrmsr(AMD_PERF_CTL0 + i, 0);
}
