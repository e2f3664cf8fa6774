/* cpu_xsetbv: invalid XSETBVs: an XCR index that does not exist (1, 0xffffffff), XCR0
 * with x87 clear, AVX without SSE, reserved bits (63, 62, every bit the CPUID view
 * does not offer), many random values; before CR4.OSXSAVE, XSETBV itself.  Hardware
 * (SDM Vol. 2D XSETBV, Vol. 1 §13.3): #UD without CR4.OSXSAVE, else #GP(0) at the
 * instruction, XCR0 unchanged; a valid value takes. */
#include "hostile.h"

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int xsetbv_probe(uint32_t index, uint64_t value)
{
    PROBE_ASM("xsetbv", : : "c"(index), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)) : "memory");
    return probe.vector;
}

static void bad(const char *name, uint32_t index, uint64_t value)
{
    uint64_t before = xgetbv0();
    xsetbv_probe(index, value);
    uint64_t after = xgetbv0();
    if (probe.vector == 13 && probe.error == 0 && probe.eip == probe.at && after == before)
        pass(name);
    else
        fail(name, "XSETBV XCR%#x <- %#llx: vector %d error %#x, XCR0 %#llx -> %#llx", index, value,
             probe.vector, probe.error, before, after);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_xsetbv";
    uint32_t r[4];
    cpuid(1, 0, r);
    if (!(r[2] & (1u << 26))) {
        fail("cpu-xsetbv-xsave-shown", "CPUID.1:ECX %#x shows no XSAVE", r[2]);
        return;
    }
    xsetbv_probe(0, 3);
    expect_fault("cpu-xsetbv-without-osxsave-ud", 6, -1);
    write_cr4(read_cr4() | (1u << 18) | (1u << 9));
    cpuid(0xd, 0, r);
    uint64_t offered = (uint64_t)r[3] << 32 | r[0];
    gprintf("INFO cpu_xsetbv: XCR0 may hold %#llx, holds %#llx\n", offered, xgetbv0());
    bad("cpu-xsetbv-xcr1-gp", 1, 3);
    bad("cpu-xsetbv-xcr-ffffffff-gp", 0xffffffffu, 3);
    bad("cpu-xsetbv-x87-clear-gp", 0, 2);
    bad("cpu-xsetbv-zero-gp", 0, 0);
    if (offered & 4)
        bad("cpu-xsetbv-avx-without-sse-gp", 0, 5);
    else
        bad("cpu-xsetbv-avx-without-sse-gp", 0, 5);    /* AVX not offered: reserved */
    bad("cpu-xsetbv-bit63-gp", 0, 3 | 1ull << 63);
    bad("cpu-xsetbv-all-ones-gp", 0, ~0ull);
    uint64_t unoffered = ~offered & 0x3ffull;
    if (unoffered) {
        uint64_t bit = unoffered & -unoffered;
        bad("cpu-xsetbv-unoffered-gp", 0, 3 | bit);
    } else {
        bad("cpu-xsetbv-unoffered-gp", 0, 3 | 1ull << 40);
    }
    /* Random values: each either valid (x87 set, SSE if AVX, only offered bits) and
     * taken, or #GP with XCR0 unchanged. */
    uint32_t seed = 99;
    unsigned wrong = 0, taken = 0;
    /* (QEMU's TCG ignores the XSETBV intercept and takes bits the CPUID view does not
     * offer, e.g. MPX's: the SVM test skips this.) */
    bool skip = skipped("cpu-xsetbv-random");
    for (int i = 0; i < 400 && !skip; i++) {
        uint64_t v = (uint64_t)lcg(&seed) << 32 | lcg(&seed);
        if (i & 1)
            v &= 0x3ff;
        uint64_t before = xgetbv0();
        bool valid = (v & 1) && !(v & ~offered) && (!(v & 4) || (v & 2));
        int vec = xsetbv_probe(i & 3 ? 0 : lcg(&seed) | 1, v);
        bool ok_insn = (i & 3) == 0 ? vec == 13 : valid ? vec < 0 && xgetbv0() == v
                                                        : vec == 13 && xgetbv0() == before;
        wrong += !ok_insn;
        taken += vec < 0;
    }
    if (!skip)
        check(wrong == 0, "cpu-xsetbv-random", "%u of 400 random XSETBVs got another outcome than the SDM's", wrong);
    xsetbv_probe(0, 3);
    check(probe.vector < 0 && xgetbv0() == 3, "cpu-xsetbv-valid-takes", "vector %d, XCR0 %#llx", probe.vector,
          xgetbv0());
    gprintf("INFO cpu_xsetbv: %u random values taken\n", taken);
}
