/* The boot CPU's identity for the "cpu:" banner line. */
#ifndef PLINTH_ARCH_CPUINFO_H
#define PLINTH_ARCH_CPUINFO_H

#include <stdint.h>

struct cpuinfo {
    char vendor[13];        /* CPUID 0: "GenuineIntel", "AuthenticAMD", ... */
    char brand[49];         /* CPUID 0x80000002..4, trimmed; "" when absent */
    uint32_t max_leaf, max_ext_leaf;
    uint32_t family, model, stepping; /* display values (SDM Vol. 2A CPUID, leaf 01H EAX) */
};

/* Raw register values the decode needs; leaves the CPU lacks are left 0. */
struct cpuinfo_raw {
    uint32_t leaf0[4];          /* eax ebx ecx edx */
    uint32_t leaf1_eax;
    uint32_t ext0_eax;
    uint32_t brand[12];         /* 0x80000002..4: eax ebx ecx edx each */
};

void cpuinfo_decode(const struct cpuinfo_raw *raw, struct cpuinfo *out);
void cpuinfo_read(struct cpuinfo *out);
/* Logs "cpu: <vendor> <brand>" (or family/model/stepping when there is no brand). */
void cpuinfo_log(void);

#endif
