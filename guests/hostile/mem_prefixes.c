/* mem_prefixes: every combination of legacy prefixes on an emulated load from the
 * local APIC's TPR, each in two orders: a segment override (ES CS SS DS GS flat, or
 * FS with its base on the APIC page, then with 16-bit addressing too), operand size
 * (66: a 16-bit load, which leaves EAX's upper half; the APIC answers narrow reads
 * with 0, as dev_lapic checks), REP/REPNE (ignored on MOV), a doubled
 * prefix, and LOCK (#UD before any access, EAX untouched).  Each result is compared
 * with what the CPU does. */
#include "hostile.h"

#define APIC_TPR 0x080
#define TPR_VALUE 0xa0u
#define FILL 0x12345678u

static uint8_t code[64];
static uint64_t gdt[8];

/* A copy of the guest's GDT with a 4 KiB data segment based on the APIC page at
 * selector 0x28, loaded into FS. */
static void fs_on_apic(void)
{
    struct __attribute__((packed)) { uint16_t limit; uint32_t base; } d;
    __asm__ volatile("sgdt %0" : "=m"(d));
    memcpy(gdt, (void *)(uintptr_t)d.base, d.limit + 1u);
    uint32_t base = APIC, limit = 0xfff;
    uint32_t lo = (limit & 0xffff) | (base & 0xffff) << 16;
    uint32_t hi = ((base >> 16) & 0xff) | 0x92u << 8 | (limit & 0xf0000) | 0x4u << 20 | (base & 0xff000000u);
    gdt[5] = (uint64_t)hi << 32 | lo;
    d.base = (uint32_t)(uintptr_t)gdt;
    d.limit = sizeof gdt - 1;
    __asm__ volatile("lgdt %0; mov %1, %%fs" : : "m"(d), "r"(0x28) : "memory");
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "mem_prefixes";
    idt_init();
    uint16_t flat;
    __asm__ volatile("mov %%ds, %0" : "=r"(flat));
    fs_on_apic();
    apic_write(APIC_TPR, TPR_VALUE);

    static const uint8_t segs[] = { 0, 0x26, 0x2e, 0x36, 0x3e, 0x65, 0x64, 0x64 };
    unsigned runs = 0, bad = 0, uds = 0;
    for (unsigned s = 0; s < sizeof segs; s++)
        for (unsigned opsz = 0; opsz < 2; opsz++)
            for (unsigned rep = 0; rep < 3; rep++)
                for (unsigned dbl = 0; dbl < 2; dbl++)
                    for (unsigned lock = 0; lock < 2; lock++)
                        for (unsigned order = 0; order < 2; order++) {
                            bool fs = segs[s] == 0x64, a16 = fs && s == sizeof segs - 1;
                            uint8_t p[8];
                            unsigned n = 0;
                            if (segs[s])
                                p[n++] = segs[s];
                            if (opsz)
                                p[n++] = 0x66;
                            if (rep)
                                p[n++] = rep == 1 ? 0xf3 : 0xf2;
                            if (a16)
                                p[n++] = 0x67;
                            if (lock)
                                p[n++] = 0xf0;
                            if (dbl && n)
                                p[n] = p[n - 1], n++;
                            unsigned o = 0;
                            for (unsigned i = 0; i < n; i++)
                                code[o++] = p[order ? n - 1 - i : i];
                            code[o++] = 0x8b;
                            if (a16) {
                                code[o++] = 0x06;                    /* [disp16] */
                                code[o++] = APIC_TPR;
                                code[o++] = 0;
                            } else {
                                code[o++] = 0x05;                    /* [disp32] */
                                uint32_t a = fs ? APIC_TPR : APIC + APIC_TPR;
                                memcpy(code + o, &a, 4);
                                o += 4;
                            }
                            code[o] = 0xc3;
                            uint32_t v = probe_call(code, code + o, FILL);
                            uint32_t want = lock ? FILL : opsz ? FILL & 0xffff0000u : TPR_VALUE;
                            int want_vector = lock ? 6 : -1;
                            runs++;
                            uds += probe.vector == 6;
                            if (v != want || probe.vector != want_vector) {
                                if (bad++ < 4) {
                                    gprintf("INFO mem_prefixes: bytes");
                                    for (unsigned i = 0; i <= o; i++)
                                        gprintf(" %02x", code[i]);
                                    gprintf(": EAX %#x (want %#x) vector %d (want %d)\n", v, want, probe.vector,
                                            want_vector);
                                }
                            }
                        }
    apic_write(APIC_TPR, 0);
    __asm__ volatile("mov %0, %%fs" : : "r"(flat));
    check(bad == 0, "mem-prefixes-all-combinations", "%u of %u prefix combinations went wrong", bad, runs);
    check(uds == runs / 2, "mem-prefixes-lock-ud", "%u #UDs for %u locked loads", uds, runs / 2);
    gprintf("INFO mem_prefixes: %u combinations\n", runs);
    done();
}
