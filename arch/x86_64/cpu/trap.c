#include "arch/x86_64/cpu/trap.h"
#include "arch/x86_64/cpu/gdt.h"
#include "arch/x86_64/cpu/cpu.h"
#include "kernel/panic.h"
#include "kernel/log.h"

#include <stddef.h>

extern const char trap_safe_read_fixup[];

static trap_handler_fn trap_handlers[TRAP_VECTORS];
/* Vectors that fired without a handler and were logged, one bit each. */
static uint64_t trap_unhandled_logged[TRAP_VECTORS / 64];

struct trap_exception {
    const char *name;
    const char *mnemonic;
};

/* SDM Vol. 3A Table 6-1; 28-30 from APM Vol. 2 Table 8-1. */
static const struct trap_exception trap_exceptions[TRAP_FIRST_INTERRUPT] = {
    [EXC_DE]  = { "Divide Error", "#DE" },
    [EXC_DB]  = { "Debug Exception", "#DB" },
    [EXC_NMI] = { "Non-Maskable Interrupt", "NMI" },
    [EXC_BP]  = { "Breakpoint", "#BP" },
    [EXC_OF]  = { "Overflow", "#OF" },
    [EXC_BR]  = { "BOUND Range Exceeded", "#BR" },
    [EXC_UD]  = { "Invalid Opcode", "#UD" },
    [EXC_NM]  = { "Device Not Available", "#NM" },
    [EXC_DF]  = { "Double Fault", "#DF" },
    [9]       = { "Coprocessor Segment Overrun", "" },
    [EXC_TS]  = { "Invalid TSS", "#TS" },
    [EXC_NP]  = { "Segment Not Present", "#NP" },
    [EXC_SS]  = { "Stack-Segment Fault", "#SS" },
    [EXC_GP]  = { "General Protection", "#GP" },
    [EXC_PF]  = { "Page Fault", "#PF" },
    [EXC_MF]  = { "x87 Floating-Point Error", "#MF" },
    [EXC_AC]  = { "Alignment Check", "#AC" },
    [EXC_MC]  = { "Machine Check", "#MC" },
    [EXC_XM]  = { "SIMD Floating-Point Exception", "#XM" },
    [EXC_VE]  = { "Virtualization Exception", "#VE" },
    [EXC_CP]  = { "Control Protection Exception", "#CP" },
    [EXC_HV]  = { "Hypervisor Injection Exception", "#HV" },
    [EXC_VC]  = { "VMM Communication Exception", "#VC" },
    [EXC_SX]  = { "Security Exception", "#SX" },
};

const char *trap_exception_name(uint8_t vector)
{
    if (vector < TRAP_FIRST_INTERRUPT && trap_exceptions[vector].name)
        return trap_exceptions[vector].name;
    return "Reserved";
}

const char *trap_exception_mnemonic(uint8_t vector)
{
    if (vector < TRAP_FIRST_INTERRUPT && trap_exceptions[vector].mnemonic)
        return trap_exceptions[vector].mnemonic;
    return "";
}

int trap_register(uint8_t vector, trap_handler_fn fn)
{
    if (vector < TRAP_FIRST_INTERRUPT) {
        log_error("trap: vector %u is an exception, which is always fatal; interrupt "
                  "handlers take vectors %u..255", vector, TRAP_FIRST_INTERRUPT);
        return -1;
    }
    if (!fn) {
        __atomic_store_n(&trap_handlers[vector], NULL, __ATOMIC_RELEASE);
        return 0;
    }
    trap_handler_fn expect = NULL;
    if (__atomic_compare_exchange_n(&trap_handlers[vector], &expect, fn, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) || expect == fn)
        return 0;
    log_error("trap: vector %#x already has a handler; choose a free vector or remove the "
              "old handler first (trap_register(vector, NULL))", vector);
    return -1;
}

/* What the error code says, where it says something: SDM Vol. 3A 4.7 "Page-Fault
 * Exceptions" for #PF, 6.13 "Error Code" (selector format) for #TS #NP #SS #GP. */
static void trap_explain(const struct trap_frame *tf, uint64_t cr2)
{
    uint64_t ec = tf->error_code;
    switch (tf->vector) {
    case EXC_PF:
        panic_printf("  %s of %#lx: %s%s%s%s",
                     (ec & (1u << 4)) ? "instruction fetch" : (ec & (1u << 1)) ? "write" : "read",
                     (unsigned long)cr2,
                     (ec & (1u << 0)) ? "protection violation" : "page not present",
                     (ec & (1u << 3)) ? ", reserved bit set in a paging entry" : "",
                     (ec & (1u << 5)) ? ", protection key" : "",
                     (ec & (1u << 6)) ? ", shadow stack" : "");
        break;
    case EXC_TS: case EXC_NP: case EXC_SS: case EXC_GP:
        if (ec)
            panic_printf("  selector index %lu in the %s%s", (unsigned long)((ec >> 3) & 0x1fff),
                         (ec & 2) ? "IDT" : (ec & 4) ? "LDT" : "GDT",
                         (ec & 1) ? " (external event)" : "");
        break;
    case EXC_NMI:
        panic_printf("  an NMI with no panic in progress: plinth sends none otherwise, so it "
                     "came from the platform (a hardware error such as a PCI SERR or an "
                     "I/O channel check)");
        break;
    case EXC_DF:
        panic_printf("  a fault while delivering another; with guard-paged stacks this is "
                     "most often a stack overflow (see rsp)");
        break;
    default:
        break;
    }
}

static __attribute__((noreturn)) void trap_report(struct trap_frame *tf)
{
    /* Before anything else can fault and overwrite it. */
    uint64_t cr2 = read_cr2();
    uint32_t cpu = gdt_current_cpu();
    panic_begin(cpu);

    uint8_t v = (uint8_t)tf->vector;
    const char *mnemonic = trap_exception_mnemonic(v);
    if (*mnemonic)
        panic_printf("PANIC: %s (%s) on cpu %u", trap_exception_name(v), mnemonic, cpu);
    else
        panic_printf("PANIC: %s exception (vector %u) on cpu %u", trap_exception_name(v), v, cpu);
    trap_explain(tf, cr2);

    char sym[PANIC_ADDRESS_TEXT_MAX];
    panic_format_address(sym, sizeof sym, tf->rip);
    panic_printf("  rip %s", sym);
    panic_printf("  rax=%016lx rbx=%016lx rcx=%016lx", tf->rax, tf->rbx, tf->rcx);
    panic_printf("  rdx=%016lx rsi=%016lx rdi=%016lx", tf->rdx, tf->rsi, tf->rdi);
    panic_printf("  rbp=%016lx rsp=%016lx r8 =%016lx", tf->rbp, tf->rsp, tf->r8);
    panic_printf("  r9 =%016lx r10=%016lx r11=%016lx", tf->r9, tf->r10, tf->r11);
    panic_printf("  r12=%016lx r13=%016lx r14=%016lx", tf->r12, tf->r13, tf->r14);
    panic_printf("  r15=%016lx rip=%016lx rflags=%016lx", tf->r15, tf->rip, tf->rflags);
    panic_printf("  cs=%04lx ss=%04lx error code=%#lx vector=%lu", tf->cs, tf->ss,
                 tf->error_code, tf->vector);
    panic_printf("  cr0=%016lx cr2=%016lx cr3=%016lx cr4=%016lx", read_cr0(), cr2,
                 read_cr3(), read_cr4());
    int ist = gdt_ist_containing(cpu, (uint64_t)(uintptr_t)__builtin_frame_address(0));
    if (ist)
        panic_printf("  reported on the IST%d stack", ist);
    else
        panic_printf("  reported on the interrupted stack");
    panic_stack_trace(tf->rip, tf->rbp);
    panic_end();
}

static void trap_unhandled(const struct trap_frame *tf)
{
    uint64_t v = tf->vector;
    uint64_t bit = 1ull << (v % 64);
    if (__atomic_fetch_or(&trap_unhandled_logged[v / 64], bit, __ATOMIC_RELAXED) & bit)
        return;
    log_warn("trap: vector %#lx fired on cpu %u with no handler (at rip %#lx); ignored, and "
             "not logged again: the code that programs this vector must trap_register it",
             (unsigned long)v, gdt_current_cpu(), (unsigned long)tf->rip);
}

void trap_dispatch(struct trap_frame *tf)
{
    uint64_t v = tf->vector;
    if ((v == EXC_PF || v == EXC_GP || v == EXC_SS)
        && tf->rip == (uint64_t)(uintptr_t)trap_safe_read_u64) {
        tf->rip = (uint64_t)(uintptr_t)trap_safe_read_fixup;
        return;
    }
    if (v == EXC_NMI && panic_in_progress()) {
        /* The panicking CPU stops the others with an NMI; its own report goes on. */
        if (panic_cpu() != gdt_current_cpu())
            cpu_halt_forever();
        return;
    }
    if (v < TRAP_FIRST_INTERRUPT || v >= TRAP_VECTORS)
        trap_report(tf);
    trap_handler_fn fn = __atomic_load_n(&trap_handlers[v], __ATOMIC_ACQUIRE);
    if (fn)
        fn(tf);
    else
        trap_unhandled(tf);
}
