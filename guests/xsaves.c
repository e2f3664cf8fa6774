/* xsaves: the supervisor state of XSAVES/XRSTORS is the guest's own.  plinth gives
 * guests no supervisor state components (CPUID.(EAX=0DH,ECX=1):ECX/EDX = 0), so
 * IA32_XSS (0xda0) must read 0 and refuse any other value with #GP, and XSAVES then
 * saves only user components, never a host's (SDM Vol. 1 §13.2, §13.11; Vol. 4 Table
 * 2-2).  Where CPUID hides XSAVES, XSS does not exist (#GP) and XSAVES is #UD on Intel
 * (the "enable XSAVES/XRSTORS" control, SDM Vol. 3C §26.3); AMD CPUs cannot hide the
 * instruction, so there it must still save nothing supervisor. */
#include "guest.h"

#define MSR_XSS 0xda0u

static uint8_t area[4096] __attribute__((aligned(64)));

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "xsaves";
    uint32_t r[4];
    cpuid(1, 0, r);
    if (!(r[2] & (1u << 26))) {
        gprintf("INFO xsaves: no XSAVE on this CPU\n");
        pass("xsaves-consistent");
        return;
    }
    write_cr4(read_cr4() | (1u << 18) | (1u << 9));          /* OSXSAVE, OSFXSR */
    __asm__ volatile("xsetbv" : : "c"(0), "a"(3), "d"(0));    /* x87 | SSE */
    cpuid(0xd, 1, r);
    bool shown = r[0] & (1u << 3);
    gprintf("INFO xsaves: CPUID.(0DH,1) = %#x %#x %#x %#x\n", r[0], r[1], r[2], r[3]);
    check(r[2] == 0 && r[3] == 0, "xsaves-no-supervisor-components", "ECX %#x EDX %#x", r[2], r[3]);
    uint64_t v;
    if (shown) {
        check(probe_rdmsr(MSR_XSS, &v) == -1 && v == 0, "xsaves-xss-zero", "vector %d value %#llx",
              probe.vector, v);
        check(probe_wrmsr(MSR_XSS, 0) == -1, "xsaves-xss-write-zero", "vector %d", probe.vector);
        probe_wrmsr(MSR_XSS, 1ull << 8);
        expect_fault("xsaves-xss-pt-gp", 13, 0);
        memset(area, 0, sizeof area);
        PROBE_ASM(".byte 0x0f, 0xc7, 0x2f", : : "D"(area), "a"(0xffffffffu), "d"(0xffffffffu) : "memory");
        uint64_t xstate_bv = *(uint64_t *)(area + 512), xcomp_bv = *(uint64_t *)(area + 520);
        check(probe.vector == -1 && (xstate_bv & ~3ull) == 0 && (xcomp_bv & ~(3ull | 1ull << 63)) == 0,
              "xsaves-user-components-only", "vector %d, XSTATE_BV %#llx XCOMP_BV %#llx", probe.vector,
              xstate_bv, xcomp_bv);
        PROBE_ASM(".byte 0x0f, 0xc7, 0x1f", : : "D"(area), "a"(0xffffffffu), "d"(0xffffffffu) : "memory");
        check(probe.vector == -1, "xsaves-xrstors", "vector %d", probe.vector);
    } else {
        probe_rdmsr(MSR_XSS, &v);
        expect_fault("xsaves-hidden-xss-gp", 13, 0);
        if (!cpu_is_amd()) {
            PROBE_ASM(".byte 0x0f, 0xc7, 0x2f", : : "D"(area), "a"(3), "d"(0) : "memory");
            expect_fault("xsaves-hidden-ud", 6, -1);
        }
    }
}
