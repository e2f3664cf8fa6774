/* taskswitch: a hardware task switch (SDM Vol. 3A §8.3): a far JMP to a 32-bit TSS
 * descriptor, the new task printing and jumping back the same way.  The CPU performs
 * it on AMD-V; VT-x exits on every task switch and plinth does not emulate one, so
 * there the VM must stop with a message naming the switch (the boot test checks it),
 * never run on with half a switch done. */
#include "guest.h"

#define SEL_CODE  0x08
#define SEL_DATA  0x10
#define SEL_TSS1  0x18
#define SEL_TSS2  0x20

struct tss32 {
    uint32_t link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
    uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi;
    uint32_t es, cs, ss, ds, fs, gs, ldt, iomap;
} __attribute__((packed));

static struct tss32 tss1, tss2;
static uint64_t gdt[5] __attribute__((aligned(8)));
static uint8_t task2_stack[4096] __attribute__((aligned(16)));
static volatile uint32_t in_task2, task2_tr;

/* A 32-bit available TSS descriptor, type 9 (SDM Vol. 3A §8.2.2, Figure 8-3). */
static uint64_t tss_descriptor(const struct tss32 *t)
{
    uint32_t base = (uint32_t)t, limit = sizeof *t - 1;
    return (limit & 0xffff) | (uint64_t)(base & 0xffffff) << 16 | (uint64_t)0x89 << 40 |
           (uint64_t)((limit >> 16) & 0xf) << 48 | (uint64_t)(base >> 24) << 56;
}

void task2_main(void);
void task2_main(void)
{
    uint16_t tr;
    __asm__ volatile("str %0" : "=r"(tr));
    task2_tr = tr;
    in_task2 = 1;
    __asm__ volatile("ljmp $0x18, $0");             /* back to task 1 */
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "taskswitch";
    gdt[0] = 0;
    gdt[1] = 0x00cf9a000000ffffull;
    gdt[2] = 0x00cf92000000ffffull;
    gdt[3] = tss_descriptor(&tss1);
    gdt[4] = tss_descriptor(&tss2);
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) d = { sizeof gdt - 1, (uint32_t)gdt };
    __asm__ volatile("lgdt %0" : : "m"(d));
    __asm__ volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS1));
    tss2 = (struct tss32){
        .eip = (uint32_t)task2_main, .eflags = 2, .esp = (uint32_t)(task2_stack + sizeof task2_stack),
        .cs = SEL_CODE, .ss = SEL_DATA, .ds = SEL_DATA, .es = SEL_DATA, .fs = SEL_DATA, .gs = SEL_DATA,
        .iomap = sizeof(struct tss32),
    };
    __asm__ volatile("mov %%cr3, %0" : "=r"(tss2.cr3));
    gprintf("INFO taskswitch: jumping to TSS selector %#x at eip %#x\n", SEL_TSS2, tss2.eip);
    __asm__ volatile("ljmp $0x20, $0" : : : "memory");
    uint16_t tr;
    __asm__ volatile("str %0" : "=r"(tr));
    check(in_task2 && task2_tr == SEL_TSS2, "taskswitch-jmp-ran-task", "task 2 ran %u, its TR %#x", in_task2,
          task2_tr);
    check(tr == SEL_TSS1, "taskswitch-jmp-back", "TR %#x after the switch back", tr);
    check(read_cr0() & (1u << 3), "taskswitch-sets-ts", "CR0 %#x", (uint32_t)read_cr0());
    __asm__ volatile("clts");
}
