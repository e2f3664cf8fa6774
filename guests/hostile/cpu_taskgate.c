/* cpu_taskgate: hardware task switches, many of them: INT 0x40 through an IDT task
 * gate and CALL to a TSS, the nested task returning by IRET each time (SDM Vol. 3A
 * §8.3, §8.4).  AMD-V lets the CPU perform them: every switch and return happens,
 * counted.  VT-x exits on the first (SDM Vol. 3C §26.4.2) and plinth does not emulate
 * task switches: it stops the VM, naming the switch, at the INT; nothing half-done
 * runs on. */
#include "hostile.h"

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS1 0x18
#define SEL_TSS2 0x20
#define ROUNDS   200

struct tss32 {
    uint32_t link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
    uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi;
    uint32_t es, cs, ss, ds, fs, gs, ldt, iomap;
} __attribute__((packed));

static struct tss32 tss1, tss2;
static uint64_t gdt[5] __attribute__((aligned(8)));
static uint8_t task2_stack[4096] __attribute__((aligned(16)));
static volatile uint32_t task2_runs, task2_bad;
extern char cpu_taskgate_int[];

static uint64_t tss_descriptor(const struct tss32 *t)
{
    uint32_t base = (uint32_t)t, limit = sizeof *t - 1;
    return (limit & 0xffff) | (uint64_t)(base & 0xffffff) << 16 | (uint64_t)0x89 << 40 |
           (uint64_t)((limit >> 16) & 0xf) << 48 | (uint64_t)(base >> 24) << 56;
}

/* The nested task: counts each entry, checks it was entered as a nested task (NT,
 * back link = task 1), and returns to task 1 by IRET; the next switch resumes it
 * after that IRET. */
void task2_main(void);
void task2_main(void)
{
    for (;;) {
        task2_runs++;
        if (!(read_eflags() & (1u << 14)) || tss2.link != SEL_TSS1)
            task2_bad++;
        __asm__ volatile("iret" : : : "memory");
    }
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_taskgate";
    gdt[1] = 0x00cf9a000000ffffull;
    gdt[2] = 0x00cf92000000ffffull;
    gdt[3] = tss_descriptor(&tss1);
    gdt[4] = tss_descriptor(&tss2);
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) d = { sizeof gdt - 1, (uint32_t)gdt }, idtr;
    __asm__ volatile("lgdt %0" : : "m"(d));
    __asm__ volatile("ljmp %0, $1f\n1:" : : "i"(SEL_CODE));
    __asm__ volatile("mov %0, %%ds; mov %0, %%es; mov %0, %%ss; mov %0, %%fs; mov %0, %%gs"
                     : : "r"((uint32_t)SEL_DATA));
    __asm__ volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS1));
    tss2 = (struct tss32){
        .eip = (uint32_t)task2_main, .eflags = 2, .esp = (uint32_t)(task2_stack + sizeof task2_stack),
        .cs = SEL_CODE, .ss = SEL_DATA, .ds = SEL_DATA, .es = SEL_DATA, .fs = SEL_DATA, .gs = SEL_DATA,
        .iomap = sizeof(struct tss32),
    };
    __asm__ volatile("mov %%cr3, %0" : "=r"(tss2.cr3));
    /* IDT vector 0x40: a task gate (type 5, present, DPL 0) to task 2 (§6.11). */
    __asm__ volatile("sidt %0" : "=m"(idtr));
    volatile uint32_t *gate = (uint32_t *)(idtr.base + 0x40 * 8);
    gate[0] = (uint32_t)SEL_TSS2 << 16;
    gate[1] = 0x8500;
    gprintf("INFO cpu_taskgate: INT 0x40 through a task gate to TSS %#x at rip %#x\n", SEL_TSS2,
            (uint32_t)(uintptr_t)cpu_taskgate_int);
    __asm__ volatile(".globl cpu_taskgate_int\ncpu_taskgate_int: int $0x40" : : : "memory");
    for (unsigned i = 1; i < ROUNDS; i++)
        __asm__ volatile("int $0x40" : : : "memory");
    check(task2_runs == ROUNDS && !task2_bad, "cpu-taskgate-int-round-trips", "task 2 ran %u times (%u not "
          "nested), %u INTs", task2_runs, task2_bad, ROUNDS);
    for (unsigned i = 0; i < ROUNDS; i++)
        __asm__ volatile("lcall %0, $0" : : "i"(SEL_TSS2) : "memory");
    check(task2_runs == 2 * ROUNDS && !task2_bad, "cpu-taskgate-call-round-trips", "task 2 ran %u times (%u not "
          "nested), %u switches", task2_runs, task2_bad, 2 * ROUNDS);
    uint16_t tr;
    __asm__ volatile("str %0" : "=r"(tr));
    check(tr == SEL_TSS1 && !(read_eflags() & (1u << 14)), "cpu-taskgate-back-in-task1", "TR %#x EFLAGS %#x", tr,
          (uint32_t)read_eflags());
    __asm__ volatile("clts");
}
