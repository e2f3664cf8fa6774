/* smp: a multi-vCPU VM brought up and driven the way an OS does it, through the local
 * APIC's ICR (SDM Vol. 3A §12.6.1, "MP Initialization Protocol"): the BSP starts each
 * AP with INIT-SIPI-SIPI into a real-mode trampoline that switches to 32-bit mode;
 * then fixed IPIs both ways (physical, broadcast, logical flat, lowest priority),
 * NMIs, a SIPI to a running AP (ignored), and the APs' TSCs against the BSP's.
 *
 * Command line: vcpus=N (the VM's vCPU count, APIC IDs 0..N-1); reboot=1 makes the
 * first boot reset the machine (port 0x92) after its checks, and the second run
 * them again: a CMOS byte, which a reset keeps, tells the two apart. */
#include "guest.h"

#define MAX_CPUS        8
#define APIC            0xfee00000u
#define APIC_ID         0x020
#define APIC_TPR        0x080
#define APIC_EOI        0x0b0
#define APIC_LDR        0x0d0
#define APIC_DFR        0x0e0
#define APIC_SVR        0x0f0
#define APIC_ICR_LOW    0x300
#define APIC_ICR_HIGH   0x310
#define APIC_LVT_TIMER  0x320
#define APIC_TIMER_ICR  0x380
#define APIC_TIMER_DCR  0x3e0

/* ICR fields (SDM Vol. 3A Figure 12-12). */
#define ICR_FIXED       (0u << 8)
#define ICR_LOWEST      (1u << 8)
#define ICR_NMI         (4u << 8)
#define ICR_INIT        (5u << 8)
#define ICR_SIPI        (6u << 8)
#define ICR_LOGICAL     (1u << 11)
#define ICR_BUSY        (1u << 12)
#define ICR_ASSERT      (1u << 14)
#define ICR_LEVEL       (1u << 15)
#define ICR_ALL_BUT_SELF (3u << 18)

#define TIMER_VECTOR    0x40
#define IPI_VECTOR      0x50            /* BSP -> AP */
#define REPLY_VECTOR    0x51            /* AP -> BSP */
#define TICK_MS         10
#define TIMEOUT_TICKS   1000            /* 10 s of guest time */

/* The trampoline's page: below 1 MiB, 4 KiB aligned, clear of plinth's boot
 * information (0x1000-0x9000) and the ACPI tables (0xe0000). */
#define TRAMPOLINE      0x70000u
#define SIPI_VECTOR     (TRAMPOLINE >> 12)

#define CMOS_INDEX      0x70
#define CMOS_DATA       0x71
#define CMOS_BOOT_MARK  0x40            /* a general-purpose CMOS byte */
#define BOOT_MARK       0xa5

static uint64_t idt[256] __attribute__((aligned(16)));
static struct __attribute__((packed)) { uint16_t limit; uint32_t base; } idtr;

uint8_t ap_stacks[MAX_CPUS][4096] __attribute__((aligned(16)));
void ap_main(uint32_t id);

static volatile uint32_t ticks, replies, aps_up, print_lock;
static volatile uint32_t up[MAX_CPUS], cpuid_id[MAX_CPUS], ipis[MAX_CPUS], nmis[MAX_CPUS], replied[MAX_CPUS];
static volatile uint32_t tsc_go[MAX_CPUS], finished;
static volatile uint64_t tsc_seen[MAX_CPUS];

/* Real mode at TRAMPOLINE:0 with CS = SIPI_VECTOR << 8: load a flat GDT, enter
 * protected mode, take a stack by APIC ID and call ap_main(APIC ID).  Copied to
 * TRAMPOLINE, so its own addresses are computed from there; ap_main and ap_stacks
 * are absolute. */
__asm__(".pushsection .text\n"
        ".globl smp_trampoline, smp_trampoline_end\n"
        ".code16\n"
        "smp_trampoline:\n"
        "    cli\n"
        "    mov %cs, %ax\n"
        "    mov %ax, %ds\n"
        "    lgdtl tramp_gdtr - smp_trampoline\n"
        "    mov %cr0, %eax\n"
        "    or $1, %eax\n"
        "    mov %eax, %cr0\n"
        "    ljmpl $0x08, $(0x70000 + tramp32 - smp_trampoline)\n"
        ".code32\n"
        "tramp32:\n"
        "    mov $0x10, %ax\n"
        "    mov %ax, %ds\n"
        "    mov %ax, %es\n"
        "    mov %ax, %fs\n"
        "    mov %ax, %gs\n"
        "    mov %ax, %ss\n"
        "    mov 0xfee00020, %eax\n"
        "    shr $24, %eax\n"
        "    and $7, %eax\n"
        "    mov %eax, %ebx\n"
        "    inc %eax\n"
        "    shl $12, %eax\n"
        "    add $ap_stacks, %eax\n"
        "    mov %eax, %esp\n"
        "    push %ebx\n"
        "    mov $ap_main, %eax\n"
        "    call *%eax\n"
        "1:  cli\n"
        "    hlt\n"
        "    jmp 1b\n"
        ".p2align 3\n"
        "tramp_gdt:\n"
        "    .quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff\n"
        "tramp_gdtr:\n"
        "    .word 23\n"
        "    .long 0x70000 + tramp_gdt - smp_trampoline\n"
        "smp_trampoline_end:\n"
        ".popsection\n");
extern char smp_trampoline[], smp_trampoline_end[];

static void apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(APIC + reg) = v; }
static uint32_t apic_read(uint32_t reg) { return *(volatile uint32_t *)(APIC + reg); }
static uint32_t apic_id(void) { return apic_read(APIC_ID) >> 24; }

static void lock(void)
{
    while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
        __asm__ volatile("pause");
}

static void unlock(void)
{
    __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

static void send_ipi(uint32_t dest, uint32_t low)
{
    apic_write(APIC_ICR_HIGH, dest << 24);
    apic_write(APIC_ICR_LOW, low);
    for (int i = 0; i < 100000 && (apic_read(APIC_ICR_LOW) & ICR_BUSY); i++)
        __asm__ volatile("pause");
}

struct iframe;
__attribute__((interrupt)) static void timer_isr(struct iframe *f)
{
    (void)f;
    ticks++;
    apic_write(APIC_EOI, 0);
}

__attribute__((interrupt)) static void ipi_isr(struct iframe *f)
{
    (void)f;
    __atomic_add_fetch(&ipis[apic_id() & 7], 1, __ATOMIC_RELAXED);
    apic_write(APIC_EOI, 0);
}

__attribute__((interrupt)) static void reply_isr(struct iframe *f)
{
    (void)f;
    __atomic_add_fetch(&replies, 1, __ATOMIC_RELAXED);
    apic_write(APIC_EOI, 0);
}

/* An NMI takes no EOI (SDM Vol. 3A §12.8.5: only fixed interrupts are in service). */
__attribute__((interrupt)) static void nmi_isr(struct iframe *f)
{
    (void)f;
    __atomic_add_fetch(&nmis[apic_id() & 7], 1, __ATOMIC_RELAXED);
}

static void set_gate(unsigned vector, void (*isr)(struct iframe *))
{
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    uint32_t off = (uint32_t)isr;
    idt[vector] = (off & 0xffff) | (uint64_t)cs << 16 | (uint64_t)0x8e00 << 32 | (uint64_t)(off >> 16) << 48;
}

/* The library's IDT covers the exceptions; this copy adds the APIC's vectors and
 * the NMI, and every CPU loads it. */
static void install_vectors(void)
{
    __asm__ volatile("sidt %0" : "=m"(idtr));
    memcpy(idt, (void *)idtr.base, idtr.limit + 1u);
    set_gate(2, nmi_isr);
    set_gate(TIMER_VECTOR, timer_isr);
    set_gate(IPI_VECTOR, ipi_isr);
    set_gate(REPLY_VECTOR, reply_isr);
    idtr.limit = sizeof idt - 1;
    idtr.base = (uint32_t)idt;
    __asm__ volatile("lidt %0" :: "m"(idtr));
}

void ap_main(uint32_t id)
{
    __asm__ volatile("lidt %0" :: "m"(idtr));
    apic_write(APIC_SVR, 0x1ff);
    /* Logical flat model, one bit per CPU (SDM Vol. 3A §12.6.2.2). */
    apic_write(APIC_DFR, 0xffffffffu);
    apic_write(APIC_LDR, (1u << id) << 24);
    uint32_t r[4];
    cpuid(1, 0, r);
    cpuid_id[id] = r[1] >> 24;
    lock();
    gprintf("INFO smp: cpu %u up\n", id);
    unlock();
    up[id]++;
    __atomic_add_fetch(&aps_up, 1, __ATOMIC_RELEASE);
    for (;;) {
        __asm__ volatile("sti; hlt; cli" ::: "memory");
        /* The end: halted with interrupts off, as an OS parks its CPUs. */
        while (finished)
            __asm__ volatile("hlt");
        if (tsc_go[id] && !tsc_seen[id])
            tsc_seen[id] = rdtsc();
        /* Every IPI and NMI this AP took is answered with one fixed IPI to the BSP
         * (sent from here, not from a handler). */
        while (replied[id] < ipis[id] + nmis[id]) {
            replied[id]++;
            send_ipi(0, REPLY_VECTOR | ICR_FIXED | ICR_ASSERT);
        }
    }
}

/* Sleeps (sti; hlt, woken by the APIC timer at least) until cond holds or the
 * timeout passes; true if it held. */
#define WAIT_UNTIL(cond)                                                   \
    ({                                                                     \
        uint32_t start_ = ticks;                                           \
        while (!(cond) && ticks - start_ < TIMEOUT_TICKS)                  \
            __asm__ volatile("sti; hlt; cli" ::: "memory");                \
        (bool)(cond);                                                      \
    })

static void delay_ticks(uint32_t n)
{
    uint32_t start = ticks;
    while (ticks - start < n)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

static uint8_t cmos_read(uint8_t i) { outb(CMOS_INDEX, i); return inb(CMOS_DATA); }
static void cmos_write(uint8_t i, uint8_t v) { outb(CMOS_INDEX, i); outb(CMOS_DATA, v); }

/* Each AP has taken exactly want[id] fixed IPIs and answered them and its NMIs. */
static bool counts_are(const uint32_t *want, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        if (ipis[i] != want[i] || replied[i] != want[i] + nmis[i])
            return false;
    return true;
}

/* Two replies of one vector that reach the BSP before it takes the first merge into
 * one request (an APIC holds one per vector in its IRR, SDM Vol. 3A §12.8.4), so the
 * APs count what they answered and the BSP only checks that answers came. */
static uint32_t replies_seen;

static void report_counts(const char *name, const uint32_t *want, unsigned n)
{
    bool ok = WAIT_UNTIL(counts_are(want, n)) && WAIT_UNTIL(replies != replies_seen);
    check(ok, name, "AP 1 took %u of %u IPIs and answered %u, AP %u took %u of %u and answered %u; "
          "%u reply interrupts since the last check", ipis[1], want[1], replied[1], n - 1, ipis[n - 1],
          want[n - 1], replied[n - 1], replies - replies_seen);
    replies_seen = replies;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "smp";
    unsigned n = cmdline_number(mbi, "vcpus", 2);
    bool reboot = cmdline_number(mbi, "reboot", 0) != 0;
    bool second = reboot && cmos_read(CMOS_BOOT_MARK) == BOOT_MARK;
    if (n < 2 || n > MAX_CPUS) {
        fail("smp-vcpus", "vcpus=%u on the command line; give 2 to %u", n, MAX_CPUS);
        return;
    }
    install_vectors();
    apic_write(APIC_SVR, 0x1ff);
    apic_write(APIC_DFR, 0xffffffffu);
    apic_write(APIC_LDR, 1u << 24);
    apic_write(APIC_TIMER_DCR, 0xb);                          /* divide by 1 */
    apic_write(APIC_LVT_TIMER, TIMER_VECTOR | (1u << 17));    /* periodic */
    apic_write(APIC_TIMER_ICR, TICK_MS * 1000000u);           /* the 1 GHz timer clock */
    gprintf("INFO smp: boot %u, %u vCPUs, BSP APIC ID %u\n", second ? 2 : 1, n, apic_id());

    /* INIT, INIT de-assert, then two SIPIs (the universal start-up algorithm, SDM
     * Vol. 3A "MP Initialization Protocol"): the second SIPI must be ignored by an
     * AP the first one started. */
    memcpy((void *)TRAMPOLINE, smp_trampoline, (size_t)(smp_trampoline_end - smp_trampoline));
    for (unsigned id = 1; id < n; id++) {
        send_ipi(id, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
        send_ipi(id, ICR_INIT | ICR_LEVEL);
        delay_ticks(1);
        send_ipi(id, ICR_SIPI | ICR_ASSERT | SIPI_VECTOR);
        send_ipi(id, ICR_SIPI | ICR_ASSERT | SIPI_VECTOR);
    }
    bool all_up = WAIT_UNTIL(aps_up == n - 1);
    delay_ticks(2);
    unsigned once = 0;
    for (unsigned id = 1; id < n; id++)
        once += up[id] == 1;
    lock();
    check(all_up && once == n - 1 && aps_up == n - 1, "smp-aps-started", "%u of %u APs up (%u once)",
          aps_up, n - 1, once);
    unlock();
    bool ids = true;
    for (unsigned id = 1; id < n; id++)
        ids = ids && cpuid_id[id] == id;
    check(ids, "smp-cpuid-apic-id", "AP 1's CPUID initial APIC ID %u", cpuid_id[1]);

    uint32_t want[MAX_CPUS] = { 0 };
    /* Fixed, physical destination: each AP by its APIC ID. */
    for (unsigned id = 1; id < n; id++) {
        send_ipi(id, IPI_VECTOR | ICR_FIXED | ICR_ASSERT);
        want[id]++;
    }
    report_counts("smp-ipi-fixed", want, n);
    /* All but self (the shorthand). */
    send_ipi(0, IPI_VECTOR | ICR_FIXED | ICR_ASSERT | ICR_ALL_BUT_SELF);
    for (unsigned id = 1; id < n; id++)
        want[id]++;
    report_counts("smp-ipi-all-but-self", want, n);
    /* Logical, flat model: every AP's bit. */
    uint32_t aps_mask = ((1u << n) - 1) & ~1u;
    send_ipi(aps_mask, IPI_VECTOR | ICR_FIXED | ICR_ASSERT | ICR_LOGICAL);
    for (unsigned id = 1; id < n; id++)
        want[id]++;
    report_counts("smp-ipi-logical", want, n);
    /* Lowest priority to the same set: exactly one AP takes it. */
    uint32_t before = 0, after = 0;
    for (unsigned id = 1; id < n; id++)
        before += ipis[id];
    send_ipi(aps_mask, IPI_VECTOR | ICR_LOWEST | ICR_ASSERT | ICR_LOGICAL);
    bool one = WAIT_UNTIL(({ uint32_t sum = 0; for (unsigned i = 1; i < n; i++) sum += replied[i]; sum; }) ==
                          before + 1);
    delay_ticks(5);
    for (unsigned id = 1; id < n; id++) {
        after += ipis[id];
        want[id] = ipis[id];
    }
    check(one && after == before + 1, "smp-ipi-lowest-priority", "%u IPIs taken, expected 1", after - before);
    /* NMI to each AP. */
    for (unsigned id = 1; id < n; id++)
        send_ipi(id, ICR_NMI | ICR_ASSERT);
    bool nmi_ok = WAIT_UNTIL(({ bool all = true; for (unsigned i = 1; i < n; i++) all = all && nmis[i] == 1; all; }));
    check(nmi_ok, "smp-ipi-nmi", "AP 1 took %u NMIs, AP %u took %u", nmis[1], n - 1, nmis[n - 1]);
    report_counts("smp-nmi-replies", want, n);
    /* A SIPI to a running AP is ignored (§12.6.1): AP 1 goes on, not through the
     * trampoline again, and still answers. */
    send_ipi(1, ICR_SIPI | ICR_ASSERT | SIPI_VECTOR);
    delay_ticks(5);
    send_ipi(1, IPI_VECTOR | ICR_FIXED | ICR_ASSERT);
    want[1]++;
    report_counts("smp-sipi-ignored-while-running", want, n);
    check(up[1] == 1 && aps_up == n - 1, "smp-sipi-no-restart", "AP 1 came up %u times", up[1]);
    /* The APs' TSCs agree with the BSP's: each reads its TSC between two reads of
     * the BSP's (one TSC offset per VM). */
    bool tsc_ok = true;
    for (unsigned id = 1; id < n; id++) {
        uint64_t t0 = rdtsc();
        tsc_go[id] = 1;
        send_ipi(id, IPI_VECTOR | ICR_FIXED | ICR_ASSERT);
        want[id]++;
        bool seen = WAIT_UNTIL(tsc_seen[id] != 0);
        uint64_t t1 = rdtsc();
        if (!seen || tsc_seen[id] < t0 || tsc_seen[id] > t1) {
            fail("smp-tsc-synchronized", "AP %u read TSC %#llx, BSP %#llx before and %#llx after", id,
                 tsc_seen[id], t0, t1);
            tsc_ok = false;
            break;
        }
    }
    if (tsc_ok)
        pass("smp-tsc-synchronized");
    report_counts("smp-ipi-replies", want, n);

    if (reboot && !second) {
        /* The machine's reset (port 0x92 bit 0, the fast reset): plinth restarts the
         * whole VM, every vCPU; the mark in CMOS survives it. */
        cmos_write(CMOS_BOOT_MARK, BOOT_MARK);
        gprintf("INFO smp: resetting the machine\n");
        outb(0x92, inb(0x92) | 1);
        delay_ticks(100);
        fail("smp-reset", "still running after the reset through port 0x92");
        return;
    }
    if (second)
        cmos_write(CMOS_BOOT_MARK, 0);
    gprintf("DONE smp\n");
    /* Every vCPU ends halted with interrupts off: then the VM has ended. */
    finished = 1;
    send_ipi(0, IPI_VECTOR | ICR_FIXED | ICR_ASSERT | ICR_ALL_BUT_SELF);
    for (;;)
        __asm__ volatile("cli; hlt");
}
