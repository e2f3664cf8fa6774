/* The test guests' shared library: serial output, PASS/FAIL reporting, an IDT whose
 * handlers report what arrived, and probes that run one instruction expecting a fault.
 * Guests are Multiboot 1 kernels entered in flat 32-bit protected mode: ELF32 ones stay
 * there (start.asm), ELF64 ones switch to 64-bit mode on an identity map of the first
 * 4 GiB first (start64.asm).  The same C source builds either way where it uses only
 * what this header gives. */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB1_BOOT_MAGIC 0x2BADB002u

/* Multiboot 1 information structure (spec 0.6.96 §3.3). */
struct mb1_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct mb1_mmap {
    uint32_t size;
    uint64_t base, length;
    uint32_t type;
} __attribute__((packed));

#define MB1_INFO_MEM     (1u << 0)
#define MB1_INFO_CMDLINE (1u << 2)
#define MB1_INFO_MMAP    (1u << 6)

/* What the interrupt stubs (traps.asm, traps64.asm) leave on the stack: the general
 * registers, vector, error code (0 where the CPU pushes none), then the CPU's frame
 * (SDM Vol. 3A §6.12.1, no privilege change; §6.14.2 in 64-bit mode, which always
 * pushes SS:RSP).  eip and eflags are RIP and RFLAGS in a 64-bit guest. */
#ifdef __x86_64__
typedef uint64_t greg_t;
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax;
    uint64_t vector, error;
    uint64_t eip, cs, eflags, rsp, ss;
};
#else
typedef uint32_t greg_t;
struct trap_frame {
    uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax;
    uint32_t vector, error;
    uint32_t eip, cs, eflags;
};
#endif

/* Each guest defines this; start.asm passes EAX and EBX as Multiboot left them. */
void guest_main(uint32_t magic, const struct mb1_info *mbi);
extern const char *guest_name;                 /* for DONE and the default trap report */
extern char guest_image_start[], guest_image_end[];

void serial_init(void);
void serial_putc(char c);
void gprintf(const char *fmt, ...);            /* %s %c %u %d %x %08x %lx(64-bit) %llx */
void gvprintf(const char *fmt, va_list ap);
void pass(const char *check);
void fail(const char *check, const char *fmt, ...);
/* pass() if ok, else fail() with the message. */
void check(bool ok, const char *check, const char *fmt, ...);
__attribute__((noreturn)) void done(void);
extern unsigned guest_failures;

/* Whether the command line's skip=NAME,NAME... names this check: then it prints "SKIP
 * <check>" and the caller leaves the check out.  The boot tests name checks that an
 * emulator itself gets wrong (and give the reason there). */
bool skipped(const char *check);
extern const struct mb1_info *guest_mbi;

/* Multiboot command line word "key=N" as a number, or def. */
uint32_t cmdline_number(const struct mb1_info *mbi, const char *key, uint32_t def);
/* Multiboot command line word "key=VALUE": VALUE (up to the next space, cut to cap - 1
 * bytes) into out, true; false (out "") when no word names key. */
bool cmdline_string(const struct mb1_info *mbi, const char *key, char *out, size_t cap);
/* Top of RAM (exclusive) from the Multiboot memory fields, or 0 if absent. */
uint32_t mb1_ram_top(const struct mb1_info *mbi);

/* ---- exceptions and interrupts ---- */
/* An IDT of 256 interrupt gates (DPL 0) into the stubs; vectors nobody handles are
 * reported as unexpected and end the guest. */
void idt_init(void);
/* A handler for one vector, called before the probe logic: it returns true when it
 * dealt with the event (it may change the frame, e.g. eip or eflags), false to let
 * the probe (or the unexpected-exception report) have it. */
typedef bool (*trap_hook_fn)(struct trap_frame *f);
void set_trap_hook(unsigned vector, trap_hook_fn fn);
/* The IRET every handler returns through. */
extern char trap_iret[];
/* Sets vector's gate's DPL (3: INT n from ring 3 allowed) or makes it a trap gate
 * (IF left alone on entry). */
void idt_set_gate(unsigned vector, unsigned dpl, bool trap_gate);

/* A probe runs one instruction that may fault: the trap handler records the vector,
 * error code and faulting EIP and resumes after the instruction. */
struct probe {
    volatile uint32_t active, at, resume;
    volatile int vector;                       /* -1: nothing arrived */
    volatile uint32_t error, eip;
    volatile greg_t eflags;                    /* the RFLAGS image the CPU pushed */
};
extern struct probe probe;

/* Runs the instruction text INSN (AT&T, operands fixed in the text) as a probe. */
/* (The 32-bit absolute stores work in 64-bit mode too: guests live below 2 GiB.) */
#define PROBE_ASM(insn, ...)                                                      \
    do {                                                                          \
        probe.vector = -1;                                                        \
        __asm__ volatile("movl $0f, probe+4\n\t"                                  \
                         "movl $1f, probe+8\n\t"                                  \
                         "movl $1, probe\n"                                       \
                         "0:\t" insn "\n"                                         \
                         "1:\tmovl $0, probe" __VA_ARGS__);                       \
    } while (0)

int probe_rdmsr(uint32_t msr, uint64_t *value);   /* returns the vector, or -1 */
int probe_wrmsr(uint32_t msr, uint64_t value);
int probe_write_cr4(uint32_t value);
/* Reports a probe's outcome: PASS if the expected vector (and error code, unless
 * want_error < 0) arrived at the probed instruction. */
void expect_fault(const char *check, int want_vector, int32_t want_error);

/* ---- CPU helpers ---- */
static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}
static inline greg_t read_cr0(void) { greg_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline greg_t read_cr4(void) { greg_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline greg_t read_eflags(void) { greg_t v; __asm__ volatile("pushf; pop %0" : "=r"(v)); return v; }
static inline void write_cr4(greg_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
/* CPUID vendor "AuthenticAMD" (or Hygon): the guest is on an AMD CPU. */
bool cpu_is_amd(void);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
