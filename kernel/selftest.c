#include "kernel/selftest.h"
#include "kernel/boot.h"
#include "kernel/log.h"
#include "kernel/panic.h"
#include "kernel/smp.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/cpu/trap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SELFTEST_ARG        "plinth.selftest="
#define SELFTEST_NAME_MAX   32
#define SELFTEST_PAGE       4096u
#define SELFTEST_STACK_SIZE 16384u
/* Vectors for the dispatch test: outside the ranges the APIC code is likely to use. */
#define SELFTEST_VECTOR         0x81
#define SELFTEST_VECTOR_NOBODY  0x82
#define SELFTEST_VECTOR_SMP     0x83
/* Spins the boot CPU waits for the other to start faulting: seconds under TCG. */
#define SELFTEST_SMP_SPINS      200000000ull

/* Copies the value of the first plinth.selftest= word of cmdline into out. */
static bool selftest_arg(const char *cmdline, char *out, size_t size)
{
    const size_t arg_len = sizeof SELFTEST_ARG - 1;
    for (const char *p = cmdline; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *word = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - word);
        size_t i = 0;
        while (i < arg_len && i < len && word[i] == SELFTEST_ARG[i])
            i++;
        if (i < arg_len)
            continue;
        size_t n = len - arg_len;
        if (n >= size)
            n = size - 1;
        for (size_t k = 0; k < n; k++)
            out[k] = word[arg_len + k];
        out[n] = '\0';
        return true;
    }
    return false;
}

static bool selftest_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static __attribute__((noinline)) void selftest_pagefault(void)
{
    uint64_t top = stack_alloc(SELFTEST_PAGE);
    if (!top) {
        log_error("selftest: pagefault: stack_alloc failed, so there is no guard page to read");
        return;
    }
    /* stack_alloc's contract: the page right below the stack is never mapped. */
    volatile const uint64_t *guard = (volatile const uint64_t *)(uintptr_t)(top - SELFTEST_PAGE - 8);
    log_info("selftest: pagefault: reading %#lx, in a stack's guard page", (unsigned long)(uintptr_t)guard);
    uint64_t v = *guard;
    log_error("selftest: pagefault: reading the guard page did not fault (read %#lx): the "
              "guard page below stacks from stack_alloc is mapped", (unsigned long)v);
}

static __attribute__((noinline)) void selftest_ud(void)
{
    log_info("selftest: ud: executing ud2");
    __asm__ volatile("ud2");
    log_error("selftest: ud: ud2 did not raise #UD");
}

static __attribute__((noinline)) void selftest_divide(void)
{
    volatile uint32_t zero = 0;
    uint32_t divisor = zero;
    log_info("selftest: divide: dividing by zero");
    __asm__ volatile("xorl %%edx, %%edx\n\t"
                     "movl $1, %%eax\n\t"
                     "divl %0" :: "r"(divisor) : "rax", "rdx", "cc");
    log_error("selftest: divide: division by zero did not raise #DE");
}

/* Compared against so the compiler cannot see that the recursion never ends. */
static volatile uint64_t selftest_recurse_limit = UINT64_MAX;

static __attribute__((noinline)) uint64_t selftest_recurse(uint64_t depth)
{
    volatile uint64_t pad[16];
    pad[0] = depth;
    if (depth == selftest_recurse_limit)
        return 0;
    return selftest_recurse(depth + 1) + pad[0];
}

static __attribute__((noinline)) void selftest_overflow_entry(void)
{
    selftest_recurse(0);
}

static __attribute__((noinline)) void selftest_stack_overflow(void)
{
    uint64_t top = stack_alloc(SELFTEST_STACK_SIZE);
    if (!top) {
        log_error("selftest: stack-overflow: stack_alloc failed, no guard-paged stack to overflow");
        return;
    }
    log_info("selftest: stack-overflow: recursing on the %u-byte stack below %#lx into its guard page",
             SELFTEST_STACK_SIZE, (unsigned long)top);
    /* The #PF on the guard page cannot push its frame on the same full stack, so the
     * CPU raises #DF, which must arrive on its IST stack. */
    void (*entry)(void) = selftest_overflow_entry;
    __asm__ volatile("movq %%rsp, %%rbx\n\t"
                     "movq %0, %%rsp\n\t"
                     "call *%1\n\t"
                     "movq %%rbx, %%rsp"
                     :: "r"(top), "r"(entry)
                     : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
                       "memory", "cc");
    log_error("selftest: stack-overflow: the recursion returned without a fault");
}

static __attribute__((noinline)) void selftest_panic(void)
{
    panic("selftest: deliberate panic from plinth.selftest=panic");
}

static volatile uint32_t selftest_irq_count;
static volatile uint64_t selftest_irq_vector;

static void selftest_irq_handler(struct trap_frame *tf)
{
    selftest_irq_count++;
    selftest_irq_vector = tf->vector;
}

/* Not fatal: a registered vector reaches its handler, an unregistered one is logged
 * once and ignored, and boot goes on. */
static __attribute__((noinline)) void selftest_irq(void)
{
    if (trap_register(SELFTEST_VECTOR, selftest_irq_handler)) {
        log_error("selftest: irq: FAIL: could not register vector %#x", SELFTEST_VECTOR);
        return;
    }
    __asm__ volatile("int %0" :: "i"(SELFTEST_VECTOR) : "memory");
    __asm__ volatile("int %0" :: "i"(SELFTEST_VECTOR_NOBODY) : "memory");
    __asm__ volatile("int %0" :: "i"(SELFTEST_VECTOR_NOBODY) : "memory");
    trap_register(SELFTEST_VECTOR, NULL);
    if (selftest_irq_count == 1 && selftest_irq_vector == SELFTEST_VECTOR)
        log_info("selftest: irq: PASS: vector %#x reached its handler once", SELFTEST_VECTOR);
    else
        log_error("selftest: irq: FAIL: handler ran %u times, last vector %#lx; expected once, %#x",
                  selftest_irq_count, (unsigned long)selftest_irq_vector, SELFTEST_VECTOR);
}

static volatile uint32_t selftest_smp_faulting;

static void selftest_smp_fault_handler(struct trap_frame *tf)
{
    (void)tf;
    __atomic_store_n(&selftest_smp_faulting, 1, __ATOMIC_RELEASE);
    __asm__ volatile("ud2");
}

/* Two CPUs fault at the same moment: exactly one report may come out, whole, and
 * both CPUs must end halted. */
static __attribute__((noinline)) void selftest_smp_fault(void)
{
    uint32_t online = smp_cpus_online();
    if (online < 2) {
        log_error("selftest: smp-fault: needs 2 CPUs online, %u is; boot with -smp 2 or more",
                  online);
        return;
    }
    if (trap_register(SELFTEST_VECTOR_SMP, selftest_smp_fault_handler)) {
        log_error("selftest: smp-fault: could not register vector %#x", SELFTEST_VECTOR_SMP);
        return;
    }
    log_info("selftest: smp-fault: cpu 1 and cpu 0 execute ud2 together");
    if (smp_send_ipi(1, SELFTEST_VECTOR_SMP)) {
        log_error("selftest: smp-fault: the IPI to cpu 1 was not sent");
        return;
    }
    for (uint64_t i = 0; i < SELFTEST_SMP_SPINS; i++) {
        if (__atomic_load_n(&selftest_smp_faulting, __ATOMIC_ACQUIRE))
            __asm__ volatile("ud2");
        __asm__ volatile("pause");
    }
    log_error("selftest: smp-fault: cpu 1 never ran the handler of vector %#x", SELFTEST_VECTOR_SMP);
}

/* A fault whose frame pointer leads into unmapped memory: the stack trace must stop
 * there with a note, not fault itself. */
static __attribute__((noinline)) void selftest_bad_frame(void)
{
    uint64_t top = stack_alloc(SELFTEST_PAGE);
    if (!top) {
        log_error("selftest: bad-frame: stack_alloc failed, so there is no guard page to point at");
        return;
    }
    uint64_t guard = top - SELFTEST_PAGE - 64;
    log_info("selftest: bad-frame: ud2 with rbp = %#lx, in a guard page", (unsigned long)guard);
    /* rbp is the frame pointer: this function never returns to use it again. */
    __asm__ volatile("movq %0, %%rbp\n\tud2" :: "r"(guard) : "memory");
    __builtin_unreachable();
}

/* Waits, halted, for an NMI from outside (QEMU's monitor command "nmi"), which must be
 * reported on the NMI's IST stack.  Waits forever when none comes. */
static __attribute__((noinline)) void selftest_nmi(void)
{
    log_info("selftest: nmi: waiting for an NMI");
    for (;;)
        __asm__ volatile("cli; hlt" ::: "memory");
}

struct selftest {
    const char *name;
    void (*run)(void);
};

static const struct selftest selftests[] = {
    { "pagefault",      selftest_pagefault },
    { "ud",             selftest_ud },
    { "divide",         selftest_divide },
    { "stack-overflow", selftest_stack_overflow },
    { "panic",          selftest_panic },
    { "irq",            selftest_irq },
    { "smp-fault",      selftest_smp_fault },
    { "nmi",            selftest_nmi },
    { "bad-frame",      selftest_bad_frame },
};

bool selftest_chosen(const char *name)
{
    char chosen[SELFTEST_NAME_MAX];
    return selftest_arg(boot_bootinfo()->cmdline, chosen, sizeof chosen) && selftest_streq(chosen, name);
}

void selftest_run(void)
{
    char name[SELFTEST_NAME_MAX];
    if (!selftest_arg(boot_bootinfo()->cmdline, name, sizeof name))
        return;
    /* Run later, in place of the guests, with the schedulers going. */
    if (selftest_streq(name, "vm-cycle"))
        return;
    for (size_t i = 0; i < sizeof selftests / sizeof selftests[0]; i++) {
        if (selftest_streq(name, selftests[i].name)) {
            log_info("selftest: running %s", name);
            selftests[i].run();
            return;
        }
    }
    log_error("selftest: unknown self-test '%s' on the command line; known: pagefault, ud, "
              "divide, stack-overflow, panic, irq, smp-fault, nmi, bad-frame, vm-cycle", name);
}
