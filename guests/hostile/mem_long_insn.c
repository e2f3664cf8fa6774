/* mem_long_insn: MOVs to and from the local APIC padded with redundant prefixes to
 * the architectural limit: 15 bytes are emulated like the bare instruction; 16 bytes
 * raise #GP(0) (SDM Vol. 2A §2.3.11) and touch nothing, on every padding prefix. */
#include "hostile.h"

#define APIC_TPR 0x080

static uint8_t code[64];

/* prefix x n, then 8b 05 / 89 05 disp32 (mov eax, [TPR] / mov [TPR], eax), ret. */
static uint32_t run(uint8_t prefix, unsigned n, bool store, uint32_t eax)
{
    unsigned o = 0;
    for (unsigned i = 0; i < n; i++)
        code[o++] = prefix;
    code[o++] = store ? 0x89 : 0x8b;
    code[o++] = 0x05;
    uint32_t a = APIC + APIC_TPR;
    memcpy(code + o, &a, 4);
    o += 4;
    code[o] = 0xc3;
    return probe_call(code, code + o, eax);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_long_insn";
    idt_init();
    static const uint8_t pads[] = { 0x3e, 0x26, 0x36, 0xf3, 0xf2 };
    unsigned ok15 = 0, gp16 = 0, bad = 0;
    for (unsigned i = 0; i < sizeof pads; i++) {
        apic_write(APIC_TPR, 0x30);
        uint32_t v = run(pads[i], 9, false, 0);
        if (probe.vector < 0 && v == 0x30)
            ok15++;
        else if (bad++ == 0)
            gprintf("INFO mem_long_insn: 15-byte load with %#x: vector %d value %#x\n", pads[i], probe.vector, v);
        run(pads[i], 9, true, 0x50);
        if (probe.vector < 0 && apic_read(APIC_TPR) == 0x50)
            ok15++;
        else if (bad++ == 0)
            gprintf("INFO mem_long_insn: 15-byte store with %#x: vector %d TPR %#x\n", pads[i], probe.vector,
                    apic_read(APIC_TPR));
        v = run(pads[i], 10, false, 0x1234);
        if (probe.vector == 13 && probe.error == 0 && v == 0x1234)
            gp16++;
        else if (bad++ == 0)
            gprintf("INFO mem_long_insn: 16-byte load with %#x: vector %d error %#x value %#x\n", pads[i],
                    probe.vector, probe.error, v);
        run(pads[i], 10, true, 0x70);
        if (probe.vector == 13 && probe.error == 0 && apic_read(APIC_TPR) == 0x50)
            gp16++;
        else if (bad++ == 0)
            gprintf("INFO mem_long_insn: 16-byte store with %#x: vector %d TPR %#x\n", pads[i], probe.vector,
                    apic_read(APIC_TPR));
    }
    apic_write(APIC_TPR, 0);
    check(ok15 == 2 * sizeof pads, "mem-long-insn-15-emulated", "%u of %u 15-byte accesses right", ok15,
          (unsigned)(2 * sizeof pads));
    check(gp16 == 2 * sizeof pads, "mem-long-insn-16-gp", "%u of %u 16-byte accesses gave #GP(0) untouched", gp16,
          (unsigned)(2 * sizeof pads));
    done();
}
