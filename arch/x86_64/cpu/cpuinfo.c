#include "arch/x86_64/cpu/cpuinfo.h"
#include "arch/x86_64/cpu/cpu.h"
#include "kernel/log.h"

#include <stdbool.h>

static void cpuinfo_put_regs(char *dst, const uint32_t *regs, int n)
{
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 4; b++)
            dst[i * 4 + b] = (char)(regs[i] >> (8 * b));
}

/* Brand strings come padded with leading spaces (and runs of inner spaces on older
 * parts), NUL-terminated or not: keep one space between words, printable ASCII only. */
static void cpuinfo_tidy(char *s, int size)
{
    int out = 0;
    bool space = false;
    for (int i = 0; i < size && s[i]; i++) {
        char c = s[i];
        if (c == ' ' || c < 0x20 || c > 0x7e) {
            space = out > 0;
            continue;
        }
        if (space)
            s[out++] = ' ';
        space = false;
        s[out++] = c;
    }
    s[out] = '\0';
}

void cpuinfo_decode(const struct cpuinfo_raw *raw, struct cpuinfo *out)
{
    *out = (struct cpuinfo){ 0 };
    out->max_leaf = raw->leaf0[0];
    /* SDM Vol. 2A CPUID leaf 0: the vendor string is EBX, EDX, ECX in that order. */
    const uint32_t vendor[3] = { raw->leaf0[1], raw->leaf0[3], raw->leaf0[2] };
    cpuinfo_put_regs(out->vendor, vendor, 3);
    out->vendor[12] = '\0';
    cpuinfo_tidy(out->vendor, 13);
    if (!out->vendor[0]) {
        const char unknown[] = "unknown";
        for (unsigned i = 0; i < sizeof unknown && i < sizeof out->vendor; i++)
            out->vendor[i] = unknown[i];
        out->vendor[sizeof out->vendor - 1] = '\0';
    }

    /* SDM Vol. 2A CPUID leaf 01H EAX: the display family adds the extended family
     * only when the family is 0xF; the display model adds the extended model for
     * families 6 and 0xF. */
    uint32_t eax = raw->leaf1_eax;
    uint32_t family = (eax >> 8) & 0xf, model = (eax >> 4) & 0xf;
    if (family == 0xf)
        family += (eax >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf)
        model += ((eax >> 16) & 0xf) << 4;
    out->family = family;
    out->model = model;
    out->stepping = eax & 0xf;

    out->max_ext_leaf = raw->ext0_eax;
    if (raw->ext0_eax >= 0x80000004u && raw->ext0_eax <= 0x8fffffffu) {
        cpuinfo_put_regs(out->brand, raw->brand, 12);
        out->brand[48] = '\0';
        cpuinfo_tidy(out->brand, 49);
    }
}

void cpuinfo_read(struct cpuinfo *out)
{
    struct cpuinfo_raw raw = { 0 };
    struct cpuid_regs r = cpuid(0, 0);
    raw.leaf0[0] = r.eax; raw.leaf0[1] = r.ebx; raw.leaf0[2] = r.ecx; raw.leaf0[3] = r.edx;
    if (raw.leaf0[0] >= 1)
        raw.leaf1_eax = cpuid(1, 0).eax;
    raw.ext0_eax = cpuid(0x80000000u, 0).eax;
    if (raw.ext0_eax >= 0x80000004u && raw.ext0_eax <= 0x8fffffffu) {
        for (uint32_t i = 0; i < 3; i++) {
            r = cpuid(0x80000002u + i, 0);
            raw.brand[i * 4 + 0] = r.eax; raw.brand[i * 4 + 1] = r.ebx;
            raw.brand[i * 4 + 2] = r.ecx; raw.brand[i * 4 + 3] = r.edx;
        }
    }
    cpuinfo_decode(&raw, out);
}

void cpuinfo_log(void)
{
    struct cpuinfo ci;
    cpuinfo_read(&ci);
    if (ci.brand[0])
        log_info("cpu: %s %s", ci.vendor, ci.brand);
    else
        log_info("cpu: %s family %#x model %#x stepping %u", ci.vendor, ci.family, ci.model, ci.stepping);
}
