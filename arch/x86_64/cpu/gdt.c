#include "arch/x86_64/cpu/gdt.h"
#include "arch/x86_64/cpu/idt.h"
#include "arch/x86_64/cpu/trap.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/cpu/percpu.h"
#include "kernel/panic.h"

#include <stddef.h>

/* The 64-bit TSS, SDM Vol. 3A "Task Management in 64-bit Mode", figure "64-Bit TSS
 * Format".  Only the IST
 * slots matter: plinth never leaves ring 0, so rsp0..2 are never loaded. */
struct tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];          /* ist[0] is IST1 */
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

_Static_assert(sizeof(struct tss64) == 104, "the 64-bit TSS is 104 bytes");

enum { GDT_SLOT_NULL, GDT_SLOT_CODE, GDT_SLOT_DATA, GDT_SLOT_TSS_LOW, GDT_SLOT_TSS_HIGH,
       GDT_SLOTS };

/* Flat segments, SDM Vol. 3A 3.4.5 "Segment Descriptors": code has L=1 (64-bit), D=0;
 * both present, DPL 0, with the accessed bit already set so that loading a selector
 * never writes to the table. */
#define GDT_DESC_CODE64 0x00af9b000000ffffull
#define GDT_DESC_DATA   0x00cf93000000ffffull
/* System descriptor type 9: available 64-bit TSS (SDM Vol. 3A Table 3-2); ltr marks it
 * busy (type 0xB) in memory. */
#define GDT_TSS_TYPE_AVAILABLE 0x9
#define GDT_DESC_PRESENT (1ull << 47)

struct gdt_cpu {
    uint64_t gdt[GDT_SLOTS];
    struct tss64 tss;
    uint64_t ist_top[TSS_IST_COUNT]; /* stacks already given to this CPU, kept on reload */
} __attribute__((aligned(128)));

static struct gdt_cpu gdt_cpus[PERCPU_MAX_CPUS];

struct gdt_pointer {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

static void gdt_build(struct gdt_cpu *c)
{
    c->gdt[GDT_SLOT_NULL] = 0;
    c->gdt[GDT_SLOT_CODE] = GDT_DESC_CODE64;
    c->gdt[GDT_SLOT_DATA] = GDT_DESC_DATA;

    /* No I/O permission bitmap: its offset at or past the limit means none (SDM Vol. 1
     * "I/O Permission Bit Map"). */
    c->tss.iomap_base = sizeof c->tss;

    /* 16-byte TSS descriptor, SDM Vol. 3A "TSS Descriptor in 64-bit mode", figure
     * "Format of TSS and LDT Descriptors in 64-bit Mode". */
    uint64_t base = (uint64_t)(uintptr_t)&c->tss;
    uint64_t limit = sizeof c->tss - 1;
    c->gdt[GDT_SLOT_TSS_LOW] = (limit & 0xffff)
                             | ((base & 0xffffff) << 16)
                             | ((uint64_t)GDT_TSS_TYPE_AVAILABLE << 40)
                             | GDT_DESC_PRESENT
                             | (((limit >> 16) & 0xf) << 48)
                             | (((base >> 24) & 0xff) << 56);
    c->gdt[GDT_SLOT_TSS_HIGH] = base >> 32;
}

void gdt_load(uint32_t cpu_index)
{
    if (cpu_index >= PERCPU_MAX_CPUS)
        panic("gdt: cpu index %u is past PERCPU_MAX_CPUS (%u); raise PERCPU_MAX_CPUS in arch/x86_64/cpu/percpu.h",
              cpu_index, PERCPU_MAX_CPUS);
    struct gdt_cpu *c = &gdt_cpus[cpu_index];
    /* Rebuilding also turns a busy TSS descriptor (from an earlier ltr) back into an
     * available one, which ltr requires. */
    gdt_build(c);

    struct gdt_pointer p = { sizeof c->gdt - 1, (uint64_t)(uintptr_t)c->gdt };
    __asm__ volatile("lgdt %0" :: "m"(p) : "memory");
    /* CS can only be reloaded by a far transfer; a far return is the one that takes a
     * 64-bit target.  fs and gs are left alone: loading them would clear the bases
     * that per-CPU data may already use. */
    __asm__ volatile(
        "pushq %[cs]\n\t"
        "leaq 1f(%%rip), %%rax\n\t"
        "pushq %%rax\n\t"
        "lretq\n"
        "1:\n\t"
        "movl %[ds], %%eax\n\t"
        "movw %%ax, %%ds\n\t"
        "movw %%ax, %%es\n\t"
        "movw %%ax, %%ss\n\t"
        :: [cs] "i"(GDT_KERNEL_CODE), [ds] "i"(GDT_KERNEL_DATA) : "rax", "memory");
    __asm__ volatile("ltr %w0" :: "r"((uint16_t)GDT_TSS) : "memory");
}

void cpu_tables_init(uint32_t cpu_index)
{
    if (cpu_index >= PERCPU_MAX_CPUS)
        panic("cpu: cpu index %u is past PERCPU_MAX_CPUS (%u); raise PERCPU_MAX_CPUS in arch/x86_64/cpu/percpu.h",
              cpu_index, PERCPU_MAX_CPUS);
    struct gdt_cpu *c = &gdt_cpus[cpu_index];
    for (int i = 0; i < TSS_IST_COUNT; i++) {
        if (!c->ist_top[i]) {
            uint64_t top = stack_alloc(TSS_IST_STACK_SIZE);
            if (!top)
                panic("cpu%u: no memory for IST%d stack (%u bytes); the machine has too "
                      "little free RAM for its CPU count", cpu_index, i + 1, TSS_IST_STACK_SIZE);
            c->ist_top[i] = top;
        }
        c->tss.ist[i] = c->ist_top[i];
    }
    gdt_load(cpu_index);
    /* The IST slots of the shared IDT are the same for every CPU; setting them again
     * is harmless, and this CPU's TSS now has all three filled. */
    idt_set_ist(EXC_DF, TSS_IST_DF);
    idt_set_ist(EXC_NMI, TSS_IST_NMI);
    idt_set_ist(EXC_MC, TSS_IST_MC);
    idt_load();
}

uint32_t gdt_current_cpu(void)
{
    struct gdt_pointer p;
    __asm__ volatile("sgdt %0" : "=m"(p));
    uint64_t first = (uint64_t)(uintptr_t)&gdt_cpus[0];
    uint64_t end = (uint64_t)(uintptr_t)&gdt_cpus[PERCPU_MAX_CPUS];
    if (p.base < first || p.base >= end)
        return 0;
    return (uint32_t)((p.base - first) / sizeof(struct gdt_cpu));
}

int gdt_ist_containing(uint32_t cpu_index, uint64_t rsp)
{
    if (cpu_index >= PERCPU_MAX_CPUS)
        return 0;
    const struct gdt_cpu *c = &gdt_cpus[cpu_index];
    for (int i = 0; i < TSS_IST_COUNT; i++) {
        uint64_t top = c->ist_top[i];
        if (top && rsp <= top && rsp > top - TSS_IST_STACK_SIZE)
            return i + 1;
    }
    return 0;
}
