#include "kernel/panic.h"
#include "kernel/console.h"
#include "kernel/fmt.h"
#include "kernel/ksyms.h"

_Static_assert(PANIC_ADDRESS_TEXT_MAX >= KSYMS_NAME_MAX + 48, "room for a symbol, offset and address");
#include "kernel/smp.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/gdt.h"
#include "arch/x86_64/cpu/trap.h"

#include <stdarg.h>

/* Frames printed: deeper than any call chain in the core. */
#define PANIC_TRACE_DEPTH 32
/* Frames walked, counting collapsed repeats: bounds the walk of a looping chain. */
#define PANIC_TRACE_WALK_MAX 4096
/* Every core stack (image .bss, direct map, stack_alloc) lives in the upper half. */
#define PANIC_UPPER_HALF 0xffff800000000000ull

static uint32_t panic_owner = PANIC_NO_CPU;
/* Faults on the panicking CPU after its panic began: 1 tolerated (reported), then
 * silence, so that a fault in the reporting code cannot recurse forever. */
static uint32_t panic_nested;

bool panic_in_progress(void)
{
    return __atomic_load_n(&panic_owner, __ATOMIC_ACQUIRE) != PANIC_NO_CPU;
}

uint32_t panic_cpu(void)
{
    return __atomic_load_n(&panic_owner, __ATOMIC_ACQUIRE);
}

void panic_begin(uint32_t cpu)
{
    cli();
    uint32_t expect = PANIC_NO_CPU;
    if (__atomic_compare_exchange_n(&panic_owner, &expect, cpu, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        /* Another CPU may hold the console lock and never release it. */
        console_enter_panic_mode();
        /* The others halt in their NMI handler (trap.c), so nothing they do can mix
         * with or change what this report shows. */
        smp_stop_other_cpus();
        return;
    }
    if (expect == cpu && __atomic_fetch_add(&panic_nested, 1, __ATOMIC_RELAXED) == 0) {
        static const char msg[] = "\nPANIC: fault while reporting the panic above; halted\n";
        console_write(msg, sizeof msg - 1);
    }
    /* The first CPU reports; it stops this one (an NMI finds it halted or halts it). */
    cpu_halt_forever();
}

void panic_printf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    console_write(buf, len);
}

/* lookup_addr is what names the code: a return address's own byte may already
 * belong to the next function when the call was a function's last instruction
 * (a call to a noreturn function), so return addresses are looked up one byte back. */
static void panic_format_frame(char *buf, size_t size, uint64_t addr, uint64_t lookup_addr)
{
    struct ksym s;
    if (ksyms_lookup(lookup_addr, &s))
        fmt_snprintf(buf, size, "%#018lx %.*s+%#lx", (unsigned long)addr, (int)s.name_len,
                     s.name, (unsigned long)(addr - s.addr));
    else
        fmt_snprintf(buf, size, "%#018lx ??", (unsigned long)addr);
}

void panic_format_address(char *buf, size_t size, uint64_t addr)
{
    panic_format_frame(buf, size, addr, addr);
}

void panic_stack_trace(uint64_t rip, uint64_t rbp)
{
    char sym[PANIC_ADDRESS_TEXT_MAX];
    unsigned frame = 0, printed = 0, repeats = 0;
    uint64_t last_ret = 0;
    panic_printf("  stack trace:");
    if (rip) {
        panic_format_address(sym, sizeof sym, rip);
        panic_printf("  #%u %s", frame++, sym);
        printed++;
    }
    /* Each frame is [rbp] = caller's rbp, [rbp+8] = return address (the core is built
     * with frame pointers); entry64.asm leaves rbp = 0 at the bottom.  A recursion
     * (a stack overflow) repeats one return address many times: that is shown as a
     * count, so the frames below it still appear. */
    for (; rbp; frame++) {
        if (frame >= PANIC_TRACE_WALK_MAX) {
            panic_printf("  ... deeper frames not walked");
            break;
        }
        if ((rbp & 7) || rbp < PANIC_UPPER_HALF || rbp > UINT64_MAX - 16) {
            panic_printf("  (trace ends: frame pointer %#lx is not a core stack address)",
                         (unsigned long)rbp);
            break;
        }
        uint64_t next, ret;
        if (trap_safe_read_u64(rbp, &next) || trap_safe_read_u64(rbp + 8, &ret)) {
            panic_printf("  (trace ends: frame at %#lx is not mapped)", (unsigned long)rbp);
            break;
        }
        if (!ret)
            break;
        rbp = next;
        if (ret == last_ret) {
            repeats++;
            continue;
        }
        if (repeats)
            panic_printf("  ... the frame above repeats %u more times", repeats);
        repeats = 0;
        if (printed == PANIC_TRACE_DEPTH) {
            panic_printf("  ... deeper frames not shown");
            return;
        }
        panic_format_frame(sym, sizeof sym, ret, ret - 1);
        panic_printf("  #%u %s", frame, sym);
        printed++;
        last_ret = ret;
    }
    if (repeats)
        panic_printf("  ... the frame above repeats %u more times", repeats);
}

void panic_end(void)
{
    panic_printf("PANIC: system halted");
    cpu_halt_forever();
}

void panic(const char *fmt, ...)
{
    uint32_t cpu = gdt_current_cpu();
    panic_begin(cpu);
    char buf[512];
    int n = fmt_snprintf(buf, sizeof buf, "PANIC: ");
    va_list ap;
    va_start(ap, fmt);
    int m = fmt_vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    console_write(buf, len);
    panic_printf("  on cpu %u", cpu);
    /* From panic's own frame: the first return address is the caller's. */
    panic_stack_trace(0, (uint64_t)(uintptr_t)__builtin_frame_address(0));
    panic_end();
}
