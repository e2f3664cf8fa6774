#include "vmm/acpi/acpi_build.h"

#define OEM_ID       "PLINTH"
#define OEM_TABLE_ID "PLINTHVM"
#define CREATOR_ID   "PLTH"

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static void put_str(uint8_t *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = *s ? (uint8_t)*s++ : ' ';
}

/* The byte that makes the bytes of [p, p+n) sum to zero (ACPI 6.5 §5.2.5.3, §5.2.6). */
static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    return (uint8_t)-sum;
}

/* The 36-byte System Description Table Header (§5.2.6); the checksum comes last. */
static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    put_str(t, sig, 4);
    put32(t + 4, len);
    t[8] = rev;
    put_str(t + 10, OEM_ID, 6);
    put_str(t + 16, OEM_TABLE_ID, 8);
    put32(t + 24, 1);
    put_str(t + 28, CREATOR_ID, 4);
    put32(t + 32, 1);
}

static void finish(uint8_t *t, uint32_t len)
{
    t[9] = 0;
    t[9] = checksum(t, len);
}

/* A Generic Address Structure in system I/O space (§5.2.3.2). */
static void gas_io(uint8_t *g, uint16_t port, uint8_t bits, uint8_t access)
{
    g[0] = 1;           /* system I/O */
    g[1] = bits;
    g[2] = 0;
    g[3] = access;      /* 1 byte, 2 word, 3 dword */
    put64(g + 4, port);
}

/* DSDT: a definition block holding only Name(_S5_, Package(4){typ, typ, 0, 0}).  AML
 * (§20.2): NameOp 08, NameSeg "_S5_", PackageOp 12, PkgLength, NumElements 04, then
 * BytePrefix 0A with the value (or ZeroOp 00) per element. */
static size_t build_dsdt(uint8_t *t, uint8_t slp_typ)
{
    uint8_t aml[14] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 0, 0x0a, 0, 0x00, 0x00 };
    aml[9] = aml[11] = slp_typ;
    size_t len = 36 + sizeof aml;
    header(t, "DSDT", (uint32_t)len, 2);
    for (size_t i = 0; i < sizeof aml; i++)
        t[36 + i] = aml[i];
    finish(t, (uint32_t)len);
    return len;
}

/* FADT revision 6 (§5.2.9, Table 5.9): 276 bytes. */
#define FADT_LEN 276
static size_t build_fadt(uint8_t *t, const struct acpi_platform *p, uint64_t dsdt, uint64_t facs)
{
    header(t, "FACP", FADT_LEN, 6);
    put32(t + 36, (uint32_t)facs);
    put32(t + 40, (uint32_t)dsdt);
    t[45] = 0;                                   /* preferred PM profile: unspecified */
    put16(t + 46, p->sci_irq);
    /* No SMI_CMD: the platform starts in ACPI mode (SCI_EN reads 1), §4.8.2.1. */
    put32(t + 56, p->pm_base);                   /* PM1a_EVT_BLK */
    put32(t + 64, p->pm_base + 4u);              /* PM1a_CNT_BLK */
    put32(t + 76, p->pm_base + 8u);              /* PM_TMR_BLK */
    t[88] = 4;                                   /* PM1_EVT_LEN */
    t[89] = 2;                                   /* PM1_CNT_LEN */
    t[91] = 4;                                   /* PM_TMR_LEN */
    put16(t + 96, 101);                          /* P_LVL2_LAT > 100: C2 not supported */
    put16(t + 98, 1001);                         /* P_LVL3_LAT > 1000: C3 not supported */
    t[108] = p->century_index;
    /* IAPC_BOOT_ARCH (§5.2.9.3): legacy devices (bit 0) and an 8042 (bit 1); no VGA
     * (bit 2), no MSI restriction. */
    put16(t + 109, 0x0003);
    /* Flags (Table 5.10): WBINVD (0), PROC_C1 (2), SLP_BUTTON (5: no sleep button
     * as a fixed feature), RESET_REG_SUP (10), TMR_VAL_EXT (8: 32-bit PM timer). */
    put32(t + 112, (1u << 0) | (1u << 2) | (1u << 5) | (1u << 8) | (1u << 10));
    gas_io(t + 116, 0xcf9, 8, 1);                /* RESET_REG: the reset control register */
    t[128] = 0x06;                               /* RESET_VALUE: hard reset */
    t[131] = 5;                                  /* FADT minor version: 6.5 */
    put64(t + 132, facs);                        /* X_FIRMWARE_CTRL */
    put64(t + 140, dsdt);                        /* X_DSDT */
    gas_io(t + 148, p->pm_base, 32, 3);          /* X_PM1a_EVT_BLK */
    gas_io(t + 172, (uint16_t)(p->pm_base + 4), 16, 2);  /* X_PM1a_CNT_BLK */
    gas_io(t + 208, (uint16_t)(p->pm_base + 8), 32, 3);  /* X_PM_TMR_BLK */
    put_str(t + 268, "PLINTHVM", 8);             /* hypervisor vendor identity */
    finish(t, FADT_LEN);
    return FADT_LEN;
}

/* MADT (§5.2.12): local APIC address, PCAT_COMPAT (dual 8259s present), one
 * Processor Local APIC per vCPU, the IOAPIC (GSI 0-23), and the two PC interrupt
 * source overrides: ISA IRQ 0 on GSI 2, and the SCI level-triggered active-low. */
static size_t build_madt(uint8_t *t, const struct acpi_platform *p)
{
    size_t len = 44;
    put32(t + 36, p->lapic_addr);
    put32(t + 40, 1);                            /* PCAT_COMPAT */
    for (unsigned i = 0; i < p->vcpus; i++) {
        uint8_t *e = t + len;
        e[0] = 0; e[1] = 8;                      /* Processor Local APIC */
        e[2] = (uint8_t)i;                       /* ACPI processor UID */
        e[3] = (uint8_t)i;                       /* APIC ID */
        put32(e + 4, 1);                         /* enabled */
        len += 8;
    }
    uint8_t *io = t + len;
    io[0] = 1; io[1] = 12; io[2] = p->ioapic_id; io[3] = 0;
    put32(io + 4, p->ioapic_addr);
    put32(io + 8, 0);                            /* GSI base */
    len += 12;
    uint8_t *iso = t + len;
    iso[0] = 2; iso[1] = 10; iso[2] = 0; iso[3] = 0;  /* bus ISA, IRQ 0 */
    put32(iso + 4, 2);                           /* -> GSI 2 */
    put16(iso + 8, 0);                           /* conforms to the bus */
    len += 10;
    iso = t + len;
    iso[0] = 2; iso[1] = 10; iso[2] = 0; iso[3] = p->sci_irq;
    put32(iso + 4, p->sci_irq);
    put16(iso + 8, 0x000f);                      /* level-triggered, active low */
    len += 10;
    header(t, "APIC", (uint32_t)len, 5);
    finish(t, (uint32_t)len);
    return len;
}

/* FACS (§5.2.10): required beside a full (not hardware-reduced) FADT; 64 bytes,
 * 64-byte aligned, no checksum.  No waking vector: the guest has no S3. */
#define FACS_LEN 64
static void build_facs(uint8_t *t)
{
    put_str(t, "FACS", 4);
    put32(t + 4, FACS_LEN);
    t[32] = 2;                                   /* version */
}

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

enum acpi_build_status acpi_build(const struct acpi_platform *p, uint8_t *buf, size_t size,
                                  uint64_t gpa, size_t *used)
{
    *used = 0;
    if (p->vcpus == 0 || p->vcpus > ACPI_BUILD_MAX_CPUS || p->sci_irq > 15 || p->pm_base == 0 ||
        p->pm_base > 0xffff - 12 || p->slp_typ_s5 > 7 || (gpa & 63))
        return ACPI_BUILD_BAD_PLATFORM;
    /* Everything fits in: RSDP 36, XSDT 36+16, MADT 44+8n+32, FADT 276, DSDT 50,
     * FACS 64 at a 64-byte boundary. */
    size_t need = align16(36) + align16(52) + align16(44 + 8 * p->vcpus + 32) + align16(FADT_LEN) +
                  align16(50) + 64 + FACS_LEN;
    if (size < need)
        return ACPI_BUILD_TOO_SMALL;
    for (size_t i = 0; i < need; i++)
        buf[i] = 0;

    size_t rsdp = 0, xsdt = align16(36), madt = xsdt + align16(52);
    size_t fadt = madt + align16(build_madt(buf + madt, p));
    size_t dsdt = fadt + align16(FADT_LEN);
    size_t facs = (dsdt + align16(build_dsdt(buf + dsdt, p->slp_typ_s5)) + 63) & ~(size_t)63;
    build_facs(buf + facs);
    build_fadt(buf + fadt, p, gpa + dsdt, gpa + facs);
    size_t end = facs + FACS_LEN;

    uint8_t *x = buf + xsdt;
    header(x, "XSDT", 52, 1);
    put64(x + 36, gpa + madt);
    put64(x + 44, gpa + fadt);
    finish(x, 52);

    /* RSDP revision 2 (§5.2.5.3): the first checksum covers 20 bytes, the extended one 36. */
    uint8_t *r = buf + rsdp;
    put_str(r, "RSD PTR ", 8);
    put_str(r + 9, OEM_ID, 6);
    r[15] = 2;
    put32(r + 16, 0);                            /* no RSDT: XSDT only */
    put32(r + 20, 36);
    put64(r + 24, gpa + xsdt);
    r[8] = checksum(r, 20);
    r[32] = checksum(r, 36);
    *used = end;
    return ACPI_BUILD_OK;
}
