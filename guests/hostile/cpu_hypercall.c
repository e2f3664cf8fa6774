/* cpu_hypercall: VMCALL and VMMCALL, 600 of each, with every general register holding
 * another value (KVM's and Hyper-V's hypercall numbers among them, pointers into this
 * VM's RAM, at the APIC, past its end).  plinth has no hypercall interface: as on a
 * CPU outside VMX non-root operation / without SVM (SDM Vol. 2C VMCALL, APM Vol. 3
 * VMMCALL) each raises #UD at the instruction and changes no register. */
#include "hostile.h"

static const uint32_t specials[] = { 0, 1, 5, 9, 10, 11, 12, 0x10, 0x4c564b, 0x10000, 0x100000, 0x3ff000,
                                     0x400000, 0xfee00000, 0x7fffffff, 0x80000000, 0xffffffff };

static bool one(bool amd_form, uint32_t *seed, unsigned i)
{
    uint32_t a = i < sizeof specials / sizeof specials[0] ? specials[i] : lcg(seed);
    uint32_t b = lcg(seed), c = lcg(seed), d = lcg(seed), s = lcg(seed), di = lcg(seed);
    uint32_t a0 = a, b0 = b, c0 = c, d0 = d, s0 = s, di0 = di;
    if (amd_form)
        PROBE_ASM(".byte 0x0f, 0x01, 0xd9", : "+a"(a), "+b"(b), "+c"(c), "+d"(d), "+S"(s), "+D"(di) : : "memory");
    else
        PROBE_ASM(".byte 0x0f, 0x01, 0xc1", : "+a"(a), "+b"(b), "+c"(c), "+d"(d), "+S"(s), "+D"(di) : : "memory");
    return probe.vector == 6 && probe.eip == probe.at && a == a0 && b == b0 && c == c0 && d == d0 && s == s0 &&
           di == di0;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_hypercall";
    for (int form = 0; form < 2; form++) {
        uint32_t seed = 77 + form;
        unsigned bad = 0;
        int last = -1;
        for (unsigned i = 0; i < 600; i++)
            if (!one(form, &seed, i)) {
                bad++;
                last = probe.vector;
            }
        check(bad == 0, form ? "cpu-vmmcall-ud-600" : "cpu-vmcall-ud-600",
              "%u of 600 did not raise #UD at the instruction with the registers unchanged (vector %d)", bad, last);
    }
}
