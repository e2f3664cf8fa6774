/* cpu_feature_insns: instructions whose presence CPUID reports, each tried whatever
 * CPUID says: INVPCID, XSAVES, RDPID, RDTSCP, MONITOR/MWAIT, MONITORX/MWAITX, and
 * RDPMC of every counter index class.  Hardware: an instruction CPUID hides raises
 * #UD, one it shows works (SDM Vol. 2; VT-x: the "enable INVPCID", "enable
 * XSAVES/XRSTORS" and "enable RDTSCP" controls make them #UD, §26.3).  AMD-V cannot
 * hide XSAVES (no such control), so there a hidden XSAVES may still run.  RDPMC has no
 * CPUID bit: #GP(0) for a counter that does not exist (Intel: leaf 0xA reports
 * none; AMD: the four legacy counters read). */
#include "hostile.h"

static uint8_t area[4096] __attribute__((aligned(64)));
static bool amd;

static void shown_works(const char *name, bool shown)
{
    if (shown)
        check(probe.vector < 0, name, "shown in CPUID, but raised vector %d", probe.vector);
    else if (probe.vector == 6 && probe.eip == probe.at)
        pass(name);
    else
        fail(name, "hidden in CPUID, but vector %d (not #UD)", probe.vector);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_feature_insns";
    amd = cpu_is_amd();
    uint32_t l1[4], l7[4], e1[4], d1[4] = { 0 };
    cpuid(1, 0, l1);
    cpuid(7, 0, l7);
    cpuid(0x80000001u, 0, e1);
    bool invpcid = l7[1] & (1u << 10), rdpid = l7[2] & (1u << 22), rdtscp = e1[3] & (1u << 27);
    bool xsave = l1[2] & (1u << 26), monitor = l1[2] & (1u << 3), monitorx = e1[2] & (1u << 29);
    if (xsave)
        cpuid(0xd, 1, d1);
    bool xsaves = d1[0] & (1u << 3);
    gprintf("INFO cpu_feature_insns: INVPCID %u XSAVES %u RDPID %u RDTSCP %u MONITOR %u MONITORX %u\n",
            invpcid, xsaves, rdpid, rdtscp, monitor, monitorx);

    /* INVPCID type 2 (all contexts, globals too) with a zero descriptor. */
    memset(area, 0, 16);
    for (int i = 0; i < 50; i++)
        PROBE_ASM("invpcid (%0), %1", : : "r"(area), "r"(2) : "memory");
    shown_works("cpu-invpcid-as-cpuid-says", invpcid);

    if (rdtscp)
        wrmsr(0xc0000103u, 0x1234);
    uint32_t aux = 0;
    PROBE_ASM("rdpid %0", : "+r"(aux) : : "memory");
    shown_works("cpu-rdpid-as-cpuid-says", rdpid);
    if (rdpid)
        check(aux == 0x1234, "cpu-rdpid-reads-tsc-aux", "RDPID read %#x, TSC_AUX holds 0x1234", aux);
    uint32_t c = 0;
    PROBE_ASM("rdtscp", : "+c"(c) : : "eax", "edx", "memory");
    shown_works("cpu-rdtscp-as-cpuid-says", rdtscp);

    static volatile uint32_t line;
    PROBE_ASM("monitor", : : "a"(&line), "c"(0), "d"(0) : "memory");
    shown_works("cpu-monitor-as-cpuid-says", monitor);
    if (!monitor) {
        PROBE_ASM("mwait", : : "a"(0), "c"(0) : "memory");
        shown_works("cpu-mwait-as-cpuid-says", false);
    }
    PROBE_ASM(".byte 0x0f, 0x01, 0xfa", : : "a"(&line), "c"(0), "d"(0) : "memory");   /* monitorx */
    shown_works("cpu-monitorx-as-cpuid-says", monitorx);
    if (!monitorx) {
        PROBE_ASM(".byte 0x0f, 0x01, 0xfb", : : "a"(0), "b"(0), "c"(0) : "memory");   /* mwaitx */
        shown_works("cpu-mwaitx-as-cpuid-says", false);
    }

    if (xsave) {
        write_cr4(read_cr4() | (1u << 18) | (1u << 9));
        __asm__ volatile("xsetbv" : : "c"(0), "a"(3), "d"(0));
        memset(area, 0, sizeof area);
        PROBE_ASM(".byte 0x0f, 0xc7, 0x2f", : : "D"(area), "a"(3), "d"(0) : "memory");      /* xsaves (%edi) */
        if (!xsaves && amd)
            gprintf("INFO cpu_feature_insns: hidden XSAVES on AMD-V gave vector %d (no control hides it)\n",
                    probe.vector);
        else
            shown_works("cpu-xsaves-as-cpuid-says", xsaves);
    }

    /* RDPMC: every index class. */
    static const uint32_t idx[] = { 0, 1, 3, 4, 5, 0x1f, 0x40000000u, 0x40000001u, 0x20000000u, 0x80000000u,
                                    0xffffffffu };
    unsigned wrong = 0;
    for (unsigned i = 0; i < sizeof idx / sizeof idx[0]; i++) {
        uint32_t lo = 0xdead, hi = 0xbeef;
        PROBE_ASM("rdpmc", : "+a"(lo), "+d"(hi) : "c"(idx[i]) : "memory");
        bool exists = amd && idx[i] < 4;
        bool ok = exists ? probe.vector < 0 && lo == 0 && hi == 0
                         : probe.vector == 13 && probe.error == 0 && probe.eip == probe.at;
        if (!ok && !wrong++)
            gprintf("INFO cpu_feature_insns: RDPMC %#x: vector %d, %#x:%#x\n", idx[i], probe.vector, hi, lo);
    }
    check(wrong == 0, "cpu-rdpmc-counters", "%u RDPMC indices answered otherwise than %s", wrong,
          amd ? "counters 0-3 reading 0, the rest #GP" : "#GP for every counter (no PMU)");
}
