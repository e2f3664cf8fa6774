/* The firmware's ACPI tables: what the core needs from them, parsed once at boot. */
#ifndef PLINTH_DRIVERS_ACPI_H
#define PLINTH_DRIVERS_ACPI_H

#include "boot/bootinfo.h"
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define ACPI_MAX_CPUS    256
#define ACPI_MAX_IOAPICS 8
#define ACPI_MAX_MCFG    8
#define ACPI_MAX_ISOS    24

struct acpi_cpu {
    uint32_t apic_id;
    uint32_t acpi_uid;
    bool     x2apic_entry;   /* from a Local x2APIC structure */
    bool     online_capable; /* listed disabled but hot-pluggable: may not answer INIT-SIPI */
};

/* An ISA interrupt that is not identity-mapped to a GSI (MADT type 2, ACPI 6.5
 * §5.2.12.5), e.g. the PIT's IRQ 0 on GSI 2. */
struct acpi_iso {
    uint8_t  source;         /* ISA IRQ */
    uint32_t gsi;
    uint16_t flags;          /* MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2 */
};

struct acpi_ioapic {
    uint8_t  id;
    uint32_t addr;
    uint32_t gsi_base;
};

struct acpi_gas {           /* Generic Address Structure (ACPI 6.5 §5.2.3.2) */
    uint8_t  space;          /* 0 memory, 1 I/O */
    uint8_t  bit_width, bit_offset, access_size;
    uint64_t addr;
};

struct acpi_info {
    bool     present;        /* RSDP and RSDT/XSDT valid */
    uint8_t  revision;       /* RSDP revision */
    char     oem_id[7];
    /* MADT; cpu_count == 0 means none found (fall back to the boot CPU alone). */
    uint64_t lapic_addr;
    uint32_t cpu_count;      /* enabled (or online-capable) processors */
    struct acpi_cpu cpus[ACPI_MAX_CPUS];
    uint32_t ioapic_count;
    struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS];
    bool     pcat_compat;    /* dual 8259s present */
    /* FADT */
    bool     have_fadt;
    uint32_t pm1a_cnt, pm1b_cnt;   /* I/O ports, 0 if absent */
    uint32_t pm_tmr_port;          /* 0 if absent */
    bool     pm_tmr_32bit;
    bool     have_s5;
    uint8_t  slp_typa, slp_typb;   /* \_S5 from the DSDT */
    bool     have_reset;
    struct acpi_gas reset_reg;
    uint8_t  reset_value;
    uint8_t  century;              /* RTC CMOS index, 0 if absent */
    /* HPET */
    uint64_t hpet_addr;            /* 0 if absent */
    /* MCFG */
    uint32_t mcfg_count;
    struct { uint64_t base; uint16_t segment; uint8_t bus_start, bus_end; } mcfg[ACPI_MAX_MCFG];
    /* DMAR */
    bool     have_dmar;
    /* SPCR: the firmware's serial console */
    bool     have_spcr;
    struct acpi_gas spcr_addr;
    uint32_t warnings;             /* how many problems were warned about */
    /* Added after the first version of this interface. */
    uint32_t iso_count;
    struct acpi_iso isos[ACPI_MAX_ISOS];
    uint8_t  fadt_revision;
    bool     hw_reduced;           /* FADT HW_REDUCED_ACPI: no PM1 blocks, no PM timer */
    struct acpi_gas sleep_control; /* FADT SLEEP_CONTROL_REG, addr 0 if absent */
    uint32_t smi_cmd;              /* I/O port of the ACPI enable handshake, 0 if none */
    uint8_t  acpi_enable;          /* value written to smi_cmd to enter ACPI mode */
    uint16_t iapc_boot_arch;       /* FADT IAPC_BOOT_ARCH (bit 1: 8042 present) */
    uint64_t dsdt_addr;            /* the DSDT used, 0 if none */
    uint64_t dmar_addr;            /* DMAR table (validated), for the IOMMU driver */
    uint32_t dmar_len;
    uint8_t  spcr_interface;       /* SPCR interface type (DBG2 serial subtype) */
};

/* FADT flag bits (ACPI 6.5 §5.2.9, Tables 5.10 and 5.11). */
#define ACPI_FADT_TMR_VAL_EXT      (1u << 8)
#define ACPI_FADT_RESET_REG_SUP    (1u << 10)
#define ACPI_FADT_HW_REDUCED_ACPI  (1u << 20)
#define ACPI_IAPC_8042             (1u << 1)

/* How the parser reads physical memory: the core passes its direct map; unit tests
 * pass a function over byte arrays.  Returns NULL for memory it cannot reach. */
typedef const void *(*acpi_map_fn)(void *ctx, uint64_t phys, size_t len);

/* Parses from the RSDP bytes the boot path copied.  Never fails hard: problems are
 * logged as warnings, counted in info->warnings, and the documented fallback taken. */
void acpi_parse(const uint8_t *rsdp, size_t rsdp_len, acpi_map_fn map, void *ctx,
                struct acpi_info *info);

/* Core side: parse with the direct map and keep the result. */
void acpi_init(const struct bootinfo *bi);
const struct acpi_info *acpi_get(void);
/* S5 soft-off; returns only if every method failed. */
void acpi_poweroff(void);
/* FADT reset register, then 0xCF9, then the keyboard controller; returns only if all failed. */
void acpi_reset(void);

/* The I/O port of the 16550 the SPCR names as the firmware's console, or 0 when
 * there is no SPCR, it names another kind of UART, or a memory-mapped one. */
uint16_t acpi_spcr_io_port(const struct acpi_info *info);

#endif
