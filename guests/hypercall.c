/* hypercall: plinth offers guests no hypercall interface, so VMCALL (Intel) and
 * VMMCALL (AMD) raise #UD as on a CPU without virtualization, whatever the registers
 * hold (KVM's hypercall numbers among them), and change no register (SDM Vol. 2C
 * VMCALL; APM Vol. 3 VMMCALL).  MONITOR/MWAIT are hidden in CPUID and #UD, and so are
 * AMD's MONITORX/MWAITX (CPUID 0x80000001 ECX bit 29). */
#include "guest.h"

static const uint32_t values[] = { 0, 1, 5, 9, 11, 12, 0x10, 0x4c564b, 0x7fffffff, 0xffffffff };

static bool call_ud(bool amd_form, uint32_t value)
{
    uint32_t a = value, b = ~value, c = value ^ 0x55aa55aa, d = value + 1;
    if (amd_form)
        PROBE_ASM(".byte 0x0f, 0x01, 0xd9", : "+a"(a), "+b"(b), "+c"(c), "+d"(d) : : "memory");
    else
        PROBE_ASM(".byte 0x0f, 0x01, 0xc1", : "+a"(a), "+b"(b), "+c"(c), "+d"(d) : : "memory");
    return probe.vector == 6 && probe.eip == probe.at && a == value && b == ~value &&
           c == (value ^ 0x55aa55aa) && d == value + 1;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "hypercall";
    bool ok = true;
    for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++)
        ok &= call_ud(false, values[i]);
    check(ok, "hypercall-vmcall-ud", "a VMCALL did not raise #UD with registers unchanged (last vector %d)",
          probe.vector);
    ok = true;
    for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++)
        ok &= call_ud(true, values[i]);
    check(ok, "hypercall-vmmcall-ud", "a VMMCALL did not raise #UD with registers unchanged (last vector %d)",
          probe.vector);
    uint32_t r[4];
    cpuid(1, 0, r);
    check(!(r[2] & (1u << 3)), "hypercall-monitor-hidden", "CPUID.1:ECX = %#x", r[2]);
    cpuid(0x80000001u, 0, r);
    check(!(r[2] & (1u << 29)), "hypercall-monitorx-hidden", "CPUID.80000001H:ECX = %#x", r[2]);
    static volatile uint32_t line;
    PROBE_ASM("monitor", : : "a"(&line), "c"(0), "d"(0) : "memory");
    expect_fault("hypercall-monitor-ud", 6, -1);
    PROBE_ASM("mwait", : : "a"(0), "c"(0) : "memory");
    expect_fault("hypercall-mwait-ud", 6, -1);
    PROBE_ASM(".byte 0x0f, 0x01, 0xfa", : : "a"(&line), "c"(0), "d"(0) : "memory");   /* monitorx */
    expect_fault("hypercall-monitorx-ud", 6, -1);
    PROBE_ASM(".byte 0x0f, 0x01, 0xfb", : : "a"(0), "b"(0), "c"(0) : "memory");       /* mwaitx */
    expect_fault("hypercall-mwaitx-ud", 6, -1);
}
