/* cr8: CR8 is the local APIC's task priority (TPR bits 7:4), one register seen two
 * ways (SDM Vol. 3A §12.8.6.1; APM Vol. 2 §16.6.4): a MOV to CR8 must show in the
 * APIC's TPR and a TPR write through the APIC page in CR8, and the priority must hold
 * back a self-IPI of a lower priority class until it is lowered.  64-bit mode, where
 * CR8 exists. */
#include "guest.h"

#define APIC         0xfee00000u
#define APIC_TPR     0x080
#define APIC_EOI     0x0b0
#define APIC_SVR     0x0f0
#define APIC_ICR_LOW 0x300
#define VECTOR       0x51              /* priority class 5 */

static volatile uint32_t hits;

static uint64_t read_cr8(void) { uint64_t v; __asm__ volatile("mov %%cr8, %0" : "=r"(v)); return v; }
static void write_cr8(uint64_t v) { __asm__ volatile("mov %0, %%cr8" : : "r"(v) : "memory"); }
static uint32_t apic_read(uint32_t reg) { return *(volatile uint32_t *)(uintptr_t)(APIC + reg); }
static void apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(uintptr_t)(APIC + reg) = v; }

static bool ipi_hook(struct trap_frame *f)
{
    (void)f;
    hits++;
    apic_write(APIC_EOI, 0);
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "cr8";
    set_trap_hook(VECTOR, ipi_hook);
    apic_write(APIC_SVR, 0x1ff);
    check(read_cr8() == 0 && apic_read(APIC_TPR) == 0, "cr8-zero-at-start", "CR8 %#lx TPR %#x", read_cr8(),
          apic_read(APIC_TPR));
    write_cr8(5);
    check(apic_read(APIC_TPR) == 0x50, "cr8-write-shows-in-tpr", "CR8 = 5, TPR reads %#x", apic_read(APIC_TPR));
    apic_write(APIC_TPR, 0x30);
    check(read_cr8() == 3, "cr8-reads-tpr", "TPR = 0x30, CR8 reads %#lx", read_cr8());
    apic_write(APIC_TPR, 0x3c);
    check(read_cr8() == 3, "cr8-tpr-subclass-ignored", "TPR = 0x3c, CR8 reads %#lx", read_cr8());

    /* Priority 6 masks class 5: a self-IPI waits until CR8 drops below 5. */
    write_cr8(6);
    __asm__ volatile("sti");
    apic_write(APIC_ICR_LOW, VECTOR | (1u << 14) | (1u << 18));     /* fixed, self */
    for (volatile int i = 0; i < 100000; i++)
        ;
    uint32_t held = hits;
    write_cr8(0);
    for (volatile int i = 0; i < 100000 && !hits; i++)
        ;
    __asm__ volatile("cli");
    check(held == 0 && hits == 1, "cr8-masks-lower-classes", "%u interrupts while CR8 = 6, %u after", held,
          hits);
    PROBE_ASM("mov %0, %%cr8", : : "r"(16ul) : "memory");
    expect_fault("cr8-reserved-gp", 13, 0);
}
