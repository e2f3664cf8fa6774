/* cpu_cpuid_range: CPUID with leaves past every range the CPU reports (past the
 * highest basic leaf, past plinth's hypervisor leaves, 0x50000000-0x7fffffff, past the
 * highest extended leaf, 0xc0000000 up to 0xffffffff) and huge subleaves, thousands of
 * them.  Hardware: an AMD CPU answers a leaf it does not have with zeros (APM Vol. 3,
 * CPUID), an Intel CPU with the highest basic leaf's data (SDM Vol. 2A, CPUID: "If a
 * value entered for CPUID.EAX is higher than the maximum input value for basic or
 * extended function for that processor then the data for the highest basic
 * information leaf is returned"); a subleaf past a leaf's last reads as an invalid
 * one (leaf 0xB: level type 0 with ECX[7:0] echoed; 7, 0xD: zeros). */
#include "hostile.h"

static uint32_t max_basic, max_ext, max_hv;
static bool amd;

/* What hardware gives for an out-of-range leaf. */
static void expected(uint32_t sub, uint32_t r[4])
{
    if (amd)
        r[0] = r[1] = r[2] = r[3] = 0;
    else
        cpuid(max_basic, sub, r);
}

static bool in_range(uint32_t leaf)
{
    if (leaf <= max_basic)
        return true;
    if (leaf >= 0x40000000u && leaf <= max_hv)
        return true;
    if (leaf >= 0x40000100u && leaf <= 0x40000101u)
        return true;    /* the KVM-compatible clock leaves */
    return leaf >= 0x80000000u && leaf <= max_ext;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_cpuid_range";
    uint32_t r[4], w[4];
    amd = cpu_is_amd();
    cpuid(0, 0, r);
    max_basic = r[0];
    cpuid(0x80000000u, 0, r);
    max_ext = r[0];
    cpuid(0x40000000u, 0, r);
    max_hv = r[0];
    gprintf("INFO cpu_cpuid_range: %s, leaves up to %#x, %#x, %#x\n", amd ? "AMD" : "Intel", max_basic, max_hv,
            max_ext);
    static const uint32_t leaves[] = { 0x20, 0x21, 0x100, 0x12345678, 0x3fffffff, 0x40000011, 0x400000ff,
                                       0x40000102, 0x4fffffff, 0x50000000, 0x7fffffff, 0x80000009,
                                       0x8000001f, 0x80000020, 0x8fffffff, 0xc0000000, 0xc0000001,
                                       0xdeadbeef, 0xfffffffe, 0xffffffff };
    unsigned wrong = 0;
    uint32_t first_wrong = 0;
    for (unsigned i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        if (in_range(leaves[i]))
            continue;
        for (uint32_t sub = 0; sub < 3; sub++) {
            cpuid(leaves[i], sub ? 0xffffffffu - sub : 0, r);
            expected(sub ? 0xffffffffu - sub : 0, w);
            if (memcmp(r, w, sizeof r) && !wrong++) {
                first_wrong = leaves[i];
                gprintf("INFO cpu_cpuid_range: leaf %#x gave %#x %#x %#x %#x, expected %#x %#x %#x %#x\n",
                        leaves[i], r[0], r[1], r[2], r[3], w[0], w[1], w[2], w[3]);
            }
        }
    }
    check(!wrong, "cpu-cpuid-out-of-range-leaves", "%u answers differ from the %s rule (first: leaf %#x)",
          wrong, amd ? "AMD" : "Intel", first_wrong);
    /* Thousands of random leaves and subleaves. */
    uint32_t seed = 12345;
    unsigned count = 0;
    wrong = 0;
    for (int i = 0; i < 3000; i++) {
        uint32_t leaf = lcg(&seed), sub = lcg(&seed);
        if (in_range(leaf))
            continue;
        count++;
        cpuid(leaf, sub, r);
        expected(sub, w);
        if (memcmp(r, w, sizeof r) && !wrong++)
            first_wrong = leaf;
    }
    check(!wrong && count > 2000, "cpu-cpuid-random-leaves", "%u of %u random leaves answered wrongly (first %#x)",
          wrong, count, first_wrong);
    /* Huge subleaves of leaves that have subleaves. */
    cpuid(0xb, 0xffffffffu, r);
    cpuid(1, 0, w);
    check(r[0] == 0 && r[1] == 0 && r[2] == 0xff && r[3] == w[1] >> 24, "cpu-cpuid-leaf-b-huge-subleaf",
          "leaf 0xB subleaf 0xffffffff: %#x %#x %#x %#x", r[0], r[1], r[2], r[3]);
    bool zeros = true;
    static const uint32_t subs[] = { 1, 2, 0x40, 0x1000, 0x7fffffff, 0xffffffff };
    for (unsigned i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        cpuid(7, subs[i], r);
        zeros &= !(r[0] | r[1] | r[2] | r[3]);
        if (subs[i] >= 0x40) {
            cpuid(0xd, subs[i], r);
            zeros &= !(r[0] | r[1] | r[2] | r[3]);
        }
    }
    check(zeros, "cpu-cpuid-huge-subleaves-zero", "a subleaf past leaf 7's or 0xD's last was not zeros");
    /* And the leaves in range still answer as they did. */
    cpuid(0, 0, r);
    check(r[0] == max_basic, "cpu-cpuid-intact", "leaf 0 now says %#x", r[0]);
}
