/* The host's ACPI table parser (drivers/acpi.c) on tables made of the fuzzer's bytes:
 * an RSDP (valid, so the walk starts) pointing at an RSDT or XSDT, and sixteen 1 KiB
 * slots of tables whose checksums the harness makes right half of the time, so that
 * the parser gets past them and into the MADT, FADT, DSDT (\_S5), HPET, MCFG, DMAR and
 * SPCR bodies.  It must map only what it asks for, never read past a mapping, keep
 * its counts within its arrays, and never fail hard. */
#include "fuzz.h"
#include "kernel/fmt.c"
#include "drivers/acpi.c"

#define PHYS_BASE 0x7fff0000ull
#define SLOT      0x400u
#define SLOTS     16

static uint8_t physmem[SLOT * SLOTS];

void log_printf(enum log_level level, const char *fmt, ...) { (void)level; (void)fmt; }
void log_vprintf(enum log_level level, const char *fmt, va_list ap) { (void)level; (void)fmt; (void)ap; }
/* The core's side of acpi_init, which the harness does not call. */
bool paging_is_direct_mapped(uint64_t phys, uint64_t size) { (void)phys; (void)size; return false; }
void *phys_to_virt(uint64_t phys) { (void)phys; abort(); }
void *mmio_map(uint64_t phys, size_t size) { (void)phys; (void)size; abort(); }

/* Each mapping is a heap copy of exactly the length asked for: ASan sees a read past. */
static void *maps[256];
static unsigned nmaps;

static const void *map(void *ctx, uint64_t phys, size_t len)
{
    (void)ctx;
    if (phys < PHYS_BASE || phys - PHYS_BASE > sizeof physmem || len > sizeof physmem - (phys - PHYS_BASE) ||
        nmaps == 256)
        return NULL;
    void *c = malloc(len ? len : 1);
    memcpy(c, physmem + (phys - PHYS_BASE), len);
    maps[nmaps++] = c;
    return c;
}

static void checksum(uint8_t *t, size_t len, size_t at)
{
    t[at] = 0;
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += t[i];
    t[at] = (uint8_t)-sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    uint8_t flags = fz_u8(&in);
    fz_bytes(&in, physmem, sizeof physmem);
    for (unsigned s = 0; s < SLOTS; s++) {
        uint8_t *t = physmem + s * SLOT;
        uint32_t len = (uint32_t)(t[4] | t[5] << 8) % (SLOT + 1);
        t[4] = (uint8_t)len;
        t[5] = (uint8_t)(len >> 8);
        t[6] = t[7] = 0;
        if ((flags & 1) && len >= 10)
            checksum(t, len, 9);
    }
    /* Slot 0 is the RSDT or XSDT: its entries point into the slots. */
    bool xsdt = flags & 2;
    uint8_t *root = physmem;
    memcpy(root, xsdt ? "XSDT" : "RSDT", 4);
    uint32_t rlen = 36 + (flags >> 4) * (xsdt ? 8 : 4);
    root[4] = (uint8_t)rlen;
    root[5] = (uint8_t)(rlen >> 8);
    for (unsigned e = 0; 36 + e * (xsdt ? 8 : 4) < rlen; e++) {
        uint64_t at = PHYS_BASE + (1 + root[36 + e] % (SLOTS - 1)) * SLOT;
        memcpy(root + 36 + e * (xsdt ? 8 : 4), &at, xsdt ? 8 : 4);
    }
    checksum(root, rlen, 9);
    uint8_t rsdp[36] = "RSD PTR ";
    memcpy(rsdp + 9, "FUZZ  ", 6);
    rsdp[15] = xsdt ? 2 : 0;
    uint32_t rsdt_at = (uint32_t)PHYS_BASE;
    uint64_t xsdt_at = PHYS_BASE;
    memcpy(rsdp + 16, &rsdt_at, 4);
    uint32_t l = 36;
    memcpy(rsdp + 20, &l, 4);
    memcpy(rsdp + 24, &xsdt_at, 8);
    checksum(rsdp, 20, 8);
    checksum(rsdp, 36, 32);
    struct acpi_info info;
    nmaps = 0;
    acpi_parse(rsdp, xsdt ? 36 : 20, map, NULL, &info);
    FUZZ_CHECK(info.cpu_count <= ACPI_MAX_CPUS, "%u CPUs", info.cpu_count);
    FUZZ_CHECK(info.ioapic_count <= ACPI_MAX_IOAPICS, "%u IOAPICs", info.ioapic_count);
    FUZZ_CHECK(info.mcfg_count <= ACPI_MAX_MCFG, "%u MCFG entries", info.mcfg_count);
    FUZZ_CHECK(!info.have_s5 || (info.slp_typa < 8 && info.slp_typb < 8), "SLP_TYP %u/%u", info.slp_typa,
               info.slp_typb);
    (void)acpi_spcr_io_port(&info);
    for (unsigned i = 0; i < nmaps; i++)
        free(maps[i]);
    return 0;
}
