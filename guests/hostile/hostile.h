/* What the hostile test guests (guests/hostile/) share: each tries one attack on
 * plinth and ends with one verdict line the boot test reads, as Xen's XTF tests do:
 * "PASS hostile-<name>: <what it saw>" when it got what real hardware would give, else
 * FAIL; an attack plinth answers by stopping the VM has no verdict line, the boot test
 * checks plinth's stop reason instead.  A well-behaved neighbour (neighbour.c) runs
 * beside them and proves it was not disturbed. */
#ifndef HOSTILE_H
#define HOSTILE_H

#include "guest.h"

#define APIC          0xfee00000u
#define APIC_ID       0x020
#define APIC_EOI      0x0b0
#define APIC_SVR      0x0f0
#define APIC_ICR_LOW  0x300
#define APIC_ICR_HIGH 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_ICR 0x380
#define APIC_TIMER_DCR 0x3e0
#define IOAPIC        0xfec00000u

static inline uint32_t apic_read(uint32_t reg) { return *(volatile uint32_t *)(uintptr_t)(APIC + reg); }
static inline void apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(uintptr_t)(APIC + reg) = v; }

/* Spins until the TSC has advanced by ticks. */
static inline void spin_tsc(uint64_t ticks)
{
    uint64_t t0 = rdtsc();
    while (rdtsc() - t0 < ticks)
        __asm__ volatile("pause");
}

/* A checksum of n bytes (the random-operation guests' canaries). */
static inline uint32_t bytes_sum(const uint8_t *p, unsigned n)
{
    uint32_t s = 0;
    for (unsigned i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

/* A small deterministic generator for the attacks' "random" values. */
static inline uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

/* The 8259s remapped to vectors 0x20/0x28, all lines masked (ICW1-4, OCW1). */
static inline void pic_remap(void)
{
    outb(0x20, 0x11); outb(0xa0, 0x11);
    outb(0x21, 0x20); outb(0xa1, 0x28);
    outb(0x21, 0x04); outb(0xa1, 0x02);
    outb(0x21, 0x01); outb(0xa1, 0x01);
    outb(0x21, 0xff); outb(0xa1, 0xff);
}

/* CMOS RAM and RTC registers through the index/data ports (MC146818 data sheet). */
static inline uint8_t cmos_read(uint8_t i)
{
    outb(0x70, i);
    return inb(0x71);
}

static inline void cmos_write(uint8_t i, uint8_t v)
{
    outb(0x70, i);
    outb(0x71, v);
}

/* The RTC's seconds register (binary or BCD as the guest left register B), read
 * outside an update cycle (register A's UIP clear). */
static inline uint8_t rtc_seconds(void)
{
    for (int i = 0; i < 100000 && (cmos_read(0x0a) & 0x80); i++)
        ;
    return cmos_read(0x00);
}

/* 32-bit paging with 4 MiB pages (CR4.PSE): pd[0] maps this VM's first 4 MiB
 * identically, pd[0x3fb] the IOAPIC and local APIC (0xfec00000-0xfeffffff, uncached);
 * the caller adds what its attack needs, then paging_on(pd). */
#define PDE_4M_RAM 0x83u
#define PDE_4M_UC  0x9bu
static inline void paging_base(uint32_t *pd)
{
    for (unsigned i = 0; i < 1024; i++)
        pd[i] = 0;
    pd[0] = PDE_4M_RAM;
    pd[0xfec00000u >> 22] = 0xfec00000u | PDE_4M_UC;
}

static inline void paging_on(uint32_t *pd)
{
    write_cr4(read_cr4() | (1u << 4));
    __asm__ volatile("mov %0, %%cr3" : : "r"(pd) : "memory");
    __asm__ volatile("mov %%cr0, %%eax; orl $0x80000000, %%eax; mov %%eax, %%cr0" : : : "eax", "memory");
}

/* Runs code (ending in RET) as a probe: a fault at its first byte is recorded and the
 * guest resumes at resume (a RET in the same buffer). */
static inline uint32_t probe_call(void *code, void *resume, uint32_t eax)
{
    probe.vector = -1;
    probe.at = (uint32_t)(uintptr_t)code;
    probe.resume = (uint32_t)(uintptr_t)resume;
    probe.active = 1;
    __asm__ volatile("call *%1" : "+a"(eax) : "r"(code) : "ecx", "edx", "memory");
    probe.active = 0;
    return eax;
}

#endif
