/* The test guests' shared library: serial output, PASS/FAIL reporting, an IDT whose
 * handlers report what arrived, and probes that run one instruction expecting a fault.
 * Guests are Multiboot 1 ELF32 kernels entered in flat 32-bit protected mode (start.asm). */
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

/* What the exception stubs (traps.asm) leave on the stack: PUSHA, vector, error code,
 * then the CPU's frame (SDM Vol. 3A §6.12.1, no privilege change). */
struct trap_frame {
    uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax;
    uint32_t vector, error;
    uint32_t eip, cs, eflags;
};

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

/* Multiboot command line word "key=N" as a number, or def. */
uint32_t cmdline_number(const struct mb1_info *mbi, const char *key, uint32_t def);
/* Top of RAM (exclusive) from the Multiboot memory fields, or 0 if absent. */
uint32_t mb1_ram_top(const struct mb1_info *mbi);

/* ---- exceptions ---- */
void idt_init(void);

/* A probe runs one instruction that may fault: the trap handler records the vector,
 * error code and faulting EIP and resumes after the instruction. */
struct probe {
    volatile uint32_t active, at, resume;
    volatile int vector;                       /* -1: nothing arrived */
    volatile uint32_t error, eip;
};
extern struct probe probe;

/* Runs the instruction text INSN (AT&T, operands fixed in the text) as a probe. */
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
static inline uint32_t read_cr0(void) { uint32_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint32_t read_cr4(void) { uint32_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline uint32_t read_eflags(void) { uint32_t v; __asm__ volatile("pushfl; popl %0" : "=r"(v)); return v; }

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
