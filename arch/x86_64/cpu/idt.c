#include "arch/x86_64/cpu/idt.h"
#include "arch/x86_64/cpu/gdt.h"
#include "arch/x86_64/cpu/trap.h"

/* A 64-bit interrupt gate, SDM Vol. 3A 6.14.1 Figure 6-8 "64-Bit IDT Gate Descriptors". */
struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t  ist;          /* bits 2:0; the rest must be zero */
    uint8_t  type_attr;    /* P, DPL, type */
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct idt_gate) == 16, "IDT gates are 16 bytes in long mode");

/* Present, DPL 0, type 0xE (64-bit interrupt gate: IF is cleared on entry, so a
 * handler is never interrupted by a maskable interrupt before it says so). */
#define IDT_GATE_INTERRUPT 0x8e

struct idt_pointer {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

extern const uint64_t isr_stub_table[TRAP_VECTORS];

static struct idt_gate idt[TRAP_VECTORS] __attribute__((aligned(16)));

void idt_load(void)
{
    struct idt_pointer p = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" :: "m"(p) : "memory");
}

void idt_set_ist(uint8_t vector, uint8_t ist)
{
    /* One byte store: a CPU taking this vector meanwhile sees the old or new slot. */
    __atomic_store_n(&idt[vector].ist, (uint8_t)(ist & 7), __ATOMIC_RELEASE);
}

void idt_init(void)
{
    for (unsigned v = 0; v < TRAP_VECTORS; v++) {
        uint64_t off = isr_stub_table[v];
        idt[v] = (struct idt_gate){
            .offset_low = (uint16_t)off,
            .selector = GDT_KERNEL_CODE,
            .ist = 0,
            .type_attr = IDT_GATE_INTERRUPT,
            .offset_mid = (uint16_t)(off >> 16),
            .offset_high = (uint32_t)(off >> 32),
        };
    }
    /* The gates name GDT_KERNEL_CODE, which the boot path's GDT need not have (UEFI
     * firmware's code selector is often 0x38): load ours first. */
    gdt_load(0);
    idt_load();
}
