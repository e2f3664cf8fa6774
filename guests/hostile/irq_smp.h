/* What the irq attacks (guests/hostile/irq_*.c) share: the ICR's fields, sending an
 * IPI, and starting an AP of a multi-vCPU VM the way guests/smp.c does (INIT-SIPI-SIPI
 * into a real-mode trampoline that enters 32-bit mode, loads the BSP's IDT and calls
 * the attack's ap_main(APIC ID), with IRQ_WANT_SMP defined before the include). */
#ifndef IRQ_SMP_H
#define IRQ_SMP_H

#include "hostile.h"

#define APIC_TPR        0x080
#define APIC_ISR        0x100
#define APIC_IRR        0x200
#define APIC_LVT_LINT0  0x350

/* ICR fields (SDM Vol. 3A Figure 12-12). */
#define ICR_FIXED       (0u << 8)
#define ICR_NMI         (4u << 8)
#define ICR_INIT        (5u << 8)
#define ICR_SIPI        (6u << 8)
#define ICR_BUSY        (1u << 12)
#define ICR_ASSERT      (1u << 14)
#define ICR_LEVEL       (1u << 15)
#define ICR_SELF        (1u << 18)
#define ICR_ALL         (2u << 18)
#define ICR_ALL_BUT_SELF (3u << 18)

#define TIMER_PERIODIC  (1u << 17)
#define TIMER_TSC_DL    (2u << 17)
#define LVT_MASKED      (1u << 16)
#define MSR_TSC_DEADLINE 0x6e0

#define IRQ_MAX_CPUS    8
/* The trampoline's page, below 1 MiB and clear of plinth's boot information. */
#define TRAMPOLINE      0x70000u

/* A bound for waiting on what should come soon, reached only when it does not: 40 s
 * of Bochs' 50 MHz TSC, about a second of QEMU's wall-clock one. */
#define WAIT_TICKS      2000000000ull

static inline uint32_t apic_id(void) { return apic_read(APIC_ID) >> 24; }

/* TSC ticks in microseconds at tsc_khz, without a 64-bit division (no libgcc here). */
static inline uint32_t ticks_to_us(uint64_t t, uint32_t tsc_khz)
{
    uint32_t per_us = tsc_khz / 1000 ? tsc_khz / 1000 : 1;
    uint64_t q = 0;
    for (int b = 63; b >= 0; b--)
        if ((t >> b) >= per_us) {
            t -= (uint64_t)per_us << b;
            q |= 1ull << b;
        }
    return q > 0xffffffffu ? 0xffffffffu : (uint32_t)q;
}

static inline void send_ipi(uint32_t dest, uint32_t low)
{
    apic_write(APIC_ICR_HIGH, dest << 24);
    apic_write(APIC_ICR_LOW, low);
    for (int i = 0; i < 1000 && (apic_read(APIC_ICR_LOW) & ICR_BUSY); i++)
        __asm__ volatile("pause");
}

/* Spins until cond holds or WAIT_TICKS of TSC passed; whether it held. */
#define WAIT_FOR(cond)                                                         \
    ({                                                                         \
        uint64_t t0_ = rdtsc();                                                \
        while (!(cond) && rdtsc() - t0_ < WAIT_TICKS)                          \
            __asm__ volatile("pause" ::: "memory");                            \
        (bool)(cond);                                                          \
    })

#ifdef IRQ_WANT_SMP
uint8_t ap_stacks[IRQ_MAX_CPUS][4096] __attribute__((aligned(16)));
struct __attribute__((packed)) irq_idtr { uint16_t limit; uint32_t base; };
struct irq_idtr bsp_idtr;
void ap_entry(uint32_t id);
/* The attack's code on an AP, with its IDT loaded and its APIC software-enabled. */
static void ap_main(uint32_t id);

__asm__(".pushsection .text\n"
        ".globl irq_trampoline, irq_trampoline_end\n"
        ".code16\n"
        "irq_trampoline:\n"
        "    cli\n"
        "    mov %cs, %ax\n"
        "    mov %ax, %ds\n"
        "    lgdtl irq_tramp_gdtr - irq_trampoline\n"
        "    mov %cr0, %eax\n"
        "    or $1, %eax\n"
        "    mov %eax, %cr0\n"
        "    ljmpl $0x08, $(0x70000 + irq_tramp32 - irq_trampoline)\n"
        ".code32\n"
        "irq_tramp32:\n"
        "    mov $0x10, %ax\n"
        "    mov %ax, %ds\n"
        "    mov %ax, %es\n"
        "    mov %ax, %fs\n"
        "    mov %ax, %gs\n"
        "    mov %ax, %ss\n"
        "    mov 0xfee00020, %eax\n"
        "    shr $24, %eax\n"
        "    and $7, %eax\n"
        "    mov %eax, %ebx\n"
        "    inc %eax\n"
        "    shl $12, %eax\n"
        "    add $ap_stacks, %eax\n"
        "    mov %eax, %esp\n"
        "    push %ebx\n"
        "    mov $ap_entry, %eax\n"
        "    call *%eax\n"
        "1:  cli\n"
        "    hlt\n"
        "    jmp 1b\n"
        ".p2align 3\n"
        "irq_tramp_gdt:\n"
        "    .quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff\n"
        "irq_tramp_gdtr:\n"
        "    .word 23\n"
        "    .long 0x70000 + irq_tramp_gdt - irq_trampoline\n"
        "irq_trampoline_end:\n"
        ".popsection\n");
extern char irq_trampoline[], irq_trampoline_end[];

void ap_entry(uint32_t id)
{
    __asm__ volatile("lidt %0" :: "m"(bsp_idtr));
    apic_write(APIC_SVR, 0x1ff);
    ap_main(id);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* Copies the trampoline (once is enough; again is harmless) and keeps the IDT for
 * the APs. */
static inline void smp_prepare(void)
{
    __asm__ volatile("sidt %0" : "=m"(bsp_idtr));
    memcpy((void *)TRAMPOLINE, irq_trampoline, (size_t)(irq_trampoline_end - irq_trampoline));
}

static inline void send_init(uint32_t id)
{
    send_ipi(id, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
    send_ipi(id, ICR_INIT | ICR_LEVEL);
}

static inline void send_sipi(uint32_t id)
{
    send_ipi(id, ICR_SIPI | ICR_ASSERT | (TRAMPOLINE >> 12));
}

/* INIT, INIT de-assert, then SIPI twice (the universal start-up algorithm). */
static inline void smp_start_ap(uint32_t id)
{
    send_init(id);
    spin_tsc(100000);
    send_sipi(id);
    send_sipi(id);
}

#endif /* IRQ_WANT_SMP */

/* An interrupt handler for the library's IDT: counts, EOIs, returns. */
#define COUNTING_HOOK(name, counter)                                           \
    static bool name(struct trap_frame *f)                                     \
    {                                                                          \
        (void)f;                                                               \
        __atomic_add_fetch(&(counter), 1, __ATOMIC_RELAXED);                   \
        apic_write(APIC_EOI, 0);                                               \
        return true;                                                           \
    }

#endif
