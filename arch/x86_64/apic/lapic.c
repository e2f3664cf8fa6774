#include "arch/x86_64/apic/lapic.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"
#include "drivers/acpi.h"
#include "kernel/log.h"
#include "kernel/panic.h"

#define CPUID1_EDX_APIC   (1u << 9)
#define CPUID1_ECX_X2APIC (1u << 21)

/* x2APIC registers are MSRs 0x800 + offset/16 (SDM Vol. 3A §12.12.1.2). */
#define X2APIC_MSR(reg)   (0x800u + ((reg) >> 4))
#define X2APIC_MSR_ICR    0x830u

/* Polls of the xAPIC delivery-status bit before an IPI is declared lost.  Real
 * hardware clears it within microseconds; each poll is an uncached read. */
#define LAPIC_ICR_POLLS   1000000u

static bool lapic_is_x2apic;
static bool lapic_is_ready;
static volatile uint32_t *lapic_mmio;

bool lapic_ready(void)       { return lapic_is_ready; }
bool lapic_x2apic_mode(void) { return lapic_is_x2apic; }

uint32_t lapic_read(uint32_t reg)
{
    if (lapic_is_x2apic)
        return (uint32_t)rdmsr(X2APIC_MSR(reg));
    return lapic_mmio[reg / 4];
}

void lapic_write(uint32_t reg, uint32_t value)
{
    if (lapic_is_x2apic)
        wrmsr(X2APIC_MSR(reg), value);
    else
        lapic_mmio[reg / 4] = value;
}

uint32_t lapic_id(void)
{
    /* xAPIC keeps the ID in bits 31:24; the x2APIC ID register is the whole 32-bit
     * ID (SDM Vol. 3A §12.4.6, §12.12.5.1). */
    uint32_t v = lapic_read(LAPIC_ID);
    return lapic_is_x2apic ? v : v >> 24;
}

uint32_t lapic_max_id(void)
{
    return lapic_is_x2apic ? 0xfffffffeu : 0xfeu;
}

void lapic_eoi(void)
{
    lapic_write(LAPIC_EOI, 0);
}

static bool lapic_xapic_wait_idle(void)
{
    for (uint32_t i = 0; i < LAPIC_ICR_POLLS; i++) {
        if (!(lapic_mmio[LAPIC_ICR_LOW / 4] & ICR_DELIVERY_PENDING))
            return true;
        cpu_relax();
    }
    return false;
}

int lapic_send_ipi(uint32_t dest, uint32_t icr_low)
{
    if (lapic_is_x2apic) {
        /* WRMSR to the x2APIC ICR is not serialising (SDM Vol. 3A §12.12.3): fence
         * so that what the target is told to look at is visible before it looks. */
        __asm__ volatile("mfence; lfence" ::: "memory");
        wrmsr(X2APIC_MSR_ICR, ((uint64_t)dest << 32) | icr_low);
        return 0;
    }
    /* The xAPIC ICR is two registers: keep an interrupt handler that also sends an
     * IPI from landing between the two writes. */
    uint64_t flags = read_rflags();
    cli();
    int rc = 0;
    if (!lapic_xapic_wait_idle())
        rc = -1;
    lapic_mmio[LAPIC_ICR_HIGH / 4] = dest << 24;
    lapic_mmio[LAPIC_ICR_LOW / 4] = icr_low;
    if (!lapic_xapic_wait_idle())
        rc = -1;
    if (flags & (1u << 9))
        sti();
    return rc;
}

/* Turns on x2APIC mode in this CPU's IA32_APIC_BASE.  The xAPIC must be globally
 * enabled first: EN=0 EXTD=1 is an invalid state (SDM Vol. 3A §12.12.5, Figure 12-27). */
static void lapic_enable_x2apic(void)
{
    uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
    if (!(base & APIC_BASE_EN)) {
        base |= APIC_BASE_EN;
        wrmsr(MSR_IA32_APIC_BASE, base);
    }
    if (!(base & APIC_BASE_EXTD))
        wrmsr(MSR_IA32_APIC_BASE, base | APIC_BASE_EXTD);
}

/* The state plinth wants on every CPU.  The APIC is never software-disabled (SVR bit
 * 8 cleared): Bochs cannot turn it back on, and nothing here needs it off. */
static void lapic_setup(void)
{
    uint32_t version = lapic_read(LAPIC_VERSION);
    uint32_t max_lvt = (version >> 16) & 0xff;

    lapic_write(LAPIC_TPR, 0);
    /* Keep the other SVR bits (focus checking, EOI-broadcast suppression) as found. */
    uint32_t svr = lapic_read(LAPIC_SVR) & ~0xffu;
    lapic_write(LAPIC_SVR, svr | LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);

    /* Masked LVTs get a legal vector anyway: vectors 0-15 are reported as illegal
     * (SDM Vol. 3A §12.5.3).  The thermal and performance LVTs exist only when the
     * version register says so (§12.5.1); touching a missing one faults in x2APIC mode. */
    uint32_t masked = LAPIC_LVT_MASKED | LAPIC_SPURIOUS_VECTOR;
    lapic_write(LAPIC_LVT_TIMER, masked);
    lapic_write(LAPIC_TIMER_ICR, 0);
    lapic_write(LAPIC_LVT_ERROR, masked);
    if (max_lvt >= 4)
        lapic_write(LAPIC_LVT_PERF, masked);
    if (max_lvt >= 5)
        lapic_write(LAPIC_LVT_THERMAL, masked);

    /* The ESR is updated by a write, then read (SDM Vol. 3A §12.5.3). */
    lapic_write(LAPIC_ESR, 0);
    (void)lapic_read(LAPIC_ESR);
    lapic_eoi();
}

void lapic_init(void)
{
    struct cpuid_regs r = cpuid(1, 0);
    uint64_t base = rdmsr(MSR_IA32_APIC_BASE);

    if (!(r.edx & CPUID1_EDX_APIC) && !(base & APIC_BASE_EN))
        panic("lapic: this CPU reports no local APIC (CPUID.1:EDX[9] clear, IA32_APIC_BASE "
              "disabled); plinth needs one for its timer and SMP. Enable the APIC in firmware");

    /* Firmware may already have switched to x2APIC (required above 255 CPUs); there is
     * no going back to xAPIC without disabling the APIC, so follow it. */
    lapic_is_x2apic = (r.ecx & CPUID1_ECX_X2APIC) || (base & APIC_BASE_EXTD);

    uint64_t phys = base & APIC_BASE_ADDR_MASK;
    const struct acpi_info *acpi = acpi_get();
    if (acpi && acpi->lapic_addr && acpi->lapic_addr != phys)
        log_warn("lapic: MADT says the local APIC is at %#lx, IA32_APIC_BASE says %#lx; "
                 "using the MSR", (unsigned long)acpi->lapic_addr, (unsigned long)phys);

    if (lapic_is_x2apic) {
        lapic_enable_x2apic();
        log_info("lapic: x2apic mode");
    } else {
        if (!(base & APIC_BASE_EN)) {
            wrmsr(MSR_IA32_APIC_BASE, base | APIC_BASE_EN);
            if (!(rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_EN))
                panic("lapic: the local APIC is globally disabled and does not re-enable "
                      "(IA32_APIC_BASE[11]); enable it in firmware");
        }
        lapic_mmio = mmio_map(phys, 4096);
        if (!lapic_mmio)
            panic("lapic: cannot map the xAPIC registers at %#lx (out of MMIO address space)",
                  (unsigned long)phys);
        log_info("lapic: xapic at %#lx", (unsigned long)phys);
    }
    lapic_setup();
    lapic_is_ready = true;
    log_info("lapic: id %u, version %#x, %u LVT entries", lapic_id(),
             lapic_read(LAPIC_VERSION) & 0xff, ((lapic_read(LAPIC_VERSION) >> 16) & 0xff) + 1);
}

void lapic_init_ap(void)
{
    /* IA32_APIC_BASE is per CPU: each AP leaves reset in xAPIC mode. */
    if (lapic_is_x2apic)
        lapic_enable_x2apic();
    lapic_setup();
}
