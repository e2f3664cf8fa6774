/* cpu_intdeliver: software interrupts and the faults of their delivery.
 * 1. INT3, INTO (OF set) and INT 0x81, 500 each, their handlers making exits of their
 *    own (CPUID): each arrives exactly once, with the return address past its
 *    instruction (SDM Vol. 3A §6.12.1).
 * 2. INT 0x82 through a not-present gate: #NP with error code 0x82*8+2 (IDT, EXT
 *    clear) at the INT; INT 0x83 past the IDT limit: #GP(0x83*8+2) (§6.13, §6.14).
 *    The INT's handler never runs.
 * 3. A #PF whose delivery pushes onto the local APIC's MMIO page (the stack pointer
 *    there, paging on, the faulting MOV's operand at the same page offset as the
 *    push).  The exit comes in the middle of the event's delivery, not from the MOV:
 *    plinth must not emulate the MOV as if it had touched the APIC, and it cannot
 *    finish a delivery into device memory either: it stops the VM, naming the
 *    delivery and the MOV's rip. */
#include "hostile.h"

#define N 500
static volatile uint32_t hits[256], bad_eip[256];
static volatile uint32_t expect_eip;
static uint32_t pd[1024] __attribute__((aligned(4096)));
extern char cpu_intdeliver_mov[];

static bool counted(struct trap_frame *f)
{
    uint32_t r[4];
    cpuid(0, 0, r);                     /* an exit inside the handler */
    hits[f->vector & 0xff]++;
    if (f->eip != expect_eip)
        bad_eip[f->vector & 0xff]++;
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_intdeliver";
    set_trap_hook(3, counted);
    set_trap_hook(4, counted);
    set_trap_hook(0x81, counted);
    for (int i = 0; i < N; i++) {
        __asm__ volatile("movl $1f, expect_eip\n\tint3\n1:" : : : "memory");
        /* OF set: 0x7f + 1 overflows. */
        __asm__ volatile("movl $1f, expect_eip\n\tmovb $0x7f, %%al\n\taddb $1, %%al\n\tinto\n1:" : : : "eax", "memory");
        __asm__ volatile("movl $1f, expect_eip\n\tint $0x81\n1:" : : : "memory");
        /* OF clear: INTO does nothing. */
        __asm__ volatile("xorl %%eax, %%eax\n\tinto" : : : "eax", "memory");
    }
    check(hits[3] == N && !bad_eip[3], "cpu-int3-once-each", "%u of %u INT3s arrived, %u with a wrong eip", hits[3],
          N, bad_eip[3]);
    check(hits[4] == N && !bad_eip[4], "cpu-into-once-each", "%u of %u INTOs arrived, %u with a wrong eip", hits[4],
          N, bad_eip[4]);
    check(hits[0x81] == N && !bad_eip[0x81], "cpu-intn-once-each", "%u of %u INT 0x81s arrived, %u with a wrong eip",
          hits[0x81], N, bad_eip[0x81]);

    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) idtr, small;
    __asm__ volatile("sidt %0" : "=m"(idtr));
    set_trap_hook(0x82, counted);
    set_trap_hook(0x83, counted);
    volatile uint8_t *gate = (uint8_t *)(idtr.base + 0x82 * 8);
    gate[5] &= 0x7f;                    /* P clear */
    PROBE_ASM("int $0x82", : : : "memory");
    expect_fault("cpu-int-gate-not-present-np", 11, 0x82 * 8 + 2);
    small.base = idtr.base;
    small.limit = 0x83 * 8 - 1;
    __asm__ volatile("lidt %0" : : "m"(small));
    PROBE_ASM("int $0x83", : : : "memory");
    __asm__ volatile("lidt %0" : : "m"(idtr));
    expect_fault("cpu-int-past-idt-limit-gp", 13, 0x83 * 8 + 2);
    check(!hits[0x82] && !hits[0x83], "cpu-int-faulted-handler-not-run", "the handlers ran %u and %u times",
          hits[0x82], hits[0x83]);

    /* 3: 4 MiB pages: this VM's RAM and 0xfec00000-0xfeffffff (IOAPIC, local APIC)
     * mapped, 0x40000000 not. */
    pd[0] = 0x83;
    pd[0xfec00000u >> 22] = 0xfec00000u | 0x83;
    write_cr4(read_cr4() | (1u << 4));
    __asm__ volatile("mov %0, %%cr3" : : "r"(pd) : "memory");
    __asm__ volatile("mov %%cr0, %%eax; orl $0x80000000, %%eax; mov %%eax, %%cr0" : : : "eax", "memory");
    gprintf("INFO cpu_intdeliver: MOV faulting at rip %#x with the stack on the APIC page\n",
            (uint32_t)(uintptr_t)cpu_intdeliver_mov);
    __asm__ volatile("cli\n\t"
                     "movl $0xfee01000, %%esp\n\t"
                     ".globl cpu_intdeliver_mov\n"
                     "cpu_intdeliver_mov: movl %%eax, 0x40000ffc\n"
                     "1:\tjmp 1b" : : "a"(0x12345678) : "memory");
}
