/* rnd_insn: random instruction bytes, the part of a random-operation stream that
 * executes whatever a byte sequence decodes to.  Each sequence (16 random bytes, then
 * UD2s) runs in ring 3 of this guest, where nothing it can do escapes: its code and
 * stack pages are the only user pages, I/O needs IOPL 0 (the TSS has no I/O bitmap),
 * no gate or descriptor is reachable from CPL 3, and a one-shot APIC timer of 200 us
 * armed for each sequence ends one that loops.  Whatever ends a sequence (an exception, the
 * timer) comes back to ring 0 through this file's own entry stubs, which reload the
 * data segments the bytes may have nulled and clear DF, and resume the loop.  The
 * exits such bytes cause (CPUID, VMCALL/VMMCALL, RDPMC, MWAIT, PAUSE, ...) reach plinth
 * from CPL 3.  Every sequence must end by an exception the CPU can raise for user code
 * or by the timer; plinth must never stop the VM.  `seed=S seqs=N` sets the stream;
 * both are printed first, so a failing stream re-runs exactly. */
#include "irq_smp.h"

#define TIMER_VEC  0x40
#define USER_CODE  0x200000u            /* the two user pages, above the image */
#define USER_STACK 0x201000u
#define SEL_UCODE  0x1b
#define SEL_UDATA  0x23
#define SEL_TSS    0x28

struct __attribute__((packed)) tss32 {
    uint16_t link, r0;
    uint32_t esp0;
    uint16_t ss0, r1;
    uint32_t unused[22];
    uint16_t trap, iomap;
};

static uint64_t gdt[6] __attribute__((aligned(8)));
static struct tss32 tss __attribute__((aligned(16)));
static uint8_t abort_stack[4096] __attribute__((aligned(16)));
static uint32_t pd[1024] __attribute__((aligned(4096)));
static uint32_t pt[1024] __attribute__((aligned(4096)));
static uint8_t canary[4096];
uint32_t rnd_saved_esp;

/* user_run(eip, esp): enters ring 3 at eip with IF=1; returns the vector that ended
 * the run.  rnd_abort is where every stub of this file lands, on the TSS's ring-0
 * stack with the vector on top; it goes back to user_run's caller. */
uint32_t user_run(uint32_t eip, uint32_t esp);
__asm__(".pushsection .text\n"
        ".globl user_run, rnd_abort\n"
        "user_run:\n"
        "    push %ebp\n"
        "    push %ebx\n"
        "    push %esi\n"
        "    push %edi\n"
        "    mov %esp, rnd_saved_esp\n"
        "    mov 20(%esp), %eax\n"
        "    mov 24(%esp), %ecx\n"
        "    pushl $0x23\n"
        "    push %ecx\n"
        "    pushl $0x202\n"
        "    pushl $0x1b\n"
        "    push %eax\n"
        "    mov $0x23, %dx\n"
        "    mov %dx, %ds\n"
        "    mov %dx, %es\n"
        "    mov %dx, %fs\n"
        "    mov %dx, %gs\n"
        "    xor %eax, %eax\n"
        "    xor %ebx, %ebx\n"
        "    xor %ecx, %ecx\n"
        "    xor %edx, %edx\n"
        "    xor %esi, %esi\n"
        "    xor %edi, %edi\n"
        "    xor %ebp, %ebp\n"
        "    iret\n"
        "rnd_abort:\n"
        "    cld\n"
        "    mov $0x10, %dx\n"
        "    mov %dx, %ds\n"
        "    mov %dx, %es\n"
        "    mov %dx, %fs\n"
        "    mov %dx, %gs\n"
        "    pop %eax\n"
        "    mov rnd_saved_esp, %esp\n"
        "    pop %edi\n"
        "    pop %esi\n"
        "    pop %ebx\n"
        "    pop %ebp\n"
        "    ret\n"
        /* Stubs for vectors 0-31 and the timer: push the vector, go to rnd_abort
         * (the frame and any error code are dropped with the stack). */
        ".macro rnd_stub v\n"
        "rnd_stub_\\v:\n"
        "    pushl $\\v\n"
        "    jmp rnd_abort\n"
        ".endm\n"
        ".irp v,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,64\n"
        "    rnd_stub \\v\n"
        ".endr\n"
        ".popsection\n"
        ".pushsection .rodata\n"
        ".globl rnd_stubs\n"
        "rnd_stubs:\n"
        ".irp v,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,64\n"
        "    .long rnd_stub_\\v\n"
        ".endr\n"
        ".popsection\n");
extern const uint32_t rnd_stubs[33];

struct __attribute__((packed)) gate32 { uint16_t lo, sel; uint8_t zero, type; uint16_t hi; };

/* The exceptions user code can meet: #DE #DB #BR #UD #NM #TS #NP #SS #GP #PF #MF #AC
 * #XM (INT3/INTO/INT n reach DPL-0 gates as #GP).  Anything else is wrong. */
static bool user_vector_ok(uint32_t v)
{
    static const uint8_t ok[] = { 0, 1, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19, TIMER_VEC };
    for (unsigned i = 0; i < sizeof ok; i++)
        if (ok[i] == v)
            return true;
    return false;
}

static void setup_ring3(void)
{
    gdt[0] = 0;
    gdt[1] = 0x00cf9a000000ffffull;                    /* ring-0 code, as start.asm */
    gdt[2] = 0x00cf92000000ffffull;                    /* ring-0 data */
    gdt[3] = 0x00cffa000000ffffull;                    /* ring-3 code */
    gdt[4] = 0x00cff2000000ffffull;                    /* ring-3 data */
    uint32_t base = (uint32_t)(uintptr_t)&tss, limit = sizeof tss - 1;
    gdt[5] = (uint64_t)(limit & 0xffff) | (uint64_t)(base & 0xffffff) << 16 | 0x89ull << 40 |
             (uint64_t)((base >> 24) & 0xff) << 56;
    memset(&tss, 0, sizeof tss);
    tss.ss0 = 0x10;
    tss.esp0 = (uint32_t)(uintptr_t)(abort_stack + sizeof abort_stack);
    tss.iomap = sizeof tss;                            /* no I/O bitmap: all I/O #GP */
    struct __attribute__((packed)) { uint16_t limit; uint32_t base; } d = { sizeof gdt - 1, (uint32_t)(uintptr_t)gdt };
    __asm__ volatile("lgdt %0; ltr %w1" : : "m"(d), "r"(SEL_TSS) : "memory");

    /* 4 KiB pages for the first 4 MiB, supervisor but for the two user pages. */
    for (unsigned i = 0; i < 1024; i++)
        pt[i] = i << 12 | 0x3;
    pt[USER_CODE >> 12] |= 0x4;
    pt[USER_STACK >> 12] |= 0x4;
    paging_base(pd);
    pd[0] = (uint32_t)(uintptr_t)pt | 0x7;
    paging_on(pd);

    /* This file's stubs take vectors 0-31 and the timer, through interrupt gates (IF
     * off in ring 0), DPL 0: INT n from ring 3 is a #GP. */
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) idtr;
    __asm__ volatile("sidt %0" : "=m"(idtr));
    struct gate32 *idt = (struct gate32 *)(uintptr_t)idtr.base;
    for (unsigned i = 0; i < 33; i++) {
        unsigned v = i < 32 ? i : TIMER_VEC;
        idt[v] = (struct gate32){ (uint16_t)rnd_stubs[i], 0x08, 0, 0x8e, (uint16_t)(rnd_stubs[i] >> 16) };
    }
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "rnd_insn";
    uint32_t seed = cmdline_number(mbi, "seed", 0);
    if (!seed)
        seed = (uint32_t)rdtsc() | 1;
    uint32_t seqs = cmdline_number(mbi, "seqs", 2000);
    gprintf("INFO rnd_insn: seed %u, %u sequences\n", seed, seqs);
    for (unsigned i = 0; i < sizeof canary; i++)
        canary[i] = (uint8_t)(i * 7 + 3);
    uint32_t canary_sum = bytes_sum(canary, sizeof canary);
    __asm__ volatile("cli");
    /* CR0.NE: an unmasked x87 error the bytes provoke is a #MF, not an IRQ 13. */
    __asm__ volatile("mov %%cr0, %%eax; orl $0x20, %%eax; mov %%eax, %%cr0" : : : "eax", "memory");
    pic_remap();
    setup_ring3();
    apic_write(APIC_SVR, 0x1ff);
    apic_write(APIC_TIMER_DCR, 0xb);
    apic_write(APIC_LVT_TIMER, TIMER_VEC);             /* one-shot, armed per run */

    uint32_t by_vector[256] = { 0 }, wrong = 0, s = seed;
    volatile uint8_t *code = (volatile uint8_t *)USER_CODE;
    for (uint32_t n = 0; n < seqs; n++) {
        for (unsigned i = 0; i < 4096; i += 2) {
            code[i] = 0x0f;
            code[i + 1] = 0x0b;                        /* UD2 after the bytes */
        }
        uint32_t at = lcg(&s) % 64;
        for (unsigned i = 0; i < 16; i++)
            code[at + i] = (uint8_t)(lcg(&s) >> 24);
        /* 200 us for the sequence, from just before it starts. */
        apic_write(APIC_TIMER_ICR, 200000);
        uint32_t v = user_run(USER_CODE + at, USER_STACK + 4096 - 64);
        apic_write(APIC_TIMER_ICR, 0);
        if (v == TIMER_VEC)
            apic_write(APIC_EOI, 0);
        by_vector[v & 0xff]++;
        if (!user_vector_ok(v) && wrong++ < 8)
            gprintf("INFO rnd_insn: sequence %u ended by vector %u (bytes at %#x)\n", n, v, USER_CODE + at);
    }
    apic_write(APIC_LVT_TIMER, LVT_MASKED);
    gprintf("INFO rnd_insn: ended by #UD %u, #GP %u, #PF %u, timer %u, #DE %u, #DB %u, other %u\n", by_vector[6],
            by_vector[13], by_vector[14], by_vector[TIMER_VEC], by_vector[0], by_vector[1],
            seqs - by_vector[6] - by_vector[13] - by_vector[14] - by_vector[TIMER_VEC] - by_vector[0] -
                by_vector[1]);
    check(wrong == 0, "rnd-insn-outcomes", "%u sequences ended by a vector user code cannot raise", wrong);
    check(bytes_sum(canary, sizeof canary) == canary_sum, "rnd-insn-memory-intact", "the canary changed");
}
