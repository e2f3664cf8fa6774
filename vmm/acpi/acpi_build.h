/* The ACPI tables each VM's firmware-less boot hands its guest (ACPI 6.5 ch. 5):
 * RSDP -> XSDT -> MADT (one local APIC per vCPU, the IOAPIC, interrupt overrides),
 * FADT (PM1a blocks, PM timer, reset register, century) -> DSDT (\_S5; with a PCI
 * host bridge also \_SB.PCI0 with its windows and INTx routing, and \_SB.MRES
 * reserving the ECAM), and with a PCI host bridge the MCFG.
 * Pure: the tables are written into a buffer that becomes guest RAM. */
#ifndef PLINTH_VMM_ACPI_BUILD_H
#define PLINTH_VMM_ACPI_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_BUILD_MAX_CPUS 64

/* The platform the tables describe (the monitor's device layout). */
struct acpi_platform {
    unsigned vcpus;               /* local APIC IDs 0 .. vcpus-1 */
    uint32_t lapic_addr;          /* 0xfee00000 */
    uint32_t ioapic_addr;         /* 0xfec00000 */
    uint8_t  ioapic_id;
    uint16_t pm_base;             /* PM1a_EVT at +0 (4 bytes), PM1a_CNT at +4 (2), PM_TMR at +8 (4) */
    uint8_t  sci_irq;             /* ISA IRQ of the SCI, level/active-low */
    uint8_t  slp_typ_s5;          /* the SLP_TYP value \_S5 names */
    uint8_t  century_index;       /* CMOS index of the century byte, 0 for none */
    /* PCI host bridge (pci false: none, the tables stay as they are today). */
    bool     pci;
    uint64_t ecam_base;           /* ECAM of segment 0, buses 0 .. ecam_bus_end (1 MiB per bus) */
    uint8_t  ecam_bus_end;        /* last bus the bridge decodes (0: bus 0 only) */
    uint32_t mmio32_base, mmio32_limit;   /* 32-bit memory window, limit inclusive */
    uint64_t mmio64_base, mmio64_limit;   /* 64-bit memory window, limit inclusive; limit < base: none */
    uint8_t  pci_gsi_base;        /* INTA#-INTD# of slot s, pin p (0=A) -> GSI pci_gsi_base + ((s + p) & 3) */
};

enum acpi_build_status { ACPI_BUILD_OK, ACPI_BUILD_TOO_SMALL, ACPI_BUILD_BAD_PLATFORM };

/* Writes the tables into buf, which the guest will see at guest-physical gpa (the
 * tables point at each other by guest-physical address).  The RSDP is first, at
 * buf[0], 16-byte aligned as the spec asks for its search area.  *used: bytes written;
 * TOO_SMALL exactly when size is less than that.  BAD_PLATFORM also for a PCI host
 * bridge whose ECAM is not 1 MiB aligned or wraps, whose 32-bit window is empty or
 * at 0, whose 64-bit window lies below 4 GiB, or whose INTx GSIs pass 23. */
enum acpi_build_status acpi_build(const struct acpi_platform *p, uint8_t *buf, size_t size,
                                  uint64_t gpa, size_t *used);

#endif
