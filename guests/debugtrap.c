/* debugtrap: debug exceptions and RFLAGS.RF across the instructions plinth completes
 * or faults for the guest, which the CPU never finishes itself.
 * - A fault plinth injects (#GP for an unknown RDMSR, a reserved CR4 bit) must push
 *   RFLAGS with RF set, as the CPU does for every fault but an instruction
 *   breakpoint (SDM Vol. 3A §6.8.3, §18.3.1.1; APM Vol. 2 §3.1.6).
 * - With RFLAGS.TF set, an instruction that exits and that plinth completes (CPUID,
 *   IN, OUT, RDMSR, WRMSR, a device-memory read and write, HLT) must be followed by
 *   exactly one single-step #DB, after it, with DR6.BS (SDM Vol. 3A §18.3.1.4).  A
 *   MOV SS defers its own single-step trap past the next instruction: one #DB after
 *   the CPUID that follows it (§6.8.3).
 * - A data breakpoint (DR0-DR3) on device memory, or on the RAM side of a MOVS from
 *   device memory, must fire after the access plinth emulated, with DR6.Bn
 *   (§18.3.1.2).
 * - DR7.GD: a MOV to a debug register faults with DR6.BD before it runs (§18.2.4).
 * Command line: skip=<check>,... leaves checks out (an emulator's own faults). */
#include "guest.h"

#define TF (1u << 8)
#define IFLAG (1u << 9)
#define RF (1u << 16)
#define DR6_BS (1u << 14)
#define DR6_BD (1u << 13)
#define DR7_GD (1u << 13)

#define APIC           0xfee00000u
#define APIC_TPR       0x080
#define APIC_EOI       0x0b0
#define APIC_SVR       0x0f0
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_ICR 0x380
#define APIC_TIMER_DCR 0x3e0
#define TIMER_VECTOR   0x40

static volatile uint32_t db_count, db_eip, db_dr6, timer_ticks;

static uint32_t read_dr6(void) { uint32_t v; __asm__ volatile("mov %%db6, %0" : "=r"(v)); return v; }
static void write_dr6(uint32_t v) { __asm__ volatile("mov %0, %%db6" : : "r"(v)); }
static uint32_t read_dr7(void) { uint32_t v; __asm__ volatile("mov %%db7, %0" : "=r"(v)); return v; }
static void write_dr7(uint32_t v) { __asm__ volatile("mov %0, %%db7" : : "r"(v)); }
static void write_dr0(uint32_t v) { __asm__ volatile("mov %0, %%db0" : : "r"(v)); }
static void write_dr1(uint32_t v) { __asm__ volatile("mov %0, %%db1" : : "r"(v)); }

/* #DB: counts them, keeps the first one's EIP and DR6, and ends single-stepping. */
static bool db_hook(struct trap_frame *f)
{
    if (!db_count++) {
        db_eip = f->eip;
        db_dr6 = read_dr6();
    }
    f->eflags &= ~(greg_t)TF;
    return true;
}

static bool timer_hook(struct trap_frame *f)
{
    (void)f;
    timer_ticks++;
    *(volatile uint32_t *)(APIC + APIC_EOI) = 0;
    return true;
}

static void db_reset(void)
{
    db_count = 0;
    db_eip = 0;
    db_dr6 = 0;
    write_dr6(0);
}

static void check_step(const char *name, uint32_t after, uint32_t want_dr6)
{
    check(db_count == 1 && db_eip == after && (db_dr6 & want_dr6) == want_dr6, name,
          "%u #DB, the first at eip %#x with DR6 %#x (expected one at %#x with DR6 bits %#x)",
          db_count, db_eip, db_dr6, after, want_dr6);
}

/* Runs SETUP, then INSN with TF set: popf sets it, so INSN is the first instruction
 * stepped.  The label after INSN is where the one #DB must arrive. */
#define STEP(name, setup, insn)                                                    \
    do {                                                                           \
        uint32_t after_;                                                           \
        db_reset();                                                                \
        __asm__ volatile(setup "\n\t"                                              \
                         "pushf\n\t"                                               \
                         "orl $0x100, (%%esp)\n\t"                                 \
                         "popf\n\t" insn "\n"                                      \
                         "1:\tnop\n\t"                                             \
                         "movl $1b, %0" : "=m"(after_) : : "eax", "ebx", "ecx", "edx", "memory"); \
        check_step(name, after_, DR6_BS);                                          \
    } while (0)

static void apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(APIC + reg) = v; }

static volatile uint32_t ram_word;

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "debugtrap";
    set_trap_hook(1, db_hook);
    set_trap_hook(TIMER_VECTOR, timer_hook);

    /* Faults plinth injects: RF in the pushed RFLAGS. */
    uint64_t v;
    probe_rdmsr(0x12345678u, &v);
    check(probe.vector == 13 && (probe.eflags & RF), "rf-injected-gp-rdmsr",
          "vector %d, pushed RFLAGS %#x", probe.vector, (uint32_t)probe.eflags);
    probe_write_cr4((uint32_t)read_cr4() | (1u << 31));
    check(probe.vector == 13 && (probe.eflags & RF), "rf-injected-gp-cr4",
          "vector %d, pushed RFLAGS %#x", probe.vector, (uint32_t)probe.eflags);
    /* The CPU's own fault, for comparison (no exit involved). */
    PROBE_ASM("ud2", : : : "memory");
    gprintf("INFO debugtrap: native #UD pushed RFLAGS %#x\n", (uint32_t)probe.eflags);

    /* Single-stepping instructions plinth completes. */
    STEP("step-cpuid", "xor %%eax, %%eax; xor %%ecx, %%ecx", "cpuid");
    STEP("step-in", "", "inb $0x80, %%al");
    STEP("step-out", "xor %%eax, %%eax", "outb %%al, $0x80");
    STEP("step-rdmsr", "mov $0x10, %%ecx", "rdmsr");
    STEP("step-wrmsr", "mov $0x277, %%ecx; rdmsr", "wrmsr");
    STEP("step-mmio-read", "", "movl 0xfee00030, %%eax");
    STEP("step-mmio-write", "", "movl $0, 0xfee00080");

    /* HLT, woken by the APIC timer: the #DB comes after the HLT. */
    apic_write(APIC_SVR, 0x1ff);
    apic_write(APIC_TIMER_DCR, 0xb);
    apic_write(APIC_LVT_TIMER, TIMER_VECTOR);            /* one-shot */
    apic_write(APIC_TIMER_ICR, 2000000);                 /* 2 ms */
    {
        uint32_t after;
        db_reset();
        __asm__ volatile("pushf\n\t"
                         "orl $0x300, (%%esp)\n\t"       /* TF and IF */
                         "popf\n\t"
                         "hlt\n"
                         "1:\tnop\n\t"
                         "cli\n\t"
                         "movl $1b, %0" : "=m"(after) : : "memory");
        check_step("step-hlt", after, DR6_BS);
        /* The interrupt that woke it may still be in the IRR behind the #DB. */
        for (int i = 0; i < 100000 && !timer_ticks; i++)
            __asm__ volatile("sti; nop; cli");
        check(timer_ticks == 1, "step-hlt-timer-delivered", "%u timer interrupts", timer_ticks);
    }

    /* MOV SS with TF: its trap waits for the instruction after it (CPUID, which exits):
     * one #DB, after the CPUID. */
    {
        uint32_t after;
        db_reset();
        __asm__ volatile("xor %%eax, %%eax\n\t"
                         "xor %%ecx, %%ecx\n\t"
                         "mov %%ss, %%bx\n\t"
                         "pushf\n\t"
                         "orl $0x100, (%%esp)\n\t"
                         "popf\n\t"
                         "mov %%bx, %%ss\n\t"
                         "cpuid\n"
                         "1:\tnop\n\t"
                         "movl $1b, %0" : "=m"(after) : : "eax", "ebx", "ecx", "edx", "memory");
        check_step("step-movss-cpuid", after, DR6_BS);
    }

    /* Data breakpoints on emulated accesses.  DR7: L0/L1, R/W 01 (write) or 11 (read
     * or write), LEN 11 (4 bytes) (SDM Vol. 3A §18.2.4, Figure 18-1). */
    {
        uint32_t after;
        db_reset();
        write_dr0(APIC + APIC_TPR);
        write_dr7(1u | 1u << 16 | 3u << 18);
        __asm__ volatile("movl $0, 0xfee00080\n"
                         "1:\tnop\n\t"
                         "movl $1b, %0" : "=m"(after) : : "memory");
        write_dr7(0);
        check_step("dbp-mmio-write", after, 1u);
        db_reset();
        write_dr0(APIC + 0x30);
        write_dr7(1u | 3u << 16 | 3u << 18);
        __asm__ volatile("movl 0xfee00030, %%eax\n"
                         "1:\tnop\n\t"
                         "movl $1b, %0" : "=m"(after) : : "eax", "memory");
        write_dr7(0);
        check_step("dbp-mmio-read", after, 1u);
        /* MOVS from the APIC's version register into RAM watched by DR1. */
        db_reset();
        write_dr1((uint32_t)&ram_word);
        write_dr7(1u << 2 | 1u << 20 | 3u << 22);
        __asm__ volatile("cld\n\t"
                         "movsl\n"
                         "1:\tnop\n\t"
                         "movl $1b, %0" : "=m"(after) : "S"(APIC + 0x30), "D"(&ram_word) : "memory");
        write_dr7(0);
        check_step("dbp-movs-ram", after, 2u);
        check((ram_word & 0xff) == 0x14, "dbp-movs-ram-value", "copied %#x", ram_word);
    }

    /* DR7.GD: the MOV to DR0 faults before it runs; the CPU clears GD for the handler. */
    if (!skipped("gd-mov-dr-faults")) {
        uint32_t at;
        db_reset();
        write_dr7(DR7_GD);
        __asm__ volatile("movl $1f, %0\n"
                         "1:\tmov %1, %%db0\n\t" : "=m"(at) : "r"(0x1234u) : "memory");
        uint32_t dr7 = read_dr7();
        check(db_count == 1 && db_eip == at && (db_dr6 & DR6_BD) && !(dr7 & DR7_GD), "gd-mov-dr-faults",
              "%u #DB at %#x (MOV at %#x), DR6 %#x, DR7 now %#x", db_count, db_eip, at, db_dr6, dr7);
        write_dr7(0);
    }
}
