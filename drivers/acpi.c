/* The firmware's ACPI tables, read once at boot (ACPI 6.5 chapter 5).
 *
 * Everything here is firmware input and so hostile: each table is checked for a sane
 * length and a zero checksum before a byte of it is believed, and each structure
 * inside a table is bounds-checked against the table.  A broken table is skipped with
 * a warning that names it, its address and the fallback plinth takes instead; nothing
 * here halts, because plinth must boot on machines nobody here has seen.
 *
 * acpi_parse() reads physical memory only through the caller's map function, so the
 * host unit tests run it over byte arrays.  The map function's pointers must stay
 * valid until acpi_parse() returns; the parser keeps none after that. */
#include "drivers/acpi.h"
#include "arch/x86_64/cpu/paging.h"
#include "kernel/fmt.h"
#include "kernel/log.h"

#include <stdarg.h>

#define ACPI_HEADER_LEN     36u
/* No real table comes near this (large server DSDTs are about 1 MiB); anything
 * larger is a corrupt length field, not a table worth mapping. */
#define ACPI_TABLE_MAX_LEN  (16u << 20)
#define ACPI_MAX_SSDTS      16
#define ACPI_RSDP_V1_LEN    20u
#define ACPI_RSDP_V2_LEN    36u

/* The architectural local APIC base (Intel SDM Vol. 3A §11.4.1), used when the MADT
 * gives none. */
#define ACPI_LAPIC_DEFAULT  0xFEE00000ull

/* MADT structure types (ACPI 6.5 §5.2.12, Table 5.45). */
enum {
    MADT_LOCAL_APIC         = 0,
    MADT_IO_APIC            = 1,
    MADT_INT_SRC_OVERRIDE   = 2,
    MADT_NMI_SOURCE         = 3,
    MADT_LOCAL_APIC_NMI     = 4,
    MADT_LAPIC_ADDR_OVERRIDE = 5,
    MADT_LOCAL_X2APIC       = 9,
    MADT_LOCAL_X2APIC_NMI   = 10,
    MADT_LAST_DEFINED       = 0x1B, /* types above this up to 0x7F are reserved */
    MADT_OEM_FIRST          = 0x80,
};
/* Local APIC / x2APIC flags (ACPI 6.5 §5.2.12.2, Table 5.47). */
#define MADT_LAPIC_ENABLED          (1u << 0)
#define MADT_LAPIC_ONLINE_CAPABLE   (1u << 1)
#define MADT_PCAT_COMPAT            (1u << 0)

/* AML opcodes (ACPI 6.5 §20.2) needed to read the \_S5 package. */
enum {
    AML_ZERO_OP        = 0x00,
    AML_ONE_OP         = 0x01,
    AML_NAME_OP        = 0x08,
    AML_BYTE_PREFIX    = 0x0A,
    AML_WORD_PREFIX    = 0x0B,
    AML_DWORD_PREFIX   = 0x0C,
    AML_QWORD_PREFIX   = 0x0E,
    AML_PACKAGE_OP     = 0x12,
    AML_ROOT_CHAR      = 0x5C,
};

/* Generic Address Structure address space IDs (ACPI 6.5 §5.2.3.2, Table 5.2). */
enum { GAS_MEMORY = 0, GAS_IO = 1, GAS_PCI_CONFIG = 2 };

struct acpi_parser {
    acpi_map_fn map;
    void *ctx;
    struct acpi_info *info;
    const char *root_name;       /* "XSDT" or "RSDT", for messages */
    bool have_madt, have_hpet, have_spcr;
    bool cpus_overflowed;
    uint64_t dsdt, dsdt32;       /* FADT's X_DSDT and DSDT */
    uint32_t ssdt_count;
    uint64_t ssdts[ACPI_MAX_SSDTS];
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static bool sig_is(const uint8_t *p, const char *sig)
{
    return p[0] == (uint8_t)sig[0] && p[1] == (uint8_t)sig[1] &&
           p[2] == (uint8_t)sig[2] && p[3] == (uint8_t)sig[3];
}

/* A signature fit for a log line: firmware garbage must not reach the console raw. */
static void sig_str(const uint8_t *p, char out[5])
{
    for (int i = 0; i < 4; i++)
        out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    out[4] = '\0';
}

static uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

static void acpi_warn(struct acpi_parser *ap, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void acpi_warn(struct acpi_parser *ap, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    log_vprintf(LOG_WARN, fmt, va);
    va_end(va);
    ap->info->warnings++;
}

static const uint8_t *acpi_map(struct acpi_parser *ap, uint64_t phys, size_t len)
{
    if (!phys || phys > UINT64_MAX - len)
        return 0;
    return ap->map(ap->ctx, phys, len);
}

/* What plinth does without a given table: said in every warning about it. */
static const char *acpi_fallback(const char *sig)
{
    static const struct { const char *sig, *fallback; } table[] = {
        { "APIC", "running on the boot CPU alone with the 8259 PIC" },
        { "FACP", "no ACPI poweroff, no FADT reset register, no PM timer" },
        { "HPET", "no HPET: timers calibrate against the PM timer or the PIT" },
        { "MCFG", "PCI configuration through ports 0xCF8/0xCFC only" },
        { "DMAR", "no IOMMU: no device passthrough" },
        { "SPCR", "the console stays on the current serial port" },
        { "DSDT", "no \\_S5: no ACPI poweroff" },
        { "SSDT", "that SSDT is not searched for \\_S5" },
        { "XSDT", "the RSDT is used if there is one" },
        { "RSDT", "no ACPI tables" },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (sig_is((const uint8_t *)table[i].sig, sig))
            return table[i].fallback;
    return "table ignored";
}

/* Maps the whole table at phys and validates its header and checksum (ACPI 6.5
 * §5.2.6: all bytes of the table, checksum included, sum to zero).  On any problem
 * warns, naming the table, and returns NULL. */
static const uint8_t *acpi_table_load(struct acpi_parser *ap, uint64_t phys, const char *expect,
                                      uint32_t *len_out)
{
    char sig[5];
    const uint8_t *hdr = acpi_map(ap, phys, ACPI_HEADER_LEN);
    if (!hdr) {
        acpi_warn(ap, "acpi: %s at %#lx is outside readable memory; skipped: %s",
                  expect, (unsigned long)phys, acpi_fallback(expect));
        return 0;
    }
    sig_str(hdr, sig);
    if (!sig_is(hdr, expect)) {
        acpi_warn(ap, "acpi: expected %s at %#lx but found signature '%s'; skipped: %s",
                  expect, (unsigned long)phys, sig, acpi_fallback(expect));
        return 0;
    }
    uint32_t len = rd32(hdr + 4);
    if (len < ACPI_HEADER_LEN || len > ACPI_TABLE_MAX_LEN) {
        acpi_warn(ap, "acpi: %s at %#lx claims length %u (valid: %u..%u); skipped: %s",
                  sig, (unsigned long)phys, len, ACPI_HEADER_LEN, ACPI_TABLE_MAX_LEN,
                  acpi_fallback(sig));
        return 0;
    }
    const uint8_t *t = acpi_map(ap, phys, len);
    if (!t) {
        acpi_warn(ap, "acpi: %s at %#lx: its %u bytes run past readable memory "
                  "(truncated table); skipped: %s", sig, (unsigned long)phys, len,
                  acpi_fallback(sig));
        return 0;
    }
    if (acpi_checksum(t, len) != 0) {
        acpi_warn(ap, "acpi: %s at %#lx (%u bytes) has a bad checksum; skipped: %s",
                  sig, (unsigned long)phys, len, acpi_fallback(sig));
        return 0;
    }
    *len_out = len;
    return t;
}

static struct acpi_gas acpi_gas_read(const uint8_t *p)
{
    return (struct acpi_gas){ .space = p[0], .bit_width = p[1], .bit_offset = p[2],
                              .access_size = p[3], .addr = rd64(p + 4) };
}

/* ---- MADT (ACPI 6.5 §5.2.12) ------------------------------------------------------ */

static void madt_add_cpu(struct acpi_parser *ap, uint32_t apic_id, uint32_t uid, bool x2apic,
                         bool online_capable)
{
    struct acpi_info *info = ap->info;
    for (uint32_t i = 0; i < info->cpu_count; i++) {
        if (info->cpus[i].apic_id == apic_id) {
            /* Firmware sometimes lists a CPU both as Local APIC and Local x2APIC;
             * starting it twice would be a bug, so the first entry stands. */
            acpi_warn(ap, "acpi: MADT lists APIC id %u twice (UIDs %u and %u); "
                      "the second entry is ignored", apic_id, info->cpus[i].acpi_uid, uid);
            return;
        }
    }
    if (info->cpu_count == ACPI_MAX_CPUS) {
        if (!ap->cpus_overflowed)
            acpi_warn(ap, "acpi: MADT lists more than %u CPUs; APIC id %u and later are "
                      "left offline", ACPI_MAX_CPUS, apic_id);
        ap->cpus_overflowed = true;
        return;
    }
    info->cpus[info->cpu_count++] = (struct acpi_cpu){
        .apic_id = apic_id, .acpi_uid = uid, .x2apic_entry = x2apic,
        .online_capable = online_capable,
    };
}

/* A processor counts when enabled, or, if not, when online capable (the flag is only
 * meaningful with Enabled clear: ACPI 6.5 Table 5.47). */
static void madt_processor(struct acpi_parser *ap, uint32_t apic_id, uint32_t uid,
                           uint32_t flags, bool x2apic)
{
    bool enabled = flags & MADT_LAPIC_ENABLED;
    bool online_capable = !enabled && (flags & MADT_LAPIC_ONLINE_CAPABLE);
    if (!enabled && !online_capable)
        return;
    uint32_t invalid = x2apic ? 0xFFFFFFFFu : 0xFFu; /* the broadcast id names no CPU */
    if (apic_id == invalid) {
        acpi_warn(ap, "acpi: MADT %s entry (UID %u) has the broadcast APIC id %#x; ignored",
                  x2apic ? "Local x2APIC" : "Local APIC", uid, apic_id);
        return;
    }
    madt_add_cpu(ap, apic_id, uid, x2apic, online_capable);
}

static void acpi_parse_madt(struct acpi_parser *ap, const uint8_t *t, uint32_t len, uint64_t phys)
{
    struct acpi_info *info = ap->info;
    if (len < ACPI_HEADER_LEN + 8) {
        acpi_warn(ap, "acpi: MADT at %#lx is %u bytes, too short for its fixed fields; "
                  "skipped: %s", (unsigned long)phys, len, acpi_fallback("APIC"));
        return;
    }
    ap->have_madt = true;
    info->lapic_addr = rd32(t + 36);
    info->pcat_compat = rd32(t + 40) & MADT_PCAT_COMPAT;

    uint32_t unknown = 0, first_unknown = 0;
    uint32_t off = ACPI_HEADER_LEN + 8;
    while (off + 2 <= len) {
        const uint8_t *e = t + off;
        uint8_t type = e[0], elen = e[1];
        if (elen < 2) {
            /* A zero length would never advance: the rest of the table is unusable. */
            acpi_warn(ap, "acpi: MADT entry at offset %u (type %u) has length %u; "
                      "the rest of the MADT is ignored", off, type, elen);
            break;
        }
        if (elen > len - off) {
            acpi_warn(ap, "acpi: MADT entry at offset %u (type %u, %u bytes) runs past the "
                      "table's end (%u bytes); the rest of the MADT is ignored",
                      off, type, elen, len);
            break;
        }
        static const uint8_t min_len[] = {
            [MADT_LOCAL_APIC] = 8, [MADT_IO_APIC] = 12, [MADT_INT_SRC_OVERRIDE] = 10,
            [MADT_LAPIC_ADDR_OVERRIDE] = 12, [MADT_LOCAL_X2APIC] = 16,
        };
        if (type < sizeof min_len && min_len[type] && elen < min_len[type]) {
            acpi_warn(ap, "acpi: MADT entry at offset %u (type %u) is %u bytes, shorter than "
                      "the %u its type needs; skipped", off, type, elen, min_len[type]);
            off += elen;
            continue;
        }
        switch (type) {
        case MADT_LOCAL_APIC:
            madt_processor(ap, e[3], e[2], rd32(e + 4), false);
            break;
        case MADT_LOCAL_X2APIC:
            madt_processor(ap, rd32(e + 4), rd32(e + 12), rd32(e + 8), true);
            break;
        case MADT_IO_APIC: {
            uint32_t addr = rd32(e + 4);
            if (!addr) {
                acpi_warn(ap, "acpi: MADT IOAPIC id %u has address 0; ignored", e[2]);
            } else if (info->ioapic_count == ACPI_MAX_IOAPICS) {
                acpi_warn(ap, "acpi: MADT lists more than %u IOAPICs; IOAPIC id %u at %#x "
                          "is not used", ACPI_MAX_IOAPICS, e[2], addr);
            } else {
                info->ioapics[info->ioapic_count++] =
                    (struct acpi_ioapic){ .id = e[2], .addr = addr, .gsi_base = rd32(e + 8) };
            }
            break;
        }
        case MADT_INT_SRC_OVERRIDE:
            /* Bus 0 is ISA, the only bus the structure is defined for (Table 5.50). */
            if (e[2] != 0) {
                acpi_warn(ap, "acpi: MADT interrupt override for bus %u (only ISA, bus 0, "
                          "is defined); ignored", e[2]);
            } else if (info->iso_count == ACPI_MAX_ISOS) {
                acpi_warn(ap, "acpi: MADT has more than %u interrupt overrides; IRQ %u -> "
                          "GSI %u is not used", ACPI_MAX_ISOS, e[3], rd32(e + 4));
            } else {
                info->isos[info->iso_count++] =
                    (struct acpi_iso){ .source = e[3], .gsi = rd32(e + 4), .flags = rd16(e + 8) };
            }
            break;
        case MADT_LAPIC_ADDR_OVERRIDE: {
            uint64_t a = rd64(e + 4);
            if (a)
                info->lapic_addr = a;
            break;
        }
        default:
            /* Known types plinth does not need (NMI wiring, GIC, ...) are skipped
             * quietly; only reserved types, which a newer spec may have defined, are
             * worth a word. */
            if (type > MADT_LAST_DEFINED && type < MADT_OEM_FIRST) {
                if (!unknown++)
                    first_unknown = type;
            }
            break;
        }
        off += elen;
    }
    if (unknown)
        acpi_warn(ap, "acpi: MADT has %u entries of types unknown to ACPI 6.5 (first: %#x); "
                  "skipped", unknown, first_unknown);
    if (!info->lapic_addr) {
        acpi_warn(ap, "acpi: MADT gives local APIC address 0; using the architectural "
                  "default %#llx", ACPI_LAPIC_DEFAULT);
        info->lapic_addr = ACPI_LAPIC_DEFAULT;
    }
    if (!info->cpu_count)
        acpi_warn(ap, "acpi: MADT at %#lx lists no usable processor; %s",
                  (unsigned long)phys, acpi_fallback("APIC"));
}

/* ---- FADT (ACPI 6.5 §5.2.9, Table 5.9) -------------------------------------------- */

/* Field offsets in the FADT. */
enum {
    FADT_DSDT = 40, FADT_SMI_CMD = 48, FADT_ACPI_ENABLE = 52,
    FADT_PM1A_CNT_BLK = 64, FADT_PM1B_CNT_BLK = 68, FADT_PM_TMR_BLK = 76,
    FADT_PM1_CNT_LEN = 89, FADT_PM_TMR_LEN = 91, FADT_CENTURY = 108,
    FADT_IAPC_BOOT_ARCH = 109, FADT_FLAGS = 112, FADT_RESET_REG = 116,
    FADT_RESET_VALUE = 128, FADT_X_DSDT = 140, FADT_X_PM1A_CNT_BLK = 172,
    FADT_X_PM1B_CNT_BLK = 184, FADT_X_PM_TMR_BLK = 208, FADT_SLEEP_CONTROL_REG = 244,
    FADT_V1_LEN = 116,   /* an ACPI 1.0 FADT ends after Flags */
};

/* True when the FADT, len bytes, holds the field at off..off+size. */
static bool fadt_has(uint32_t len, uint32_t off, uint32_t size)
{
    return off + size <= len;
}

/* A PM register block as an I/O port: the X_ GAS when it is set and names I/O space
 * (ACPI 6.5 §5.2.9: "if this field contains a non-zero value ... X_ field is used"),
 * else the 32-bit legacy field.  Returns 0 when neither gives a usable port. */
static uint32_t fadt_pm_port(struct acpi_parser *ap, const uint8_t *t, uint32_t len,
                             uint32_t legacy_off, uint32_t x_off, const char *name)
{
    if (fadt_has(len, x_off, 12)) {
        struct acpi_gas g = acpi_gas_read(t + x_off);
        if (g.addr) {
            if (g.space == GAS_IO && g.addr <= 0xFFFF)
                return (uint32_t)g.addr;
            acpi_warn(ap, "acpi: FADT X_%s is %s address %#lx, which plinth cannot use; "
                      "trying the 32-bit %s field", name,
                      g.space == GAS_IO ? "an out-of-range I/O" : "a non-I/O",
                      (unsigned long)g.addr, name);
        }
    }
    uint32_t port = rd32(t + legacy_off);
    if (port > 0xFFFF) {
        acpi_warn(ap, "acpi: FADT %s = %#x is not an I/O port; ignored", name, port);
        return 0;
    }
    return port;
}

static void acpi_parse_fadt(struct acpi_parser *ap, const uint8_t *t, uint32_t len, uint64_t phys)
{
    struct acpi_info *info = ap->info;
    if (len < FADT_V1_LEN) {
        acpi_warn(ap, "acpi: FADT at %#lx is %u bytes, shorter than ACPI 1.0's %u; "
                  "skipped: %s", (unsigned long)phys, len, FADT_V1_LEN, acpi_fallback("FACP"));
        return;
    }
    info->have_fadt = true;
    info->fadt_revision = t[8];
    uint32_t flags = rd32(t + FADT_FLAGS);
    info->hw_reduced = flags & ACPI_FADT_HW_REDUCED_ACPI;
    info->smi_cmd = rd32(t + FADT_SMI_CMD) <= 0xFFFF ? rd32(t + FADT_SMI_CMD) : 0;
    info->acpi_enable = t[FADT_ACPI_ENABLE];
    info->century = t[FADT_CENTURY];
    /* IAPC_BOOT_ARCH exists from FADT revision 2 (ACPI 2.0); in 1.0 it was reserved. */
    info->iapc_boot_arch = info->fadt_revision >= 2 ? rd16(t + FADT_IAPC_BOOT_ARCH)
                                                    : ACPI_IAPC_8042;

    ap->dsdt32 = rd32(t + FADT_DSDT);
    ap->dsdt = fadt_has(len, FADT_X_DSDT, 8) ? rd64(t + FADT_X_DSDT) : 0;

    if (!info->hw_reduced) {
        info->pm1a_cnt = fadt_pm_port(ap, t, len, FADT_PM1A_CNT_BLK, FADT_X_PM1A_CNT_BLK,
                                      "PM1a_CNT_BLK");
        info->pm1b_cnt = fadt_pm_port(ap, t, len, FADT_PM1B_CNT_BLK, FADT_X_PM1B_CNT_BLK,
                                      "PM1b_CNT_BLK");
        /* SLP_TYP and SLP_EN live in the control register's high byte: a block shorter
         * than 2 bytes cannot hold them (ACPI 6.5 §4.8.3.2.1). */
        if (info->pm1a_cnt && t[FADT_PM1_CNT_LEN] < 2) {
            acpi_warn(ap, "acpi: FADT PM1_CNT_LEN is %u (must be >= 2); %s",
                      t[FADT_PM1_CNT_LEN], "no ACPI poweroff");
            info->pm1a_cnt = info->pm1b_cnt = 0;
        }
        uint32_t tmr = fadt_pm_port(ap, t, len, FADT_PM_TMR_BLK, FADT_X_PM_TMR_BLK,
                                    "PM_TMR_BLK");
        if (tmr && t[FADT_PM_TMR_LEN] != 4) {
            acpi_warn(ap, "acpi: FADT PM_TMR_LEN is %u (must be 4); PM timer not used",
                      t[FADT_PM_TMR_LEN]);
            tmr = 0;
        }
        info->pm_tmr_port = tmr;
        info->pm_tmr_32bit = tmr && (flags & ACPI_FADT_TMR_VAL_EXT);
    }
    /* Hardware-reduced platforms put the sleep registers here (ACPI 6.5 §4.8.3.7). */
    if (fadt_has(len, FADT_SLEEP_CONTROL_REG, 12)) {
        struct acpi_gas g = acpi_gas_read(t + FADT_SLEEP_CONTROL_REG);
        if (g.addr && (g.space == GAS_IO || g.space == GAS_MEMORY))
            info->sleep_control = g;
    }

    if ((flags & ACPI_FADT_RESET_REG_SUP) && fadt_has(len, FADT_RESET_VALUE, 1)) {
        struct acpi_gas g = acpi_gas_read(t + FADT_RESET_REG);
        /* RESET_REG must be an 8-bit register at bit offset 0 in memory, I/O or PCI
         * configuration space of bus 0 (ACPI 6.5 §4.8.3.6). */
        bool ok = g.addr && g.bit_width == 8 && g.bit_offset == 0 &&
                  (g.space == GAS_MEMORY || g.space == GAS_PCI_CONFIG ||
                   (g.space == GAS_IO && g.addr <= 0xFFFF));
        if (ok) {
            info->have_reset = true;
            info->reset_reg = g;
            info->reset_value = t[FADT_RESET_VALUE];
        } else {
            acpi_warn(ap, "acpi: FADT RESET_REG (space %u, width %u, offset %u, address "
                      "%#lx) is malformed; reset falls back to port 0xCF9 and the 8042",
                      g.space, g.bit_width, g.bit_offset, (unsigned long)g.addr);
        }
    }
}

/* ---- \_S5 in the DSDT/SSDT AML (ACPI 6.5 §7.4.2, §20.2) ------------------------- */

/* One package element as an integer: ZeroOp, OneOp or a Byte/Word/DWord/QWord
 * constant (ACPI 6.5 §20.2.3 ComputationalData).  Returns false when it is anything
 * else or runs past end. */
static bool aml_integer(const uint8_t *aml, size_t *pos, size_t end, uint64_t *out)
{
    size_t p = *pos, n;
    if (p >= end)
        return false;
    switch (aml[p]) {
    case AML_ZERO_OP:      *out = 0; *pos = p + 1; return true;
    case AML_ONE_OP:       *out = 1; *pos = p + 1; return true;
    case AML_BYTE_PREFIX:  n = 1; break;
    case AML_WORD_PREFIX:  n = 2; break;
    case AML_DWORD_PREFIX: n = 4; break;
    case AML_QWORD_PREFIX: n = 8; break;
    default:               return false;
    }
    if (end - p - 1 < n)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)aml[p + 1 + i] << (8 * i);
    *out = v;
    *pos = p + 1 + n;
    return true;
}

/* Decodes `Name(_S5_, Package(){a, b, ...})` whose name starts at aml[i]. */
static bool aml_decode_s5(const uint8_t *aml, size_t len, size_t i, uint8_t *typa,
                          uint8_t *typb, const char **why)
{
    size_t p = i + 4;
    if (p >= len || aml[p] != AML_PACKAGE_OP) {
        *why = "it is not followed by a Package";
        return false;
    }
    p++;
    /* PkgLength (ACPI 6.5 §20.2.4): the lead byte's bits 7:6 count the bytes that
     * follow; with none, bits 5:0 are the length, else bits 3:0 are its low nibble.
     * The length counts from the lead byte itself. */
    if (p >= len) {
        *why = "its Package is truncated";
        return false;
    }
    size_t start = p, follow = aml[p] >> 6, pkglen;
    if (len - p - 1 < follow) {
        *why = "its Package length is truncated";
        return false;
    }
    if (!follow) {
        pkglen = aml[p] & 0x3F;
    } else {
        pkglen = aml[p] & 0x0F;
        for (size_t k = 0; k < follow; k++)
            pkglen |= (size_t)aml[p + 1 + k] << (4 + 8 * k);
    }
    if (pkglen > len - start) {
        *why = "its Package runs past the end of the table";
        return false;
    }
    size_t end = start + pkglen;
    p = start + 1 + follow;
    if (p >= end) {
        *why = "its Package has no element count";
        return false;
    }
    uint8_t count = aml[p++];
    if (count < 2) {
        *why = "its Package has fewer than 2 elements";
        return false;
    }
    uint64_t a, b;
    if (!aml_integer(aml, &p, end, &a) || !aml_integer(aml, &p, end, &b)) {
        *why = "its first two elements are not integer constants";
        return false;
    }
    /* SLP_TYPx is a 3-bit field of PM1x_CNT (ACPI 6.5 §4.8.3.2.1, Table 4.13). */
    if (a > 7 || b > 7) {
        *why = "its SLP_TYP values do not fit the 3-bit field";
        return false;
    }
    *typa = (uint8_t)a;
    *typb = (uint8_t)b;
    return true;
}

/* Finds the first well-formed `Name(_S5_, Package...)` in an AML byte stream.  A
 * bytewise search, not an interpreter: the _S5_ object is a static Name in every
 * firmware seen, and every candidate is checked end to end before it is believed.
 * Returns false, with *why set when a candidate was rejected, if none is found. */
static bool aml_find_s5(const uint8_t *aml, size_t len, uint8_t *typa, uint8_t *typb,
                        const char **why)
{
    *why = 0;
    for (size_t i = 1; i + 4 <= len; i++) {
        if (aml[i] != '_' || aml[i + 1] != 'S' || aml[i + 2] != '5' || aml[i + 3] != '_')
            continue;
        /* NameOp, optionally followed by the root prefix: Name(_S5, ...) or Name(\_S5, ...). */
        bool named = aml[i - 1] == AML_NAME_OP ||
                     (i >= 2 && aml[i - 1] == AML_ROOT_CHAR && aml[i - 2] == AML_NAME_OP);
        if (!named)
            continue;
        if (aml_decode_s5(aml, len, i, typa, typb, why))
            return true;
    }
    return false;
}

/* Looks for \_S5 in one definition block; true when found. */
static bool acpi_s5_in_table(struct acpi_parser *ap, uint64_t phys, const char *sig)
{
    uint32_t len;
    const uint8_t *t = acpi_table_load(ap, phys, sig, &len);
    if (!t)
        return false;
    if (sig_is((const uint8_t *)sig, "DSDT"))
        ap->info->dsdt_addr = phys;
    const char *why;
    uint8_t a, b;
    if (aml_find_s5(t + ACPI_HEADER_LEN, len - ACPI_HEADER_LEN, &a, &b, &why)) {
        ap->info->have_s5 = true;
        ap->info->slp_typa = a;
        ap->info->slp_typb = b;
        return true;
    }
    if (why)
        acpi_warn(ap, "acpi: %s at %#lx names _S5_ but %s; not used", sig,
                  (unsigned long)phys, why);
    return false;
}

static void acpi_find_s5(struct acpi_parser *ap)
{
    struct acpi_info *info = ap->info;
    if (!info->have_fadt)
        return;
    bool found = false;
    if (ap->dsdt) {
        if (ap->dsdt32 && ap->dsdt32 != ap->dsdt)
            acpi_warn(ap, "acpi: FADT DSDT %#lx and X_DSDT %#lx differ; X_DSDT is used, as "
                      "ACPI 6.5 §5.2.9 says", (unsigned long)ap->dsdt32, (unsigned long)ap->dsdt);
        found = acpi_s5_in_table(ap, ap->dsdt, "DSDT");
        if (!found && !info->dsdt_addr && ap->dsdt32 && ap->dsdt32 != ap->dsdt)
            found = acpi_s5_in_table(ap, ap->dsdt32, "DSDT");
    } else if (ap->dsdt32) {
        found = acpi_s5_in_table(ap, ap->dsdt32, "DSDT");
    } else {
        acpi_warn(ap, "acpi: FADT names no DSDT; no \\_S5: no ACPI poweroff");
    }
    /* \_S5 may live in a secondary definition block (ACPI 6.5 §5.2.11.2). */
    for (uint32_t i = 0; !found && i < ap->ssdt_count; i++)
        found = acpi_s5_in_table(ap, ap->ssdts[i], "SSDT");
    if (!found && (ap->dsdt || ap->dsdt32))
        acpi_warn(ap, "acpi: no usable \\_S5 object in the DSDT%s; no ACPI poweroff",
                  ap->ssdt_count ? " or SSDTs" : "");
}

/* ---- HPET, MCFG, DMAR, SPCR ------------------------------------------------------- */

static void acpi_parse_hpet(struct acpi_parser *ap, const uint8_t *t, uint32_t len, uint64_t phys)
{
    /* IA-PC HPET specification 1.0a §3.2.4, Table 3: the base address is a GAS at 40. */
    if (len < 56) {
        acpi_warn(ap, "acpi: HPET table at %#lx is %u bytes (needs 56); skipped: %s",
                  (unsigned long)phys, len, acpi_fallback("HPET"));
        return;
    }
    struct acpi_gas g = acpi_gas_read(t + 40);
    if (g.space != GAS_MEMORY || !g.addr || (g.addr & 0x3FF)) {
        acpi_warn(ap, "acpi: HPET table gives base %#lx in address space %u (needs a "
                  "1 KiB-aligned memory address); skipped: %s", (unsigned long)g.addr,
                  g.space, acpi_fallback("HPET"));
        return;
    }
    ap->have_hpet = true;
    ap->info->hpet_addr = g.addr;
}

static void acpi_parse_mcfg(struct acpi_parser *ap, const uint8_t *t, uint32_t len, uint64_t phys)
{
    /* PCI Firmware Specification 3.2 §4.1.2: 8 reserved bytes, then 16-byte entries. */
    struct acpi_info *info = ap->info;
    if (len < ACPI_HEADER_LEN + 8) {
        acpi_warn(ap, "acpi: MCFG at %#lx is %u bytes, too short; skipped: %s",
                  (unsigned long)phys, len, acpi_fallback("MCFG"));
        return;
    }
    uint32_t body = len - ACPI_HEADER_LEN - 8;
    if (body % 16)
        acpi_warn(ap, "acpi: MCFG at %#lx ends with a partial entry (%u stray bytes); ignored",
                  (unsigned long)phys, body % 16);
    for (uint32_t off = ACPI_HEADER_LEN + 8; off + 16 <= len; off += 16) {
        const uint8_t *e = t + off;
        uint64_t base = rd64(e);
        uint16_t seg = rd16(e + 8);
        uint8_t bus0 = e[10], bus1 = e[11];
        if (!base || bus1 < bus0) {
            acpi_warn(ap, "acpi: MCFG entry segment %u buses %u-%u base %#lx is invalid; "
                      "ignored", seg, bus0, bus1, (unsigned long)base);
            continue;
        }
        if (info->mcfg_count == ACPI_MAX_MCFG) {
            acpi_warn(ap, "acpi: MCFG has more than %u entries; segment %u is reached "
                      "through ports 0xCF8/0xCFC only", ACPI_MAX_MCFG, seg);
            break;
        }
        info->mcfg[info->mcfg_count].base = base;
        info->mcfg[info->mcfg_count].segment = seg;
        info->mcfg[info->mcfg_count].bus_start = bus0;
        info->mcfg[info->mcfg_count].bus_end = bus1;
        info->mcfg_count++;
    }
}

static void acpi_parse_dmar(struct acpi_parser *ap, const uint8_t *t, uint32_t len, uint64_t phys)
{
    (void)t;
    /* Intel VT-d specification §8.1: host address width, flags, 10 reserved bytes. */
    if (len < ACPI_HEADER_LEN + 12) {
        acpi_warn(ap, "acpi: DMAR at %#lx is %u bytes, too short; skipped: %s",
                  (unsigned long)phys, len, acpi_fallback("DMAR"));
        return;
    }
    ap->info->have_dmar = true;
    ap->info->dmar_addr = phys;
    ap->info->dmar_len = len;
}

static void acpi_parse_spcr(struct acpi_parser *ap, const uint8_t *t, uint32_t len, uint64_t phys)
{
    /* Microsoft SPCR specification: interface type at 36, base address GAS at 40. */
    if (len < 52) {
        acpi_warn(ap, "acpi: SPCR at %#lx is %u bytes, too short; skipped: %s",
                  (unsigned long)phys, len, acpi_fallback("SPCR"));
        return;
    }
    ap->have_spcr = true;
    ap->info->have_spcr = true;
    ap->info->spcr_interface = t[36];
    ap->info->spcr_addr = acpi_gas_read(t + 40);
}

/* DBG2 serial subtypes that are register-compatible with the 16550 (Microsoft DBG2
 * specification, Table 3): full 16550, 16550 subset, and 16550 described by the GAS. */
#define SPCR_16550          0x00
#define SPCR_16550_SUBSET   0x01
#define SPCR_16550_GAS      0x12

uint16_t acpi_spcr_io_port(const struct acpi_info *info)
{
    if (!info->have_spcr || info->spcr_addr.space != GAS_IO)
        return 0;
    if (info->spcr_interface != SPCR_16550 && info->spcr_interface != SPCR_16550_SUBSET &&
        info->spcr_interface != SPCR_16550_GAS)
        return 0;
    /* A UART occupies eight ports. */
    if (!info->spcr_addr.addr || info->spcr_addr.addr > 0xFFF8)
        return 0;
    return (uint16_t)info->spcr_addr.addr;
}

/* ---- the root tables -------------------------------------------------------------- */

typedef void (*acpi_table_parser)(struct acpi_parser *, const uint8_t *, uint32_t, uint64_t);

static void acpi_dispatch(struct acpi_parser *ap, uint64_t phys)
{
    static const struct { const char *sig; acpi_table_parser fn; } parsers[] = {
        { "APIC", acpi_parse_madt }, { "FACP", acpi_parse_fadt },
        { "HPET", acpi_parse_hpet }, { "MCFG", acpi_parse_mcfg },
        { "DMAR", acpi_parse_dmar }, { "SPCR", acpi_parse_spcr },
    };
    const uint8_t *hdr = acpi_map(ap, phys, ACPI_HEADER_LEN);
    if (!hdr) {
        acpi_warn(ap, "acpi: the %s lists a table at %#lx outside readable memory; skipped",
                  ap->root_name, (unsigned long)phys);
        return;
    }
    if (sig_is(hdr, "SSDT")) {
        if (ap->ssdt_count < ACPI_MAX_SSDTS)
            ap->ssdts[ap->ssdt_count++] = phys;
        return;
    }
    for (size_t i = 0; i < sizeof parsers / sizeof parsers[0]; i++) {
        if (!sig_is(hdr, parsers[i].sig))
            continue;
        const struct acpi_info *info = ap->info;
        bool done = (parsers[i].fn == acpi_parse_madt && ap->have_madt) ||
                    (parsers[i].fn == acpi_parse_fadt && info->have_fadt) ||
                    (parsers[i].fn == acpi_parse_hpet && ap->have_hpet) ||
                    (parsers[i].fn == acpi_parse_dmar && info->have_dmar) ||
                    (parsers[i].fn == acpi_parse_spcr && ap->have_spcr);
        if (done) {
            /* Only MCFG may legitimately repeat; for the rest the first good one wins. */
            acpi_warn(ap, "acpi: a second %s at %#lx; the first one is kept",
                      parsers[i].sig, (unsigned long)phys);
            return;
        }
        uint32_t len;
        const uint8_t *t = acpi_table_load(ap, phys, parsers[i].sig, &len);
        if (t)
            parsers[i].fn(ap, t, len, phys);
        return;
    }
}

static bool acpi_root_walk(struct acpi_parser *ap, uint64_t phys, bool xsdt)
{
    const char *sig = xsdt ? "XSDT" : "RSDT";
    uint32_t len;
    ap->root_name = sig;
    const uint8_t *t = acpi_table_load(ap, phys, sig, &len);
    if (!t)
        return false;
    uint32_t esz = xsdt ? 8 : 4;
    uint32_t body = len - ACPI_HEADER_LEN;
    if (body % esz)
        acpi_warn(ap, "acpi: %s at %#lx ends with a partial entry (%u stray bytes); ignored",
                  sig, (unsigned long)phys, body % esz);
    for (uint32_t off = ACPI_HEADER_LEN; off + esz <= len; off += esz) {
        uint64_t a = xsdt ? rd64(t + off) : rd32(t + off);
        if (!a) {
            acpi_warn(ap, "acpi: %s entry %u is a null pointer; skipped", sig,
                      (off - ACPI_HEADER_LEN) / esz);
            continue;
        }
        acpi_dispatch(ap, a);
    }
    return true;
}

static void acpi_copy_oem(char out[7], const uint8_t *p)
{
    int n = 0;
    for (int i = 0; i < 6; i++)
        out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    for (n = 6; n > 0 && (out[n - 1] == ' ' || p[n - 1] == 0); n--)
        ;
    out[n] = '\0';
}

void acpi_parse(const uint8_t *rsdp, size_t rsdp_len, acpi_map_fn map, void *ctx,
                struct acpi_info *info)
{
    *info = (struct acpi_info){ 0 };
    struct acpi_parser ap = { .map = map, .ctx = ctx, .info = info };
    const char *none = "running without ACPI: boot CPU alone, PIT timer, no ACPI poweroff";

    /* RSDP (ACPI 6.5 §5.2.5.3): the first 20 bytes sum to zero; from revision 2 the
     * whole structure (Length bytes) does too. */
    if (!rsdp || rsdp_len < ACPI_RSDP_V1_LEN) {
        acpi_warn(&ap, "acpi: the boot loader found no RSDP; %s", none);
        return;
    }
    if (rsdp[0] != 'R' || rsdp[1] != 'S' || rsdp[2] != 'D' || rsdp[3] != ' ' ||
        rsdp[4] != 'P' || rsdp[5] != 'T' || rsdp[6] != 'R' || rsdp[7] != ' ') {
        acpi_warn(&ap, "acpi: the RSDP has no 'RSD PTR ' signature; %s", none);
        return;
    }
    if (acpi_checksum(rsdp, ACPI_RSDP_V1_LEN) != 0) {
        acpi_warn(&ap, "acpi: the RSDP has a bad checksum; %s", none);
        return;
    }
    info->revision = rsdp[15];
    acpi_copy_oem(info->oem_id, rsdp + 9);
    uint64_t rsdt = rd32(rsdp + 16), xsdt = 0;
    if (info->revision >= 2) {
        uint32_t xlen = rsdp_len >= ACPI_RSDP_V2_LEN ? rd32(rsdp + 20) : 0;
        if (rsdp_len < ACPI_RSDP_V2_LEN)
            ; /* the loader copied only the 1.0 part (Multiboot2's old-RSDP tag) */
        else if (xlen < ACPI_RSDP_V2_LEN || xlen > rsdp_len)
            acpi_warn(&ap, "acpi: the RSDP's length %u is invalid; using the RSDT", xlen);
        else if (acpi_checksum(rsdp, xlen) != 0)
            acpi_warn(&ap, "acpi: the RSDP's extended checksum is bad; using the RSDT");
        else
            xsdt = rd64(rsdp + 24);
    }
    /* ACPI 6.5 §5.2.5.3: an OS uses the XSDT when there is one. */
    bool ok = false;
    if (xsdt) {
        ok = acpi_root_walk(&ap, xsdt, true);
        if (!ok && rsdt)
            acpi_warn(&ap, "acpi: falling back from the XSDT to the RSDT at %#lx",
                      (unsigned long)rsdt);
    }
    if (!ok && rsdt)
        ok = acpi_root_walk(&ap, rsdt, false);
    if (!ok) {
        acpi_warn(&ap, "acpi: no valid RSDT or XSDT; %s", none);
        *info = (struct acpi_info){ .warnings = info->warnings, .revision = info->revision };
        acpi_copy_oem(info->oem_id, rsdp + 9);
        return;
    }
    info->present = true;
    if (!ap.have_madt)
        acpi_warn(&ap, "acpi: no usable MADT; %s", acpi_fallback("APIC"));
    if (!info->have_fadt)
        acpi_warn(&ap, "acpi: no usable FADT; %s", acpi_fallback("FACP"));
    acpi_find_s5(&ap);
}

/* ---- the core side ---------------------------------------------------------------- */

static struct acpi_info acpi_info;

/* Tables in RAM-like memory (ACPI, NVS, RAM) are read through the direct map; tables
 * elsewhere (SeaBIOS, for one, keeps them in "reserved" memory) through an uncached
 * window, which mmio_map reuses when a later table falls inside it. */
static const void *acpi_core_map(void *ctx, uint64_t phys, size_t len)
{
    (void)ctx;
    if (!len || phys > UINT64_MAX - len)
        return 0;
    if (paging_is_direct_mapped(phys, len))
        return phys_to_virt(phys);
    return mmio_map(phys, len);
}

void acpi_init(const struct bootinfo *bi)
{
    size_t rsdp_len = bi->rsdp_len < sizeof bi->rsdp ? bi->rsdp_len : sizeof bi->rsdp;
    acpi_parse(bi->rsdp, rsdp_len, acpi_core_map, 0, &acpi_info);
    const struct acpi_info *ai = &acpi_info;
    if (!ai->present)
        return; /* acpi_parse said why and what plinth does instead */

    char line[256];
    size_t n = 0;
#define ACPI_APPEND(...) do { \
        int m_ = fmt_snprintf(line + n, sizeof line - n, __VA_ARGS__); \
        if (m_ > 0) n += (size_t)m_ < sizeof line - n ? (size_t)m_ : sizeof line - n - 1; \
    } while (0)
    ACPI_APPEND("acpi: rev %u OEM %s, %u CPU%s, %u IOAPIC%s", ai->revision,
                ai->oem_id[0] ? ai->oem_id : "(none)", ai->cpu_count,
                ai->cpu_count == 1 ? "" : "s", ai->ioapic_count,
                ai->ioapic_count == 1 ? "" : "s");
    if (ai->hpet_addr)
        ACPI_APPEND(", HPET at %#lx", (unsigned long)ai->hpet_addr);
    else
        ACPI_APPEND(", no HPET");
    if (ai->pm_tmr_port)
        ACPI_APPEND(", PM timer at port %#x (%u-bit)", ai->pm_tmr_port,
                    ai->pm_tmr_32bit ? 32 : 24);
    else
        ACPI_APPEND(", no PM timer");
    if (ai->have_s5)
        ACPI_APPEND(", S5 ok");
    else
        ACPI_APPEND(", no S5");
#undef ACPI_APPEND
    log_info("%s", line);
    log_info("acpi: LAPIC %#lx, %u IRQ override%s, MCFG %u, DMAR %s, reset %s, SPCR %s, "
             "%u warning%s", (unsigned long)ai->lapic_addr, ai->iso_count,
             ai->iso_count == 1 ? "" : "s", ai->mcfg_count, ai->have_dmar ? "yes" : "no",
             !ai->have_reset ? "via 0xCF9/8042"
                 : ai->reset_reg.space == GAS_IO ? "register (I/O)"
                 : ai->reset_reg.space == GAS_MEMORY ? "register (memory)"
                 : "register (PCI config)",
             ai->have_spcr ? "yes" : "no", ai->warnings, ai->warnings == 1 ? "" : "s");
}

const struct acpi_info *acpi_get(void)
{
    return &acpi_info;
}
