/* The host's local APIC, in x2APIC mode (MSRs) where the CPU has it, else xAPIC (MMIO).
 * Everything above this file uses the accessors and never sees which mode is in use. */
#ifndef PLINTH_ARCH_APIC_LAPIC_H
#define PLINTH_ARCH_APIC_LAPIC_H

#include <stdint.h>
#include <stdbool.h>

/* Register offsets in the xAPIC MMIO page (SDM Vol. 3A Table 12-1); in x2APIC mode the
 * register is MSR 0x800 + offset / 16 (SDM Vol. 3A §12.12.1.2, Table 12-6). */
#define LAPIC_ID          0x020
#define LAPIC_VERSION     0x030
#define LAPIC_TPR         0x080
#define LAPIC_EOI         0x0b0
#define LAPIC_LDR         0x0d0
#define LAPIC_DFR         0x0e0
#define LAPIC_SVR         0x0f0
#define LAPIC_ESR         0x280
#define LAPIC_ICR_LOW     0x300
#define LAPIC_ICR_HIGH    0x310
#define LAPIC_LVT_TIMER   0x320
#define LAPIC_LVT_THERMAL 0x330
#define LAPIC_LVT_PERF    0x340
#define LAPIC_LVT_LINT0   0x350
#define LAPIC_LVT_LINT1   0x360
#define LAPIC_LVT_ERROR   0x370
#define LAPIC_TIMER_ICR   0x380   /* initial count */
#define LAPIC_TIMER_CCR   0x390   /* current count */
#define LAPIC_TIMER_DCR   0x3e0   /* divide configuration */

/* IA32_APIC_BASE (SDM Vol. 3A §12.4.4, §12.12.1). */
#define APIC_BASE_BSP     (1ull << 8)
#define APIC_BASE_EXTD    (1ull << 10)
#define APIC_BASE_EN      (1ull << 11)
#define APIC_BASE_ADDR_MASK 0x000ffffffffff000ull

#define LAPIC_SVR_ENABLE  (1u << 8)
#define LAPIC_SPURIOUS_VECTOR 0xff
#define LAPIC_LVT_MASKED  (1u << 16)

/* Interrupt Command Register, low half (SDM Vol. 3A §12.6.1, Figure 12-12). */
#define ICR_DELIVERY_FIXED    (0u << 8)
#define ICR_DELIVERY_NMI      (4u << 8)
#define ICR_DELIVERY_INIT     (5u << 8)
#define ICR_DELIVERY_STARTUP  (6u << 8)
#define ICR_DELIVERY_PENDING  (1u << 12)   /* xAPIC only */
#define ICR_LEVEL_ASSERT      (1u << 14)
#define ICR_TRIGGER_LEVEL     (1u << 15)
#define ICR_DEST_SELF         (1u << 18)
#define ICR_DEST_ALL          (2u << 18)
#define ICR_DEST_ALL_BUT_SELF (3u << 18)

/* Timer divide configuration values (SDM Vol. 3A §12.5.4, Figure 12-10). */
#define LAPIC_TIMER_DIV_1   0xb
#define LAPIC_TIMER_DIV_16  0x3
#define LAPIC_TIMER_PERIODIC (1u << 17)

/* On the boot CPU: chooses the mode (x2APIC when CPUID.1:ECX[21]), maps the xAPIC
 * page if needed, and enables the APIC with the spurious vector; panics without one. */
void     lapic_init(void);
/* On each AP, after lapic_init ran on the boot CPU: the same mode and settings. */
void     lapic_init_ap(void);
bool     lapic_ready(void);          /* lapic_init has run */
bool     lapic_x2apic_mode(void);
/* Physical APIC ID of the calling CPU (8 bits in xAPIC mode, 32 in x2APIC mode). */
uint32_t lapic_id(void);
uint32_t lapic_read(uint32_t reg);
void     lapic_write(uint32_t reg, uint32_t value);
void     lapic_eoi(void);
/* Sends an IPI: icr_low holds vector, delivery mode, level and shorthand; dest is the
 * target's APIC ID (ignored with a shorthand).  Returns 0, or -1 if an xAPIC did not
 * accept it in time (delivery status stuck). */
int      lapic_send_ipi(uint32_t dest, uint32_t icr_low);
/* Largest APIC ID this mode can address: 0xfe in xAPIC mode (0xff is broadcast). */
uint32_t lapic_max_id(void);

#endif
