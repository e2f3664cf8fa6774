#include "kernel/smp.h"
#include "kernel/log.h"
#include "kernel/pmm.h"
#include "kernel/time.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/gdt.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/cpu/trap.h"
#include "arch/x86_64/apic/lapic.h"
#include "drivers/acpi.h"

#include <stddef.h>

/* Each AP's kernel stack; the guard page below it comes from stack_alloc. */
#define SMP_STACK_SIZE        (16 * 1024)
/* SDM Vol. 3A §9.4.4.1: INIT, wait 10 ms, Startup IPI, wait 200 us, Startup IPI. */
#define SMP_INIT_DELAY_US     10000
#define SMP_SIPI_DELAY_US     200
/* How long an AP has to report in after its Startup IPIs.  The AP's path is a few
 * thousand instructions; this leaves room for slow emulators. */
#define SMP_REPORT_TIMEOUT_US 1000000

/* Wakes idle APs to look at smp_ap_main; the handler only acknowledges it. */
#define SMP_WAKE_VECTOR       0xf1

/* Stages the trampoline writes (arch/x86_64/cpu/ap_trampoline.asm). */
#define AP_STAGE_NONE 0
#define AP_STAGE_REAL 1
#define AP_STAGE_PROT 2
#define AP_STAGE_LONG 3

/* Page-table entry bits for the trampoline's temporary tables (SDM Vol. 3A §5.5). */
#define PTE_PRESENT  (1ull << 0)
#define PTE_WRITABLE (1ull << 1)
#define PTE_LARGE    (1ull << 7)

/* The patchable block at the end of the trampoline; layout fixed by the asm. */
struct ap_trampoline_data {
    uint32_t far32_offset;   /* + page base */
    uint16_t far32_sel;
    uint16_t gdt_limit;
    uint32_t gdt_base;       /* + page base */
    uint32_t far64_offset;   /* + page base */
    uint16_t far64_sel;
    uint16_t pad;
    uint32_t boot_cr3;       /* temporary PML4, below 4 GiB */
    uint64_t efer;
    uint64_t cr0;
    uint64_t cr4;
    uint64_t cr3;            /* the kernel's */
    uint64_t stack;
    uint64_t entry;
    uint32_t cpu_index;
    volatile uint32_t stage;
};
_Static_assert(offsetof(struct ap_trampoline_data, gdt_limit) == 6, "lgdt operand layout");
_Static_assert(offsetof(struct ap_trampoline_data, boot_cr3) == 20, "trampoline layout");
_Static_assert(offsetof(struct ap_trampoline_data, stage) == 76, "trampoline layout");
_Static_assert(sizeof(struct ap_trampoline_data) == 80, "trampoline layout");

extern const char __ap_trampoline_start[], __ap_trampoline_end[];
extern const char ap_trampoline[], ap_trampoline_data[];
extern char boot_stack_top[];

_Static_assert(__builtin_offsetof(struct cpu, self) == __builtin_offsetof(struct percpu_head, self) &&
               __builtin_offsetof(struct cpu, index) == __builtin_offsetof(struct percpu_head, index),
               "struct cpu must begin with struct percpu_head's fields");

static struct cpu smp_cpus[SMP_MAX_CPUS];
static uint32_t smp_cpu_slots = 1;          /* entries of smp_cpus in use */
static uint32_t smp_online = 1;
static bool smp_gs_ready;                   /* this_cpu() may read %gs */
static volatile bool smp_stop_requested;
static void (*volatile smp_ap_main)(void);

static uint64_t smp_tramp_phys;
static struct ap_trampoline_data *smp_tramp_data;
static uint64_t smp_tramp_tables[3];        /* PML4, PDPT, PD */

struct cpu *this_cpu(void)
{
    /* Until smp_init only the boot CPU runs, and its GS base is not set yet. */
    if (!__atomic_load_n(&smp_gs_ready, __ATOMIC_ACQUIRE))
        return &smp_cpus[0];
    struct cpu *c;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(c));
    return c;
}

struct cpu *smp_cpu(uint32_t index)
{
    if (index >= smp_cpu_slots || !smp_cpus[index].online)
        return NULL;
    return &smp_cpus[index];
}

uint32_t smp_cpus_online(void)
{
    return __atomic_load_n(&smp_online, __ATOMIC_ACQUIRE);
}

int smp_send_ipi(uint32_t cpu_index, uint8_t vector)
{
    struct cpu *c = smp_cpu(cpu_index);
    /* Vectors 0-31 are exceptions; an IPI with one is an APIC send error (SDM Vol. 3A
     * §12.5.3). */
    if (!c || vector < 32 || !lapic_ready())
        return -1;
    return lapic_send_ipi(c->apic_id, ICR_DELIVERY_FIXED | ICR_LEVEL_ASSERT | vector);
}

void smp_stop_other_cpus(void)
{
    __atomic_store_n(&smp_stop_requested, true, __ATOMIC_SEQ_CST);
    if (!lapic_ready())
        return;
    /* One NMI per online CPU rather than the all-but-self shorthand: CPUs plinth never
     * started (beyond SMP_MAX_CPUS, or not addressable) still run firmware code that
     * may be gone, and an NMI there could triple-fault and reset the machine over the
     * panic report.  An AP still on its way up halts in smp_idle instead. */
    uint32_t me = lapic_id();
    uint32_t slots = __atomic_load_n(&smp_cpu_slots, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < slots && i < SMP_MAX_CPUS; i++) {
        struct cpu *c = &smp_cpus[i];
        if (__atomic_load_n(&c->online, __ATOMIC_ACQUIRE) && c->apic_id != me)
            lapic_send_ipi(c->apic_id, ICR_DELIVERY_NMI | ICR_LEVEL_ASSERT);
    }
}

bool smp_stopping(void)
{
    return __atomic_load_n(&smp_stop_requested, __ATOMIC_ACQUIRE);
}

static void smp_wake_handler(struct trap_frame *tf)
{
    (void)tf;
    lapic_eoi();
}

void smp_release_aps(void (*fn)(void))
{
    __atomic_store_n(&smp_ap_main, fn, __ATOMIC_RELEASE);
    for (uint32_t i = 1; i < smp_cpu_slots; i++)
        if (smp_cpus[i].online && smp_send_ipi(i, SMP_WAKE_VECTOR))
            log_warn("smp: the wake-up IPI to cpu %u was not accepted; it starts work at "
                     "its next interrupt", i);
}

static __attribute__((noreturn)) void smp_idle(void)
{
    bool ran = false;
    for (;;) {
        if (smp_stopping())
            cpu_halt_forever();
        void (*fn)(void) = __atomic_load_n(&smp_ap_main, __ATOMIC_ACQUIRE);
        if (fn && !ran) {
            ran = true;
            cli();
            fn();
            /* fn is documented never to return; if it does, idle rather than fall
             * off the end of the AP's stack. */
            log_error("smp: cpu %u: the function smp_release_aps gave returned; idling",
                      this_cpu()->index);
        }
        /* sti's one-instruction shadow keeps an interrupt from slipping in before hlt. */
        __asm__ volatile("sti; hlt" ::: "memory");
    }
}

/* Called by the trampoline on the AP's own stack, with paging on the kernel's tables. */
void smp_ap_entry(uint32_t index)
{
    struct cpu *c = &smp_cpus[index];
    /* NXE, WP, PGE and the PAT as the boot CPU has them. */
    paging_cpu_init();
    cpu_tables_init(index);
    /* After the GDT load: loading a segment selector into GS zeroes its base. */
    percpu_install((struct percpu_head *)c);
    lapic_init_ap();
    __atomic_fetch_add(&smp_online, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&c->online, true, __ATOMIC_RELEASE);
    smp_idle();
}

static uint64_t smp_alloc_low(void)
{
    uint64_t p = pmm_alloc_low_page();
    /* Startup IPI vectors 0xa0-0xbf are reserved (SDM Vol. 3A §12.6.1), and the page
     * must be below 1 MiB to be a vector at all. */
    if (!p || (p & 0xfff) || p >= 0x100000 || ((p >> 12) >= 0xa0 && (p >> 12) <= 0xbf))
        return 0;
    return p;
}

/* Copies the trampoline below 1 MiB, builds its temporary page tables and maps it
 * into the kernel's.  Returns false, having said why, if that cannot be done. */
static bool smp_prepare_trampoline(void)
{
    size_t size = (size_t)(__ap_trampoline_end - __ap_trampoline_start);
    if (size > PAGE_SIZE || (uintptr_t)ap_trampoline != (uintptr_t)__ap_trampoline_start) {
        log_error("smp: the AP trampoline is %zu bytes or not first in its section; it must "
                  "fit one page and start it (check linker.ld)", size);
        return false;
    }
    smp_tramp_phys = smp_alloc_low();
    for (int i = 0; i < 3; i++)
        smp_tramp_tables[i] = smp_alloc_low();
    if (!smp_tramp_phys || !smp_tramp_tables[0] || !smp_tramp_tables[1] || !smp_tramp_tables[2]) {
        log_error("smp: no free pages below 1 MiB for the AP trampoline (4 needed); "
                  "the firmware's memory map leaves none");
        return false;
    }
    if (paging_identity_map(smp_tramp_phys, PAGE_SIZE) != 0) {
        log_error("smp: cannot identity-map the AP trampoline at %#lx",
                  (unsigned long)smp_tramp_phys);
        return false;
    }

    /* A 2 MiB identity page over 0-2 MiB covers the trampoline wherever it is. */
    uint64_t *pml4 = phys_to_virt(smp_tramp_tables[0]);
    uint64_t *pdpt = phys_to_virt(smp_tramp_tables[1]);
    uint64_t *pd   = phys_to_virt(smp_tramp_tables[2]);
    pml4[0] = smp_tramp_tables[1] | PTE_PRESENT | PTE_WRITABLE;
    pdpt[0] = smp_tramp_tables[2] | PTE_PRESENT | PTE_WRITABLE;
    pd[0]   = 0 | PTE_PRESENT | PTE_WRITABLE | PTE_LARGE;

    uint8_t *page = phys_to_virt(smp_tramp_phys);
    for (size_t i = 0; i < size; i++)
        page[i] = (uint8_t)__ap_trampoline_start[i];

    struct ap_trampoline_data *td =
        (struct ap_trampoline_data *)(page + (ap_trampoline_data - __ap_trampoline_start));
    uint32_t base = (uint32_t)smp_tramp_phys;
    td->far32_offset += base;
    td->gdt_base     += base;
    td->far64_offset += base;
    td->boot_cr3 = (uint32_t)smp_tramp_tables[0];
    /* The boot CPU's EFER (LMA is the CPU's to set), and whatever the kernel's tables
     * need before the first access through them. */
    td->efer = (rdmsr(MSR_EFER) & ~EFER_LMA) | EFER_LME | paging_required_efer();
    td->cr0  = read_cr0();
    td->cr4  = read_cr4();
    td->cr3  = paging_kernel_cr3();
    td->entry = (uint64_t)(uintptr_t)smp_ap_entry;
    smp_tramp_data = td;
    return true;
}

static const char *smp_stage_name(uint32_t stage)
{
    switch (stage) {
    case AP_STAGE_NONE: return "it never ran the trampoline (no response to INIT-SIPI-SIPI)";
    case AP_STAGE_REAL: return "it stopped in real mode";
    case AP_STAGE_PROT: return "it stopped in protected mode, entering long mode";
    case AP_STAGE_LONG: return "it reached long mode but never finished its C start-up";
    default:            return "its trampoline stage is corrupt";
    }
}

/* Starts one AP as CPU index and waits for it; serialised, so the trampoline's one
 * set of per-AP fields is never shared. */
static bool smp_start_ap(uint32_t index, uint32_t apic_id)
{
    struct cpu *c = &smp_cpus[index];
    uint64_t stack = stack_alloc(SMP_STACK_SIZE);
    if (!stack) {
        log_error("smp: out of memory for the stack of the CPU with APIC id %u; not started",
                  apic_id);
        return false;
    }
    c->self = c;
    c->index = index;
    c->apic_id = apic_id;
    c->stack_top = stack;
    c->online = false;

    struct ap_trampoline_data *td = smp_tramp_data;
    td->stack = stack;
    td->cpu_index = index;
    td->stage = AP_STAGE_NONE;

    uint8_t vector = (uint8_t)(smp_tramp_phys >> 12);
    int err = lapic_send_ipi(apic_id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
    time_delay_us(SMP_INIT_DELAY_US);
    for (int i = 0; i < 2; i++) {
        err |= lapic_send_ipi(apic_id, ICR_DELIVERY_STARTUP | ICR_LEVEL_ASSERT | vector);
        time_delay_us(SMP_SIPI_DELAY_US);
        /* A running AP ignores a second Startup IPI anyway; no need to send it. */
        if (td->stage != AP_STAGE_NONE)
            break;
    }
    if (err)
        log_warn("smp: the local APIC did not accept an IPI for APIC id %u "
                 "(delivery status stuck)", apic_id);

    uint64_t khz = time_tsc_khz();
    uint64_t deadline = rdtsc() + (uint64_t)SMP_REPORT_TIMEOUT_US * khz / 1000;
    while (!__atomic_load_n(&c->online, __ATOMIC_ACQUIRE)) {
        if ((int64_t)(rdtsc() - deadline) >= 0) {
            uint32_t stage = td->stage;
            /* Park it, so that it cannot wake later on the next AP's stack. */
            lapic_send_ipi(apic_id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
            log_warn("smp: CPU with APIC id %u did not report in within %u ms: %s; "
                     "continuing without it", apic_id, SMP_REPORT_TIMEOUT_US / 1000,
                     smp_stage_name(stage));
            return false;
        }
        cpu_relax();
    }
    log_info("smp: cpu %u (apic id %u) online", index, apic_id);
    return true;
}

void smp_init(void)
{
    struct cpu *bsp = &smp_cpus[0];
    bsp->self = bsp;
    bsp->index = 0;
    bsp->apic_id = lapic_id();
    bsp->stack_top = (uint64_t)(uintptr_t)boot_stack_top;
    bsp->online = true;
    percpu_install((struct percpu_head *)bsp);
    __atomic_store_n(&smp_gs_ready, true, __ATOMIC_RELEASE);

    if (trap_register(SMP_WAKE_VECTOR, smp_wake_handler))
        log_warn("smp: vector %#x is taken; smp_release_aps will wait for the APs' next "
                 "interrupt", SMP_WAKE_VECTOR);

    const struct acpi_info *acpi = acpi_get();
    if (!acpi || acpi->cpu_count == 0) {
        log_warn("smp: no MADT processor list from ACPI; running on the boot CPU alone");
        log_info("smp: %u CPUs online", smp_cpus_online());
        return;
    }

    uint32_t count = acpi->cpu_count < ACPI_MAX_CPUS ? acpi->cpu_count : ACPI_MAX_CPUS;
    bool bsp_listed = false;
    for (uint32_t i = 0; i < count; i++)
        if (acpi->cpus[i].apic_id == bsp->apic_id)
            bsp_listed = true;
    if (!bsp_listed)
        log_warn("smp: the boot CPU's APIC id %u is not in the MADT; the table is "
                 "inconsistent, starting the CPUs it lists anyway", bsp->apic_id);

    if (count > 1 && !smp_prepare_trampoline()) {
        log_warn("smp: cannot start application processors; running on the boot CPU alone");
        log_info("smp: %u CPUs online", smp_cpus_online());
        return;
    }

    for (uint32_t i = 0; i < count; i++) {
        const struct acpi_cpu *ac = &acpi->cpus[i];
        if (ac->apic_id == bsp->apic_id)
            continue;
        if (ac->online_capable) {
            /* ACPI 6.5 §5.2.12.2: not present now, only hot-pluggable later. */
            log_debug("smp: APIC id %u is online-capable but not enabled; not started",
                      ac->apic_id);
            continue;
        }
        if (ac->apic_id > lapic_max_id()) {
            log_warn("smp: CPU with APIC id %u needs x2APIC mode, which this CPU lacks; "
                     "not started", ac->apic_id);
            continue;
        }
        bool dup = false;
        for (uint32_t j = 1; j < smp_cpu_slots; j++)
            if (smp_cpus[j].online && smp_cpus[j].apic_id == ac->apic_id)
                dup = true;
        if (dup) {
            log_warn("smp: the MADT lists APIC id %u twice; started once", ac->apic_id);
            continue;
        }
        if (smp_cpu_slots >= SMP_MAX_CPUS) {
            log_warn("smp: the MADT lists %u CPUs; plinth supports %u (SMP_MAX_CPUS), "
                     "the rest stay off", count, SMP_MAX_CPUS);
            break;
        }
        /* Indices stay dense over the CPUs that came up. */
        if (smp_start_ap(smp_cpu_slots, ac->apic_id))
            __atomic_store_n(&smp_cpu_slots, smp_cpu_slots + 1, __ATOMIC_RELEASE);
    }

    /* The temporary tables are only read on the way to the kernel's CR3. */
    for (int i = 0; i < 3; i++)
        if (smp_tramp_tables[i])
            pmm_free_pages(smp_tramp_tables[i], 1);
    log_info("smp: %u CPUs online", smp_cpus_online());
}
